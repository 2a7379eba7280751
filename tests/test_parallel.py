"""The suite's parallel run (``./dev test``: pytest-xdist, one worker process a core): what is
costly to start or must not run twice at once stays on one worker, the long tests are handed out
first, and a run at run time of the real ODK Central from a module no group keeps is caught here,
before it starts a second Central in another worker."""

from __future__ import annotations

import contextlib
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ONE_WORKER_FIXTURES, ONE_WORKER_MODULES, pytest_collection_modifyitems

ROOT = Path(__file__).resolve().parents[1]


class _Item:
    """What the collection hook reads of a test: its id, its fixtures, its marks."""

    def __init__(self, nodeid: str, fixtures=(), marks=()):
        self.nodeid = nodeid
        self.fixturenames = ["request", *fixtures]
        self.marks = list(marks)

    def get_closest_marker(self, name: str):
        return next((m for m in self.marks if m.name == name), None)

    def add_marker(self, mark) -> None:
        self.marks.append(mark.mark)

    def groups(self) -> list[str]:
        return [m.args[0] for m in self.marks if m.name == "xdist_group"]


class _PluginManager:
    def hasplugin(self, name: str) -> bool:
        return name == "xdist"


class _Config:
    pluginmanager = _PluginManager()


def _collected(config, items: list[_Item]) -> None:
    """The hook as pytest runs it: a wrapper around pytest's and xdist's own."""
    hook = pytest_collection_modifyitems(config, items)
    next(hook)  # before them: the groups
    with contextlib.suppress(StopIteration):
        hook.send(None)  # after them: the order


def _items() -> list[_Item]:
    return [
        _Item("tests/alerts/test_rules.py::test_quick[sqlite]", ["app", "database_url"]),
        _Item("tests/web/test_browser.py::test_journey[sqlite]", marks=[pytest.mark.browser.mark]),
        _Item("tests/intake/test_central_real.py::test_the_double_answers[real]"),
        _Item("tests/intake/test_central_real.py::test_pull[sqlite]", ["app", "real_central"]),
        _Item("tests/replica/test_read_replica.py::test_reads", ["app", "standby"]),
        _Item("tests/intake/test_failures.py::test_sigkill[sqlite]", marks=[pytest.mark.slow.mark]),
        _Item("tests/intake/test_failures.py::test_full_disk", ["own_pg"]),
        _Item("tests/bench/test_bench_geo.py::test_geo_bench_runs_at_a_tiny_scale[sqlite]"),
        _Item("tests/places/test_places.py::test_other", ["real_central"]),
    ]


def test_a_worker_gets_the_groups_and_the_long_tests_first():
    items = _items()
    config = _Config()
    config.workerinput = {"workerid": "gw0"}  # what pytest-xdist sets in a worker
    _collected(config, items)

    assert [i.nodeid.split("::")[1] for i in items] == [
        "test_journey[sqlite]",  # chromium
        "test_sigkill[sqlite]",  # marked slow
        "test_geo_bench_runs_at_a_tiny_scale[sqlite]",  # a benchmark's tiny run
        # the rest in the order collected
        "test_quick[sqlite]", "test_the_double_answers[real]", "test_pull[sqlite]", "test_reads",
        "test_full_disk", "test_other",
    ]  # fmt: skip
    groups = {i.nodeid: i.groups() for i in items}
    assert groups == {
        "tests/web/test_browser.py::test_journey[sqlite]": [],
        "tests/intake/test_failures.py::test_sigkill[sqlite]": ["failures"],
        "tests/bench/test_bench_geo.py::test_geo_bench_runs_at_a_tiny_scale[sqlite]": [],
        "tests/alerts/test_rules.py::test_quick[sqlite]": [],
        # asked for at run time (request.getfixturevalue): kept by its module
        "tests/intake/test_central_real.py::test_the_double_answers[real]": ["real-central"],
        "tests/intake/test_central_real.py::test_pull[sqlite]": ["real-central"],
        "tests/replica/test_read_replica.py::test_reads": ["pg-standby"],
        "tests/intake/test_failures.py::test_full_disk": ["failures"],
        # the fixture, wherever it is asked for by name
        "tests/places/test_places.py::test_other": ["real-central"],
    }


def test_without_xdist_workers_the_order_is_the_collections():
    items = _items()
    _collected(_Config(), items)  # the controller, or a run without -n
    assert [i.nodeid for i in items] == [i.nodeid for i in _items()]


def test_every_run_time_request_of_a_one_worker_fixture_is_in_a_module_kept_whole():
    """A fixture asked for at run time (``request.getfixturevalue``) is invisible to the
    collection: a module that asks so for the real Central or the standby must be kept on that
    fixture's worker by :data:`ONE_WORKER_MODULES`, or a second worker would start a second real
    Central (or standby)."""
    asked = re.compile(r"getfixturevalue\(\s*[\"'](\w+)[\"']")
    loose = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        module = path.relative_to(ROOT).as_posix()
        for name in asked.findall(path.read_text("utf-8")):
            group = ONE_WORKER_FIXTURES.get(name)
            if group and ONE_WORKER_MODULES.get(module) != group:
                loose.append(f"{module} asks for {name} at run time")
    assert loose == [], "add these modules to ONE_WORKER_MODULES in tests/conftest.py"


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
