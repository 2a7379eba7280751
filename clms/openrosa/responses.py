"""OpenRosa response envelopes and the headers every OpenRosa response carries."""

from __future__ import annotations

from email.utils import formatdate

from flask import Response, current_app


def openrosa_response(
    body: str | bytes, status: int = 200, content_type: str | None = None
) -> Response:
    """A response with ``X-OpenRosa-Version``, ``X-OpenRosa-Accept-Content-Length`` and ``Date``.

    ODK Collect treats a form list without the version header as a legacy list and reads the
    accept-content-length to decide how to split large submissions.
    """
    resp = Response(body, status=status, content_type=content_type or "text/xml; charset=utf-8")
    resp.headers["X-OpenRosa-Version"] = "1.0"
    resp.headers["X-OpenRosa-Accept-Content-Length"] = str(
        current_app.config["MAX_SUBMISSION_BYTES"]
    )
    resp.headers["Date"] = formatdate(usegmt=True)
    return resp
