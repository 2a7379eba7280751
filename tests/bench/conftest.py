"""What the benchmarks' tiny runs share: the databases asked for (``--db``), the PostgreSQL
databases made on the run's test server, and the signal handlers a benchmark's ``main``
installs (SIGINT, SIGTERM) put back afterwards."""

from __future__ import annotations

import itertools
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

import bench.common

DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    if "bench_db" in metafunc.fixturenames:
        asked = [d.strip() for d in metafunc.config.getoption("--db").split(",") if d.strip()]
        metafunc.parametrize("bench_db", [d for d in DATABASES if d in asked])


@pytest.fixture(autouse=True)
def signal_handlers_restored():
    """A benchmark's ``main`` catches SIGINT and SIGTERM to stop its servers: the test run's own
    handlers come back after it."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.fixture
def failing_server():
    """A local HTTP server that answers every request 500, as a broken product would: its base
    URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Broken(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            body = b'{"error": "broken"}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


#: the benchmarks whose tiny runs make their PostgreSQL database on the run's test server
SHARED_SERVER = ("alert_queue", "cases", "geo", "ingest", "kpis")
_names = itertools.count(1)


class _OnTheTestServer(bench.common.Database):
    """A benchmark's fresh, empty PostgreSQL database made on the run's test server instead of
    a server of its own: ``initdb`` and the start of a server cost about 5 s a database on this
    machine, six times a run, for tiny runs that load a few hundred rows. ``close()`` drops the
    database and leaves the server. (``bench.profile_ingest`` keeps a server of its own, so
    that the benchmarks' own way is run too.)"""

    server_of_the_run = None

    def __init__(self, kind: str):
        if kind != "postgresql":
            super().__init__(kind)
            return
        self.kind = kind
        self.tmp = Path(tempfile.mkdtemp(prefix=f"clms-bench-{kind}-", dir="/tmp"))
        self.server = self.server_of_the_run
        self.name = f"clms_bench_{next(_names)}"
        self.url = self.server.create_database(self.name)

    def close(self) -> None:
        if self.kind != "postgresql":
            super().close()
            return
        if self.server is not None:
            self.server.sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.server = None
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(autouse=True)
def bench_databases_on_the_test_server(request, monkeypatch):
    """The PostgreSQL tiny runs of :data:`SHARED_SERVER` make their database on the run's test
    server (``postgres_server``, started once for the run)."""
    if "bench_db" not in request.fixturenames or request.getfixturevalue("bench_db") != (
        "postgresql"
    ):
        return
    import importlib

    server = request.getfixturevalue("postgres_server")
    monkeypatch.setattr(_OnTheTestServer, "server_of_the_run", server)
    for name in SHARED_SERVER:
        module = importlib.import_module(f"bench.{name}")
        assert module.Database is bench.common.Database, name
        monkeypatch.setattr(module, "Database", _OnTheTestServer)
