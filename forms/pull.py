"""Pulling submissions from ODK Central and KoboToolbox, and the pull sources admins manage.

Monitors may fill our forms on an ODK Central project or a KoboToolbox asset instead of sending them
here; a pull source names that form and the account that may read it. :func:`pull_source` fetches
what is new since the source's cursor and stores each submission with the one ingest operation
(:func:`forms.ingest.ingest_submission`), so a submission that arrives both ways, pushed by a phone
over OpenRosa and pulled, is stored once: a byte-identical copy is recognised as a retry.

How the servers answer (shared/design/protocols.md; ODK Central's lib/resources/odata.js and
lib/util/db.js, KoboToolbox's kpi/views/v2/data.py and kpi/paginators.py):

* ODK Central: ``POST /v1/sessions`` gives a bearer token. The OData feed
  ``/v1/projects/{pid}/forms/{xmlFormId}.svc/Submissions`` lists submissions newest first and pages
  with ``@odata.nextLink`` (a ``$skiptoken`` naming the last instanceID seen). It cannot combine
  ``$orderby`` with ``$skiptoken`` (501.1), so we follow the default order to the end, keeping only
  ``__id`` and ``__system`` (``$select``), and sort oldest first ourselves. Each submission's XML
  comes byte for byte from ``.../submissions/{instanceId}.xml`` and its files from
  ``.../attachments``. Errors are JSON ``{"code": 401.2, "message": ...}``.
* KoboToolbox: ``GET /api/v2/assets/{uid}/data/?format=json`` with ``Authorization: Token``, a Mongo
  ``query`` and ``sort``, paged by ``start``/``limit`` with ``next`` links (servers cap ``limit``:
  always follow ``next``). ``.../data/{_id}/?format=xml`` gives the XML, with an XML declaration
  prepended when the stored one had none. Errors are JSON ``{"detail": ...}``.

The cursor is the submission time of the newest submission stored, exactly as the server wrote it
(Central: ``2024-01-31T23:59:59.999Z``, Kobo: ``2024-01-31T23:59:59``). The next pull asks for
submissions at *or after* it: Central keeps microseconds but shows milliseconds and Kobo shows
seconds, so several submissions may share the cursor's time, and asking for those strictly after it
could skip one. Seeing the newest one again is harmless, because ingest recognises it. Each
submission is committed with the cursor that covers it, so a pull killed midway resumes where it
stopped, with no gap and no duplicate.

A submission of an encrypted form arrives as ODK Collect sent it when the remote server does not
hold the form's private key (ours never leaves this server): Central's ``.xml`` is the encryption
manifest and its attachments are the ``*.enc`` files. The one ingest stores it as it stores a
pushed one, waiting for the key (:mod:`forms.encryption`).

Transient failures (connection errors, 429, 5xx) are retried a few times with exponential backoff,
honouring ``Retry-After``; refused credentials (401/403) stop the source at once. A submission the
ingest refuses (a conflicting edit, an unknown form or version) is counted and reported, and the
pull goes on. Credentials are decrypted only to be sent to the server they belong to; they never
appear in logs, errors or results (:mod:`forms.credentials`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import posixpath
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clms.db import read_only
from clms.errors import Problem
from clms.models import PullSource, utcnow
from forms.credentials import (
    Credentials,
    CredentialsError,
    decrypt_credentials,
    encrypt_credentials,
)
from forms.ingest import Attachment, IncomingSubmission, ingest_submission

log = logging.getLogger(__name__)

KINDS = ("central", "kobo")
SERVICES = {"central": "ODK Central", "kobo": "KoboToolbox"}
CREDENTIAL_FIELDS = {"central": ("email", "password"), "kobo": ("token",)}

PAGE_SIZE = 250  # Central $top / Kobo limit; Kobo caps it (1000 on the public servers)
ATTEMPTS = 5  # tries per request on connection errors, 429 and 5xx
BACKOFF = 1.0  # seconds before the second try; doubled for each further one
MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 120.0  # a server asking for a longer pause is tried again at the next pull
TIMEOUT = (10, 120)  # seconds to connect, seconds between bytes
MAX_PROBLEMS = 10  # problems kept in a result and in last_error; all are counted
USER_AGENT = "clms-pull/1"

# what kpi's add_xml_declaration() prepends to a stored XML that had no declaration
KOBO_XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'
# submission times as the servers write them; checked before a cursor goes into a query
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d)?$")


# --- results and errors --------------------------------------------------------------------------


class PullError(Exception):
    """A source cannot be pulled now; the message says why and holds no secret."""


class CredentialsRefused(PullError):
    """The server refused the credentials or the account's rights (401/403): no retry helps."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class RemoteNotFound(PullError):
    """The server answered 404 (an unknown project, form or asset, or a deleted submission)."""


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
        if self.error:
            text += f". Stopped: {self.error}"
        elif self.problems:
            first = self.problems[0]
            text += f". First problem: {first['instance_id']}: {first['message']}"
        return text


@dataclass
class SourceSummary:
    """A pull source as people see it: everything but the credentials."""

    id: int
    name: str
    kind: str
    base_url: str
    project_id: str | None
    remote_form_id: str
    enabled: bool
    cursor: str | None
    last_pull_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    pulled_total: int
    created_at: dt.datetime | None

    @property
    def service(self) -> str:
        return SERVICES.get(self.kind, self.kind)


class SourceInvalid(ValueError):
    """A source cannot be saved as given; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))


# --- pulling -----------------------------------------------------------------------------------


def pull_source(
    sessions: Callable[[], Session],
    source_id: int,
    config: Mapping,
    *,
    http: requests.Session | None = None,
    sleep: Callable[[float], object] = time.sleep,
    progress: Callable[[PullResult], object] | None = None,
    page_size: int | None = None,
    attempts: int | None = None,
) -> PullResult:
    """Pull what is new on one source, store it, and record how it went on the source.

    Parameters
    ----------
    sessions:
        Makes a new SQLAlchemy session (``app.extensions["clms_sessionmaker"]``). No session is held
        open while waiting on the remote server.
    source_id:
        The :class:`~clms.models.PullSource` to pull (disabled or not: the caller chooses).
    config:
        The application's settings: ``CREDENTIALS_KEY``, optionally ``PULL_PAGE_SIZE``.
    http:
        The ``requests.Session`` to use (default: a new one, closed afterwards).
    sleep:
        Called with the seconds to wait between tries (tests record instead of sleeping).
    progress:
        Called with the running result once the count is known and after each submission.

    Returns the :class:`PullResult`. A remote failure (unreachable, refused credentials, retries
    used up) ends the pull early with ``result.error`` set, and is not raised; anything else (the
    database, a bug) is recorded on the source and raised.

    Examples
    --------
    >>> result = pull_source(app.extensions["clms_sessionmaker"], 1, app.config)  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    "source 'nawa-central': 3 fetched, 3 new, 0 already stored, 0 not stored (1 page); ..."
    """
    started = utcnow()
    with sessions() as session:
        read_only(session)
        source = session.get(PullSource, source_id)
        if source is None:
            raise LookupError(f"There is no pull source with id {source_id}.")
        target = _Target.of(source)
        sealed = bytes(source.credentials)
    result = PullResult(source=target.name, kind=target.kind, cursor=target.cursor)
    client: _Client | None = None
    own_http = http is None
    http = http or requests.Session()
    try:
        credentials = decrypt_credentials(sealed, str(config.get("CREDENTIALS_KEY") or ""))
        client_class = CentralClient if target.kind == "central" else KoboClient
        client = client_class(
            target, credentials, http=http, sleep=sleep,
            attempts=attempts or int(config.get("PULL_ATTEMPTS") or ATTEMPTS),
        )  # fmt: skip
        size = page_size or int(config.get("PULL_PAGE_SIZE") or PAGE_SIZE)
        if target.kind == "central":
            _pull_central(sessions, target, client, result, size, progress)
        else:
            _pull_kobo(sessions, target, client, result, size, progress)
    except (PullError, CredentialsError) as exc:
        result.error = _redact(str(exc), client)
        log.warning("pull of source %r stopped: %s", target.name, result.error)
    except Exception as exc:
        result.error = _redact(f"unexpected error: {type(exc).__name__}: {exc}", client)[:1000]
        try:
            _finish(sessions, source_id, result, started)
        except Exception:  # the database may be what failed: the first error is the one to see
            log.exception("pull of source %r: could not record the failure", target.name)
        raise
    finally:
        if own_http:
            http.close()
    _finish(sessions, source_id, result, started)
    log.info("pulled %s", result.summary())
    return result


def pull_all(sessions: Callable[[], Session], config: Mapping, **kw) -> dict[str, PullResult]:
    """Pull every enabled source in turn; one that fails never stops the others.

    Takes the keywords of :func:`pull_source`; returns the results by source name.
    """
    with sessions() as session:
        read_only(session)
        rows = session.execute(
            select(PullSource.id, PullSource.name)
            .where(PullSource.enabled.is_(True))
            .order_by(PullSource.name)
        ).all()
    results: dict[str, PullResult] = {}
    for source_id, name in rows:
        try:
            results[name] = pull_source(sessions, source_id, config, **kw)
        except Exception as exc:
            # already recorded on the source by pull_source; the next source still runs
            log.exception("pull of source %r failed", name)
            results[name] = PullResult(source=name, error=f"unexpected error: {type(exc).__name__}")
    return results


@dataclass(frozen=True)
class _Target:
    """What a pull needs to know about its source, read before any request is sent."""

    id: int
    name: str
    kind: str
    base_url: str
    project_id: str | None
    remote_form_id: str
    cursor: str | None

    @classmethod
    def of(cls, source: PullSource) -> _Target:
        return cls(
            source.id, source.name, source.kind, source.base_url, source.project_id,
            source.remote_form_id, source.cursor,
        )  # fmt: skip


@dataclass
class _Entry:
    """A submission as a server listed it: enough to fetch it and to move the cursor past it."""

    instance_id: str
    submitted_at: str  # exactly as the server wrote it: it becomes the cursor
    remote_id: str | int  # Central: the instanceId in URLs; Kobo: the integer _id
    device_id: str | None = None
    attachments: list[dict] = field(default_factory=list)  # Kobo's _attachments


def _pull_central(sessions, target, client, result, page_size, progress) -> None:
    # the feed is newest first and cannot be sorted while paged: list it all, then go oldest first
    entries = client.list_since(target.cursor, page_size, result)
    result.expected = len(entries)
    if progress:
        progress(result)
    for entry in entries:
        _take(sessions, target, client, entry, result)
        if progress:
            progress(result)


def _pull_kobo(sessions, target, client, result, page_size, progress) -> None:
    # Kobo sorts as asked: each page is stored before the next is fetched
    for entries in client.pages_since(target.cursor, page_size, result):
        if progress:
            progress(result)
        for entry in entries:
            _take(sessions, target, client, entry, result)
            if progress:
                progress(result)


def _take(sessions, target: _Target, client, entry: _Entry, result: PullResult) -> None:
    """Fetch one listed submission and store it with the cursor that covers it."""
    result.fetched += 1
    try:
        incoming = client.fetch(entry)
    except RemoteNotFound as exc:
        # deleted between the listing and now: nothing to store, the pull goes on
        _record_problem(result, entry.instance_id, "404", str(exc))
        _advance(sessions, target.id, entry.submitted_at, created=False)
        result.cursor = entry.submitted_at
        return
    try:
        created = _store(sessions, target, incoming, entry.submitted_at)
    except Problem as p:
        _record_problem(result, entry.instance_id, p.code, p.message)
        # the cursor moves past it: it is reported, and `pull --from-start` reads it again
        _advance(sessions, target.id, entry.submitted_at, created=False)
    else:
        if created:
            result.stored += 1
        else:
            result.duplicates += 1
    result.cursor = entry.submitted_at


def _store(sessions, target: _Target, incoming: IncomingSubmission, submitted_at: str) -> bool:
    """Ingest ``incoming`` and move the cursor in one transaction; True if it is new.

    A concurrent request storing the same instanceID makes the insert violate a unique key: the
    transaction is run again and then finds the other's row (as ``ingest_and_commit`` does).
    """
    for attempt in range(1, 4):
        session = sessions()
        try:
            try:
                ingested = ingest_submission(session, incoming)
            except Problem as p:
                if not _kobo_added_declaration(target, incoming, p):
                    raise
                # kpi prepends an XML declaration when the stored XML had none (an Enketo or
                # OpenRosa push of the same submission to us came without it): compare the
                # bytes it stored
                session.rollback()
                stripped = incoming.xml[len(KOBO_XML_DECLARATION) :]
                ingested = ingest_submission(session, replace(incoming, xml=stripped))
            _move_cursor(session, target.id, submitted_at, ingested.created)
            session.commit()
            return ingested.created
        except IntegrityError:
            session.rollback()
            if attempt == 3:
                raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    raise AssertionError("unreachable")


def _kobo_added_declaration(target: _Target, incoming: IncomingSubmission, p: Problem) -> bool:
    return (
        p.key == "submission.conflict"
        and target.kind == "kobo"
        and incoming.xml.startswith(KOBO_XML_DECLARATION)
    )


def _advance(sessions, source_id: int, submitted_at: str, created: bool) -> None:
    with sessions() as session:
        _move_cursor(session, source_id, submitted_at, created)
        session.commit()


def _move_cursor(session: Session, source_id: int, submitted_at: str, created: bool) -> None:
    session.execute(
        update(PullSource)
        .where(PullSource.id == source_id)
        .values(cursor=submitted_at, pulled_total=PullSource.pulled_total + int(created))
    )


def _record_problem(result: PullResult, instance_id: str, code: str, message: str) -> None:
    result.problem_count += 1
    if len(result.problems) < MAX_PROBLEMS:
        result.problems.append({"instance_id": instance_id, "code": code, "message": message})
    log.warning(
        "pull of source %r: %s not stored: %s %s", result.source, instance_id, code, message
    )


def _finish(sessions, source_id: int, result: PullResult, started: dt.datetime) -> None:
    """Record on the source when it was pulled, whether it worked, and what went wrong."""
    with sessions() as session:
        source = session.get(PullSource, source_id)
        if source is None:  # removed while it was pulled
            return
        source.last_pull_at = started
        if result.error is None:
            source.last_success_at = utcnow()
        source.last_error = _last_error(result)
        result.cursor = source.cursor
        session.commit()


def _last_error(result: PullResult) -> str | None:
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


def _redact(text: str, client: _Client | None) -> str:
    """``text`` with every secret of ``client`` (credentials, session token) replaced by ``***``.

    Messages are built without secrets; this is the second line of defence, against a server
    that echoes what it was sent.
    """
    for value in client.secrets() if client is not None else ():
        if len(value) >= 3:
            text = text.replace(value, "***")
    return text


# --- the HTTP clients --------------------------------------------------------------------------


class _Client:
    """Requests to one server with retries; links the server gives are followed on that server."""

    service = ""

    def __init__(
        self,
        target: _Target,
        credentials: Credentials,
        *,
        http: requests.Session,
        sleep: Callable[[float], object],
        attempts: int = ATTEMPTS,
        timeout: tuple[float, float] = TIMEOUT,
    ):
        self.target = target
        self._credentials = credentials
        self.http = http
        self.sleep = sleep
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self._origin = urlsplit(target.base_url)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} source={self.target.name!r}>"

    def secrets(self) -> list[str]:
        """Every secret this client holds (credentials, session token), to keep out of messages."""
        return [v for v in self._credentials.values() if v]

    def detail(self, response: requests.Response) -> str:
        """The error the server gave, without our secrets should it echo them."""
        return _redact(_server_detail(response), self)

    def url(self, path: str) -> str:
        """An absolute URL on the source's server for ``path`` (which starts with ``/``)."""
        return self.target.base_url.rstrip("/") + path

    def on_our_server(self, link: str) -> str:
        """``link`` moved onto the configured server (scheme, host, port), keeping path and query.

        Next links and download URLs come from the server and may name it differently (a proxy,
        an internal host name); our credentials only ever go to the server they were given for.
        """
        parts = urlsplit(link)
        if not parts.scheme and not parts.netloc:  # a relative link
            return self.url(link if link.startswith("/") else "/" + link)
        return urlunsplit((self._origin.scheme, self._origin.netloc, parts.path, parts.query, ""))

    def auth_headers(self) -> dict[str, str]:
        return {}

    def send(self, method: str, url: str, *, authed: bool = True, **kw) -> requests.Response:
        """Send a request, retrying connection errors, 429 and 5xx with exponential backoff.

        Raises :class:`CredentialsRefused` on 401/403, :class:`RemoteNotFound` on 404 and
        :class:`PullError` on any other failure or when the tries are used up.
        """
        url = self.on_our_server(url)
        what = f"{method} {urlsplit(url).path}"
        headers = {"User-Agent": USER_AGENT, **(self.auth_headers() if authed else {})}
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = self.http.request(
                    method, url, headers=headers, timeout=self.timeout, **kw
                )
            except requests.RequestException as exc:
                reason = _connection_reason(exc)
                if last:
                    raise PullError(
                        f"{self.service} at {self._origin.netloc} could not be reached for "
                        f"{what} after {self.attempts} tries ({reason})"
                    ) from None
                wait = _backoff(attempt)
                log.warning(
                    "source %r: %s failed (%s); try %d of %d in %.1f s",
                    self.target.name, what, reason, attempt + 1, self.attempts, wait,
                )  # fmt: skip
                self.sleep(wait)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                detail = self.detail(response)
                asked = _retry_after(response)
                if asked is not None and asked > MAX_RETRY_AFTER:
                    raise PullError(
                        f"{self.service} asked to wait {asked:.0f} s before {what} ({status} "
                        f"{detail}); trying again at the next pull"
                    )
                if last:
                    raise PullError(
                        f"{self.service} answered {status} ({detail}) to {what} "
                        f"{self.attempts} times; trying again at the next pull"
                    )
                wait = asked if asked is not None else _backoff(attempt)
                log.warning(
                    "source %r: %s answered %d (%s); try %d of %d in %.1f s",
                    self.target.name, what, status, detail, attempt + 1, self.attempts, wait,
                )  # fmt: skip
                self.sleep(wait)
                continue
            if status in (401, 403):
                raise self.refused(response)
            if status == 404:
                raise RemoteNotFound(self.not_found(response, what))
            if status >= 400:
                raise PullError(
                    f"{self.service} answered {status} ({self.detail(response)}) to {what}"
                )
            return response
        raise AssertionError("unreachable")

    def get_json(self, url: str, **kw):
        response = self.get(url, **kw)
        try:
            return response.json()
        except ValueError:
            raise PullError(
                f"{self.service} answered {urlsplit(response.url).path} with something that is "
                f"not JSON ({response.headers.get('Content-Type', 'no content type')}): is "
                f"{self.target.base_url} the right address?"
            ) from None

    def get(self, url: str, **kw) -> requests.Response:
        return self.send("GET", url, **kw)

    def refused(self, response: requests.Response) -> CredentialsRefused:  # pragma: no cover
        raise NotImplementedError

    def not_found(self, response: requests.Response, what: str) -> str:
        return f"{self.service} has nothing at {what} ({self.detail(response)})"


class CentralClient(_Client):
    """ODK Central's REST and OData API, signed in with an email and password."""

    service = "ODK Central"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._token: str | None = None
        self._token_worked = False

    def secrets(self) -> list[str]:
        return super().secrets() + ([self._token] if self._token else [])

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def sign_in(self) -> None:
        """``POST /v1/sessions``: a bearer token for the following requests."""
        body = {"email": self._credentials["email"], "password": self._credentials["password"]}
        response = self.send("POST", self.url("/v1/sessions"), authed=False, json=body)
        try:
            token = response.json().get("token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise PullError(
                f"ODK Central gave no session token for source '{self.target.name}': is "
                f"{self.target.base_url} an ODK Central server?"
            )
        self._token = token

    def get(self, url: str, **kw) -> requests.Response:
        if self._token is None:
            self.sign_in()
        try:
            response = self.send("GET", url, **kw)
        except CredentialsRefused as exc:
            # a session lasts 24 hours: a long pull may outlive it. A token that worked and now
            # gets 401 has expired: sign in again. A fresh token refused is a real refusal.
            if exc.status != 401 or not self._token_worked:
                raise
            self._token, self._token_worked = None, False
            self.sign_in()
            response = self.send("GET", url, **kw)
        self._token_worked = True
        return response

    def refused(self, response: requests.Response) -> CredentialsRefused:
        name, detail = self.target.name, self.detail(response)
        if response.status_code == 401:
            return CredentialsRefused(
                f"ODK Central refused the credentials for source '{name}' ({detail}): "
                "check the email and password",
                401,
            )
        return CredentialsRefused(
            f"ODK Central refused access for source '{name}' ({detail}): check that the account "
            f"may read the submissions of form '{self.target.remote_form_id}' in project "
            f"{self.target.project_id}",
            response.status_code,
        )

    def not_found(self, response: requests.Response, what: str) -> str:
        return (
            f"ODK Central has nothing at {what} ({self.detail(response)}): check project "
            f"{self.target.project_id} and form '{self.target.remote_form_id}'"
        )

    def _form_path(self) -> str:
        pid = quote(str(self.target.project_id), safe="")
        return f"/v1/projects/{pid}/forms/{quote(self.target.remote_form_id, safe='')}"

    def list_since(self, cursor: str | None, page_size: int, result: PullResult) -> list[_Entry]:
        """Every submission at or after ``cursor``, oldest first, following ``@odata.nextLink``."""
        params: dict | None = {
            "$top": page_size,
            "$count": "true",
            "$select": "__id,__system",
        }
        if cursor:
            params["$filter"] = f"__system/submissionDate ge {_checked_cursor(cursor)}"
        url: str | None = self.url(self._form_path() + ".svc/Submissions")
        seen: dict[str, tuple[int, _Entry]] = {}
        while url:
            body = self.get_json(url, params=params)
            result.pages += 1
            rows = body.get("value") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise PullError("ODK Central's OData answer has no 'value' list")
            for row in rows:
                system = row.get("__system") or {}
                instance_id, submitted = row.get("__id"), system.get("submissionDate")
                if not instance_id or not submitted:
                    raise PullError(
                        "ODK Central listed a submission without __id or submissionDate"
                    )
                entry = _Entry(
                    instance_id, submitted, instance_id, device_id=system.get("deviceId")
                )
                seen.setdefault(instance_id, (len(seen), entry))
            url, params = body.get("@odata.nextLink"), None  # the link carries the query
        # newest first on the server; oldest first here. Ties keep creation order (the later
        # listed was created first).
        ordered = sorted(seen.values(), key=lambda pair: (_instant(pair[1].submitted_at), -pair[0]))
        return [entry for _, entry in ordered]

    def fetch(self, entry: _Entry) -> IncomingSubmission:
        """The submission's XML exactly as received, and the files the server has."""
        base = f"{self._form_path()}/submissions/{quote(str(entry.remote_id), safe='')}"
        xml = self.get(self.url(base + ".xml")).content
        listing = self.get_json(self.url(base + "/attachments"))
        files = []
        for item in listing if isinstance(listing, list) else []:
            name = item.get("name")
            if not name or not item.get("exists"):
                continue  # expected, but the phone has not sent it (yet)
            response = self.get(self.url(f"{base}/attachments/{quote(name, safe='')}"))
            files.append(Attachment(name, _content_type(response), response.content))
        return IncomingSubmission(xml=xml, source="central", attachments=files,
                                  device_id=entry.device_id)  # fmt: skip


class KoboClient(_Client):
    """KoboToolbox's API v2, with an API token."""

    service = "KoboToolbox"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self._credentials['token']}"}

    def refused(self, response: requests.Response) -> CredentialsRefused:
        name, detail = self.target.name, self.detail(response)
        if response.status_code == 401:
            return CredentialsRefused(
                f"KoboToolbox refused the API token for source '{name}' ({detail}): check the "
                "token (Account settings > Security > API key)",
                401,
            )
        return CredentialsRefused(
            f"KoboToolbox refused access for source '{name}' ({detail}): check that the token's "
            f"account may view the submissions of asset '{self.target.remote_form_id}'",
            response.status_code,
        )

    def not_found(self, response: requests.Response, what: str) -> str:
        return (
            f"KoboToolbox has nothing at {what} ({self.detail(response)}): check the asset uid "
            f"'{self.target.remote_form_id}' and that the form is deployed"
        )

    def _data_path(self) -> str:
        return f"/api/v2/assets/{quote(self.target.remote_form_id, safe='')}/data/"

    def pages_since(self, cursor: str | None, page_size: int, result: PullResult):
        """Pages of submissions at or after ``cursor``, oldest first, following ``next``."""
        params: dict | None = {
            "format": "json",
            # _id breaks ties within a second, so pages never overlap or leave one out
            "sort": json.dumps({"_submission_time": 1, "_id": 1}),
            "fields": json.dumps(
                ["_id", "_uuid", "_submission_time", "meta/instanceID", "_attachments"]
            ),
            "start": 0,
            "limit": page_size,
        }
        if cursor:
            params["query"] = json.dumps({"_submission_time": {"$gte": _checked_cursor(cursor)}})
        url: str | None = self.url(self._data_path())
        while url:
            body = self.get_json(url, params=params)
            result.pages += 1
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise PullError("KoboToolbox's answer has no 'results' list")
            if result.expected is None and isinstance(body.get("count"), int):
                result.expected = body["count"]
            entries = []
            for row in body["results"]:
                submitted, remote_id = row.get("_submission_time"), row.get("_id")
                if not submitted or remote_id is None:
                    raise PullError(
                        "KoboToolbox listed a submission without _id or _submission_time"
                    )
                instance_id = row.get("meta/instanceID") or f"uuid:{row.get('_uuid', '')}"
                attachments = [a for a in row.get("_attachments") or [] if isinstance(a, dict)]
                entries.append(_Entry(instance_id, submitted, remote_id, attachments=attachments))
            yield entries
            url, params = body.get("next"), None

    def fetch(self, entry: _Entry) -> IncomingSubmission:
        """The submission's XML (``?format=xml``) and its files (``_attachments``)."""
        url = self.url(f"{self._data_path()}{quote(str(entry.remote_id), safe='')}/")
        xml = self.get(url, params={"format": "xml"}).content
        files = []
        for item in entry.attachments:
            link = item.get("download_url")
            name = item.get("media_file_basename") or posixpath.basename(item.get("filename", ""))
            if not link or not name or item.get("is_deleted"):
                continue
            response = self.get(link)
            mimetype = item.get("mimetype") or _content_type(response)
            files.append(Attachment(name, mimetype, response.content))
        return IncomingSubmission(xml=xml, source="kobo", attachments=files)


def _checked_cursor(cursor: str) -> str:
    if not _TIMESTAMP.match(cursor):
        raise PullError(
            f"the source's cursor {cursor[:40]!r} is not a submission time; pull it from the start"
        )
    return cursor


def _instant(text: str) -> dt.datetime:
    """A server's timestamp as an aware datetime, to order by (no zone: UTC, as Kobo writes)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PullError(
            f"the server wrote a submission time {text[:40]!r} that is not ISO 8601"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF, BACKOFF * 2 ** (attempt - 1))


def _retry_after(response: requests.Response) -> float | None:
    """The pause ``Retry-After`` asks for, in seconds (it may be a number or an HTTP date)."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - utcnow()).total_seconds())


def _server_detail(response: requests.Response) -> str:
    """The error a server gave: Central's ``code`` and ``message``, Kobo's ``detail``, or text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        # Central's problem details may echo what was sent; only code and message are shown
        if "message" in body:
            code = body.get("code")
            return f"{code} {body['message']}" if code is not None else str(body["message"])
        if "detail" in body:
            return f"{response.status_code} {body['detail']}"
    text = " ".join((response.text or "").split())
    if "<" in text:  # an HTML error page from a proxy says little more than its status
        text = ""
    return f"{response.status_code} {text[:200] or response.reason or ''}".strip()


def _connection_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        for known in ("Connection refused", "Name or service not known", "certificate verify"):
            if known in text:
                return known.lower()
        return "connection failed"
    return type(exc).__name__


def _content_type(response: requests.Response) -> str:
    return (response.headers.get("Content-Type") or "application/octet-stream").split(";")[0]


# --- managing sources ----------------------------------------------------------------------------


def add_source(
    session: Session,
    name: str,
    kind: str,
    base_url: str,
    remote_form_id: str,
    credentials: dict,
    project_id: str | None = None,
    *,
    enabled: bool = True,
    key: str | None = None,
) -> PullSource:
    """Add a pull source; its credentials are encrypted before they reach the database.

    ``credentials`` is ``{"email", "password"}`` for ODK Central and ``{"token"}`` for Kobo.
    ``key`` defaults to the current application's ``CREDENTIALS_KEY``. Flushes, never commits.
    Raises :class:`SourceInvalid` naming each field that is wrong.

    >>> add_source(s, "nawa", "central", "https://central.example.org",
    ...            "clms_household_visit", {"email": "pull@example.org", "password": "..."},
    ...            project_id="3")  # doctest: +SKIP
    """
    errors: dict[str, str] = {}
    kind = (kind or "").strip()
    if kind not in KINDS:
        errors["kind"] = f"must be one of {', '.join(KINDS)} (got {kind!r})"
    values = _clean(session, errors, kind, name, base_url, remote_form_id, project_id)
    secrets = _clean_credentials(errors, kind, credentials or {}, old=None)
    if errors:
        raise SourceInvalid(errors)
    source = PullSource(
        kind=kind,
        credentials=encrypt_credentials(secrets, _key(key)),
        enabled=enabled,
        pulled_total=0,
        **values,
    )
    session.add(source)
    session.flush()
    log.info("pull source %r added (%s %s)", source.name, kind, source.base_url)
    return source


def update_source(
    session: Session,
    source_id: int,
    *,
    name: str | None = None,
    base_url: str | None = None,
    remote_form_id: str | None = None,
    project_id: str | None = None,
    credentials: dict | None = None,
    enabled: bool | None = None,
    reset_cursor: bool = False,
    key: str | None = None,
) -> PullSource:
    """Change a source; None keeps a value, and a blank credential keeps the stored one.

    Pointing it at another server, project or form starts its cursor again (ingest recognises
    what is already stored). The kind cannot change: add another source. Flushes, never commits.
    """
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    errors: dict[str, str] = {}
    values = _clean(
        session,
        errors,
        source.kind,
        source.name if name is None else name,
        source.base_url if base_url is None else base_url,
        source.remote_form_id if remote_form_id is None else remote_form_id,
        source.project_id if project_id is None else project_id,
        existing_id=source.id,
    )
    sealed = None
    given = {k: v for k, v in (credentials or {}).items() if (v or "").strip()}
    if given:
        old = decrypt_credentials(source.credentials, _key(key))
        secrets = _clean_credentials(errors, source.kind, given, old=old)
        if not errors:
            sealed = encrypt_credentials(secrets, _key(key))
    if errors:
        raise SourceInvalid(errors)
    moved = any(
        getattr(source, k) != values[k] for k in ("base_url", "project_id", "remote_form_id")
    )
    for k, v in values.items():
        setattr(source, k, v)
    if sealed is not None:
        source.credentials = sealed
    if enabled is not None:
        source.enabled = enabled
    if reset_cursor or moved:
        source.cursor = None
    session.flush()
    log.info("pull source %r changed", source.name)
    return source


def set_source_enabled(session: Session, source_id: int, enabled: bool) -> PullSource:
    """Enable or disable a source (a disabled one is left out of :func:`pull_all`)."""
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    source.enabled = enabled
    session.flush()
    return source


def remove_source(session: Session, source_id: int) -> None:
    """Delete a source; the submissions pulled from it stay."""
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    session.delete(source)
    session.flush()


def list_sources(session: Session) -> list[SourceSummary]:
    """Every source by name, without credentials."""
    return [_summary(s) for s in session.scalars(select(PullSource).order_by(PullSource.name))]


def get_source(session: Session, source_id: int) -> SourceSummary | None:
    """One source without credentials, or None."""
    source = session.get(PullSource, source_id)
    return _summary(source) if source is not None else None


def source_id_by_name(session: Session, name: str) -> int | None:
    """The id of the source called ``name``, or None."""
    return session.scalar(select(PullSource.id).where(PullSource.name == name))


def _summary(source: PullSource) -> SourceSummary:
    return SourceSummary(
        id=source.id, name=source.name, kind=source.kind, base_url=source.base_url,
        project_id=source.project_id, remote_form_id=source.remote_form_id,
        enabled=source.enabled, cursor=source.cursor, last_pull_at=source.last_pull_at,
        last_success_at=source.last_success_at, last_error=source.last_error,
        pulled_total=source.pulled_total or 0, created_at=source.created_at,
    )  # fmt: skip


def _clean(
    session: Session,
    errors: dict[str, str],
    kind: str,
    name: str | None,
    base_url: str | None,
    remote_form_id: str | None,
    project_id: str | None,
    existing_id: int | None = None,
) -> dict:
    """Checked and normalised values of a source's plain fields; problems go into ``errors``."""
    name = (name or "").strip()
    if not name:
        errors["name"] = "is required"
    elif len(name) > 100:
        errors["name"] = "must be at most 100 characters"
    else:
        other = session.scalar(select(PullSource.id).where(PullSource.name == name))
        if other is not None and other != existing_id:
            errors["name"] = f"there is already a source called {name!r}"

    url = (base_url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors["base_url"] = f"must be an http:// or https:// address (got {url[:100]!r})"
    elif parts.username or parts.password:
        errors["base_url"] = "must not hold a user name or password: use the credentials fields"
    elif parts.query or parts.fragment:
        errors["base_url"] = "must be the server's address, without ? or #"
    elif len(url) > 500:
        errors["base_url"] = "must be at most 500 characters"
    else:
        # people paste the API root they read in the documentation
        for suffix in ("/v1",) if kind == "central" else ("/api/v2", "/api/v2/assets"):
            url = url.removesuffix(suffix)

    form_id = (remote_form_id or "").strip()
    label = "the xmlFormId" if kind == "central" else "the asset uid"
    if not form_id:
        errors["remote_form_id"] = f"is required ({label})"
    elif len(form_id) > 200 or "/" in form_id or any(c.isspace() for c in form_id):
        errors["remote_form_id"] = f"must be {label}: no spaces or '/', at most 200 characters"

    project = (str(project_id).strip() if project_id is not None else "") or None
    if kind == "central":
        if project is None:
            errors["project_id"] = "is required for ODK Central (the number in the project's URL)"
        elif not project.isdigit():
            errors["project_id"] = f"must be a number (got {project[:40]!r})"
    else:
        project = None
    return {"name": name, "base_url": url, "remote_form_id": form_id, "project_id": project}


def _clean_credentials(
    errors: dict[str, str], kind: str, given: dict, old: Credentials | None
) -> dict[str, str]:
    """The credentials to store: ``given`` over ``old``; missing ones go into ``errors``."""
    wanted = CREDENTIAL_FIELDS.get(kind, ())
    merged = {k: (old or {}).get(k, "") for k in wanted}
    for k in wanted:
        value = (given.get(k) or "").strip() if k != "password" else (given.get(k) or "")
        if value:
            merged[k] = value
    for k in wanted:
        if not merged[k]:
            errors[k] = "is required"
    if kind == "central" and merged.get("email") and "@" not in merged["email"]:
        errors["email"] = "must be the email address of the ODK Central account"
    return merged


def _key(key: str | None) -> str:
    if key:
        return key
    from flask import current_app  # the operations are also called outside a request

    return str(current_app.config["CREDENTIALS_KEY"])
