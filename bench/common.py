"""What the benchmarks share: throwaway databases, a real gunicorn, memory sampling, statistics."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# --- databases ---------------------------------------------------------------------------------


class Database:
    """A fresh, empty database of one kind; ``close()`` removes it (and stops its server)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.server = None
        # world-traversable: PostgreSQL runs as the postgres user when we are root
        self.tmp = Path(tempfile.mkdtemp(prefix=f"clms-bench-{kind}-", dir="/tmp"))
        os.chmod(self.tmp, 0o755)  # noqa: S103
        if kind == "sqlite":
            self.url = f"sqlite:///{self.tmp / 'clms.sqlite3'}"
        elif kind == "postgresql":
            from tests.pgserver import PostgresServer

            self.server = PostgresServer(self.tmp / "pg")
            try:
                self.server.start()
                self.url = self.server.create_database("clms_bench")
            except BaseException:
                self.close()
                raise
        else:
            raise ValueError(f"unknown database {kind!r} (sqlite, postgresql)")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- gunicorn ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn serving ``app`` (a ``module:callable`` spec) as a subprocess of its own session."""

    def __init__(self, app: str, env: dict[str, str], workers: int, threads: int, log: Path,
                 keep_alive: int = 30):  # fmt: skip
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.argv = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(workers),
            "--worker-class", "gthread",
            "--threads", str(threads),
            "--bind", f"127.0.0.1:{self.port}",
            "--keep-alive", str(keep_alive),
            "--graceful-timeout", "10",
            "--error-logfile", "-",
            app,
        ]  # fmt: skip
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen | None = None

    @property
    def command(self) -> str:
        return " ".join(a if " " not in a and "(" not in a else f"'{a}'" for a in self.argv[1:])

    def start(self, ready_path: str, timeout: float = 60) -> None:
        """Start and wait until ``ready_path`` answers (any status below 500)."""
        with open(self.log, "ab") as fh:
            # a session of its own: a Ctrl-C in the terminal reaches us, and we stop it cleanly
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if requests.get(self.base_url + ready_path, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM to the master), then SIGKILL to the group if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processor:
    """``clms process --follow``: the product's submission processor, as production runs it."""

    def __init__(self, env: dict[str, str], log: Path, interval: float = 0.1):
        clms = Path(sys.executable).with_name("clms")
        self.argv = [str(clms), "process", "--follow", "--interval", str(interval)]
        self.env = {**os.environ, **env}
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def command(self) -> str:
        return "clms " + " ".join(self.argv[1:])

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # finishes the batch in hand, then exits
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# --- memory ------------------------------------------------------------------------------------


def process_tree(*root_pids: int) -> list[int]:
    """The ``root_pids`` and all their descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields after the last ')' are safe
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], list(root_pids)
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


class RssSampler:
    """Samples the summed RSS of process trees every ``interval`` seconds; keeps the peak.

    The sum counts pages that forked workers share with the master once per process, as ``ps``
    would; it is an upper bound of what the tree really holds.
    """

    def __init__(self, *root_pids: int, interval: float = 0.1):
        self.root_pids = root_pids
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        total = sum(rss_kib(pid) for pid in process_tree(*self.root_pids))
        self.peak_kib = max(self.peak_kib, total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


# --- statistics --------------------------------------------------------------------------------


def save_results(out: Path, args, results: list, text_table: str, **config) -> None:
    """Write a run's figures as JSON to ``out``: when, the options (and ``config``), the results
    and the printed table, so ``--report`` and the README can be redrawn from it."""
    import datetime as dt
    import json
    import platform

    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    settings |= {"cpus": os.cpu_count(), "python": platform.python_version(), **config}
    body = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": settings,
        "results": results,
        "table": text_table,
    }
    out.write_text(json.dumps(body, indent=2, default=str) + "\n")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (``p`` in 0-100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil
    return sorted_values[int(rank) - 1]


@dataclass
class PhaseResult:
    """What one load phase measured."""

    name: str
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0  # gunicorn master + workers (+ the processor, when there is one)
    accept_seconds: float = 0.0  # until the last answer; ``seconds`` also waits for processing
    worker_cpu_share: list[float] = field(default_factory=list)  # cores used by each process
    machine_busy: float = 0.0  # share of all CPUs busy during the phase
    db_cpu_s: float = 0.0  # PostgreSQL server processes (0 for SQLite: it runs in the workers)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "accept_seconds": round(self.accept_seconds, 3),
            "accepted_per_s": round(self.requests / self.accept_seconds, 1)
            if self.accept_seconds
            else None,
            "submissions_per_s": round(self.throughput, 1),
            "p50_ms": round(percentile(lat, 50), 1),
            "p99_ms": round(percentile(lat, 99), 1),
            "max_ms": round(lat[-1], 1) if lat else None,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "errors": self.errors,
            "statuses": dict(sorted(self.statuses.items())),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "server_cpu_s": round(self.server_cpu_s, 2),
            "gunicorn_cores_by_process": self.worker_cpu_share,
            "machine_cpu_busy": round(self.machine_busy, 3),
            "db_server_cpu_s": round(self.db_cpu_s, 2),
        }


# --- charts ------------------------------------------------------------------------------------


def bar_chart_svg(title: str, groups: list[tuple[str, list[tuple[str, float]]]], unit: str) -> str:
    """A grouped horizontal bar chart as a standalone SVG (no plotting library needed).

    ``groups`` is ``[(group label, [(bar label, value), ...]), ...]``; every bar is labelled with
    its value and ``unit``.
    """
    from xml.sax.saxutils import escape

    bar_h, gap, left, width = 22, 14, 190, 420
    top = 40
    peak = max((v for _, bars in groups for _, v in bars), default=1) or 1
    rows = []
    y = top
    colours = ["#1f6f8b", "#99a8b2", "#e6a157", "#5b8c5a"]
    for group, bars in groups:
        rows.append(f'<text x="8" y="{y + 15}" font-weight="bold">{escape(group)}</text>')
        y += 22
        for i, (label, value) in enumerate(bars):
            w = max(1.0, width * value / peak)
            rows.append(
                f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{colours[i % len(colours)]}"/>'
                f'<text x="{left + w + 6:.1f}" y="{y + 15}">{value:,.1f} {escape(unit)}</text>'
            )
            y += bar_h + 4
        y += gap
    height = y + 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 140}" height="{height}" '
        f'font-family="sans-serif" font-size="13" role="img" aria-label="{escape(title)}">'
        f'<title>{escape(title)}</title><rect width="100%" height="100%" fill="white"/>'
        f'<text x="8" y="22" font-size="15" font-weight="bold">{escape(title)}</text>'
        + "".join(rows)
        + "</svg>\n"
    )


def bench_form_and_profile(session, hazards: list[str]):
    """A live household-visit form version and the ILO default country profile, as the bulk loads
    of the benchmarks reference them: ``(form, version, profile)`` (flushed)."""
    import hashlib

    from clms.models import CountryProfile, Form, FormVersion

    form = Form(xml_form_id="clms_household_visit", title="Household visit", state="open")
    session.add(form)
    session.flush()
    xml = b"<h:html/>"
    version = FormVersion(
        form_id=form.id,
        version="bench",
        xml=xml,
        md5=hashlib.md5(xml).hexdigest(),  # noqa: S324 - a checksum, as OpenRosa wants it
        source_name="bench",
        warnings=[],
        media_files=[],
    )
    session.add(version)
    session.flush()
    form.live_version_id = version.id
    profile = CountryProfile(
        code="ILO",
        version=1,
        current=True,
        name="ILO default",
        min_age=15,
        light_work_age=13,
        light_work_max_hours=14,
        min_age_hazardous=18,
        hazardous_hours=43,
        chores_hours=21,
        compulsory_school_age=15,
        hazardous_list=list(hazards),
        sources={},
        change_note="bench",
    )
    session.add(profile)
    session.flush()
    return form, version, profile
