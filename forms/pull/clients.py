"""The HTTP clients of a pull: ODK Central's REST and OData API and KoboToolbox's API v2.

How the servers answer is described in :mod:`forms.pull`. A client sends requests to the one server
its source names, with retries (connection errors, 429 and 5xx, exponential backoff honouring
``Retry-After``); refused credentials (401/403) and 404 raise at once. Secrets never appear in its
messages (:func:`redact`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from clms.errors import DomainProblem
from clms.models import PullSource, utcnow
from forms.credentials import Credentials
from forms.ingest import Attachment, IncomingSubmission

if TYPE_CHECKING:
    from forms.pull.run import PullResult

log = logging.getLogger(__name__)

ATTEMPTS = 5  # tries per request on connection errors, 429 and 5xx
BACKOFF = 1.0  # seconds before the second try; doubled for each further one
MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 120.0  # a server asking for a longer pause is tried again at the next pull
TIMEOUT = (10, 120)  # seconds to connect, seconds between bytes
USER_AGENT = "clms-pull/1"

# the beginning of time for a changes cursor never set (Central's times are after it)
EPOCH = "1970-01-01T00:00:00.000Z"
# an instanceID that may go into an OData filter as a quoted literal
_FILTERABLE_ID = re.compile(r"[A-Za-z0-9:._-]{1,255}")
# submission times as the servers write them; checked before a cursor goes into a query
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d)?$")


class PullError(DomainProblem):
    """A source cannot be pulled now; the message says why and holds no secret
    (``pull.failed``)."""

    KEY = "pull.failed"


class CredentialsRefused(PullError):
    """The server refused the credentials or the account's rights (401/403): no retry helps
    (``pull.credentials_refused``; ``remote_status`` is the server's answer)."""

    KEY = "pull.credentials_refused"

    def __init__(self, message: str, remote_status: int):
        super().__init__(message)
        self.remote_status = remote_status


class RemoteNotFound(PullError):
    """The server answered 404 (an unknown project, form or asset, or a deleted submission;
    ``pull.remote_not_found``)."""

    KEY = "pull.remote_not_found"


@dataclass(frozen=True)
class Target:
    """What a pull needs to know about its source, read before any request is sent."""

    id: int
    name: str
    kind: str
    base_url: str
    project_id: str | None
    remote_form_id: str
    cursor: str | None

    @classmethod
    def of(cls, source: PullSource) -> Target:
        return cls(
            source.id, source.name, source.kind, source.base_url, source.project_id,
            source.remote_form_id, source.cursor,
        )  # fmt: skip


@dataclass
class Entry:
    """A submission as a server listed it: enough to fetch it and to move the cursor past it."""

    instance_id: str
    submitted_at: str  # exactly as the server wrote it: it becomes the cursor
    remote_id: str | int  # Central: the instanceId in URLs; Kobo: the integer _id
    device_id: str | None = None
    attachments: list[dict] = field(default_factory=list)  # Kobo's _attachments
    # Central's __system: the review state, how many edits (None: not listed, ask /versions),
    # when it was last updated and when deleted (None: it is not)
    review_state: str | None = None
    edits: int | None = 0
    updated_at: str | None = None
    deleted_at: str | None = None

    @property
    def remote_state(self) -> str:
        """What the server says of it, as :func:`clms.intake.pull.apply_remote_state` takes it."""
        if self.deleted_at:
            return "deleted"
        return "rejected" if self.review_state == "rejected" else "live"


@dataclass
class Version:
    """One version of a Central submission (``/submissions/:rootId/versions``)."""

    instance_id: str
    created_at: str
    current: bool


def redact(text: str, client: _Client | None) -> str:
    """``text`` with every secret of ``client`` (credentials, session token) replaced by ``***``.

    Messages are built without secrets; this is the second line of defence, against a server
    that echoes what it was sent.
    """
    for value in client.secrets() if client is not None else ():
        if len(value) >= 3:
            text = text.replace(value, "***")
    return text


class _Client:
    """Requests to one server with retries; links the server gives are followed on that server."""

    service = ""

    def __init__(
        self,
        target: Target,
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
        return redact(_server_detail(response), self)

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
        self.sessions_opened = 0

    def secrets(self) -> list[str]:
        return super().secrets() + ([self._token] if self._token else [])

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def sign_in(self) -> None:
        """``POST /v1/sessions``: a bearer token for the following requests."""
        body = {"email": self._credentials["email"], "password": self._credentials["password"]}
        try:
            response = self.send("POST", self.url("/v1/sessions"), authed=False, json=body)
        except RemoteNotFound:
            raise PullError(self._no_password_sign_in()) from None
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
        self.sessions_opened += 1

    def _no_password_sign_in(self) -> str:
        # central-backend lib/resources/sessions.js: with single sign-on (OIDC) configured, POST
        # /v1/sessions is not routed (404.1), and HTTP Basic is refused (401.5): no account can
        # sign a program in with a password there, and app users may only send submissions
        return (
            f"ODK Central at {self._origin.netloc} offers no sign-in with an email and password "
            f"(POST /v1/sessions answered 404) for source '{self.target.name}': it signs its web "
            "users in with single sign-on (OIDC), which a program cannot use, and its app users "
            "may only send forms, not read submissions. Pull from a Central where a web user "
            "with the Project Viewer role has a password, or have ODK Collect send to this "
            "server directly (its OpenRosa address); and check that "
            f"{self.target.base_url} is an ODK Central server"
        )

    def sign_out(self) -> None:
        """``DELETE /v1/sessions/current``: end the run's session, so sessions do not pile up on
        the server (each lasts 24 hours). A failure is logged, never raised: the pull is done."""
        if self._token is None:
            return
        try:
            self.attempts, attempts = 1, self.attempts
            self.send("DELETE", self.url("/v1/sessions/current"))
        except PullError as exc:
            log.warning("source %r: could not end the Central session: %s", self.target.name, exc)
        finally:
            self.attempts = attempts
            self._token, self._token_worked = None, False

    def send_authed(self, method: str, url: str, **kw) -> requests.Response:
        """A request with the run's session: signed in once, renewed when it expires."""
        if self._token is None:
            self.sign_in()
        try:
            response = self.send(method, url, **kw)
        except CredentialsRefused as exc:
            # a session lasts 24 hours: a long pull may outlive it. A token that worked and now
            # gets 401 has expired: sign in again. A fresh token refused is a real refusal.
            if exc.remote_status != 401 or not self._token_worked:
                raise
            self._token, self._token_worked = None, False
            self.sign_in()
            response = self.send(method, url, **kw)
        self._token_worked = True
        return response

    def get(self, url: str, **kw) -> requests.Response:
        return self.send_authed("GET", url, **kw)

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

    def list_since(self, cursor: str | None, page_size: int, result: PullResult) -> list[Entry]:
        """Every submission received at or after ``cursor``, oldest first."""
        where = f"__system/submissionDate ge {_checked_cursor(cursor)}" if cursor else None
        return self.list_where(where, page_size, result, "submissionDate")

    def list_updated(self, since: str | None, page_size: int, result: PullResult) -> list[Entry]:
        """Every submission edited or reviewed at or after ``since``, oldest update first.

        An edit and a review decision set ``updatedAt``; a deletion does not (see
        :meth:`list_deleted`)."""
        where = f"__system/updatedAt ge {_checked_cursor(since or EPOCH)}"
        return self.list_where(where, page_size, result, "updatedAt")

    def list_deleted(self, since: str | None, page_size: int, result: PullResult) -> list[Entry]:
        """Every submission deleted at or after ``since``. Central hides deleted submissions from
        OData unless the filter names ``__system/deletedAt`` (lib/data/odata-filter.js)."""
        where = f"__system/deletedAt ge {_checked_cursor(since or EPOCH)}"
        return self.list_where(where, page_size, result, "deletedAt")

    def list_ids(self, ids: list[str], result: PullResult) -> list[Entry]:
        """Those of ``ids`` (rootIds) that are not deleted: how a restore is seen, since
        ``POST .../restore`` clears ``deletedAt`` and sets no time."""
        found: list[Entry] = []
        # Central's ids are uuid: and hex; one that could not be written in a filter is left out
        ids = [i for i in ids if _FILTERABLE_ID.fullmatch(i)]
        for start in range(0, len(ids), 25):
            batch = ids[start : start + 25]
            where = " or ".join(f"__id eq '{i}'" for i in batch)
            found += self.list_where(where, 250, result, "submissionDate")
        return found

    def list_where(
        self, where: str | None, page_size: int, result: PullResult, key: str
    ) -> list[Entry]:
        """The OData feed under ``$filter=where``, following ``@odata.nextLink``, sorted oldest
        first by ``__system/<key>``."""
        params: dict | None = {"$top": page_size, "$count": "true", "$select": "__id,__system"}
        if where:
            params["$filter"] = where
        url: str | None = self.url(self._form_path() + ".svc/Submissions")
        seen: dict[str, tuple[int, Entry]] = {}
        while url:
            body = self.get_json(url, params=params)
            result.pages += 1
            rows = body.get("value") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise PullError("ODK Central's OData answer has no 'value' list")
            for row in rows:
                entry = _central_entry(row)
                seen.setdefault(entry.instance_id, (len(seen), entry))
            url, params = body.get("@odata.nextLink"), None  # the link carries the query
        # newest first on the server; oldest first here. Ties keep creation order (the later
        # listed was created first).
        stamp = {
            "submissionDate": "submitted_at",
            "updatedAt": "updated_at",
            "deletedAt": "deleted_at",
        }[key]

        def order(pair):
            return (_instant(getattr(pair[1], stamp) or pair[1].submitted_at), -pair[0])

        return [entry for _, entry in sorted(seen.values(), key=order)]

    def _submission_path(self, root_id: str) -> str:
        return f"{self._form_path()}/submissions/{quote(str(root_id), safe='')}"

    def versions(self, root_id: str) -> list[Version]:
        """Every version of the submission, oldest first (``/versions`` lists newest first)."""
        listing = self.get_json(self.url(self._submission_path(root_id) + "/versions"))
        found = []
        for n, item in enumerate(listing if isinstance(listing, list) else []):
            if not isinstance(item, dict) or not item.get("instanceId"):
                raise PullError("ODK Central listed a version without an instanceId")
            found.append(
                (
                    n,
                    Version(
                        item["instanceId"], item.get("createdAt") or "", bool(item.get("current"))
                    ),
                )
            )
        found.sort(
            key=lambda pair: (
                _instant(pair[1].created_at) if pair[1].created_at else _instant(EPOCH),
                -pair[0],
            )
        )
        return [v for _, v in found]

    def fetch(self, entry: Entry, version: str | None = None) -> IncomingSubmission:
        """The submission's XML exactly as received, and the files the server has: its current
        version, or the version ``version`` (an instanceID of its edit chain)."""
        base = self._submission_path(entry.remote_id)
        if version is not None:
            base += f"/versions/{quote(version, safe='')}"
        xml = self.get(self.url(base + ".xml")).content
        listing = self.get_json(self.url(base + "/attachments"))
        files = []
        for item in listing if isinstance(listing, list) else []:
            name = item.get("name")
            if not name or not item.get("exists"):
                continue  # expected, but the phone has not sent it (yet)
            response = self.get(self.url(f"{base}/attachments/{quote(name, safe='')}"))
            files.append(Attachment(name, _content_type(response), response.content))
        return IncomingSubmission(
            xml=xml, source="central", attachments=files, device_id=entry.device_id,
            pull_source_id=self.target.id, remote_id=str(entry.remote_id),
            root_id=str(entry.remote_id),
        )  # fmt: skip


def _central_entry(row: dict) -> Entry:
    system = row.get("__system") or {}
    instance_id, submitted = row.get("__id"), system.get("submissionDate")
    if not instance_id or not submitted:
        raise PullError("ODK Central listed a submission without __id or submissionDate")
    edits = system.get("edits")
    return Entry(
        instance_id, submitted, instance_id, device_id=system.get("deviceId"),
        review_state=system.get("reviewState"), edits=edits if isinstance(edits, int) else None,
        updated_at=system.get("updatedAt"), deleted_at=system.get("deletedAt"),
    )  # fmt: skip


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
                entries.append(Entry(instance_id, submitted, remote_id, attachments=attachments))
            yield entries
            url, params = body.get("next"), None

    # --- staying in step (forms.pull.kobo_changes): kpi has no modified time ---------------------

    #: what a re-listing asks for: enough to see an edit (the instanceID changes on the same _id),
    #: a validation status, and to fetch a submission again
    STEP_FIELDS = (
        "_id", "_uuid", "_submission_time", "meta/instanceID", "_validation_status", "_attachments",
    )  # fmt: skip

    def rows(self, query: dict, page_size: int) -> list[dict]:
        """Every row matching the Mongo ``query``, with :data:`STEP_FIELDS` only, by ``_id``
        (``next`` followed; not counted in a result's pages, which are those of new
        submissions). Raises :class:`PullError` when a row has no ``_id``."""
        params: dict | None = {
            "format": "json",
            "query": json.dumps(query),
            "sort": json.dumps({"_id": 1}),
            "fields": json.dumps(list(self.STEP_FIELDS)),
            "start": 0,
            "limit": page_size,
        }
        url: str | None = self.url(self._data_path())
        found: list[dict] = []
        while url:
            body = self.get_json(url, params=params)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise PullError("KoboToolbox's answer has no 'results' list")
            for row in body["results"]:
                if not isinstance(row, dict) or row.get("_id") is None:
                    raise PullError("KoboToolbox listed a submission without _id")
                found.append(row)
            url, params = body.get("next"), None
        return found

    def fetch(self, entry: Entry) -> IncomingSubmission:
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
        return IncomingSubmission(
            xml=xml, source="kobo", attachments=files, pull_source_id=self.target.id,
            remote_id=str(entry.remote_id),
        )  # fmt: skip

    def entry_of(self, remote_id: str) -> Entry:
        """The listing row of one submission (``_id``), to try it again from the retry list."""
        if not str(remote_id).isdigit():
            raise RemoteNotFound(f"{remote_id!r} is not a KoboToolbox submission id")
        params = {
            "format": "json",
            "query": json.dumps({"_id": int(remote_id)}),
            "fields": json.dumps(
                ["_id", "_uuid", "_submission_time", "meta/instanceID", "_attachments"]
            ),
        }
        body = self.get_json(self.url(self._data_path()), params=params)
        rows = body.get("results") if isinstance(body, dict) else None
        if not rows:
            raise RemoteNotFound(f"KoboToolbox no longer lists submission {remote_id}")
        row = rows[0]
        instance_id = row.get("meta/instanceID") or f"uuid:{row.get('_uuid', '')}"
        attachments = [a for a in row.get("_attachments") or [] if isinstance(a, dict)]
        return Entry(instance_id, row.get("_submission_time") or "", row["_id"],
                     attachments=attachments)  # fmt: skip


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
