"""Which forms a person may use on a phone, and the form media built for their scope.

Our forms choose villages, suppliers and cases from CSV files (select_one_from_file). The server
builds those files for each monitor from the villages assigned to them, so a phone never holds the
list of another area, and the md5 in the manifest changes whenever the content does (Collect then
downloads the new file).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Row, bindparam, or_, select
from sqlalchemy.orm import Session

from clms.exports import csv_chunks
from clms.models import (
    OPEN_CASE_STATES,
    Area,
    Case,
    Child,
    Form,
    FormArea,
    FormAttachment,
    FormVersion,
    Supplier,
    SupplierVillage,
    User,
    Village,
)
from clms.scope import area_ids_in_scope, village_ids_in_scope
from forms.parse import OUR_FORMS

DYNAMIC_MEDIA = ("villages.csv", "suppliers.csv", "cases.csv")
#: the CSV a phone reads (select_one_from_file), by the one CSV writer: no byte-order mark, "\n"
#: line ends, every value as it is (the ``name`` column is what the form submits)
PHONE_CSV = {"bom": False, "line_end": "\n", "formulas_neutralised": False}


@dataclass
class MediaFile:
    name: str
    content_type: str
    data: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()


def usable_forms(session: Session, user: User, *, for_submission: bool = False) -> list[Form]:
    """Forms ``user`` may download (state open) or submit to (open or closing).

    A form restricted to areas is for people scoped inside one of those areas.
    """
    states = ("open", "closing") if for_submission else ("open",)
    forms = session.scalars(
        select(Form)
        .where(Form.state.in_(states), Form.live_version_id.is_not(None))
        .order_by(Form.xml_form_id)
    ).all()
    restricted = {
        form_id: set() for form_id in session.scalars(select(FormArea.form_id).distinct())
    }
    if not restricted:
        return list(forms)
    for form_id, area_id in session.execute(select(FormArea.form_id, FormArea.area_id)):
        restricted[form_id].add(area_id)
    mine = _areas_with_ancestors(session, area_ids_in_scope(session, user))
    return [f for f in forms if f.id not in restricted or restricted[f.id] & mine]


_FORM_AREAS = select(FormArea.area_id).where(FormArea.form_id == bindparam("form_id"))


def form_usable(
    session: Session, user: User, form: Form | Row, *, for_submission: bool = False
) -> bool:
    """Whether ``form`` is one of :func:`usable_forms` for ``user`` (without listing them all).

    ``form`` may be a row that already says whether the form is restricted (``has_areas``).
    """
    states = ("open", "closing") if for_submission else ("open",)
    if form.state not in states or form.live_version_id is None:
        return False
    if getattr(form, "has_areas", True) is False:
        return True
    restricted = set(session.scalars(_FORM_AREAS, {"form_id": form.id}))
    if not restricted:
        return True
    return bool(restricted & _areas_with_ancestors(session, area_ids_in_scope(session, user)))


def _areas_with_ancestors(session: Session, area_ids: set[int]) -> set[int]:
    parents = dict(session.execute(select(Area.id, Area.parent_id)).all())
    found = set()
    for area_id in area_ids:
        while area_id is not None and area_id not in found:
            found.add(area_id)
            area_id = parents.get(area_id)
    return found


def media_for(session: Session, user: User, version: FormVersion) -> list[MediaFile]:
    """The media files of ``version`` as ``user`` gets them (built per scope for our forms)."""
    files: list[MediaFile] = []
    ours = version.form.xml_form_id in OUR_FORMS
    uploaded = {
        a.name: a
        for a in session.scalars(
            select(FormAttachment).where(FormAttachment.form_version_id == version.id)
        )
    }
    for name in version.media_files or []:
        if ours and name in DYNAMIC_MEDIA:
            files.append(MediaFile(name, "text/csv", build_csv(session, user, name)))
        elif name in uploaded:
            a = uploaded[name]
            files.append(MediaFile(name, a.content_type, a.data))
    return files


def build_csv(session: Session, user: User, name: str) -> bytes:
    """villages.csv, suppliers.csv or cases.csv for ``user``'s villages.

    cases.csv lists the open cases of the monitor's villages that the monitor follows up, or that
    no monitor is assigned to yet: case number, the child's first name (no more) and village.
    """
    village_ids = village_ids_in_scope(session, user)
    if name == "villages.csv":
        header = ["name", "label", "area"]
        rows = session.execute(
            select(Village.code, Village.name, Area.code)
            .join(Area, Area.id == Village.area_id)
            .where(Village.id.in_(village_ids))
            .order_by(Village.name, Village.code)
        )
    elif name == "suppliers.csv":
        header = ["name", "label", "tier"]
        rows = [
            *session.execute(
                select(Supplier.code, Supplier.name, Supplier.tier)
                .join(SupplierVillage, SupplierVillage.supplier_id == Supplier.id)
                .where(SupplierVillage.village_id.in_(village_ids))
                .distinct()
                .order_by(Supplier.name, Supplier.code)
            ),
            ["none", "None of these / does not sell", ""],
        ]
    elif name == "cases.csv":
        header = ["name", "label", "first_name", "village"]
        rows = [
            _case_row(number, child_name, village_code)
            for number, child_name, village_code in session.execute(
                select(Case.case_number, Child.name, Village.code)
                .join(Child, Child.id == Case.child_id)
                .join(Village, Village.id == Case.village_id)
                .where(
                    Case.village_id.in_(village_ids),
                    Case.state.in_(OPEN_CASE_STATES),
                    # the monitor's own cases, and those of their villages nobody follows yet
                    or_(Case.monitor_id == user.id, Case.monitor_id.is_(None)),
                )
                .order_by(Case.case_number)
            )
        ]
    else:
        raise KeyError(name)
    return b"".join(csv_chunks(header, rows, **PHONE_CSV))


def _case_row(number: str, child_name: str | None, village_code: str) -> list[str]:
    """A line of cases.csv: the first name only, enough for the monitor to find the child."""
    first = (child_name or "").split()[0] if child_name else ""
    return [number, f"{number} {first}".strip(), first, village_code]
