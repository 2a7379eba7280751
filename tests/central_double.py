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
_FILTER = re.compile(r"^\s*__system/submissionDate\s+(gt|ge|lt|le|eq)\s+(\S+)\s*$")


def iso_ms(when: dt.datetime) -> str:
    """A time as JavaScript's ``Date.toISOString()`` writes it: milliseconds and ``Z``."""
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def instance_id_of(xml: bytes) -> str:
    match = re.search(rb"<(?:\w+:)?instanceID>([^<]+)</(?:\w+:)?instanceID>", xml)
    if match is None:
        raise ValueError("the test submission has no instanceID")
    return match.group(1).decode()


@dataclass
class RemoteSubmission:
    seq: int
    instance_id: str
    xml: bytes
    created_at: dt.datetime
    attachments: dict[str, bytes | None] = field(default_factory=dict)  # None: expected, missing
    device_id: str | None = None

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
        self.requests: list[str] = []  # "METHOD /path?query", in order
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._clock = EPOCH
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
            sub = RemoteSubmission(
                len(self.submissions) + 1, instance_id_of(xml), xml, at,
                dict(attachments or {}), device_id,
            )  # fmt: skip
            self.submissions.append(sub)
            return sub

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

        @app.post("/v1/sessions")
        def sessions():
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

        @app.get(form_base + "/submissions/<instance_id>.xml")
        def submission_xml(pid: int, form_id: str, instance_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            sub = self._find(instance_id)
            if sub is None:
                return _problem(404.1, "Could not find the resource you were looking for.")
            return Response(sub.xml, content_type="application/xml")

        @app.get(form_base + "/submissions/<instance_id>/attachments")
        def attachment_list(pid: int, form_id: str, instance_id: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            sub = self._find(instance_id)
            if sub is None:
                return _problem(404.1, "Could not find the resource you were looking for.")
            listing = [
                {"name": name, "exists": data is not None}
                for name, data in sorted(sub.attachments.items())
            ]
            return Response(json.dumps(listing), content_type="application/json")

        @app.get(form_base + "/submissions/<instance_id>/attachments/<name>")
        def attachment(pid: int, form_id: str, instance_id: str, name: str):
            refused = self._check(pid, form_id)
            if refused is not None:
                return refused
            sub = self._find(instance_id)
            data = sub.attachments.get(name) if sub is not None else None
            if data is None:
                return _problem(404.1, "Could not find the resource you were looking for.")
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return Response(
                data,
                content_type=kind,
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )

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

    def _find(self, instance_id: str) -> RemoteSubmission | None:
        return next((s for s in self.submissions if s.instance_id == instance_id), None)

    def _odata(self, args) -> Response:
        if args.get("$orderby") and args.get("$skiptoken"):
            return _problem(
                501.1,
                "The requested feature using $orderby and $skiptoken together is not supported "
                "by this server.",
            )
        try:
            rows = [s for s in self.submissions if _matches(s, args.get("$filter"))]
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
            cursor = self._find(cursor_id)
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
                + base64.b64encode(
                    json.dumps({"instanceId": page[-1].instance_id}).encode()
                ).decode()
            )
            query.append(("$skiptoken", skiptoken))
            body["@odata.nextLink"] = f"{domain}{request.path}?{urlencode(query)}"
        if args.get("$count") == "true":
            body["@odata.count"] = count
        return Response(json.dumps(body), content_type="application/json")

    def _row(self, sub: RemoteSubmission, select: str | None) -> dict:
        system = {
            "submissionDate": sub.submission_date,
            "updatedAt": None,
            "submitterId": "5",
            "submitterName": "Field Worker",
            "attachmentsPresent": sum(1 for d in sub.attachments.values() if d is not None),
            "attachmentsExpected": len(sub.attachments),
            "status": None,
            "reviewState": None,
            "deviceId": sub.device_id,
            "edits": 0,
            "formVersion": _version_of(sub.xml),
            "deletedAt": None,
        }
        row = {"__id": sub.instance_id, "__system": system, "meta": {"instanceID": sub.instance_id}}
        if select and select != "*":
            wanted = {p.strip() for p in select.split(",")}
            row = {k: v for k, v in row.items() if k in wanted}
        return row


def _matches(sub: RemoteSubmission, expression: str | None) -> bool:
    if not expression:
        return True
    for clause in re.split(r"\s+and\s+", expression.strip()):
        match = _FILTER.match(clause)
        if match is None:
            raise ValueError(f"unsupported clause {clause!r}")
        op, literal = match.groups()
        when = dt.datetime.fromisoformat(literal.strip("'"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        value = sub.created_at
        ok = {
            "gt": value > when,
            "ge": value >= when,
            "lt": value < when,
            "le": value <= when,
            "eq": value == when,
        }[op]
        if not ok:
            return False
    return True


def _version_of(xml: bytes) -> str | None:
    match = re.search(rb'\sversion="([^"]*)"', xml)
    return match.group(1).decode() if match else None


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
