"""Downloads streamed to the browser (the KPI and child-visit exports, the case list, the hotspot
tables): one read-only transaction, the response's headers, and the connection given back
however the download ends.

Every such view reads only: from :func:`clms.db.read_session` (the read replica when one is fit,
else the primary), or with :func:`reading` on the primary (the case list: read-your-writes). Both
end the transaction the sign-in check began and start a read-only one (:func:`clms.db.read_only`),
so on SQLite a long export never holds the write lock that submissions wait for.
"""

from __future__ import annotations

from flask import Response, g, stream_with_context

from clms.db import detach_read_session, read_only

MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
}


def reading(session):
    """The request's session in a read-only transaction (see the module documentation)."""
    session.commit()  # nothing written: the person was only read
    read_only(session)
    return session


def download(chunks, fmt: str, name: str) -> Response:
    """``chunks`` (bytes) streamed as the file ``name.fmt``, never kept by a browser or proxy.

    The rows are read while the response streams, after the request's teardown: the teardown
    must not close the session (its next query would begin a new transaction, not read-only,
    that nothing ends: on SQLite it kept the write lock for good). The stream closes it when
    done, the response when abandoned or never read (bench/cases.py found this). A view that
    read from :func:`clms.db.read_session` (the replica, when fit) hands that session on.
    """
    session = detach_read_session() or g.pop("db_session", None)

    def stream():
        try:
            yield from chunks
        finally:
            if session is not None:
                session.close()

    response = Response(stream_with_context(stream()), mimetype=MIMETYPES[fmt])
    if session is not None:
        response.call_on_close(session.close)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    # personal data: never kept by a browser or a proxy
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
