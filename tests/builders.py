"""Rows for tests, written straight to the database, one small builder per kind of row.

A household in a village, a child in it, a visit with its child visits and their current
classifications at a date, an alert for a child. Each builder adds its row, flushes and returns
it; keyword arguments name what tests vary and any other column can be given as well. Villages,
suppliers and users are named by their code (username), or given as ids.

Used by tests/factories.py and by the worlds of the queue, duplicate, hotspot, KPI and scheduler
tests.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from contextlib import contextmanager

from sqlalchemy import select

from clms.facts import refresh_children
from clms.models import (
    Alert,
    Case,
    Child,
    ChildVisit,
    Classification,
    CountryProfile,
    Form,
    FormVersion,
    Household,
    Referral,
    ServiceProvider,
    Submission,
    Supplier,
    User,
    Village,
    Visit,
)

NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
SEVERITY = {
    "worst_form": "critical",
    "hazardous": "high",
    "child_labour": "medium",
    "at_risk": "low",
}
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
# acknowledge within, first visit within (domain.md section 4)
DEADLINES = {
    "worst_form": (dt.timedelta(hours=24), dt.timedelta(hours=72)),
    "hazardous": (dt.timedelta(days=3), dt.timedelta(days=7)),
    "child_labour": (dt.timedelta(days=7), dt.timedelta(days=14)),
    "at_risk": (dt.timedelta(days=30), None),
}
FORM = "test_visits"  # the form the submissions behind built visits belong to
_numbers = itertools.count(1)


def id_of(s, model, code: str | int | None) -> int | None:
    """The id of the row of ``model`` with ``code`` (a username for users); an id stays."""
    if code is None or isinstance(code, int):
        return code
    column = User.username if model is User else model.code
    return s.scalar(select(model.id).where(column == code))


def village_id(s, code: str) -> int:
    return id_of(s, Village, code)


def _add(s, row):
    s.add(row)
    s.flush()
    return row


# --- households and children ---------------------------------------------------------------------


def household(s, village: str | int | None = "V1", *, code: str | None = None,
              supplier: str | int | None = None, head_name: str | None = None,
              **fields) -> Household:  # fmt: skip
    """A household of ``village`` selling to ``supplier``; its code is ``HH-<n>`` unless given."""
    return _add(s, Household(
        code=code or f"HH-{next(_numbers)}", village_id=id_of(s, Village, village),
        supplier_id=id_of(s, Supplier, supplier), head_name=head_name, **fields,
    ))  # fmt: skip


def child(s, home: Household | int, name: str = "Aya Traoré", *, sex: str | None = None,
          birth_year: int | None = 2013, age: int | None = None, on: dt.date | None = None,
          uid: str | None = None, name_key: str | None = None, **fields) -> Child:  # fmt: skip
    """A child of ``home``. ``age`` (at ``on``, default today) sets the birth year instead;
    ``uid`` the pseudonymous id (else generated); ``name_key`` is the name in lower case unless
    given."""
    if age is not None:
        birth_year = (on or dt.date.today()).year - age
    if uid is not None:
        fields["child_uid"] = uid
    return _add(s, Child(
        household_id=home if isinstance(home, int) else home.id, name=name,
        name_key=name.lower() if name_key is None else name_key, sex=sex,
        birth_year=birth_year, **fields,
    ))  # fmt: skip


# --- visits and classifications ------------------------------------------------------------------


def form_version(s, xml_form_id: str = FORM) -> FormVersion:
    """Version 1 of the form ``xml_form_id``, added the first time it is asked for."""
    found = s.scalar(
        select(FormVersion).join(Form, FormVersion.form_id == Form.id)
        .where(Form.xml_form_id == xml_form_id).order_by(FormVersion.id).limit(1)
    )  # fmt: skip
    if found is not None:
        return found
    form = _add(s, Form(xml_form_id=xml_form_id, title=xml_form_id))
    return _add(s, FormVersion(form_id=form.id, version="1", xml=b"<x/>", md5="0" * 32))


def profile(s) -> CountryProfile:
    """The current ILO default country profile, added the first time it is asked for."""
    found = s.scalar(
        select(CountryProfile).where(CountryProfile.code == "ILO", CountryProfile.current)
    )
    return found or _add(s, CountryProfile(
        code="ILO", version=1, name="ILO", min_age=15, light_work_age=12,
        light_work_max_hours=14, min_age_hazardous=18, hazardous_hours=43, chores_hours=21,
    ))  # fmt: skip


def submission(s, *, current: bool = True, xml_form_id: str = FORM, **fields) -> Submission:
    """A parsed submission of the test form (the row every visit comes from)."""
    version = form_version(s, xml_form_id)
    n = next(_numbers)
    values = dict(
        instance_id=f"uuid:test-{n}", logical_id=f"uuid:test-{n}", form_id=version.form_id,
        form_version_id=version.id, xml=b"<x/>", xml_sha256="0" * 64, source="openrosa",
        status="parsed", current=current,
    )  # fmt: skip
    values.update(fields)
    return _add(s, Submission(**values))


def visit(s, home: Household, when: dt.datetime,
          children: Iterable[tuple] = (), *, village: str | int | None = None,
          supplier: str | int | None = None, monitor: str | int | None = None,
          kind: str = "household", current: bool = True, case=None, age: int | None = None,
          rule_set_version: str = "test", **fields) -> Visit:  # fmt: skip
    """A visit of ``home`` at ``when`` (in ``home``'s village unless ``village`` is given) that
    saw ``children`` ``[(child, category) or (child, category, sdg_871), ...]``: a child visit
    each (of ``age``) with its current classification. ``sdg_871`` is ``category != "none"``
    unless given. ``current`` False: an edit replaced it (the submission too)."""
    sub = submission(s, current=current)
    v = _add(s, Visit(
        submission_id=sub.id, kind=kind, current=current, household_id=home.id,
        case_id=case.id if case is not None else None,
        village_id=id_of(s, Village, village) if village is not None else home.village_id,
        supplier_id=id_of(s, Supplier, supplier), monitor_id=id_of(s, User, monitor),
        visited_at=when, **fields,
    ))  # fmt: skip
    for position, (kid, category, *sdg) in enumerate(children, 1):
        cv = child_visit(s, v, kid, position=position, age=age)
        classification(s, cv, category, sdg_871=sdg[0] if sdg else None,
                       rule_set_version=rule_set_version)  # fmt: skip
    return v


def child_visit(s, v: Visit, kid: Child, *, position: int = 1, age: int | None = None,
                **fields) -> ChildVisit:  # fmt: skip
    """What visit ``v`` found about ``kid`` (the ``position``-th child of its form)."""
    return _add(s, ChildVisit(visit_id=v.id, child_id=kid.id, position=position, age=age,
                              **fields))  # fmt: skip


def classification(s, cv: ChildVisit, category: str, *, sdg_871: bool | None = None,
                   current: bool = True, rule_set_version: str = "test",
                   **fields) -> Classification:  # fmt: skip
    """How the child of ``cv`` was classified (under the ILO default profile unless
    ``profile_id`` is given); ``sdg_871`` is ``category != "none"`` unless given."""
    fields.setdefault("profile_id", profile(s).id)
    row = _add(s, Classification(
        child_visit_id=cv.id, child_id=cv.child_id, current=current,
        rule_set_version=rule_set_version, category=category,
        sdg_871=category != "none" if sdg_871 is None else sdg_871, **fields,
    ))  # fmt: skip
    if _FACTS_LATER:
        _FACTS_LATER[-1].add(cv.child_id)
    else:
        refresh_children(s, [cv.child_id])  # the kept facts, as the pipeline keeps them
    return row


#: children whose kept facts wait for the end of a :func:`facts_at_end` block
_FACTS_LATER: list[set[int]] = []


@contextmanager
def facts_at_end(s):
    """Build many classifications, and make their children's kept facts once at the end (the
    facts are the same: a refresh makes a child's facts again from all its rows)."""
    _FACTS_LATER.append(set())
    try:
        yield
    finally:
        refresh_children(s, sorted(_FACTS_LATER.pop()))


# --- alerts --------------------------------------------------------------------------------------


def alert(s, kid: Child | None = None, *, village: str | int | None = None,
          supplier: str | int | None = None, category: str = "worst_form",
          severity: str | None = None, status: str = "new", created_at: dt.datetime = NOW,
          **fields) -> Alert:  # fmt: skip
    """An alert of ``kid`` (else a reported concern) raised at ``created_at``.

    The village is the child's household's unless given; the severity is the category's unless
    given; the deadlines (``ack_due_at``, ``visit_due_at``) are the category's counted from
    ``created_at`` unless given; ``fields`` set any other column.
    """
    home = s.get(Household, kid.household_id) if kid is not None else None
    if village is None and home is not None:
        village = home.village_id
    severity = severity or SEVERITY[category]
    ack, first_visit = DEADLINES[category]
    values = dict(
        source="visit" if kid is not None else "reported", status=status,
        child_id=kid.id if kid is not None else None,
        household_id=home.id if home is not None else None,
        village_id=id_of(s, Village, village), supplier_id=id_of(s, Supplier, supplier),
        category=category, severity=severity, severity_rank=RANK[severity],
        reasons=[{"rule": "TEST", "facts": {"age": 11}}], created_at=created_at,
        updated_at=created_at, last_seen_at=created_at, ack_due_at=created_at + ack,
        visit_due_at=created_at + first_visit if first_visit else None,
    )  # fmt: skip
    values.update(fields)
    return _add(s, Alert(**values))


# --- cases and referrals -------------------------------------------------------------------------


def case(s, kid: Child, *, state: str = "verification", officer: str | int | None = None,
         opened_at: dt.datetime = NOW, **fields) -> Case:  # fmt: skip
    """An open case of ``kid`` in its household's village, numbered ``CASE-<n>``, with
    ``officer`` (a username or an id) unless None; ``fields`` set any other column (deadlines)."""
    home = s.get(Household, kid.household_id)
    values = dict(
        case_number=f"CASE-{next(_numbers)}", child_id=kid.id, village_id=home.village_id,
        state=state, officer_id=id_of(s, User, officer), opened_at=opened_at,
        state_changed_at=opened_at, updated_at=opened_at,
    )  # fmt: skip
    values.update(fields)
    return _add(s, Case(**values))


def referral(s, of: Case, provider: str | int, *, status: str = "pending",
             service: str = "school_enrolment", created_at: dt.datetime = NOW,
             respond_by: dt.datetime | None = None, **fields) -> Referral:  # fmt: skip
    """A referral of case ``of`` to ``provider`` (a code or an id), sent at ``created_at`` under
    an authorised override (no consent row needed), to be answered within three days unless
    ``respond_by`` says otherwise."""
    return _add(s, Referral(
        case_id=of.id, provider_id=id_of(s, ServiceProvider, provider), service_code=service,
        status=status, override_reason="test", created_at=created_at,
        respond_by=respond_by or created_at + dt.timedelta(days=3), **fields,
    ))  # fmt: skip
