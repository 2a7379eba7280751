"""Step g of ``clms demo``: household visits, concern reports and follow-ups, sent as the monitors
would from ODK Collect: HTTP Digest, ``POST /submission``, four at a time.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.cases.entities import ensure_entities
from clms.demo.answers import Generator, followup_values, household_values
from clms.demo.plan import DemoPlan, MonitorPlan
from clms.demo.submissions import build_submission, choice_values, primary_instance
from clms.models import Form, PlannedService, User, Village

HOUSEHOLD_FORM = "clms_household_visit"
FOLLOWUP_FORM = "clms_followup"
REPORT_FORM = "clms_report"
SEND_WORKERS = 4


# --- sending through the OpenRosa endpoint -------------------------------------------------------


@dataclass
class Job:
    """One submission to send: which form, as whom, the XML."""

    form_id: str
    username: str
    xml: bytes
    label: str


@dataclass
class SendReport:
    sent: int = 0
    created: int = 0
    failures: list[tuple[Job, int, str]] = field(default_factory=list)


def send_jobs(
    base_url: str,
    jobs: list[Job],
    passwords: dict[str, str],
    workers: int = SEND_WORKERS,
    progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """POST each job to ``/submission`` as its monitor (Digest), ``workers`` at a time."""
    import queue

    import requests
    from requests.auth import HTTPDigestAuth

    auths = {u: HTTPDigestAuth(u, p) for u, p in passwords.items()}
    sessions: queue.Queue = queue.Queue()
    opened = [requests.Session() for _ in range(workers)]
    for s in opened:
        sessions.put(s)
    url = base_url.rstrip("/") + "/submission"
    report = SendReport()

    def send(job: Job) -> tuple[Job, int, str]:
        http = sessions.get()
        try:
            response = http.post(
                url,
                files={"xml_submission_file": ("submission.xml", job.xml, "text/xml")},
                headers={"X-OpenRosa-Version": "1.0"},
                auth=auths[job.username],
                timeout=60,
            )
            return job, response.status_code, response.text
        except requests.RequestException as e:
            return job, 0, str(e)
        finally:
            sessions.put(http)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(send, job) for job in jobs]
            for future in as_completed(futures):
                job, status, body = future.result()
                report.sent += 1
                if status == 201:
                    report.created += 1
                else:
                    report.failures.append((job, status, body))
                if progress is not None:
                    progress(report.sent, len(jobs))
    finally:
        for s in opened:
            s.close()
    return report


def live_xform(session: Session, form_id: str) -> bytes | None:
    form = session.scalar(select(Form).where(Form.xml_form_id == form_id))
    if form is None or form.live_version is None:
        return None
    return bytes(form.live_version.xml)


def household_jobs(
    generator: Generator, plan: DemoPlan, template: etree._Element, households: int
) -> list[Job]:
    """``households`` visits spread over the monitors' villages (busier villages get more)."""
    rng = generator.rng
    slots: list[tuple[MonitorPlan, str]] = [
        (m, code) for m in plan.monitors for code in m.village_codes
    ]
    if not slots:
        return []
    weights = [rng.uniform(0.5, 1.5) for _ in slots]
    counts = {i: 0 for i in range(len(slots))}
    jobs = []
    for _ in range(households):
        i = rng.choices(range(len(slots)), weights=weights)[0]
        counts[i] += 1
        monitor, code = slots[i]
        answers = generator.household(monitor, plan.villages[code], counts[i])
        values, children = household_values(answers)
        xml = build_submission(template, values, {"child": children}, _instance_id(rng))
        jobs.append(Job(HOUSEHOLD_FORM, monitor.username, xml, answers.household_code))
    return jobs


def held_jobs(generator: Generator, plan: DemoPlan, template: etree._Element) -> list[Job]:
    """Three household visits the processing holds for a person's review, as real phones send
    them now and then: a village code typed by hand that no village has, a GPS point far from the
    chosen village, and a hazard the form's choices do not list (an old form's answer)."""
    if not plan.monitors or not plan.monitors[0].village_codes:
        return []
    monitor = plan.monitors[0]
    village = plan.villages[monitor.village_codes[0]]
    jobs = []
    for n, change in enumerate(("village", "gps", "hazard"), start=1):
        answers = generator.household(monitor, village, 9000 + n)
        values, children = household_values(answers)
        if change == "village":
            values["village"] = f"{village.code}-X"
        elif change == "gps":
            values["gps"] = "9.45 -5.6 220 5"  # near Korhogo, hundreds of km away
        elif children:
            child = children[0]
            if not child["work_hours_7d"]:  # make the child one who works, so hazards are asked
                child.update(work_activities="own_farm", work_hours_7d="6", night_work="no",
                             injured_12m="no")  # fmt: skip
            child["hazards"] = "chainsaw"
        xml = build_submission(template, values, {"child": children}, _instance_id(generator.rng))
        jobs.append(Job(HOUSEHOLD_FORM, monitor.username, xml, answers.household_code))
    return jobs


def report_jobs(
    generator: Generator, plan: DemoPlan, template: etree._Element, count: int
) -> list[Job]:
    """Concern reports, as monitors record them for the people who raise them."""
    rng = generator.rng
    jobs = []
    for n in range(count):
        monitor = rng.choice(plan.monitors)
        village = plan.villages[rng.choice(monitor.village_codes)]
        values = generator.report(monitor, village)
        xml = build_submission(template, values, None, _instance_id(rng))
        jobs.append(Job(REPORT_FORM, monitor.username, xml, f"report {n + 1}"))
    return jobs


def followup_jobs(session: Session, generator: Generator, plan: DemoPlan) -> list[Job]:
    """The monitors' follow-up visits of the cases in implementation, every 30-40 days since the
    plan took effect (:func:`clms.demo.cases.followup_plan`); none before cases exist."""
    from clms.demo.cases import followup_plan

    xform = live_xform(session, FOLLOWUP_FORM)
    if xform is None:
        return []
    visits = followup_plan(session, generator.rng)
    if not visits:
        return []
    template = primary_instance(xform)
    services = choice_values(xform, "services_received")
    codes = {v.id: v.code for v in session.scalars(select(Village))}
    planned: dict[int, list[str]] = {}
    for case_id, code in session.execute(
        select(PlannedService.case_id, PlannedService.service_code)
        .where(PlannedService.status == "planned")
        .order_by(PlannedService.id)
    ):
        planned.setdefault(case_id, []).append(code)
    recovering: dict[int, bool] = {}  # for six cases in ten, the remediation works
    # each case's entity, and the version the monitor's phone holds (one more after each visit:
    # the phone updates its own copy)
    entities = {
        e.case_id: [e.uuid, e.version]
        for e in ensure_entities(session, sorted({case.id for case, _ in visits})).values()
    }
    jobs = []
    # a second phone, offline, updates the same version as a follow-up: one of the cases of the
    # officer whose password the demo prints, so the conflict is on their pages
    offline = None
    shown_officer = _shown_officer(session, plan)
    for case, when in visits:
        village = codes.get(case.village_id)
        monitor = next((m for m in plan.monitors if village in m.village_codes), None)
        if monitor is None:
            continue
        if case.id not in recovering:
            recovering[case.id] = generator.rng.random() < 0.6
        values = followup_values(
            generator.rng, case.case_number, monitor, services, when,
            recovering=recovering[case.id], planned=planned.get(case.id, ()),
            entity_id=entities[case.id][0],
        )  # fmt: skip
        entity_id, base = entities[case.id]
        entities[case.id][1] += 1
        entity = {"id": entity_id, "baseVersion": str(base)} if _has_entity(template) else None
        xml = build_submission(template, values, None, _instance_id(generator.rng), entity)
        jobs.append(Job(FOLLOWUP_FORM, monitor.username, xml, case.case_number))
        if entity is not None and (offline is None or (
            case.officer_id == shown_officer and offline[0].officer_id != shown_officer
        )):  # fmt: skip
            offline = (case, when, village, entity)
    if offline is not None:  # the officer sees the conflict on the case (clms.cases.entities)
        jobs.append(_second_phone(generator, plan, template, services, offline, planned))
    return jobs


def _shown_officer(session: Session, plan: DemoPlan) -> int | None:
    """The id of the officer the demo's sign-in list shows (the plan's first officer)."""
    name = next((a.username for a in plan.accounts if a.role == "officer"), None)
    return session.scalar(select(User.id).where(User.username == name)) if name else None


def _second_phone(generator, plan, template, services, first, planned) -> Job:
    """A follow-up of the same case by another monitor of its village (else the same one, on a
    second phone), three hours later, made offline from the same version of the case as the first,
    finding the child the other way: the two updates conflict, as ODK Central would say."""
    case, when, village, entity = first
    covering = [m for m in plan.monitors if village in m.village_codes]
    monitor = covering[1] if len(covering) > 1 else covering[0]
    values = followup_values(
        generator.rng, case.case_number, monitor, services, when + dt.timedelta(hours=3),
        recovering=False, planned=planned.get(case.id, ()), entity_id=entity["id"],
    )  # fmt: skip
    xml = build_submission(template, values, None, _instance_id(generator.rng), dict(entity))
    return Job(FOLLOWUP_FORM, monitor.username, xml, f"{case.case_number} (a second phone)")


def _has_entity(template: etree._Element) -> bool:
    """Whether the form version declares ``<meta><entity>`` (the case entity list)."""
    return any(isinstance(e.tag, str) and etree.QName(e).localname == "entity"
               for e in template.iter())  # fmt: skip


def _instance_id(rng: random.Random) -> str:
    """A version-4 UUID from the seeded source: the same seed gives the same instanceIDs."""
    return f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
