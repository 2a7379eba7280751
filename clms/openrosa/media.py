"""Which forms a person may use on a phone, and the form media built for their scope.

Our forms choose villages, suppliers and cases from CSV files (select_one_from_file). The server
builds those files for each monitor from the villages assigned to them, so a phone never holds the
list of another area, and the md5 in the manifest changes whenever the content does (Collect then
downloads the new file).

A follow-up form version that declares the entity list ``cases`` (an ``entities`` sheet: ODK
entities, Collect v2024.1 and later) gets cases.csv as that list, the way ODK Central serves a
form's entity list: the manifest entry says ``type="entityList"`` with an ``integrityUrl``, and the
rows are the case entities (``name`` their UUID, ``label``, ``__version``, then the properties;
clms.cases.entities). Earlier versions of the form, still on phones until they update, get the
cases.csv they were built for (``name`` the case number). Both come from the same query of the
monitor's cases (clms.cases.entities.listed_cases).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from clms.cases.entities import DATASET, HEADER, case_label, entity_list, first_name, listed_cases
from clms.exports import csv_chunks
from clms.models import (
    Area,
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
from forms.xmlsafe import local, parse_xml

DYNAMIC_MEDIA = ("villages.csv", "suppliers.csv", "cases.csv")
#: the CSV a phone reads (select_one_from_file), by the one CSV writer: no byte-order mark, "\n"
#: line ends, every value as it is (the ``name`` column is what the form submits)
PHONE_CSV = {"bom": False, "line_end": "\n", "formulas_neutralised": False}


@dataclass
class MediaFile:
    name: str
    content_type: str
    data: bytes
    #: the entity list this file is (its manifest entry says so, with an integrity URL)
    entity_list: str | None = None

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
        if (
            ours
            and name == f"{DATASET}.csv"
            and DATASET in entity_lists(version.id, version.md5, version.xml)
        ):
            rows = entity_list(session, user)
            data = b"".join(csv_chunks(HEADER, rows, **PHONE_CSV))
            files.append(MediaFile(name, "text/csv", data, DATASET))
        elif ours and name in DYNAMIC_MEDIA:
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
            [number, case_label(number, child_name), first_name(child_name), village_code]
            for _id, number, child_name, village_code in session.execute(
                listed_cases(village_ids, user.id)
            )
        ]
    else:
        raise KeyError(name)
    return b"".join(csv_chunks(header, rows, **PHONE_CSV))


@lru_cache(maxsize=64)
def entity_lists(version_id: int, md5: str, xml: bytes | str) -> frozenset[str]:
    """The entity lists a form version updates or creates in (``<meta><entity dataset=...>``
    in its model); cached by version and md5, as a version's XML never changes."""
    root = parse_xml(xml.encode() if isinstance(xml, str) else xml)
    return frozenset(
        e.get("dataset", "")
        for e in root.iter()
        if local(e.tag) == "entity" and e.get("dataset") and local(e.getparent().tag) == "meta"
    )
