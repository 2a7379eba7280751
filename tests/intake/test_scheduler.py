"""The job registry, run_job, the scheduler (job store, coalescing, the lock), the CLI, and the
KPI snapshot."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pickle
import signal
import threading
import time

import pytest
from sqlalchemy import Column, Float, LargeBinary, MetaData, Table, Unicode, inspect, select, text

from alerts.kpis import take_kpi_snapshot
from clms.db import session_scope
from clms.jobs import registry as jobs
from clms.jobs import scheduler
from clms.jobs.cli import jobs_group, scheduler_command
from clms.jobs.registry import JOBS, Job, JobContext, every, run_job
from clms.jobs.scheduler import SchedulerLock, build_scheduler, run_in_background
from clms.models import (
    CASE_STATES,
    Alert,
    JobRun,
    KpiSnapshot,
    Village,
    utcnow,
)
from tests import builders
from tests.factories import NOW, add_alert, village_id

REGISTRY = [
    "process_submissions", "pull_sources", "send_notifications", "escalate", "remind_followups",
    "daily_digest", "kpi_snapshot", "hotspots_refresh", "prune_job_runs", "retention",
]  # fmt: skip
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def wait_until(check, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {check}")


def runs(app, job: str) -> list[JobRun]:
    with session_scope(app) as s:
        return list(s.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)))


@pytest.fixture
def jobstore(app):
    """Forget the scheduler's table and process state after the test (the table is not one of
    the models, so the per-test emptying of tables does not see it)."""
    yield
    scheduler._state.app = scheduler._state.lock = scheduler._state.scheduler = None
    engine = app.extensions["clms_engine"]
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {scheduler.JOBSTORE_TABLE}"))


@pytest.fixture
def test_jobs(monkeypatch):
    """Replace the registry with a counting job and a failing one; no waiting between retries."""
    calls = {"counts": 0, "fails": 0}

    def counts(ctx: JobContext) -> dict:
        calls["counts"] += 1
        return {"n": calls["counts"], "at": ctx.now}

    def fails(ctx: JobContext) -> dict:
        calls["fails"] += 1
        raise RuntimeError("boom")

    registry = {
        "counts": Job("counts", counts, every(seconds=0.3), "Count."),
        "fails": Job("fails", fails, every(seconds=0.3), "Fail."),
    }
    monkeypatch.setattr(jobs, "JOBS", registry)
    monkeypatch.setattr(jobs, "RETRY_BACKOFF", 0.0)
    return calls


def stored_jobs(app) -> dict[str, float]:
    engine = app.extensions["clms_engine"]
    if not inspect(engine).has_table(scheduler.JOBSTORE_TABLE):
        return {}
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs")).all())


def start_in_thread(sched, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=sched.start, kwargs=kwargs, daemon=True)
    thread.start()
    wait_until(lambda: sched.running)
    return thread


# --- the registry and run_job --------------------------------------------------------------------


def test_the_registry():
    assert list(JOBS) == REGISTRY
    for name, job in JOBS.items():
        assert job.name == name and job.description and callable(job.func)
    config = {"PULL_MINUTES": 7, "DIGEST_HOUR": 5}
    assert str(JOBS["process_submissions"].trigger(config)) == "interval[0:00:10]"
    assert str(JOBS["pull_sources"].trigger(config)) == "interval[0:07:00]"
    assert str(JOBS["send_notifications"].trigger(config)) == "interval[0:01:00]"
    assert str(JOBS["escalate"].trigger(config)) == "interval[0:15:00]"
    assert str(JOBS["remind_followups"].trigger(config)) == "interval[1:00:00]"
    assert str(JOBS["daily_digest"].trigger(config)) == "cron[hour='5', minute='0']"
    assert str(JOBS["kpi_snapshot"].trigger(config)) == "cron[hour='1', minute='30']"
    assert str(JOBS["hotspots_refresh"].trigger(config)) == "interval[1:00:00]"
    assert str(JOBS["retention"].trigger(config)) == "cron[hour='3', minute='0']"


def test_run_job_records_a_successful_run(app, test_jobs):
    ctx = JobContext(app.config, app.extensions["clms_sessionmaker"], NOW)
    run = run_job(ctx, "counts")
    assert run.ok is True and run.error is None and run.id is not None
    assert run.summary == {"n": 1, "at": str(NOW)}
    [stored] = runs(app, "counts")
    assert (stored.id, stored.ok, stored.summary) == (run.id, True, run.summary)
    assert stored.started_at <= stored.finished_at


def test_run_job_records_a_failure_without_raising_after_retries(app, test_jobs, caplog):
    run = run_job(app, "fails")
    assert run.ok is False
    assert run.error == "RuntimeError: boom (after 3 attempts)"
    assert test_jobs["fails"] == 3
    [stored] = runs(app, "fails")
    assert stored.ok is False and stored.error == run.error and stored.finished_at is not None
    # the whole traceback is in the log
    assert any(r.exc_info and "job fails failed after 3 attempts" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_run_job_retries_a_job_that_fails_once(app, monkeypatch):
    tries = []

    def flaky(ctx):
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("database restarting")
        return {"done": True}

    monkeypatch.setitem(JOBS, "flaky", Job("flaky", flaky, every(minutes=1), "Flaky."))
    run = run_job(app, "flaky", backoff=0)
    assert run.ok and run.summary == {"done": True, "attempts": 2}


def test_a_summary_of_dataclasses_is_stored_as_json(app, monkeypatch):
    @dataclasses.dataclass
    class Pulled:
        source: str
        stored: int
        at: dt.datetime

    def pull(ctx):
        return {"central": Pulled("central", 3, NOW)}

    monkeypatch.setitem(JOBS, "pull", Job("pull", pull, every(minutes=1), "Pull."))
    run = run_job(app, "pull")
    assert run.summary == {"central": {"source": "central", "stored": 3, "at": str(NOW)}}
    assert runs(app, "pull")[0].summary == run.summary


def test_run_job_of_an_unknown_job_is_a_failed_run(app):
    run = run_job(app, "no_such_job")
    assert run.ok is False and "no job called 'no_such_job'" in run.error


@pytest.mark.parametrize("name", ["process_submissions", "pull_sources", "send_notifications",
                                  "remind_followups", "daily_digest", "kpi_snapshot"])  # fmt: skip
def test_each_registered_job_runs_on_an_empty_database(app, name):
    ctx = JobContext(app.config, app.extensions["clms_sessionmaker"], NOW)
    run = run_job(ctx, name, attempts=1)
    assert run.ok, run.error


def test_process_submissions_job_summary(app):
    run = run_job(app, "process_submissions")
    assert run.summary == {"processed": 0, "parsed": 0, "review": 0, "failed": 0}


def test_prune_job_runs_keeps_a_month_and_the_latest_of_each_job(app):
    with session_scope(app) as s:
        for job, days_ago in [("a", 40), ("a", 35), ("a", 1), ("b", 50), ("b", 45)]:
            at = NOW - days_ago * DAY
            s.add(JobRun(job=job, started_at=at, finished_at=at, ok=True, summary={}))
    ctx = JobContext(app.config, app.extensions["clms_sessionmaker"], NOW)
    assert run_job(ctx, "prune_job_runs").summary == {"deleted": 3}
    with session_scope(app) as s:
        left = s.execute(select(JobRun.job, JobRun.started_at).order_by(JobRun.id)).all()
    assert [(j, (NOW - at).days) for j, at in left if j in "ab"] == [("a", 1), ("b", 45)]


# --- the scheduler -------------------------------------------------------------------------------


@pytest.mark.committing  # the scheduler's engine of its own and job store
def test_built_scheduler_coalesces_and_keeps_its_jobs_in_the_database(app, jobstore):
    sched = build_scheduler(app)
    assert sched._job_defaults == {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
    thread = start_in_thread(sched, paused=True)
    try:
        stored = stored_jobs(app)
        assert sorted(stored) == sorted(REGISTRY)
        assert all(t is not None for t in stored.values())
        by_id = {j.id: j for j in sched.get_jobs()}
        assert by_id["escalate"].coalesce is True and by_id["escalate"].max_instances == 1
        assert by_id["process_submissions"].misfire_grace_time == 70
        assert by_id["daily_digest"].misfire_grace_time is None
        assert by_id["escalate"].func_ref == "clms.jobs.scheduler:_run"
        assert by_id["escalate"].args == ("escalate",)
    finally:
        sched.shutdown()
        thread.join(10)

    # a restart keeps the stored next run times (the triggers are the same)
    again = build_scheduler(app)
    pending = {job.id: job.next_run_time.timestamp() for job, *_ in again._pending_jobs}
    again._jobstores["default"].shutdown()  # never started: close its engine's connections
    assert pending == pytest.approx(stored)


@pytest.mark.committing  # the scheduler's engine of its own and job store
def test_jobs_stored_before_the_scheduler_moved_keep_their_next_run_times(app, jobstore):
    """A database whose stored jobs name ``alerts.scheduler:_run`` (the scheduler lived there):
    the same jobs, so their next run times stand; they are written anew under the current text."""
    sched = build_scheduler(app)
    thread = start_in_thread(sched, paused=True)
    sched.shutdown()
    thread.join(10)
    stored = stored_jobs(app)
    table = Table(
        "apscheduler_jobs", MetaData(), Column("id", Unicode(191), primary_key=True),
        Column("next_run_time", Float(25)), Column("job_state", LargeBinary),
    )  # fmt: skip
    with app.extensions["clms_engine"].begin() as conn:
        for job_id, state in conn.execute(select(table.c.id, table.c.job_state)).all():
            state = pickle.loads(state)  # noqa: S301
            state["func"] = "alerts.scheduler:_run"
            conn.execute(
                table.update().where(table.c.id == job_id).values(job_state=pickle.dumps(state))
            )

    again = build_scheduler(app)
    pending = {job.id: job.next_run_time.timestamp() for job, *_ in again._pending_jobs}
    assert {job.func_ref for job, *_ in again._pending_jobs} == {scheduler.RUN_REF}
    again._jobstores["default"].shutdown()  # never started: close its engine's connections
    assert pending == pytest.approx(stored)


@pytest.mark.committing  # the scheduler's engine of its own; jobs in its threads
def test_runs_missed_while_stopped_are_coalesced_into_one(app, jobstore, monkeypatch):
    calls = []
    hourly = Job("hourly", lambda ctx: calls.append(ctx.now) or {}, every(hours=1), "Hourly.")
    monkeypatch.setattr(jobs, "JOBS", {"hourly": hourly})
    sched = build_scheduler(app)
    thread = start_in_thread(sched, paused=True)
    sched.shutdown()
    thread.join(10)
    assert not calls

    # the scheduler was down for five hours: the stored next run is five runs ago
    table = Table(
        "apscheduler_jobs", MetaData(), Column("id", Unicode(191), primary_key=True),
        Column("next_run_time", Float(25)), Column("job_state", LargeBinary),
    )  # fmt: skip
    past = utcnow() - dt.timedelta(hours=5, minutes=1)
    engine = app.extensions["clms_engine"]
    with engine.begin() as conn:
        state = pickle.loads(conn.scalar(select(table.c.job_state)))  # noqa: S301
        state["next_run_time"] = past
        conn.execute(
            table.update().values(next_run_time=past.timestamp(), job_state=pickle.dumps(state))
        )

    sched = build_scheduler(app)
    thread = start_in_thread(sched)
    try:
        wait_until(lambda: runs(app, "hourly") and runs(app, "hourly")[-1].ok)
        time.sleep(0.5)
        assert len(calls) == 1 and len(runs(app, "hourly")) == 1
        assert stored_jobs(app)["hourly"] > time.time() + 3000  # the next is an hour away
    finally:
        sched.shutdown()
        thread.join(10)


@pytest.mark.committing  # the scheduler's engine of its own; jobs in its threads
def test_a_failing_job_does_not_stop_the_others(app, jobstore, test_jobs, monkeypatch):
    monkeypatch.setattr(jobs, "ATTEMPTS", 1)
    sched = build_scheduler(app)
    thread = start_in_thread(sched)
    try:
        wait_until(lambda: len([r for r in runs(app, "counts") if r.ok]) >= 3)
        wait_until(lambda: len([r for r in runs(app, "fails") if r.ok is False]) >= 2)
        assert sorted(stored_jobs(app)) == ["counts", "fails"]
    finally:
        sched.shutdown()
        thread.join(10)
    assert test_jobs["counts"] >= 3 and test_jobs["fails"] >= 2
    assert {r.error for r in runs(app, "fails") if r.ok is False} == {"RuntimeError: boom"}


def test_a_scheduler_that_lost_its_lock_stops_instead_of_running_jobs(app, jobstore, test_jobs):
    class LostLock:
        def held(self):
            return False

    class Stoppable:
        stopped = threading.Event()

        def shutdown(self, wait=True):
            self.stopped.set()

    stoppable = Stoppable()
    scheduler._state.app, scheduler._state.lock = app, LostLock()
    scheduler._state.scheduler = stoppable
    scheduler._run("counts")
    assert stoppable.stopped.wait(5)
    assert test_jobs["counts"] == 0 and runs(app, "counts") == []


def test_only_one_scheduler_holds_the_lock(app):
    first, second = (
        SchedulerLock(app.config["DATABASE_URL"]),
        SchedulerLock(app.config["DATABASE_URL"]),
    )
    assert first.acquire() and first.held()
    try:
        assert not second.acquire()
        started = time.monotonic()
        assert not second.acquire(
            wait=True, poll=0.1, stop=lambda: time.monotonic() > started + 0.5
        )
    finally:
        first.release()
    assert second.acquire()  # free again
    second.release()


@pytest.mark.committing  # the scheduler's engine of its own and job store
def test_clms_scheduler_refuses_to_start_while_another_runs(app, jobstore):
    with SchedulerLock(app.config["DATABASE_URL"]):
        result = app.test_cli_runner().invoke(scheduler_command, [])
    assert result.exit_code == 1
    assert "already running the jobs of this database" in result.output
    assert stored_jobs(app) == {}


@pytest.mark.committing  # the scheduler's engine of its own; jobs in its threads
def test_clms_scheduler_stands_by_then_runs_until_sigterm(app, jobstore):
    lock = SchedulerLock(app.config["DATABASE_URL"])
    assert lock.acquire()

    def operator():
        time.sleep(0.5)
        lock.release()  # the first scheduler stops: the standby takes over
        wait_until(
            lambda: (
                scheduler._state.scheduler is not None and len(stored_jobs(app)) == len(REGISTRY)
            )
        )
        wait_until(lambda: scheduler._state.scheduler.running)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=operator, daemon=True)
    helper.start()
    result = app.test_cli_runner().invoke(scheduler_command, ["--wait", "--poll", "0.1"])
    helper.join(10)
    assert result.exit_code == 0, result.output
    assert "standing by" in result.output
    assert "Scheduler running jobs process_submissions" in result.output
    assert result.output.rstrip().endswith("Scheduler stopped.")
    # it let go of the lock
    with SchedulerLock(app.config["DATABASE_URL"]):
        pass


def test_run_in_background_takes_the_lock_or_runs_nothing(app, jobstore):
    sched = run_in_background(app)
    try:
        assert sorted(j.id for j in sched.get_jobs()) == sorted(REGISTRY)
        other = run_in_background(app)
        assert other.get_jobs() == []
        other.shutdown()
    finally:
        sched.shutdown()
    with SchedulerLock(app.config["DATABASE_URL"]):  # released at shutdown
        pass


# --- the CLI -------------------------------------------------------------------------------------


def test_clms_jobs_run_and_list(app, places, make_user):
    make_user("sekou", "supervisor", areas=["CI-D1"], email="sekou@example.org")
    with session_scope(app) as s:
        add_alert(s, "V1", created_at=utcnow() - 2 * DAY)
    runner = app.test_cli_runner()
    result = runner.invoke(jobs_group, ["run", "escalate"])
    assert result.exit_code == 0, result.output
    assert "escalate: ok" in result.output and '"escalated": 1' in result.output

    result = runner.invoke(jobs_group, ["list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert list(lines) == REGISTRY
    assert "interval[0:15:00]" in lines["escalate"] and lines["escalate"].endswith(" ok")
    assert "never" in lines["kpi_snapshot"]

    result = runner.invoke(jobs_group, ["run", "nosuch"])
    assert result.exit_code == 2 and "no job called 'nosuch'" in result.output


def test_clms_jobs_run_exits_1_when_the_job_fails(app, test_jobs, monkeypatch):
    monkeypatch.setattr(jobs, "ATTEMPTS", 1)
    runner = app.test_cli_runner()
    result = runner.invoke(jobs_group, ["run", "fails"])
    assert result.exit_code == 1
    assert "fails: FAILED: RuntimeError: boom" in result.output
    result = runner.invoke(jobs_group, ["list"])
    assert "FAILED: RuntimeError: boom" in result.output


# --- KPI snapshot --------------------------------------------------------------------------------


@pytest.fixture
def visits():
    """``visit(s, household, village, days_ago, [(child, category, sdg), ...], current=True)``;
    a child given as ``(child, category, sdg, reclassified)`` was reclassified since."""

    def visit(s, household, village, days_ago, children, current=True):
        v = builders.visit(s, household, NOW - days_ago * DAY, village=village, current=current)
        for position, (child, category, sdg, *rest) in enumerate(children, 1):
            cv = builders.child_visit(s, v, child, position=position, age=10)
            builders.classification(s, cv, category, sdg_871=sdg, current=not rest)
            if rest:  # a reclassification replaced this one
                builders.classification(s, cv, rest[0], sdg_871=False, rule_set_version="test2")
        return v

    return visit


def test_kpi_snapshot_figures(app, places, visits):
    ack = dict(status="acknowledged")
    with session_scope(app) as s:
        h1, h2, h3, h4, h5 = (builders.household(s, v) for v in ("V1", "V2", "V3", "V4", "V1"))
        c1, c2 = builders.child(s, h1), builders.child(s, h1)  # two children of one household
        c3 = builders.child(s, h2)
        c4, c6 = builders.child(s, h3), builders.child(s, h3)
        c5, c7 = builders.child(s, h4), builders.child(s, h5)
        visits(s, h1, "V1", 100, [(c1, "hazardous", True)])
        visits(s, h1, "V1", 10, [(c1, "none", False), (c2, "worst_form", False)])
        visits(s, h2, "V2", 20, [(c3, "child_labour", True)])
        # reclassified: the current classification is at_risk
        visits(s, h3, "V3", 5, [(c4, "hazardous", True, "at_risk")])
        visits(s, h3, "V3", 1, [(c6, "hazardous", True)])
        visits(s, h4, "V4", 400, [(c5, "hazardous", True)])  # more than a year ago
        visits(s, h5, "V1", 3, [(c7, "hazardous", True)], current=False)  # replaced by an edit

        add_alert(s, "V1", child=None, created_at=NOW - 30 * HOUR)  # critical, overdue
        add_alert(s, "V2", category="hazardous", child=None, created_at=NOW - 5 * DAY,
                  acknowledged_at=NOW - 5 * DAY + 10 * HOUR, **ack)  # fmt: skip
        # acknowledged, but not visited within 14 days: overdue
        add_alert(s, "V3", category="child_labour", child=None, created_at=NOW - 15 * DAY,
                  acknowledged_at=NOW - 15 * DAY + 30 * HOUR, **ack)  # fmt: skip
        add_alert(s, "V3", category="at_risk", child=None, created_at=NOW - 10 * DAY,
                  acknowledged_at=NOW - 10 * DAY + 2 * HOUR, status="dismissed")  # fmt: skip
        add_alert(s, "V1", category="hazardous", child=None, created_at=NOW - 8 * DAY,
                  acknowledged_at=NOW - 8 * DAY + 4 * HOUR, status="case_opened")  # fmt: skip
        assert take_kpi_snapshot(s, NOW.date(), now=NOW) == 3
        d1, d2 = (s.get(Village, village_id(s, v)).area_id for v in ("V1", "V3"))

    with session_scope(app) as s:
        rows = {r.area_id: r.figures for r in s.scalars(select(KpiSnapshot))}
    assert set(rows) == {d1, d2, None}
    assert rows[d1] == {
        "as_of": NOW.isoformat(),
        "households_covered": 2,
        "children_monitored": 3,
        "children_in_child_labour": 2,
        # identified: a visit in the period found child labour (c1 too, 100 days ago)
        "children_identified": 3,
        "identification_rate": 1.0,
        "by_category": {
            "worst_form": 1,
            "hazardous": 0,
            "child_labour": 1,
            "at_risk": 0,
            "none": 1,
        },  # fmt: skip
        "sdg_871": 1,
        "identified_remediated": 0,
        "pct_identified_remediated": 0.0,
        "identified_followed_up": 0,
        "identified_no_longer_in_child_labour": 0,
        "pct_identified_no_longer_in_child_labour": None,
        "alerts_open": 2,
        "alerts_overdue": 1,
        # first action (acknowledged, dismissed or case opened) of 4 h and 10 h: 7 h
        "alerts_acted_on": 2,
        "median_days_alert_to_first_action": 0.29,
        "cases_closed": 0,
        "median_days_case_open_to_close": None,
        "followups": 0,
        "cases_open_in_period": 0,
        "followups_per_case": None,
        "cases_by_state": {state: 0 for state in CASE_STATES},
        "services_delivered": 0,
        "services_delivered_by_type": {},
    }
    assert rows[d2]["households_covered"] == 1
    assert rows[d2]["children_monitored"] == 2 and rows[d2]["children_in_child_labour"] == 1
    assert rows[d2]["by_category"]["at_risk"] == 1 and rows[d2]["by_category"]["hazardous"] == 1
    assert rows[d2]["sdg_871"] == 1
    assert (rows[d2]["alerts_open"], rows[d2]["alerts_overdue"]) == (1, 1)
    assert rows[d2]["identification_rate"] == 0.5
    assert rows[d2]["median_days_alert_to_first_action"] == 0.67  # 16 h
    everything = rows[None]
    assert everything["households_covered"] == 3
    assert everything["children_monitored"] == 5 and everything["children_in_child_labour"] == 3
    assert everything["identification_rate"] == 0.8 and everything["sdg_871"] == 2
    assert (everything["alerts_open"], everything["alerts_overdue"]) == (3, 2)
    assert everything["median_days_alert_to_first_action"] == 0.29  # 7 h, of 2, 4, 10, 30

    # the same day again replaces that day's rows
    with session_scope(app) as s:
        add_alert(s, "V3", category="at_risk", child=None, created_at=NOW - HOUR)
        assert take_kpi_snapshot(s, NOW.date(), now=NOW) == 3
    with session_scope(app) as s:
        snapshots = s.scalars(select(KpiSnapshot)).all()
        assert len(snapshots) == 3
        assert {r.area_id: r.figures["alerts_open"] for r in snapshots} == {d1: 2, d2: 2, None: 4}


def test_kpi_snapshot_job_on_an_empty_database_writes_zero_figures(app, places):
    ctx = JobContext(app.config, app.extensions["clms_sessionmaker"], NOW)
    run = run_job(ctx, "kpi_snapshot")
    assert run.ok and run.summary == {"day": "2025-03-03", "rows": 3}
    with session_scope(app) as s:
        overall = s.scalar(select(KpiSnapshot).where(KpiSnapshot.area_id.is_(None)))
        assert overall.figures["children_monitored"] == 0
        assert overall.figures["identification_rate"] is None
        assert s.scalar(select(Alert.id)) is None
