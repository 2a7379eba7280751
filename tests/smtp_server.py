"""A real SMTP server process for the tests: aiosmtpd, storing what it receives in a Maildir.

:class:`SmtpServer` starts ``python -m tests.smtp_server`` (the :func:`main` below: aiosmtpd's
``Controller`` with its ``Mailbox`` handler, optionally asking for a login) on a free port of
127.0.0.1, waits until it accepts connections, and stops it at the end. The tests read the
messages from the Maildir, with the envelope recipients the handler adds (``X-RcptTo``).

To test failures: :meth:`SmtpServer.stop` it (connections are then refused) and
:meth:`SmtpServer.start` it again on the same port.

>>> with SmtpServer(tmp_path / "mail") as smtp:  # doctest: +SKIP
...     config = {"SMTP_HOST": smtp.host, "SMTP_PORT": smtp.port}
...     smtp.wait_for(1)
"""

from __future__ import annotations

import argparse
import email
import email.policy
import mailbox
import signal
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """Start, read and stop one aiosmtpd process."""

    host = "127.0.0.1"

    def __init__(self, maildir: Path, *, port: int | None = None, login: str | None = None):
        self.maildir = Path(maildir)
        self.port = port or free_port()
        self.login = login  # "user:password": the server then requires AUTH
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server process; return once it answers on its port."""
        cmd = [sys.executable, "-m", "tests.smtp_server", "--port", str(self.port)]
        cmd += ["--maildir", str(self.maildir)]
        if self.login:
            cmd += ["--login", self.login]
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"the SMTP server exited at start:\n{err}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the SMTP server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server process (connections to its port are then refused)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
        self.process = None

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first."""
        if not (self.maildir / "new").exists():
            return []
        box = mailbox.Maildir(self.maildir, factory=None, create=False)
        found = []
        for key in box.iterkeys():
            with box.get_file(key) as fh:
                msg = email.message_from_binary_file(fh, policy=email.policy.default)
            found.append(msg)
        found.sort(key=lambda m: (m["Date"].datetime if m["Date"] else 0, m["Message-ID"] or ""))
        return found

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages, once there are at least ``count`` (the handler writes after replying)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """The server process: aiosmtpd on 127.0.0.1:PORT delivering to a Maildir until SIGTERM."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox
    from aiosmtpd.smtp import AuthResult

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--login", help="user:password; AUTH is then required (without TLS)")
    args = parser.parse_args(argv)

    options: dict = {}
    if args.login:
        user, _, password = args.login.partition(":")

        def authenticate(_server, _session, _envelope, _mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)

        options = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}
    controller = Controller(
        Mailbox(args.maildir),
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="smtp.test",
        **options,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    controller.start()
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main()
