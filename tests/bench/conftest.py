"""What the benchmarks' tiny runs share: the databases asked for (``--db``), and the signal
handlers a benchmark's ``main`` installs (SIGINT, SIGTERM) put back afterwards."""

from __future__ import annotations

import signal

import pytest

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
