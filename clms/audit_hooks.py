"""The audit log's part of every request: the client's address for each entry, and the reads
of child-level data a request recorded, written before its answer leaves (roof: Flask hooks
around :mod:`clms.audit`, which knows nothing of requests)."""

from __future__ import annotations

import logging

from flask import g, request
from sqlalchemy.orm import Session

from clms.audit import REQUEST, RequestAudit, record
from clms.db import READ_ONLY
from clms.errors import problem

log = logging.getLogger("clms.audit")


def init_app(app) -> None:
    """Give every request its :class:`~clms.audit.RequestAudit` (the client's address, for each
    entry), and write the reads it recorded (:func:`clms.audit.record_read`) after its view,
    before the response leaves; a failure to write them turns the response into a 503."""

    @app.before_request
    def _start():
        g.audit_token = REQUEST.set(
            RequestAudit(ip=request.remote_addr or "", session=lambda: g.get("db_session"))
        )

    @app.teardown_request
    def _end(_exc):
        token = g.pop("audit_token", None)
        if token is not None:
            REQUEST.reset(token)

    @app.after_request
    def _write_reads(response):
        current = REQUEST.get()
        pending, current.reads = (current.reads, []) if current is not None else ([], [])
        if not pending:
            return response
        session = g.get("db_session")
        if session is not None and session.in_transaction():
            options = session.connection().get_execution_options()
            if not options.get(READ_ONLY):
                # what the view did not commit is dropped at teardown anyway; ending it now frees
                # SQLite's write lock for the audit's own transaction
                session.rollback()
        try:
            with Session(bind=app.extensions["clms_engine"], expire_on_commit=False) as own:
                for actor, action, target, reason, details in pending:
                    record(own, actor, action, target, reason, **details)
                own.commit()
        except Exception:
            log.exception("audit entries could not be written: the response is withheld")
            from clms.app import render_problem

            response.close()
            return render_problem(problem("service.unavailable", headers={"Retry-After": "60"}))
        return response
