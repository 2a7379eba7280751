"""The demo's progress lines on standard error."""

from __future__ import annotations

import sys
import time

import click

# --- progress ----------------------------------------------------------------------------------


class ProgressLine:
    """A progress line on stderr: counts, rate and time left; redrawn in place on a terminal."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.last_tenth = -1
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0

    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self.tty:
            if now - self.last_draw >= 0.2 or done >= self.total:
                self.last_draw = now
                self.stream.write("\r" + self._text(now) + "\x1b[K")
                self.stream.flush()
        else:  # a log file: one line per tenth
            tenth = int(10 * done / self.total) if self.total else 10
            if tenth != self.last_tenth:
                self.last_tenth = tenth
                self.stream.write(self._text(now) + "\n")
                self.stream.flush()

    def _text(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        if self.done >= self.total:
            tail = f"done in {elapsed:.1f} s"
        elif rate > 0:
            tail = f"ETA {_duration((self.total - self.done) / rate)}"
        else:
            tail = "ETA ?"
        return f"{self.label}: {self.done}/{self.total} ({rate:.1f}/s, {tail})"

    def finish(self) -> None:
        if self.done < self.total:
            self.update(self.total)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def say(text: str) -> None:
    click.echo(text, err=True)
