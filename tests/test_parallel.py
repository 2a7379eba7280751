"""The suite's parallel run (``./dev test``: pytest-xdist, one worker process a core): the modules
that share something costly, or must not run twice at once, each go to one worker whole; the long
tests are handed out first; a test asking for the real ODK Central or the standby outside its
module is refused before a second worker starts a second one."""

from __future__ import annotations

import contextlib
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.conftest import (
    ONE_WORKER_MODULES,
    pytest_collection_modifyitems,
    pytest_xdist_make_scheduler,
)

ROOT = Path(__file__).resolve().parents[1]


class _Item:
    """What the collection hook reads of a test: its id, its fixtures, its marks."""

    def __init__(self, nodeid: str, fixtures=(), marks=()):
        self.nodeid = nodeid
        self.fixturenames = ["request", *fixtures]
        self.marks = [getattr(pytest.mark, name).mark for name in marks]

    def get_closest_marker(self, name: str):
        return next((m for m in self.marks if m.name == name), None)


class _Config:
    def __init__(self, worker: bool = False, dist: str = "loadgroup"):
        self.options = {"dist": dist, "tx": ["popen", "popen"]}
        self.option = type("Options", (), {"loadscopereorder": True})()  # xdist's default
        if worker:
            self.workerinput = {"workerid": "gw0"}  # what pytest-xdist sets in a worker

    def getvalue(self, name: str):
        return self.options[name]


def _collected(config, items: list[_Item]) -> None:
    """The hook as pytest runs it: a wrapper around pytest's own ordering."""
    hook = pytest_collection_modifyitems(config, items)
    next(hook)
    with contextlib.suppress(StopIteration):
        hook.send(None)


def _items() -> list[_Item]:
    return [
        _Item("tests/alerts/test_rules.py::test_quick[sqlite]", ["app", "database_url"]),
        _Item("tests/web/test_browser.py::test_journey[sqlite]", marks=["browser"]),
        _Item("tests/intake/test_central_real.py::test_pull[sqlite]", ["app", "real_central"]),
        _Item("tests/replica/test_read_replica.py::test_reads", ["app", "standby"]),
        _Item("tests/intake/test_failures.py::test_sigkill[sqlite]", marks=["slow"]),
        _Item("tests/bench/test_bench_geo.py::test_geo_bench_runs_at_a_tiny_scale[sqlite]"),
        _Item("tests/places/test_places.py::test_other"),
    ]


def test_a_worker_runs_the_long_tests_first():
    items = _items()
    _collected(_Config(worker=True), items)
    assert [i.nodeid.split("::")[1] for i in items] == [
        "test_journey[sqlite]",  # chromium
        "test_sigkill[sqlite]",  # marked slow
        "test_geo_bench_runs_at_a_tiny_scale[sqlite]",  # a benchmark's tiny run
        # the rest in pytest's order
        "test_quick[sqlite]", "test_pull[sqlite]", "test_reads", "test_other",
    ]  # fmt: skip


def test_without_workers_the_order_is_pytests():
    items = _items()
    _collected(_Config(), items)  # the controller, or a run without -n
    assert [i.nodeid for i in items] == [i.nodeid for i in _items()]


@pytest.mark.parametrize("fixture", ["real_central", "standby"])
def test_a_test_asking_for_a_one_worker_fixture_elsewhere_is_refused(fixture):
    items = [*_items(), _Item("tests/places/test_places.py::test_elsewhere", [fixture])]
    with pytest.raises(pytest.UsageError, match=f"test_elsewhere asks for {fixture}"):
        _collected(_Config(worker=True), items)


class _Worker:
    """A pytest-xdist worker as its scheduler sees it: it is sent tests to run, by index."""

    def __init__(self, name: str):
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.sent: list[int] = []
        self.done = 0

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_scheduler_hands_each_one_worker_module_to_one_worker_whole():
    from xdist.remote import Producer

    ids = [f"tests/alerts/test_rules.py::test_{n}" for n in range(6)]
    for module in ONE_WORKER_MODULES:
        ids[1:1] = [f"{module}::test_{n}[{db}]" for n in range(3) for db in ("sqlite", "pg")]
    scheduler = pytest_xdist_make_scheduler(_Config(), Producer("test", enabled=False))
    workers = [_Worker("gw0"), _Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
    for worker in workers:
        scheduler.add_node_collection(worker, ids)
    scheduler.schedule()
    while scheduler.has_pending:  # each worker runs what it was sent, one test after another
        for worker in workers:
            if worker.done < len(worker.sent):
                scheduler.mark_test_complete(worker, worker.sent[worker.done])
                worker.done += 1

    ran = {w.gateway.id: {ids[i] for i in w.sent} for w in workers}
    assert sorted(i for w in workers for i in w.sent) == list(range(len(ids)))  # each test once
    for module in ONE_WORKER_MODULES:
        on = {name for name, tests in ran.items() if any(t.startswith(module) for t in tests)}
        assert len(on) == 1, f"{module} ran on {on}"
    assert all(ran.values()), "both workers had work"
    assert pytest_xdist_make_scheduler(_Config(dist="load"), None) is None  # xdist's own


def test_the_suite_command_runs_on_every_core_with_the_groups():
    """``./dev test`` (what CI runs, through .ci/run) distributes with the groups honoured, and
    pytest-xdist is one of the test packages it installs."""
    dev = (ROOT / "dev").read_text("utf-8")
    command = next(
        line for line in dev.splitlines() if line.strip().startswith("exec") and "-m pytest" in line
    )
    words = shlex.split(command)
    assert words[words.index("-n") + 1] == "logical"
    assert words[words.index("--dist") + 1] == "loadgroup"
    assert words[-1] == "$@", "the caller's arguments come last (-n 0 runs in one process)"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert any(r.startswith("pytest-xdist") for r in extras["optional-dependencies"]["test"])
