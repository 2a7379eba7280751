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
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from clms.errors import Problem
from clms.models import PullRetry, PullSource, utcnow
from forms.credentials import decrypt_credentials
from forms.ingest import IncomingSubmission, IngestResult, ingest_submission
from forms.pull.clients import (
    ATTEMPTS,
    CentralClient,
    Entry,
    KoboClient,
    RemoteNotFound,
    Target,
    _instant,
    redact,
)

log = logging.getLogger(__name__)

LOOKBACK_MINUTES = 15  # PULL_LOOKBACK_MINUTES when not set
PAGE_SIZE = 250  # Central $top / Kobo limit; Kobo caps it (1000 on the public servers)
MAX_PROBLEMS = 10  # problems kept in a result and in last_error; all are counted

# what kpi's add_xml_declaration() prepends to a stored XML that had no declaration
KOBO_XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'


@dataclass
class PullResult:
    """What one pull of one source did.

    ``fetched`` counts the submissions looked at, ``stored`` the new ones, ``duplicates`` those
    already here (pushed by a phone, or seen at the cursor again), ``edits`` the versions of an
    edit chain stored (an edit, or an older version it replaced), ``withdrawn`` and ``restored``
    the submissions withdrawn (deleted or rejected there) or counted again, ``retried`` those taken
    off the retry list now, ``problem_count`` those that could not be taken (they wait on the
    retry list; ``waiting`` is its length afterwards), of which ``problems`` keeps the first few
    as ``{"instance_id", "code", "message"}``. ``error`` says why the pull stopped early (None: it
    ran to the end). ``cursor`` is the source's cursor afterwards; ``expected`` is the count the
    server announced (None until known).
    """

    source: str
    kind: str = ""
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    edits: int = 0
    withdrawn: int = 0
    restored: int = 0
    retried: int = 0
    waiting: int = 0
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
            f"{self.duplicates} already stored, {self.edits} edit{_s(self.edits)}, "
            f"{self.withdrawn} withdrawn, {self.restored} restored, {self.problem_count} not "
            f"stored, {self.retried} taken from the retry list, {self.waiting} waiting there "
            f"({self.pages} page{_s(self.pages)}); cursor {self.cursor or 'not set'}"
        )
        if self.changes:
            text += "; in step: " + ", ".join(f"{n} {what}" for what, n in self.changes.items())
        if self.error:
            text += f". Stopped: {self.error}"
        elif self.problems:
            first = self.problems[0]
            text += f". First problem: {first['instance_id']}: {first['message']}"
        return text


def look_back(cursor: str | None, by: dt.timedelta) -> str | None:
    """``cursor`` moved back by ``by``, written as the server writes its times (Central:
    ``2024-01-31T23:44:59.999Z``; Kobo: ``2024-01-31T23:44:59``, no zone), so that the query
    compares like with like. None stays None (from the start)."""
    if cursor is None or not by:
        return cursor
    parsed = _instant(cursor)
    when = parsed - by
    if cursor.endswith("Z"):
        utc = when.astimezone(dt.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if dt.datetime.fromisoformat(cursor).tzinfo is None:  # Kobo: UTC, written without a zone
        spec = "microseconds" if "." in cursor else "seconds"
        return when.replace(tzinfo=None).isoformat(timespec=spec)
    return when.isoformat(timespec="milliseconds")


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def read_target(session: Session, source_id: int) -> tuple[Target, bytes]:
    """What a pull of the source needs to know, and its sealed credentials; raises
    :class:`LookupError` for an unknown source."""
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    return Target.of(source), bytes(source.credentials)


@dataclass
class Pulled:
    """A listed submission, fetched: what to store (``incoming``, its current version, and
    ``earlier``, the older versions of its edit chain we lack, oldest first), or why there is
    nothing to store (``missing``: the server deleted it between the listing and now).

    ``state`` is what its server says of it (see
    :func:`clms.intake.pull.apply_remote_state`; None: nothing to apply) with its
    ``review_state``. ``cursor``: storing it moves the source's cursor to its submission time;
    ``changed_at``: moves the changes cursor there.
    """

    entry: Entry
    incoming: IncomingSubmission | None
    missing: str | None = None
    earlier: list[IncomingSubmission] = field(default_factory=list)
    state: str | None = None
    review_state: str | None = None
    cursor: bool = True
    changed_at: str | None = None


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
        known: Callable[[list[str]], set[str]] | None = None,
    ):
        self.target = target
        # which of the instanceIDs given are stored here already (the versions we lack are
        # fetched, the others not)
        self.known = known or (lambda ids: set())
        self._sealed = sealed
        self._config = config
        self._own_http = http is None
        self.http = http or requests.Session()
        self.sleep = sleep
        self.page_size = page_size
        self.attempts = attempts
        self.client: CentralClient | KoboClient | None = None
        # what this run fetched already (remote id -> its updatedAt): not fetched twice
        self.handled: dict[str, str | None] = {}

    def submissions(
        self, result: PullResult, progress: Callable[[PullResult], object] | None = None
    ) -> Iterator[Pulled]:
        """Each submission at or after the cursor, fetched, oldest first; counted in ``result``.

        ``progress(result)`` is called once the count is known and after each submission is
        handled (when the next one is asked for). Raises :class:`forms.pull.clients.PullError`
        when the server cannot be used (and :class:`forms.credentials.CredentialsError` for
        credentials that cannot be read).
        """
        target = self.target
        self.connect()
        size = self._size()
        since = look_back(target.cursor, self.lookback)
        if target.kind == "central":
            # the feed is newest first and cannot be sorted while paged: list it all, then go
            # oldest first
            entries = self.client.list_since(since, size, result)
            result.expected = len(entries)
            if progress:
                progress(result)
            for entry in entries:
                yield self._fetch(entry, result)
                if progress:
                    progress(result)
        else:
            # Kobo sorts as asked: each page is stored before the next is fetched
            for entries in self.client.pages_since(since, size, result):
                if progress:
                    progress(result)
                for entry in entries:
                    yield self._fetch(entry, result)
                    if progress:
                        progress(result)

    @property
    def lookback(self) -> dt.timedelta:
        """How far before its cursors a pull reads again (``PULL_LOOKBACK_MINUTES``)."""
        minutes = self._config.get("PULL_LOOKBACK_MINUTES")
        return dt.timedelta(minutes=LOOKBACK_MINUTES if minutes is None else int(minutes))

    def _size(self) -> int:
        return self.page_size or int(self._config.get("PULL_PAGE_SIZE") or PAGE_SIZE)

    def connect(self) -> CentralClient | KoboClient:
        """The run's client (one per run: Central's session is reused for every request)."""
        if self.client is None:
            config, target = self._config, self.target
            key = str(config.get("CREDENTIALS_KEY") or "")
            credentials = decrypt_credentials(self._sealed, key)
            client_class = CentralClient if target.kind == "central" else KoboClient
            self.client = client_class(
                target, credentials, http=self.http, sleep=self.sleep,
                attempts=self.attempts or int(config.get("PULL_ATTEMPTS") or ATTEMPTS),
            )  # fmt: skip
        return self.client

    def retries(
        self,
        waiting: list[tuple[str, str | None, str | None]],
        result: PullResult,
        progress: Callable[[PullResult], object] | None = None,
    ) -> Iterator[Pulled]:
        """Each submission of the retry list (``(remote_id, instance_id, submitted_at)``),
        fetched again; storing one does not move the cursor (it is behind it)."""
        if not waiting:
            return
        client = self.connect()
        listed: dict[str, Entry] = {}
        if isinstance(client, CentralClient):
            # their review state and edits, in one query (a deleted one is not listed)
            ids = [remote_id for remote_id, _, _ in waiting]
            listed = {e.remote_id: e for e in client.list_ids(ids, result)}
        for remote_id, instance_id, submitted_at in waiting:
            if remote_id in self.handled:  # listed again and tried already in this run
                continue
            try:
                if isinstance(client, CentralClient):
                    entry = listed.get(remote_id) or Entry(
                        instance_id or remote_id, submitted_at or "", remote_id, edits=None
                    )
                else:
                    entry = client.entry_of(remote_id)
            except RemoteNotFound as exc:
                entry = Entry(instance_id or remote_id, submitted_at or "", remote_id)
                pulled = Pulled(entry, None, str(exc), cursor=False)
            else:
                pulled = replace(self._fetch(entry, result, count=False), cursor=False)
            yield pulled
            if progress:
                progress(result)

    def changes(
        self,
        changes_cursor: str | None,
        deleted_here: list[str],
        result: PullResult,
        progress: Callable[[PullResult], object] | None = None,
    ) -> Iterator[Pulled]:
        """ODK Central: what changed on submissions already received, oldest change first.

        Edits and review decisions set ``__system/updatedAt``: each submission updated since the
        changes cursor comes with the versions of its edit chain we lack and its review state.
        A deletion sets only ``deletedAt``, which a filter must name to see deleted submissions;
        a restore clears it and sets no time, so the submissions withdrawn here as deleted
        (``deleted_here``, their rootIds) are looked up again: those listed are back.
        """
        client = self.connect()
        if not isinstance(client, CentralClient):
            return
        since = look_back(changes_cursor, self.lookback)
        size = self._size()
        # both listings first, then one stream, oldest change first: the one changes cursor
        # moves over both, so a listing that fails cannot make the other's changes skipped
        updated = client.list_updated(since, size, result)
        deleted = client.list_deleted(since, size, result)
        stream = sorted(
            [(_instant(e.updated_at), 0, n, e) for n, e in enumerate(updated)]
            + [(_instant(e.deleted_at), 1, n, e) for n, e in enumerate(deleted)],
            key=lambda item: item[:3],
        )
        for _when, kind, _n, entry in stream:
            if kind == 1:
                yield Pulled(entry, None, None, state="deleted", review_state=entry.review_state,
                             cursor=False, changed_at=entry.deleted_at)  # fmt: skip
            elif self.handled.get(str(entry.remote_id), False) == entry.updated_at:
                # fetched in this run as it is now: its state only
                yield Pulled(entry, None, state=entry.remote_state, review_state=entry.review_state,
                             cursor=False, changed_at=entry.updated_at)  # fmt: skip
            else:
                pulled = self._fetch(entry, result, count=False, only_edits=True)
                yield replace(pulled, cursor=False, changed_at=entry.updated_at)
            if progress:
                progress(result)
        if deleted_here:
            for entry in client.list_ids(deleted_here, result):
                yield Pulled(entry, None, None, state=entry.remote_state,
                             review_state=entry.review_state, cursor=False)  # fmt: skip
                if progress:
                    progress(result)

    def _fetch(
        self, entry: Entry, result: PullResult, *, count: bool = True, only_edits: bool = False
    ) -> Pulled:
        """``entry`` fetched: Central's edited submissions with the versions we lack (oldest
        first, ``/versions``); with ``only_edits``, an unedited one is not fetched again."""
        if count:
            result.fetched += 1
        self.handled[str(entry.remote_id)] = entry.updated_at
        central = isinstance(self.client, CentralClient)
        state = entry.remote_state if central else None
        base = Pulled(entry, None, state=state, review_state=entry.review_state)
        try:
            if central and entry.edits != 0:
                return self._fetch_versions(entry, base)
            if only_edits and str(entry.remote_id) in self.known([str(entry.remote_id)]):
                return base  # held here: its state is what changed
            return replace(base, incoming=self.client.fetch(entry))
        except RemoteNotFound as exc:
            # deleted between the listing and now: nothing to store now, it waits on the retry
            # list and the pull goes on
            return replace(base, missing=str(exc), state=None)

    def _fetch_versions(self, entry: Entry, base: Pulled) -> Pulled:
        versions = self.client.versions(str(entry.remote_id))
        have = self.known([v.instance_id for v in versions])
        earlier = [
            self.client.fetch(entry, v.instance_id)
            for v in versions
            if not v.current and v.instance_id not in have
        ]
        current = next((v for v in versions if v.current), None)
        # the current version is read again even when stored: a file may have arrived since
        incoming = self.client.fetch(entry, current.instance_id) if current else None
        return replace(base, incoming=incoming, earlier=earlier)

    def close(self) -> None:
        """End the run: Central's session is deleted, and the HTTP session closed unless it was
        the caller's."""
        try:
            if isinstance(self.client, CentralClient):
                self.client.sign_out()
        finally:
            if self._own_http:
                self.http.close()

    def redact(self, text: str) -> str:
        """``text`` without the secrets of this run's client (see :func:`redact`)."""
        return redact(text, self.client)


def store_pulled(
    session: Session,
    target: Target,
    incoming: IncomingSubmission,
    submitted_at: str | None,
) -> bool:
    """Ingest ``incoming`` (:func:`forms.ingest.ingest_submission`) and move the source's cursor
    to ``submitted_at`` (None: leave it); True if the submission is new. Meant to be the
    submission's own transaction, so it is stored with the cursor that covers it; flushes, never
    commits.

    A concurrent request storing the same instanceID makes the insert violate a unique key: the
    caller runs the transaction again (``clms.db.commit_retrying``), and it then finds the other's
    row. A refusal of the ingest (a :class:`~clms.errors.Problem`) is raised.
    """
    ingested = ingest_pulled(session, target.kind, incoming)
    if submitted_at is not None:
        move_cursor(session, target.id, submitted_at, ingested.created)
    elif ingested.created:
        move_cursor(session, target.id, None, True)
    return ingested.created


def ingest_pulled(session: Session, kind: str, incoming: IncomingSubmission) -> IngestResult:
    """:func:`forms.ingest.ingest_submission` for a submission pulled from a ``kind`` server.

    kpi prepends an XML declaration when the stored XML had none (an Enketo or OpenRosa push of
    the same submission to us came without it): a conflict is then checked against the bytes it
    stored. The conflict is found before anything is written: the transaction goes on.
    """
    try:
        return ingest_submission(session, incoming)
    except Problem as p:
        added = kind == "kobo" and incoming.xml.startswith(KOBO_XML_DECLARATION)
        if p.key != "submission.conflict" or not added:
            raise
    stripped = incoming.xml[len(KOBO_XML_DECLARATION) :]
    return ingest_submission(session, replace(incoming, xml=stripped))


def move_cursor(session: Session, source_id: int, submitted_at: str | None, created: bool) -> None:
    """Move the source's cursor forward to ``submitted_at`` (never back: a look-back reads
    older submissions again), counting one more pulled when ``created``."""
    values: dict = {"pulled_total": PullSource.pulled_total + int(created)}
    current = session.scalar(select(PullSource.cursor).where(PullSource.id == source_id))
    if submitted_at and (current is None or _instant(submitted_at) > _instant(current)):
        values["cursor"] = submitted_at
    session.execute(update(PullSource).where(PullSource.id == source_id).values(**values))


def move_changes_cursor(session: Session, source_id: int, changed_at: str) -> None:
    """Move the source's changes cursor (Central's ``updatedAt``/``deletedAt``) forward."""
    current = session.scalar(select(PullSource.changes_cursor).where(PullSource.id == source_id))
    if current is None or _instant(changed_at) > _instant(current):
        session.execute(
            update(PullSource).where(PullSource.id == source_id).values(changes_cursor=changed_at)
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
    result.waiting = len(retries_of(session, source_id))
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
            f"not stored, waiting to be tried again: {listed}"
            + (f" (and {more} more)" if more > 0 else "")
        )
    return " | ".join(parts) or None


# --- the retry list: submissions a pull could not take ------------------------------------------


def remember_retry(
    session: Session,
    source_id: int,
    entry: Entry,
    code: str,
    message: str,
) -> PullRetry:
    """Put ``entry`` on the source's retry list with why it could not be taken, or, when it is
    there already, count one more attempt and keep the latest reason. Flushes, never commits."""
    remote_id = str(entry.remote_id)
    row = session.scalars(
        select(PullRetry).where(PullRetry.source_id == source_id, PullRetry.remote_id == remote_id)
    ).first()
    now = utcnow()
    if row is None:
        row = PullRetry(
            source_id=source_id, remote_id=remote_id, instance_id=entry.instance_id,
            submitted_at=entry.submitted_at, code=str(code)[:60], message=message,
            attempts=1, first_failed_at=now, last_tried_at=now,
        )  # fmt: skip
        session.add(row)
    else:
        row.attempts += 1
        row.last_tried_at = now
        row.code, row.message = str(code)[:60], message
        row.instance_id = entry.instance_id or row.instance_id
        row.submitted_at = entry.submitted_at or row.submitted_at
    session.flush()
    return row


def forget_retry(session: Session, source_id: int, remote_id: str | int) -> bool:
    """Take a submission off the source's retry list (it is stored now); True if it was on it."""
    gone = session.execute(
        delete(PullRetry).where(
            PullRetry.source_id == source_id, PullRetry.remote_id == str(remote_id)
        )
    ).rowcount
    return bool(gone)


def retries_of(session: Session, source_id: int) -> list[PullRetry]:
    """The source's retry list, the oldest failure first."""
    return list(
        session.scalars(
            select(PullRetry)
            .where(PullRetry.source_id == source_id)
            .order_by(PullRetry.first_failed_at, PullRetry.id)
        )
    )
