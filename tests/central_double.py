"""A stand-in for an ODK Central server, for the pull tests: it answers as Central does.

Written from ODK Central's API documentation and its sources (central-backend
lib/resources/sessions.js, odata.js, submissions.js, lib/formats/odata.js, lib/util/odata.js,
lib/util/db.js, lib/util/problem.js):

* ``POST /v1/sessions`` ``{"email", "password"}`` -> ``{"createdAt", "expiresAt", "token"}``;
  a wrong password is 401 ``{"code": 401.2, "message": ...}``, a blank one 400.3.
* Requests carry ``Authorization: Bearer <token>``; an unknown token is 401.2, none at all 403.1
  (anonymous may not read submissions).
* OData ``GET /v1/projects/{pid}/forms/{xmlFormId}.svc/Submissions``: newest first (createdAt,
  then id, descending), ``$top``, ``$skip``, ``$count``, ``$select`` of ``__id``/``__system``,
  ``$filter`` on ``__system/submissionDate`` (``gt ge lt le eq``, joined by ``and``), and
  ``@odata.nextLink`` with a ``$skiptoken`` (``01`` + base64 of ``{"instanceId": ...}``) while
  rows remain. ``$orderby`` with ``$skiptoken`` is 501.1, as on Central.
* ``submissionDate`` is kept to the microsecond (PostgreSQL's ``clock_timestamp()``) and written
  to the millisecond (JavaScript's ``toISOString()``): a filter compares the full time.
* ``.../submissions/{instanceId}.xml`` gives the XML bytes as submitted; ``.../attachments`` lists
  ``[{"name", "exists"}]`` and ``.../attachments/{name}`` gives a file.
* Edits, review states, deletions (lib/resources/submissions.js, lib/model/query/submissions.js,
  lib/data/odata-filter.js, as the real server was seen to answer: tests/intake/test_central_real.py
  runs the same pairs against both): a submission is addressed by its rootId (the first
  instanceID); ``PUT .../submissions/{rootId}`` with ``meta/deprecatedID`` naming the current
  version adds a version (a stale one: 409.9; none: 400.19) and sets ``updatedAt``,
  ``reviewState: "edited"`` and ``edits``; ``.xml`` answers the current version, and
  ``.../{rootId}/versions`` lists every version newest first (``.../versions/{instanceId}.xml``
  and its attachments). ``PATCH {"reviewState"}`` sets ``updatedAt``. ``DELETE`` sets only
  ``deletedAt``: the submission then answers 404 and the OData feed hides it unless the filter
  names ``__system/deletedAt``; ``POST .../restore`` clears ``deletedAt`` and sets no time. The
  filter takes ``__id``, ``__system/submissionDate``, ``updatedAt``, ``deletedAt``,
  ``reviewState`` with ``eq ne gt ge lt le``, ``and``, ``or``, ``not`` and parentheses; a
  comparison with null is SQL's (``eq null`` is ``IS NULL``, ``ge`` with a null is false).
* ``DELETE /v1/sessions/current`` ends the session (``sessions_ended`` counts them);
  ``oidc=True`` is a Central with single sign-on: ``POST /v1/sessions`` is not routed (404.1).
* ``redirect_attachments=True`` answers an attachment with a 307 to a pre-signed storage URL (as
  Central with S3 does), which takes no Authorization.

It serves on 127.0.0.1 on a free port in a thread. :meth:`CentralDouble.fail` makes chosen
requests fail (429 with ``Retry-After``, 500, 503) to exercise retries.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import mimetypes
import re
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, Response, request
from werkzeug.serving import make_server

EPOCH = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
PASSWORD = "central password 1"
_FIELDS = {
    "__id": "root_id",
    "__system/submissionDate": "created_at",
    "__system/updatedAt": "updated_at",
    "__system/deletedAt": "deleted_at",
    "__system/reviewState": "review_state",
}
_TOKEN = re.compile(r"\s*(\(|\)|'(?:[^']|'')*'|[^\s()]+)")
NOT_FOUND = "Could not find the resource you were looking for."


def iso_ms(when: dt.datetime) -> str:
    """A time as JavaScript's ``Date.toISOString()`` writes it: milliseconds and ``Z``."""
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def instance_id_of(xml: bytes) -> str:
    match = re.search(rb"<(?:\w+:)?instanceID>([^<]+)</(?:\w+:)?instanceID>", xml)
    if match is None:
        raise ValueError("the test submission has no instanceID")
    return match.group(1).decode()


def deprecated_id_of(xml: bytes) -> str | None:
    match = re.search(rb"<(?:\w+:)?deprecatedID>([^<]+)</(?:\w+:)?deprecatedID>", xml)
    return match.group(1).decode() if match else None


@dataclass
class RemoteVersion:
    instance_id: str
    xml: bytes
    created_at: dt.datetime
    attachments: dict[str, bytes | None] = field(default_factory=dict)  # None: expected, missing


@dataclass
class RemoteSubmission:
    """A logical submission: its versions, oldest first (the last is current)."""

    seq: int
    versions: list[RemoteVersion]
    created_at: dt.datetime
    device_id: str | None = None
    updated_at: dt.datetime | None = None
    deleted_at: dt.datetime | None = None
    review_state: str | None = None

    @property
    def root_id(self) -> str:
        return self.versions[0].instance_id

    instance_id = root_id

    @property
    def current(self) -> RemoteVersion:
        return self.versions[-1]

    @property
    def xml(self) -> bytes:
        return self.current.xml

    @property
    def attachments(self) -> dict[str, bytes | None]:
        return self.current.attachments

    @property
    def submission_date(self) -> str:
        return iso_ms(self.created_at)


@dataclass
class _Failure:
    times: int
    status: int
    retry_after: str | None
    after: int
    match: str | None
    body: str | None = None


class CentralDouble:
    """An ODK Central server with one project and one form, holding submissions."""

    def __init__(
        self,
        email: str = "pull@example.org",
        password: str = PASSWORD,
        project_id: int = 7,
        xml_form_id: str = "clms_household_visit",
    ):
        self.email = email
        self.password = password
        self.project_id = project_id
        self.xml_form_id = xml_form_id
        self.submissions: list[RemoteSubmission] = []
        self.tokens: set[str] = set()
        self.sessions_ended = 0
        self.oidc = False
        self.redirect_attachments = False
        self.requests: list[str] = []  # "METHOD /path?query", in order
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._clock = EPOCH
        self._blobs: dict[str, tuple[str, bytes]] = {}
        self.app = self._make_app()
        self._server = None
        self._thread = None

    # --- the test's controls -------------------------------------------------------------------

    def add(
        self,
        xml: bytes,
        attachments: dict[str, bytes | None] | None = None,
        at: dt.datetime | None = None,
        device_id: str | None = "collect:TEST123",
    ) -> RemoteSubmission:
        """Receive a submission (at ``at``, default: 1.2345 s after the previous one)."""
        with self._lock:
            if at is None:
                self._clock += dt.timedelta(seconds=1, microseconds=234500)
                at = self._clock
            version = RemoteVersion(instance_id_of(xml), xml, at, dict(attachments or {}))
            sub = RemoteSubmission(len(self.submissions) + 1, [version], at, device_id)
            self.submissions.append(sub)
            return sub

    def _tick(self) -> dt.datetime:
        self._clock += dt.timedelta(seconds=1, microseconds=234500)
        return self._clock

    def edit(
        self, root_id: str, xml: bytes, attachments: dict[str, bytes | None] | None = None
    ) -> RemoteVersion:
        """A reviewer's edit in Central: a new current version (``xml`` names the current one as
        its deprecatedID); ``updatedAt`` is set and the review state becomes ``edited``."""
        with self._lock:
            sub = self._find(root_id)
            if deprecated_id_of(xml) != sub.current.instance_id:
                raise ValueError("an edit names the current version as its deprecatedID")
            at = self._tick()
            version = RemoteVersion(instance_id_of(xml), xml, at, dict(attachments or {}))
            sub.versions.append(version)
            sub.updated_at, sub.review_state = at, "edited"
            return version

    def review(self, root_id: str, state: str | None) -> None:
        """A review decision (``PATCH {"reviewState"}``): sets ``updatedAt``."""
        with self._lock:
            sub = self._find(root_id)
            sub.review_state, sub.updated_at = state, self._tick()

    def delete(self, root_id: str) -> None:
        """``DELETE``: sets ``deletedAt`` only."""
        with self._lock:
            self._find(root_id).deleted_at = self._tick()

    def restore(self, root_id: str) -> None:
        """``POST .../restore``: clears ``deletedAt`` and sets no time."""
        with self._lock:
            self._find(root_id, deleted=True).deleted_at = None

    def fail(
        self,
        times: int,
        status: int = 503,
        retry_after: int | str | None = None,
        after: int = 0,
        match: str | None = None,
        body: str | None = None,
    ) -> None:
        """Let ``after`` requests matching ``match`` (a substring of "METHOD /path?query"; None:
        any) through, then answer the next ``times`` of them with ``status`` (and ``body``, a JSON
        text, instead of the usual error page)."""
        retry = None if retry_after is None else str(retry_after)
        self._failures.append(_Failure(times, status, retry, after, match, body))

    def heal(self) -> None:
        """Stop failing."""
        self._failures.clear()

    def expire_sessions(self) -> None:
        """Every session token stops working, as after 24 hours."""
        self.tokens.clear()

    def xml_requests(self) -> list[str]:
        """The instanceIDs whose XML was asked for, in order."""
        found = [re.search(r"/submissions/(.+)\.xml", r) for r in self.requests]
        return [_unquote(m.group(1)) for m in found if m]

    # --- serving -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> CentralDouble:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- the API -------------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask("central_double")
        form_base = "/v1/projects/<int:pid>/forms/<form_id>"

        @app.before_request
        def _log_and_fail():
            line = f"{request.method} {request.full_path.rstrip('?')}"
            self.requests.append(line)
            for rule in self._failures:
                if rule.match is not None and rule.match not in line:
                    continue
                if rule.after > 0:
                    rule.after -= 1
                    continue
                if rule.times > 0:
                    rule.times -= 1
                    return _failure(rule)
            return None

        @app.delete("/v1/sessions/current")
        def end_session():
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.tokens:
                return _problem(401.2, "Could not authenticate with the provided credentials.")
            self.tokens.discard(token)
            self.sessions_ended += 1
            return {"success": True}

        @app.post("/v1/sessions")
        def sessions():
            if self.oidc:  # lib/resources/sessions.js: not routed with OIDC
                return _problem(404.1, NOT_FOUND)
            body = request.get_json(silent=True) or {}
            email, password = body.get("email"), body.get("password")
            if not email or not password:
                return _problem(
                    400.3,
                    "Required parameters missing. Expected (email, password), got "
                    f"(email: {email}, password: {password}).",
                )
            if email != self.email or password != self.password:
                return _problem(401.2, "Could not authenticate with the provided credentials.")
            token = "".join(
                secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(64)
            )
            self.tokens.add(token)
            now = dt.datetime.now(dt.UTC)
            return {
                "createdAt": iso_ms(now),
                "expiresAt": iso_ms(now + dt.timedelta(hours=24)),
                "token": token,
            }

        @app.get(form_base + ".svc/Submissions")
        def odata_submissions(pid: int, form_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            return self._odata(request.args)

        sub_base = form_base + "/submissions/<root_id>"

        @app.get(sub_base + ".xml")
        def submission_xml(pid: int, form_id: str, root_id: str):
            return self._serve(pid, form_id, root_id, None, lambda v: _xml(v.xml))

        @app.get(sub_base + "/versions/<instance_id>.xml")
        def version_xml(pid: int, form_id: str, root_id: str, instance_id: str):
            return self._serve(pid, form_id, root_id, instance_id, lambda v: _xml(v.xml))

        @app.get(sub_base + "/attachments")
        @app.get(sub_base + "/versions/<instance_id>/attachments")
        def attachment_list(pid: int, form_id: str, root_id: str, instance_id: str | None = None):
            def listing(v: RemoteVersion) -> Response:
                rows = [
                    {"name": name, "exists": data is not None}
                    for name, data in sorted(v.attachments.items())
                ]
                return Response(json.dumps(rows), content_type="application/json")

            return self._serve(pid, form_id, root_id, instance_id, listing)

        @app.get(sub_base + "/attachments/<name>")
        @app.get(sub_base + "/versions/<instance_id>/attachments/<name>")
        def attachment(pid: int, form_id: str, root_id: str, name: str, instance_id=None):
            def file(v: RemoteVersion) -> Response:
                data = v.attachments.get(name)
                if data is None:
                    return _problem(404.1, NOT_FOUND)
                if self.redirect_attachments:
                    key = secrets.token_hex(8)
                    self._blobs[key] = (name, data)
                    # on another host, as S3 is: requests drops our Authorization there
                    port = request.host.rsplit(":", 1)[1]
                    where = f"http://localhost:{port}/blobs/{key}?X-Amz-Signature=x"
                    return Response(status=307, headers={"Location": where})
                return _file(name, data)

            return self._serve(pid, form_id, root_id, instance_id, file)

        @app.get("/blobs/<key>")
        def blob(key: str):
            if "Authorization" in request.headers:  # S3 refuses a second kind of credentials
                return Response("<Error><Code>InvalidArgument</Code></Error>", 400)
            name, data = self._blobs[key]
            return _file(name, data)

        @app.get(sub_base + "/versions")
        def versions(pid: int, form_id: str, root_id: str):
            def listing(_v) -> Response:
                sub = self._find(root_id)
                rows = [
                    {
                        "instanceId": v.instance_id, "createdAt": iso_ms(v.created_at),
                        "current": v is sub.current, "submitterId": 5,
                        "deviceId": sub.device_id, "instanceName": None, "userAgent": None,
                    }
                    for v in reversed(sub.versions)
                ]  # fmt: skip
                return Response(json.dumps(rows), content_type="application/json")

            return self._serve(pid, form_id, root_id, None, listing)

        @app.post(form_base + "/submissions")
        def create(pid: int, form_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            sub = self.add(request.get_data(), device_id=None)
            return self._rest(sub)

        @app.put(sub_base)
        def put(pid: int, form_id: str, root_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            sub = self._find(root_id)
            if sub is None:
                return _problem(404.1, NOT_FOUND)
            xml = request.get_data()
            deprecated = deprecated_id_of(xml)
            if deprecated is None:
                return _problem(
                    400.19,
                    "This PUT endpoint expects a deprecatedID metadata tag pointing at the "
                    "current version instanceID. I cannot find that tag in your request.",
                )
            if deprecated != sub.current.instance_id:
                return _problem(
                    409.9,
                    f"You tried to update a submission, but the copy you were editing "
                    f"({deprecated}) is now out of date. Please get the new version that has "
                    "been submitted, and make your edits again.",
                )
            self.edit(root_id, xml)
            return self._rest(sub)

        @app.patch(sub_base)
        def patch(pid: int, form_id: str, root_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            if self._find(root_id) is None:
                return _problem(404.1, NOT_FOUND)
            self.review(root_id, (request.get_json(silent=True) or {}).get("reviewState"))
            return self._rest(self._find(root_id))

        @app.delete(sub_base)
        def delete(pid: int, form_id: str, root_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            if self._find(root_id) is None:
                return _problem(404.1, NOT_FOUND)
            self.delete(root_id)
            return {"success": True}

        @app.post(sub_base + "/restore")
        def restore(pid: int, form_id: str, root_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            if self._find(root_id, deleted=True) is None:
                return _problem(404.1, NOT_FOUND)
            self.restore(root_id)
            return {"success": True}

        return app

    def _check(self, pid: int, form_id: str) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _problem(
                403.1,
                "The authentication you provided does not have rights to perform that action.",
            )
        if header.removeprefix("Bearer ") not in self.tokens:
            return _problem(401.2, "Could not authenticate with the provided credentials.")
        if pid != self.project_id or form_id != self.xml_form_id:
            return _problem(404.1, "Could not find the resource you were looking for.")
        return None

    def _find(self, root_id: str, deleted: bool = False) -> RemoteSubmission | None:
        """The submission ``root_id``: a live one, or with ``deleted`` a deleted one."""
        return next(
            (
                s
                for s in self.submissions
                if s.root_id == root_id and (s.deleted_at is not None) == deleted
            ),
            None,
        )

    def _serve(self, pid, form_id, root_id, instance_id, out) -> Response:
        refused = self._check(pid, form_id)
        if refused is not None:
            return refused
        sub = self._find(root_id)
        if sub is None:
            return _problem(404.1, NOT_FOUND)
        if instance_id is None:
            return out(sub.current)
        version = next((v for v in sub.versions if v.instance_id == instance_id), None)
        return _problem(404.1, NOT_FOUND) if version is None else out(version)

    def _rest(self, sub: RemoteSubmission) -> Response:
        body = {
            "instanceId": sub.root_id, "submitterId": 5, "deviceId": sub.device_id,
            "createdAt": iso_ms(sub.created_at),
            "updatedAt": iso_ms(sub.updated_at) if sub.updated_at else None,
            "reviewState": sub.review_state,
            "deletedAt": iso_ms(sub.deleted_at) if sub.deleted_at else None,
        }  # fmt: skip
        return Response(json.dumps(body), content_type="application/json")

    def _odata(self, args) -> Response:
        if args.get("$orderby") and args.get("$skiptoken"):
            return _problem(
                501.1,
                "The requested feature using $orderby and $skiptoken together is not supported "
                "by this server.",
            )
        try:
            rows = [s for s in self.submissions if _matches(s, args.get("$filter"))]
        except _Unsupported as exc:
            return _problem(
                501.5,
                "The given OData filter expression references fields not supported by this "
                f"server: {exc}",
            )
        except ValueError as exc:
            return _problem(
                400.18, f"The OData filter expression you provided could not be parsed: {exc}"
            )
        rows.sort(key=lambda s: (s.created_at, s.seq), reverse=True)
        orderby = args.get("$orderby")
        if orderby:
            if not re.fullmatch(r"__system/submissionDate( asc| desc)?", orderby):
                return _problem(
                    501.1, f"The requested feature $orderby {orderby} is not supported."
                )
            rows.sort(key=lambda s: (s.created_at, s.seq), reverse=orderby.endswith("desc"))
        count = len(rows)
        token = args.get("$skiptoken")
        if token:
            try:
                if not token.startswith("01"):
                    raise ValueError(token)
                cursor_id = json.loads(base64.b64decode(token[2:]))["instanceId"]
            except (ValueError, KeyError, TypeError):
                return _problem(400.35, "Invalid $skiptoken")
            cursor = next((s for s in self.submissions if s.root_id == cursor_id), None)
            if cursor is None:
                return _problem(400.35, "Invalid $skiptoken")
            rows = [
                s
                for s in rows
                if s.created_at < cursor.created_at
                or (s.created_at == cursor.created_at and s.seq < cursor.seq)
            ]
        else:
            rows = rows[int(args.get("$skip", 0) or 0) :]
        top = args.get("$top")
        page = rows if top is None else rows[: int(top)]
        remaining = len(rows) - len(page)
        body: dict = {"value": [self._row(s, args.get("$select")) for s in page]}
        domain = request.host_url.rstrip("/")
        body["@odata.context"] = (
            f"{domain}/v1/projects/{self.project_id}/forms/{self.xml_form_id}.svc/"
            "$metadata#Submissions"
        )
        if remaining > 0 and page:
            query = [(k, v) for k, v in args.items(multi=True) if k not in ("$skip", "$skiptoken")]
            skiptoken = (
                "01"
                + base64.b64encode(json.dumps({"instanceId": page[-1].root_id}).encode()).decode()
            )
            query.append(("$skiptoken", skiptoken))
            body["@odata.nextLink"] = f"{domain}{request.path}?{urlencode(query)}"
        if args.get("$count") == "true":
            body["@odata.count"] = count
        return Response(json.dumps(body), content_type="application/json")

    def _row(self, sub: RemoteSubmission, select: str | None) -> dict:
        system = {
            "submissionDate": sub.submission_date,
            "updatedAt": iso_ms(sub.updated_at) if sub.updated_at else None,
            "submitterId": "5",
            "submitterName": "Field Worker",
            "attachmentsPresent": sum(1 for d in sub.attachments.values() if d is not None),
            "attachmentsExpected": len(sub.attachments),
            "status": None,
            "reviewState": sub.review_state,
            "deviceId": sub.device_id,
            "edits": len(sub.versions) - 1,
            "formVersion": _version_of(sub.xml),
            "deletedAt": iso_ms(sub.deleted_at) if sub.deleted_at else None,
        }
        row = {
            "__id": sub.root_id,
            "__system": system,
            "meta": {"instanceID": sub.current.instance_id},
        }
        if select and select != "*":
            wanted = {p.strip() for p in select.split(",")}
            row = {k: v for k, v in row.items() if k in wanted}
        return row


class _Unsupported(ValueError):
    """A field Central's filter does not take (501.1 there)."""


def _matches(sub: RemoteSubmission, expression: str | None) -> bool:
    """Whether ``sub`` passes ``$filter`` as Central's odata-filter.js decides it: deleted
    submissions only when the expression names ``__system/deletedAt``."""
    if not expression:
        return sub.deleted_at is None
    tokens = [t for t in _TOKEN.findall(expression) if t]
    parser = _Parser(tokens, sub)
    ok = parser.expr()
    if parser.pos != len(tokens):
        raise ValueError(f"unexpected {tokens[parser.pos]!r}")
    if "__system/deletedAt" not in parser.fields and sub.deleted_at is not None:
        return False
    return ok


class _Parser:
    """expr := term ('or' term)*; term := factor ('and' factor)*;
    factor := 'not' factor | '(' expr ')' | field op literal."""

    def __init__(self, tokens: list[str], sub: RemoteSubmission):
        self.tokens, self.pos, self.sub, self.fields = tokens, 0, sub, set()

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ValueError("the expression ends too early")
        self.pos += 1
        return token

    def expr(self) -> bool:
        value = self.term()
        while self.peek() == "or":
            self.take()
            value = self.term() or value
        return value

    def term(self) -> bool:
        value = self.factor()
        while self.peek() == "and":
            self.take()
            value = self.factor() and value
        return value

    def factor(self) -> bool:
        token = self.take()
        if token == "not":
            return not self.factor()
        if token == "(":
            value = self.expr()
            if self.take() != ")":
                raise ValueError("a parenthesis is not closed")
            return value
        if token not in _FIELDS:
            raise _Unsupported(token)
        self.fields.add(token)
        op, literal = self.take(), self.take()
        if op not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise ValueError(f"unknown operator {op!r}")
        value = getattr(self.sub, _FIELDS[token])
        if literal == "null":
            other = None
        elif literal.startswith("'"):
            other = literal[1:-1].replace("''", "'")
        else:
            other = dt.datetime.fromisoformat(literal)
            if other.tzinfo is None:
                other = other.replace(tzinfo=dt.UTC)
        if op in ("eq", "ne"):  # IS NOT DISTINCT FROM
            return (value == other) == (op == "eq")
        if value is None or other is None:  # SQL: a comparison with NULL is not true
            return False
        return {"gt": value > other, "ge": value >= other, "lt": value < other,
                "le": value <= other}[op]  # fmt: skip


def _version_of(xml: bytes) -> str | None:
    match = re.search(rb'\sversion="([^"]*)"', xml)
    return match.group(1).decode() if match else None


def _xml(data: bytes) -> Response:
    return Response(data, content_type="application/xml")


def _file(name: str, data: bytes) -> Response:
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        data, content_type=kind, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _problem(code: float, message: str) -> Response:
    body = {"message": message, "code": code, "details": {}}
    return Response(json.dumps(body), status=int(code), content_type="application/json")


def _failure(rule: _Failure) -> Response:
    headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else {}
    if rule.body is not None:
        return Response(rule.body, rule.status, headers=headers, content_type="application/json")
    if rule.status == 429:
        # nginx's limit_req in front of Central
        body, kind = "<html><body><h1>429 Too Many Requests</h1></body></html>", "text/html"
    elif rule.status == 500:
        body, kind = json.dumps({"message": "Internal Server Error"}), "application/json"
    else:
        body, kind = (
            f"<html><body><h1>{rule.status} Service Unavailable</h1></body></html>",
            ("text/html"),
        )
    return Response(body, status=rule.status, headers=headers, content_type=kind)


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)
