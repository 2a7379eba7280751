"""The production service files (deploy/): systemd units for gunicorn and ``clms scheduler`` and
gunicorn's settings, checked with systemd's own ``systemd-analyze verify`` and gunicorn's own
``--check-config``.

Found by killing the gunicorn master with SIGKILL: its orphaned workers served for about 30 s and
a new master could not bind the port. Under the unit, KillMode=control-group ends every process
of the service with its main process, and Restart= starts a new master on a free port.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize("name", ["clms-web.service", "clms-scheduler.service"])
def test_units_end_every_process_restart_and_share_one_environment(name):
    service = unit(name)["Service"]
    # every process of the service goes with it: no orphaned worker keeps the port
    assert service["KillMode"] == "control-group"
    assert service["Restart"] in ("on-failure", "always")
    assert int(service["RestartSec"]) > 0
    assert service["EnvironmentFile"] == "/etc/clms/clms.env"
    assert service["User"] == "clms" and service["NoNewPrivileges"] == "yes"
    assert unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_the_web_unit_runs_gunicorn_with_our_settings_and_the_scheduler_waits_for_the_db():
    web = unit("clms-web.service")["Service"]
    assert web["ExecStart"].split() == [
        "/opt/clms/.venv/bin/gunicorn", "--config", "/opt/clms/deploy/gunicorn.conf.py", "wsgi:app"
    ]  # fmt: skip
    assert web["Type"] == "notify"  # gunicorn says when its workers are ready
    scheduler = unit("clms-scheduler.service")["Service"]
    assert scheduler["ExecStart"].split() == ["/opt/clms/.venv/bin/clms", "scheduler", "--wait"]
    # every setting the example names is one the application reads
    from clms.config import DEFAULTS

    example = (ROOT / "deploy" / "clms.env.example").read_text().splitlines()
    names = [line.split("=", 1)[0] for line in example if line and not line.startswith("#")]
    extra = {"CLMS_BIND"}  # read by deploy/gunicorn.conf.py
    assert names and all(n in extra or n.removeprefix("CLMS_") in DEFAULTS for n in names), names


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_units(tmp_path):
    """systemd's own check, on the units as they would be installed for this checkout (the
    checkout in place of /opt/clms, so that the programs they start exist)."""
    venv = Path(sys.executable).parent  # this checkout's environment, wherever it is
    for path in UNITS.glob("*.service"):
        text = path.read_text().replace("/opt/clms/.venv/bin", str(venv))
        (tmp_path / path.name).write_text(text.replace("/opt/clms", str(ROOT)))
    files = sorted(str(p) for p in tmp_path.glob("*.service"))
    done = subprocess.run(
        ["systemd-analyze", "verify", *files], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # systemd-analyze says what it ignored on stderr without failing: nothing may be ignored
    ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert ours == [], ours


def test_gunicorn_accepts_its_settings():
    gunicorn = Path(sys.executable).with_name("gunicorn")
    done = subprocess.run(
        [str(gunicorn), "--config", "deploy/gunicorn.conf.py", "--check-config", "wsgi:app"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
