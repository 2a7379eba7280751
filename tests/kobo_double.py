"""A stand-in for a KoboToolbox server, for the pull tests: it answers as kpi's API v2 does.

Written from kpi's documentation and sources (kpi/docs/api/v2/data/list.md and retrieve.md,
kpi/views/v2/data.py, kpi/paginators.py, kpi/renderers.py, kpi/utils/xml.py, Django REST
framework's TokenAuthentication and LimitOffsetPagination):

* ``Authorization: Token <key>``; a wrong key is 401 ``{"detail": "Invalid token."}`` with
  ``WWW-Authenticate: Token``; none at all is 401 "Authentication credentials were not provided."
* ``GET /api/v2/assets/{uid}/data/?format=json`` with ``query`` (a Mongo filter as JSON; here
  ``$gt $gte $lt $lte $eq`` on fields), ``sort`` (JSON ``{"field": 1 | -1, ...}``), ``fields`` (a
  JSON list), ``start`` and ``limit`` (default 100, at most 1000; 0 or not a number is 400) ->
  ``{"count", "next", "previous", "results"}``; ``next`` and ``previous`` are the request's URL
  with ``limit`` and ``start`` replaced (query keys sorted, as DRF's ``replace_query_param``).
* Each result has ``_id``, ``_uuid`` (no ``uuid:`` prefix), ``meta/instanceID``,
  ``_submission_time`` (``%Y-%m-%dT%H:%M:%S``, UTC, compared as a string by Mongo),
  ``_attachments`` (``download_url``, ``mimetype``, ``filename``, ``media_file_basename``, ``uid``,
  ``is_deleted``) and the rest of kpi's metadata.
* ``GET .../data/{id}/?format=xml`` (or ``.../data/{id}.xml``) is the stored XML with an XML
  declaration prepended when it has none (kpi's ``add_xml_declaration``).
* ``GET .../data/{id}/attachments/{uid}/`` is the file.
* ``DELETE .../data/{id}/`` is 204 (the row is gone: listed no more, its detail 404).
* An edit (an XML whose ``meta/deprecatedID`` names the row's current instanceID) updates the same
  row, as kpi's ``logger_tools._get_instance_from_deprecated_id`` and ``create_instance`` do: same
  ``_id`` and ``_submission_time``, new ``_uuid`` and ``meta/instanceID``, ``meta/rootUuid`` kept;
  the old XML goes to the row's history. A ``deprecatedID`` found only in a history is refused
  ("deprecatedID refers to an old version"), one found nowhere too ("deprecatedID not found").
* ``submissionDate`` on the XML root back-dates ``_submission_time``
  (``xform_instance_parser.get_submission_date_from_xml``): a row can appear, late, before rows
  already listed.
* ``_validation_status`` is ``{}`` or what ``logger.utils.instance.get_validation_status`` writes:
  ``{"timestamp": <int seconds>, "uid", "by_whom", "label"}``, with the uids and labels of
  ``DEFAULT_VALIDATION_STATUSES`` (kobo/settings/base.py; kpi writes no colour). ``GET``,
  ``PATCH`` (``{"validation_status.uid": ...}``: 200 and the status, an unknown uid 400
  "Invalid validation status: `x`") and ``DELETE`` (204) of ``.../data/{id}/validation_status/``;
  ``PATCH`` and ``DELETE`` of ``.../data/validation_statuses/`` with
  ``{"payload": {"validation_status.uid", "submission_ids" | "confirm": true}}`` (all rows without
  ``confirm``: 400) -> ``{"detail": "<n> submissions have been updated"}``.
* ``query`` also takes ``$in`` and dotted fields (``_validation_status.uid``), as Mongo does.

It serves on 127.0.0.1 on a free port in a thread; :meth:`KoboDouble.fail` makes chosen requests
fail (429 with ``Retry-After``, 500, 503).
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import re
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, request
from werkzeug.serving import make_server

from tests.central_double import _Failure, instance_id_of

EPOCH = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
TOKEN = "kobo-token-0123456789abcdef"


#: kobo/settings/base.py DEFAULT_VALIDATION_STATUSES
VALIDATION_STATUSES = {
    "validation_status_not_approved": "Not Approved",
    "validation_status_approved": "Approved",
    "validation_status_on_hold": "On Hold",
}
USERNAME = "kobo_user"  # the token's account: by_whom of the statuses it sets


class KoboRefused(ValueError):
    """What kpi answers an edit it cannot take (logger_tools' DeprecatedId errors)."""


@dataclass
class KoboSubmission:
    id: int
    instance_id: str
    xml: bytes
    submission_time: str
    attachments: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (uid, data)
    root_uuid: str = ""  # the first instanceID (kpi's Instance.root_uuid, meta/rootUuid)
    history: list[tuple[str, bytes]] = field(default_factory=list)  # (instanceID, XML) replaced
    validation_status: dict = field(default_factory=dict)


class KoboDouble:
    """A KoboToolbox server with one deployed asset, holding submissions."""

    def __init__(
        self, token: str = TOKEN, asset_uid: str = "aXyZ123abc", epoch: dt.datetime = EPOCH
    ):
        self.token = token
        self.asset_uid = asset_uid
        self.submissions: list[KoboSubmission] = []
        self.requests: list[str] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._clock = epoch
        self._next_id = 100
        self.app = self._make_app()
        self._server = None
        self._thread = None

    # --- the test's controls -------------------------------------------------------------------

    def add(
        self,
        xml: bytes,
        attachments: dict[str, bytes] | None = None,
        at: dt.datetime | None = None,
    ) -> KoboSubmission:
        """Receive a submission (at ``at``, default: one second after the previous one; the XML
        root's ``submissionDate`` wins, as in kpi). An XML with ``deprecatedID`` is an edit of the
        row holding that instanceID (:meth:`edit`)."""
        deprecated = _meta(xml, "deprecatedID")
        if deprecated is not None:
            return self.edit(xml, attachments)
        with self._lock:
            if at is None:
                self._clock += dt.timedelta(seconds=1)
                at = self._clock
            declared = re.search(rb"<[^?!][^>]*?\ssubmissionDate=\"([^\"]+)\"", xml)
            if declared:
                at = dt.datetime.fromisoformat(declared.group(1).decode())
                at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
            self._next_id += 1
            instance_id = instance_id_of(xml)
            sub = KoboSubmission(
                id=self._next_id,
                instance_id=instance_id,
                xml=xml,
                submission_time=at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                attachments={
                    name: (uuid.uuid4().hex[:22], data)
                    for name, data in (attachments or {}).items()
                },
                root_uuid=_meta(xml, "rootUuid") or instance_id,
            )
            self.submissions.append(sub)
            return sub

    def edit(self, xml: bytes, attachments: dict[str, bytes] | None = None) -> KoboSubmission:
        """An edit, as Enketo sends it to kpi: ``xml`` names the version it replaces in
        ``meta/deprecatedID``. The same row takes the new XML; the old goes to its history."""
        deprecated = _meta(xml, "deprecatedID")
        with self._lock:
            sub = next((s for s in self.submissions if s.instance_id == deprecated), None)
            if sub is None:
                if any(deprecated == old for s in self.submissions for old, _x in s.history):
                    raise KoboRefused("Invalid submission - deprecatedID refers to an old version")
                raise KoboRefused("Invalid submission - deprecatedID not found")
            sub.history.append((sub.instance_id, sub.xml))
            sub.instance_id, sub.xml = instance_id_of(xml), xml
            for name, data in (attachments or {}).items():
                sub.attachments[name] = (uuid.uuid4().hex[:22], data)
            return sub

    def delete(self, sid: int) -> None:
        """Delete a submission, as ``DELETE .../data/{id}/`` does."""
        with self._lock:
            self.submissions = [s for s in self.submissions if s.id != sid]

    def set_validation(self, sid: int, uid: str | None, by_whom: str = USERNAME) -> dict:
        """Set (None: remove) a submission's validation status, as kpi writes it."""
        sub = self._find(sid)
        if uid is None:
            sub.validation_status = {}
        else:
            sub.validation_status = {
                "timestamp": int(self._clock.timestamp()),
                "uid": uid,
                "by_whom": by_whom,
                "label": VALIDATION_STATUSES[uid],
            }
        return sub.validation_status

    def fail(self, times, status=503, retry_after=None, after=0, match=None, body=None) -> None:
        """As :meth:`tests.central_double.CentralDouble.fail`."""
        retry = None if retry_after is None else str(retry_after)
        self._failures.append(_Failure(times, status, retry, after, match, body))

    def heal(self) -> None:
        self._failures.clear()

    def xml_requests(self) -> list[int]:
        """The ``_id`` of each submission whose XML was asked for, in order."""
        found = [re.search(r"/data/(\d+)/\?format=xml", r) for r in self.requests]
        return [int(m.group(1)) for m in found if m]

    # --- serving -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> KoboDouble:
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
        app = Flask("kobo_double")
        base = "/api/v2/assets/<uid>/data"

        @app.before_request
        def _log_auth_and_fail():
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
            header = request.headers.get("Authorization", "")
            if not header:
                return _detail(401, "Authentication credentials were not provided.")
            if not header.startswith("Token ") or header.removeprefix("Token ") != self.token:
                return _detail(401, "Invalid token.")
            if request.view_args is not None and request.view_args.get("uid") != self.asset_uid:
                return _detail(404, "Not found.")
            return None

        @app.get(base + "/")
        def data_list(uid: str):
            return self._list()

        @app.get(base + "/<int:sid>/")
        def data_detail(uid: str, sid: int):
            return self._detail(sid, request.args.get("format", "json"))

        @app.get(base + "/<int:sid>.<fmt>")
        def data_detail_suffix(uid: str, sid: int, fmt: str):
            return self._detail(sid, fmt)

        @app.delete(base + "/<int:sid>/")
        def data_delete(uid: str, sid: int):
            if self._find(sid) is None:
                return _detail(404, "Not found.")
            self.delete(sid)
            return Response(status=204)

        @app.route(base + "/<int:sid>/validation_status/", methods=["GET", "PATCH", "DELETE"])
        def validation_status(uid: str, sid: int):
            sub = self._find(sid)
            if sub is None:
                return _detail(404, "Not found.")
            if request.method == "GET":
                return _json(200, sub.validation_status)
            if request.method == "DELETE":
                self.set_validation(sid, None)
                return Response(status=204)
            data = request.get_json(silent=True) or request.form
            wanted = data.get("validation_status.uid")
            if wanted not in VALIDATION_STATUSES:
                return _json(400, {"detail": f"Invalid validation status: `{wanted}`"})
            return _json(200, self.set_validation(sid, wanted))

        @app.route(base + "/validation_statuses/", methods=["PATCH", "DELETE"])
        def validation_statuses(uid: str):
            payload = (request.get_json(silent=True) or {}).get("payload")
            if not isinstance(payload, dict):
                return _json(400, {"payload": ["This field is required."]})
            ids = payload.get("submission_ids")
            if not ids and not payload.get("confirm"):
                return _json(400, {"detail": "Confirmation is required"})
            wanted = None if request.method == "DELETE" else payload.get("validation_status.uid")
            if request.method == "PATCH" and wanted not in VALIDATION_STATUSES:
                return _json(400, {"detail": f"Invalid validation status: `{wanted}`"})
            chosen = [s for s in self.submissions if not ids or s.id in ids]
            if ids and len(chosen) != len(set(ids)):
                return _json(400, {"detail": "One or more submission ids are invalid"})
            for sub in chosen:
                self.set_validation(sub.id, wanted)
            return _json(200, {"detail": f"{len(chosen)} submissions have been updated"})

        @app.get(base + "/<int:sid>/attachments/<att_uid>/")
        def attachment(uid: str, sid: int, att_uid: str):
            sub = self._find(sid)
            for name, (a_uid, data) in (sub.attachments if sub else {}).items():
                if a_uid == att_uid:
                    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
                    return Response(data, content_type=kind)
            return _detail(404, "Not found.")

        return app

    def _find(self, sid: int) -> KoboSubmission | None:
        return next((s for s in self.submissions if s.id == sid), None)

    def _detail(self, sid: int, fmt: str) -> Response:
        sub = self._find(sid)
        if sub is None:
            return _detail(404, "Not found.")
        if fmt == "xml":
            xml = (
                sub.xml if sub.xml.lstrip().lower().startswith(b"<?xml") else DECLARATION + sub.xml
            )
            return Response(xml, content_type="application/xml; charset=utf-8")
        return Response(json.dumps(self._result(sub)), content_type="application/json")

    def _list(self) -> Response:
        args = request.args
        try:
            query = json.loads(args.get("query") or "{}")
        except ValueError:
            return _json(400, {"query": ["Value must be valid JSON."]})
        try:
            sort = json.loads(args.get("sort") or '{"_id": 1}')
            fields = json.loads(args["fields"]) if args.get("fields") else None
        except ValueError:
            return _json(400, {"detail": "Unsupported query"})
        limit = args.get("limit", str(DEFAULT_LIMIT))
        if not limit.isdigit() or int(limit) == 0:
            return _json(400, {"limit": ["A positive integer is required"]})
        limit = min(int(limit), MAX_LIMIT)
        start = int(args.get("start") or 0)

        results = [self._result(s) for s in self.submissions]
        results = [r for r in results if _mongo_match(r, query)]
        for key, direction in reversed(list(sort.items())):
            results.sort(key=lambda r, k=key: r.get(k), reverse=int(direction) < 0)
        count = len(results)
        page = results[start : start + limit]
        if fields:
            page = [{k: v for k, v in r.items() if k in fields} for r in page]
        url = request.url
        nxt = None
        if start + limit < count:
            nxt = _replace(url, limit=limit, start=start + limit)
        prev = None
        if start > 0:
            prev = _replace(url, limit=limit, start=None if start - limit <= 0 else start - limit)
        body = {"count": count, "next": nxt, "previous": prev, "results": page}
        return _json(200, body)

    def _result(self, sub: KoboSubmission) -> dict:
        host = request.host_url.rstrip("/")
        attachments = []
        for n, (name, (a_uid, _data)) in enumerate(sorted(sub.attachments.items()), start=1):
            attachments.append(
                {
                    "download_url": (
                        f"{host}/api/v2/assets/{self.asset_uid}/data/{sub.id}/attachments/{a_uid}/"
                    ),
                    "mimetype": mimetypes.guess_type(name)[0] or "application/octet-stream",
                    "filename": (
                        f"kobo_user/attachments/formuuid/{sub.instance_id.removeprefix('uuid:')}/"
                        f"{name}"
                    ),
                    "media_file_basename": name,
                    "instance": sub.id,
                    "xform": 1,
                    "id": sub.id * 10 + n,
                    "uid": a_uid,
                    "question_xpath": "photo",
                    "is_deleted": False,
                }
            )
        result = {
            "_id": sub.id,
            "formhub/uuid": "formuuid",
            "start": "2026-11-20T10:00:00.000+00:00",
            "__version__": "vA1b2C3",
            "meta/instanceID": sub.instance_id,
            "_xform_id_string": self.asset_uid,
            "_uuid": sub.instance_id.removeprefix("uuid:"),
            "meta/rootUuid": sub.root_uuid,
            "_attachments": attachments,
            "_status": "submitted_via_web",
            "_geolocation": [None, None],
            "_submission_time": sub.submission_time,
            "_tags": [],
            "_notes": [],
            "_validation_status": dict(sub.validation_status),
            "_submitted_by": USERNAME,
        }
        deprecated = _meta(sub.xml, "deprecatedID")
        if deprecated is not None:
            result["meta/deprecatedID"] = deprecated
        return result


def _meta(xml: bytes, name: str) -> str | None:
    match = re.search(rb"<(?:\w+:)?%s>([^<]+)</(?:\w+:)?%s>" % (name.encode(), name.encode()), xml)
    return match.group(1).decode() if match else None


def _field(row: dict, key: str):
    """A field of a result, dotted keys reaching into objects (``_validation_status.uid``)."""
    if key in row:
        return row[key]
    value = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _mongo_match(row: dict, query: dict) -> bool:
    for key, condition in query.items():
        value = _field(row, key)
        if not isinstance(condition, dict):
            if value != condition:
                return False
            continue
        for op, operand in condition.items():
            ok = {
                "$gt": lambda v, o: v is not None and v > o,
                "$gte": lambda v, o: v is not None and v >= o,
                "$lt": lambda v, o: v is not None and v < o,
                "$lte": lambda v, o: v is not None and v <= o,
                "$eq": lambda v, o: v == o,
                "$ne": lambda v, o: v != o,
                "$in": lambda v, o: v in o,
            }[op](value, operand)
            if not ok:
                return False
    return True


def _replace(url: str, **params) -> str:
    """DRF's replace_query_param / remove_query_param: keys sorted, None removes."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in params.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path, urlencode(sorted(query.items())), "")
    )


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _detail(status: int, detail: str) -> Response:
    response = _json(status, {"detail": detail})
    if status == 401:
        response.headers["WWW-Authenticate"] = "Token"
    return response


def _failure(rule: _Failure) -> Response:
    headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else {}
    if rule.body is not None:
        return Response(rule.body, rule.status, headers=headers, content_type="application/json")
    if rule.status == 429:
        seconds = rule.retry_after or "5"
        body = {"detail": f"Request was throttled. Expected available in {seconds} seconds."}
        return Response(json.dumps(body), 429, headers=headers, content_type="application/json")
    body = "<h1>Server Error (500)</h1>" if rule.status == 500 else "Service Unavailable"
    return Response(body, rule.status, headers=headers, content_type="text/html")
