"""A pull run of one source: what it reads before any request, the submissions it fetches, how
each one is stored with the cursor that covers it, and what is recorded on the source at the end.

The run itself, with its transactions, is the intake's (:mod:`clms.intake.pull`): one
transaction per submission, so a pull killed midway resumes where it stopped, with no gap and
no duplicate. The functions here that write flush and never commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace

import requests
from sqlalchemy import update
from sqlalchemy.orm import Session

from clms.errors import Problem
from clms.models import PullSource, utcnow
from forms.credentials import decrypt_credentials
from forms.ingest import IncomingSubmission, ingest_submission
from forms.pull.clients import (
    ATTEMPTS,
    CentralClient,
    Entry,
    KoboClient,
    RemoteNotFound,
    Target,
    redact,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 250  # Central $top / Kobo limit; Kobo caps it (1000 on the public servers)
MAX_PROBLEMS = 10  # problems kept in a result and in last_error; all are counted

# what kpi's add_xml_declaration() prepends to a stored XML that had no declaration
KOBO_XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'


@dataclass
class PullResult:
    """What one pull of one source did.

    ``fetched`` counts the submissions looked at, ``stored`` the new ones, ``duplicates`` those
    already here (pushed by a phone, or seen at the cursor again), ``problem_count`` those the
    ingest refused, of which ``problems`` keeps the first few as
    ``{"instance_id", "code", "message"}``. ``error`` says why the pull stopped early (None: it ran
    to the end). ``cursor`` is the source's cursor afterwards; ``expected`` is the count the server
    announced (None until known).
    """

    source: str
    kind: str = ""
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    problems: list[dict] = field(default_factory=list)
    problem_count: int = 0
    pages: int = 0
    cursor: str | None = None
    expected: int | None = None
    error: str | None = None
    # what staying in step changed (forms.pull.kobo_changes): edited, late, withdrawn, restored,
    # each with how many
    changes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the pull ran to the end (some submissions may still have had problems)."""
        return self.error is None

    def as_dict(self) -> dict:
        """The result as plain data (for a job run's JSON summary)."""
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        """One line for people: ``source 'x': 12 fetched, 10 new, 1 already stored, ...``."""
        text = (
            f"source '{self.source}': {self.fetched} fetched, {self.stored} new, "
            f"{self.duplicates} already stored, {self.problem_count} not stored "
            f"({self.pages} page{'' if self.pages == 1 else 's'}); "
            f"cursor {self.cursor or 'not set'}"
        )
        if self.changes:
            text += "; in step: " + ", ".join(f"{n} {what}" for what, n in self.changes.items())
        if self.error:
            text += f". Stopped: {self.error}"
        elif self.problems:
            first = self.problems[0]
            text += f". First problem: {first['instance_id']}: {first['message']}"
        return text


def read_target(session: Session, source_id: int) -> tuple[Target, bytes]:
    """What a pull of the source needs to know, and its sealed credentials; raises
    :class:`LookupError` for an unknown source."""
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    return Target.of(source), bytes(source.credentials)


@dataclass
class Pulled:
    """A listed submission, fetched: what to store (``incoming``), or why there is nothing to
    store (``missing``: the server deleted it between the listing and now)."""

    entry: Entry
    incoming: IncomingSubmission | None
    missing: str | None = None


class PullRun:
    """The HTTP side of one pull of one source: the submissions since its cursor, oldest first.

    ``config`` holds the application's settings (``CREDENTIALS_KEY``, optionally
    ``PULL_PAGE_SIZE`` and ``PULL_ATTEMPTS``); ``http`` is the ``requests.Session`` to use (by
    default a new one, closed by :meth:`close`); ``sleep`` is called with the seconds to wait
    between tries (tests record instead of sleeping).
    """

    def __init__(
        self,
        target: Target,
        sealed: bytes,
        config: Mapping,
        *,
        http: requests.Session | None = None,
        sleep: Callable[[float], object] = time.sleep,
        page_size: int | None = None,
        attempts: int | None = None,
    ):
        self.target = target
        self._sealed = sealed
        self._config = config
        self._own_http = http is None
        self.http = http or requests.Session()
        self.sleep = sleep
        self.page_size = page_size
        self.attempts = attempts
        self.client: CentralClient | KoboClient | None = None

    def submissions(
        self, result: PullResult, progress: Callable[[PullResult], object] | None = None
    ) -> Iterator[Pulled]:
        """Each submission at or after the cursor, fetched, oldest first; counted in ``result``.

        ``progress(result)`` is called once the count is known and after each submission is
        handled (when the next one is asked for). Raises :class:`forms.pull.clients.PullError`
        when the server cannot be used (and :class:`forms.credentials.CredentialsError` for
        credentials that cannot be read).
        """
        config, target = self._config, self.target
        credentials = decrypt_credentials(self._sealed, str(config.get("CREDENTIALS_KEY") or ""))
        client_class = CentralClient if target.kind == "central" else KoboClient
        self.client = client_class(
            target, credentials, http=self.http, sleep=self.sleep,
            attempts=self.attempts or int(config.get("PULL_ATTEMPTS") or ATTEMPTS),
        )  # fmt: skip
        size = self.page_size or int(config.get("PULL_PAGE_SIZE") or PAGE_SIZE)
        if target.kind == "central":
            # the feed is newest first and cannot be sorted while paged: list it all, then go
            # oldest first
            entries = self.client.list_since(target.cursor, size, result)
            result.expected = len(entries)
            if progress:
                progress(result)
            for entry in entries:
                yield self._fetch(entry, result)
                if progress:
                    progress(result)
        else:
            # Kobo sorts as asked: each page is stored before the next is fetched
            for entries in self.client.pages_since(target.cursor, size, result):
                if progress:
                    progress(result)
                for entry in entries:
                    yield self._fetch(entry, result)
                    if progress:
                        progress(result)

    def _fetch(self, entry: Entry, result: PullResult) -> Pulled:
        result.fetched += 1
        try:
            return Pulled(entry, self.client.fetch(entry))
        except RemoteNotFound as exc:
            # deleted between the listing and now: nothing to store, the pull goes on
            return Pulled(entry, None, str(exc))

    def redact(self, text: str) -> str:
        """``text`` without the secrets of this run's client (see :func:`redact`)."""
        return redact(text, self.client)

    def close(self) -> None:
        """Close the HTTP session, unless it was the caller's."""
        if self._own_http:
            self.http.close()


def store_pulled(
    session: Session, target: Target, incoming: IncomingSubmission, submitted_at: str
) -> bool:
    """Ingest ``incoming`` (:func:`forms.ingest.ingest_submission`) and move the source's cursor
    to ``submitted_at``; True if the submission is new. Meant to be the submission's own
    transaction, so it is stored with the cursor that covers it; flushes, never commits.

    A concurrent request storing the same instanceID makes the insert violate a unique key: the
    caller runs the transaction again (``clms.db.commit_retrying``), and it then finds the other's
    row. A refusal of the ingest (a :class:`~clms.errors.Problem`) is raised.
    """
    try:
        ingested = ingest_submission(session, incoming)
    except Problem as p:
        if not _kobo_added_declaration(target, incoming, p):
            raise
        # kpi prepends an XML declaration when the stored XML had none (an Enketo or OpenRosa
        # push of the same submission to us came without it): compare the bytes it stored. The
        # conflict is found before anything is written: the transaction goes on.
        stripped = incoming.xml[len(KOBO_XML_DECLARATION) :]
        ingested = ingest_submission(session, replace(incoming, xml=stripped))
    move_cursor(session, target.id, submitted_at, ingested.created)
    return ingested.created


def _kobo_added_declaration(target: Target, incoming: IncomingSubmission, p: Problem) -> bool:
    return (
        p.key == "submission.conflict"
        and target.kind == "kobo"
        and incoming.xml.startswith(KOBO_XML_DECLARATION)
    )


def move_cursor(session: Session, source_id: int, submitted_at: str, created: bool) -> None:
    """Move the source's cursor to ``submitted_at`` (counting one more pulled when ``created``)."""
    session.execute(
        update(PullSource)
        .where(PullSource.id == source_id)
        .values(cursor=submitted_at, pulled_total=PullSource.pulled_total + int(created))
    )


def record_problem(result: PullResult, instance_id: str, code: str, message: str) -> None:
    """Count a submission that was not stored, keeping the first few problems."""
    result.problem_count += 1
    if len(result.problems) < MAX_PROBLEMS:
        result.problems.append({"instance_id": instance_id, "code": code, "message": message})
    log.warning(
        "pull of source %r: %s not stored: %s %s", result.source, instance_id, code, message
    )


def finish(session: Session, source_id: int, result: PullResult, started: dt.datetime) -> None:
    """Record on the source when it was pulled, whether it worked, and what went wrong; the
    result gets the source's cursor. Flushes, never commits."""
    source = session.get(PullSource, source_id)
    if source is None:  # removed while it was pulled
        return
    source.last_pull_at = started
    if result.error is None:
        source.last_success_at = utcnow()
    source.last_error = last_error(result)
    result.cursor = source.cursor
    session.flush()


def last_error(result: PullResult) -> str | None:
    """What :func:`finish` records as the source's last error (None: none)."""
    parts = []
    if result.error:
        parts.append(result.error)
    if result.problem_count:
        listed = "; ".join(
            f"{p['instance_id']}: {p['code']} {p['message']}" for p in result.problems[:3]
        )
        more = result.problem_count - min(3, len(result.problems))
        parts.append(
            f"{result.problem_count} submission{'' if result.problem_count == 1 else 's'} "
            f"not stored: {listed}" + (f" (and {more} more)" if more > 0 else "")
        )
    return " | ".join(parts) or None
