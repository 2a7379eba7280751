"""Real processes to break, for tests/intake/test_failures.py: gunicorn and ``clms scheduler`` as
subprocesses killed with SIGKILL, a PostgreSQL server stopped and started again, a small tmpfs
that fills up.

Nothing here imitates our own code: the server, the scheduler and the database are the real ones,
and the failures are real signals, a real stopped server and a real full file system.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import select

from clms.db import session_scope
from tests.pgserver import PostgresServer, _pg_bin

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "failure-tests-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(app, **extra: str) -> dict[str, str]:
    """The environment that makes a subprocess the same CLMS as ``app`` (database, keys)."""
    env = {
        **os.environ,
        "CLMS_DATABASE_URL": app.config["DATABASE_URL"],
        "CLMS_SECRET_KEY": app.config["SECRET_KEY"],
        "CLMS_CREDENTIALS_KEY": app.config["CREDENTIALS_KEY"],
        "CLMS_ODK_VALIDATE": "0",
        "CLMS_SHARED_DATA": str(app.config["SHARED_DATA"]),
    }
    env.update(extra)
    return env


def wait_until(check, timeout: float = 60.0, interval: float = 0.05, what: str = ""):
    """Poll ``check()`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")


class Process:
    """A subprocess in a session of its own (so one signal reaches it and all its children)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.argv = argv
        self.env = env
        self.log = Path(log)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL to the whole group (gunicorn's master and every worker at once)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, as an operator would; SIGKILL if it does not end in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # whatever it left behind (a worker being born as the master died)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Gunicorn(Process):
    """``gunicorn wsgi:app`` as in production (README, Production), on a fixed free port so a
    restarted server is where the phones look for it."""

    def __init__(
        self, env: dict[str, str], log: Path, workers: int = 2, threads: int = 4, extra=()
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            sys.executable, "-m", "gunicorn", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads),
            "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "10",
            "--error-logfile", "-", *extra, "wsgi:app",
        ]  # fmt: skip
        super().__init__(argv, env, log)

    def start(self, timeout: float = 60) -> None:
        """Start and wait until it answers (the unauthenticated probe gets its 401)."""
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if requests.head(self.url + "/submission", timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.tail()}")


def clms_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("clms")), *args]


class StoppablePostgres(PostgresServer):
    """A PostgreSQL server of a test's own, which the test may stop and start again (the shared
    one of tests/conftest.py serves every other test, so it is never stopped)."""

    def start(self) -> None:
        super().start()
        self._options = self._run_options()

    def _run_options(self) -> str:
        return (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.sockets} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )

    def pause(self) -> None:
        """Stop the server (fast: open sessions are cut), keeping its data."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the stopped server again on the same port."""
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"),
            "-o", self._options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def admin(self, dbname: str = "postgres"):
        """An autocommit psycopg connection as the superuser."""
        import psycopg

        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}", autocommit=True
        )


@contextlib.contextmanager
def small_tmpfs(size: str, owner: str | None = None):
    """Mount a tmpfs of ``size`` (``"8m"``) on a new folder and yield its path; unmounted after.

    A real small file system: a write that does not fit fails with ENOSPC, as on a full disk.
    Needs root (CI runs the tests as root); the caller skips the test when this raises
    PermissionError.
    """
    base = Path(tempfile.mkdtemp(prefix="clms-full-", dir="/tmp"))
    os.chmod(base, 0o755)  # noqa: S103 - PostgreSQL (another user) must reach its folder
    mount = base / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise PermissionError(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        if owner:
            shutil.chown(mount, owner, owner)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def fill(folder: Path, leave: int) -> Path:
    """Take all the free space of ``folder``'s file system but ``leave`` bytes, with one file."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    path = folder / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, max(0, free - leave))
    finally:
        os.close(fd)
    return path


def populate(app) -> str:
    """The least a phone needs: one department with two villages, monitor ``awa`` (password
    tests.conftest.PASSWORD) scoped to it, and our forms. Returns the household form's version."""
    from clms.auth.users import add_user
    from clms.models import Area, Form, Supplier, SupplierVillage, Village
    from forms.publish import ensure_builtin_forms
    from tests.conftest import PASSWORD

    with session_scope(app) as s:
        country = Area(code="CI", name="Côte d'Ivoire", level="country", country_code="CIV")
        dept = Area(code="CI-D1", name="Soubré", level="department", country_code="CIV",
                    parent=country)  # fmt: skip
        s.add_all([country, dept])
        s.flush()
        villages = [
            Village(code="V1", name="Gnamagui", area_id=dept.id, lat=5.78, lon=-6.59),
            Village(code="V2", name="Lobakuya", area_id=dept.id, lat=5.70, lon=-6.61),
        ]
        coop = Supplier(code="T2-COOP", name="Coop Soubré Espoir", tier=2)
        s.add_all([*villages, coop])
        s.flush()
        s.add_all(SupplierVillage(supplier_id=coop.id, village_id=v.id) for v in villages)
        add_user(s, username="awa", role="monitor", password=PASSWORD,
                 realm=app.config["DIGEST_REALM"], scope_codes=["CI-D1"])  # fmt: skip
        ensure_builtin_forms(s)
        s.flush()
        form = s.scalar(select(Form).where(Form.xml_form_id == "clms_household_visit"))
        return form.live_version.version
