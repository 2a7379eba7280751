"""A real PostgreSQL server for the tests and benchmarks, started from Debian's binaries.

PostgreSQL refuses to run as root, so when the tests run as root (as CI does) the server runs as
the ``postgres`` system user that Debian's package creates. It listens on 127.0.0.1 only, on a free
port, with its data in a temporary folder, and trusts local connections (nothing else can reach it).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: apt-get install postgresql (the test set-up "
            "script ./dev does this)"
        )
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """Start, use and stop one throwaway PostgreSQL cluster."""

    def __init__(self, base: Path):
        self.base = Path(base)
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def _folders(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
            os.chmod(self.base, 0o755)  # noqa: S103 - the postgres user must reach its sockets

    def start(self) -> None:
        """initdb and start the server; wait until it accepts connections.

        It can feed a streaming standby (:meth:`start_standby`): PostgreSQL's defaults
        (``wal_level=replica``, ``max_wal_senders=10``, and initdb's ``host replication all
        127.0.0.1/32 trust`` line of ``pg_hba.conf``) are what that needs."""
        self._folders()
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        )
        self._start_server()

    def _start_server(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.sockets} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start; see {self.base / 'server.log'}")

    def start_standby(self, base: Path) -> PostgresServer:
        """A hot standby of this server, streaming from it: ``pg_basebackup -R`` (which writes
        ``primary_conninfo`` and ``standby.signal``), started on a port of its own; returns once
        it streams (:meth:`wait_streaming`)."""
        standby = PostgresServer(base)
        standby._folders()
        standby._run(
            _pg_bin("pg_basebackup"),
            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-D", str(standby.data),
            "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        )  # fmt: skip
        standby._start_server()
        standby.wait_streaming()
        return standby

    def wait_streaming(self, timeout: float = 30) -> None:
        """Wait until this standby's WAL receiver streams from its primary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sql("SELECT status FROM pg_stat_wal_receiver") == "streaming":
                return
            time.sleep(0.1)
        raise RuntimeError(f"the standby does not stream; see {self.base / 'server.log'}")

    def sql(self, statement: str, dbname: str = "postgres"):
        """The first value of ``statement`` run as the superuser (None without a row, or for a
        statement that returns none)."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}", autocommit=True
        ) as conn:
            cursor = conn.execute(statement)
            row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
            conn.execute(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its files."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)
