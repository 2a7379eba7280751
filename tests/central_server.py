"""A real ODK Central for the tests: ``../tools/odk-central/run.sh`` (beside the shared data,
``CLMS_SHARED_DATA``) started once per test session on free ports, our forms published there, and
what a person does in Central (submit from a phone, edit, review, delete, restore) done through its
REST and OpenRosa APIs.

If the server cannot be started (no npm, no network, no PostgreSQL) the tests that use it FAIL:
in CI a silent skip would hide that the pull was never tried against the real thing. Set
``CLMS_NO_REAL_CENTRAL=1`` to skip them on purpose (a machine without those tools).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
FORMS = ("clms_household_visit", "clms_followup", "clms_report")


def run_script() -> Path:
    shared = os.environ.get("CLMS_SHARED_DATA") or str(ROOT.parent / "shared" / "data")
    return Path(shared).resolve().parent / "tools" / "odk-central" / "run.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RealCentral:
    """A running ODK Central: its address, its administrator, a project with our forms."""

    url: str
    email: str
    password: str
    project_id: int
    work: Path
    versions: dict[str, str] = field(default_factory=dict)  # xmlFormId -> published version
    app_user_token: str = ""
    _http: requests.Session = field(default_factory=requests.Session)

    # --- as an administrator, through the REST API ---------------------------------------------

    def signed_in(self) -> requests.Session:
        if "Authorization" not in self._http.headers:
            body = {"email": self.email, "password": self.password}
            token = self._http.post(f"{self.url}/v1/sessions", json=body, timeout=30)
            token.raise_for_status()
            self._http.headers["Authorization"] = f"Bearer {token.json()['token']}"
        return self._http

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return self.signed_in().request(method, f"{self.url}/v1{path}", timeout=60, **kw)

    def form_path(self, form: str = "clms_household_visit") -> str:
        return f"/projects/{self.project_id}/forms/{form}"

    def publish(self, xml: bytes) -> dict:
        r = self.api("POST", f"/projects/{self.project_id}/forms?publish=true", data=xml,
                     headers={"Content-Type": "application/xml"})  # fmt: skip
        r.raise_for_status()
        return r.json()

    def submit_rest(self, xml: bytes, form: str = "clms_household_visit") -> dict:
        r = self.api("POST", self.form_path(form) + "/submissions", data=xml,
                     headers={"Content-Type": "application/xml"})  # fmt: skip
        r.raise_for_status()
        return r.json()

    def submit_openrosa(self, xml: bytes) -> requests.Response:
        """As ODK Collect does, signed in as an app user (``/v1/key/<token>/...``)."""
        url = f"{self.url}/v1/key/{self.app_user_token}/projects/{self.project_id}/submission"
        files = {"xml_submission_file": ("submission.xml", xml, "text/xml")}
        return requests.post(url, files=files, headers={"X-OpenRosa-Version": "1.0"}, timeout=60)

    def edit(self, root_id: str, xml: bytes) -> requests.Response:
        return self.api("PUT", self.form_path() + f"/submissions/{root_id}", data=xml,
                        headers={"Content-Type": "application/xml"})  # fmt: skip

    def review(self, root_id: str, state: str) -> requests.Response:
        return self.api("PATCH", self.form_path() + f"/submissions/{root_id}",
                        json={"reviewState": state})  # fmt: skip

    def delete(self, root_id: str) -> requests.Response:
        return self.api("DELETE", self.form_path() + f"/submissions/{root_id}")

    def restore(self, root_id: str) -> requests.Response:
        return self.api("POST", self.form_path() + f"/submissions/{root_id}/restore")

    def new_id(self) -> str:
        return f"uuid:{uuid.uuid4()}"


def start(work: Path) -> RealCentral:
    """Run ``run.sh`` in ``work`` on free ports; fails the test with the script's output when it
    cannot run."""
    script = run_script()
    if not script.is_file():
        pytest.fail(
            f"the real ODK Central's run.sh is not at {script} (it sits beside CLMS_SHARED_DATA, "
            "in ../shared/tools/odk-central); set CLMS_NO_REAL_CENTRAL=1 to skip these tests"
        )
    env = {**os.environ, "WORK": str(work), "CENTRAL_PORT": str(free_port()),
           "PG_PORT": str(free_port())}  # fmt: skip
    try:
        done = subprocess.run(
            ["bash", str(script)], env=env, capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired as exc:
        stop(work)
        pytest.fail(f"the real ODK Central did not start within 10 minutes: {exc.stdout}")
    if done.returncode != 0:
        stop(work)
        pytest.fail(
            f"the real ODK Central could not be started (run.sh exited {done.returncode}): "
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n(set CLMS_NO_REAL_CENTRAL=1 to skip "
            "these tests on a machine without npm, PostgreSQL or network)"
        )
    values = dict(
        line.split("=", 1)
        for line in (work / "central.env").read_text().splitlines()
        if "=" in line
    )
    server = RealCentral(
        values["CENTRAL_URL"], values["CENTRAL_EMAIL"], values["CENTRAL_PASSWORD"],
        int(values["CENTRAL_PROJECT_ID"]), work,
    )  # fmt: skip
    for name in FORMS:
        published = server.publish((ROOT / "forms" / "build" / f"{name}.xml").read_bytes())
        server.versions[name] = published["version"]
    phone = server.api("POST", f"/projects/{server.project_id}/app-users",
                       json={"displayName": "monitor phone"})  # fmt: skip
    phone.raise_for_status()
    server.app_user_token = phone.json()["token"]
    for name in FORMS:
        server.api(
            "POST", server.form_path(name) + f"/assignments/app-user/{phone.json()['id']}"
        ).raise_for_status()
    return server


def stop(work: Path) -> None:
    script = work / "stop-central.sh"
    if script.is_file():
        subprocess.run(["bash", str(script)], capture_output=True, timeout=120)


def real_central_server():
    """The generator behind the session-scoped ``real_central`` fixture."""
    if os.environ.get("CLMS_NO_REAL_CENTRAL") == "1":
        pytest.skip("CLMS_NO_REAL_CENTRAL=1: the tests against a real ODK Central are skipped")
    # not a pytest tmp folder: those are private to this user, and run.sh runs PostgreSQL as
    # another one, which must reach its data folder
    work = Path(tempfile.mkdtemp(prefix="clms-central-"))
    work.chmod(0o755)
    try:
        yield start(work)
    finally:
        stop(work)
        shutil.rmtree(work, ignore_errors=True)
