"""The audit log for administrators: search it, and check its chain (clms.audit).

Looking at the audit log is itself an entry of it (``audit.search``), so that nobody reads who
read what unseen.
"""

from __future__ import annotations

import datetime as dt
import json

from flask import g, render_template, request

from clms.audit import SEARCH_PAGING, record_read, search, verify
from clms.auth import allow
from clms.db import db
from clms.errors import problem
from clms.i18n import Msg
from clms.web import bp


@bp.route("/audit")
@allow("admin")
def audit_index():
    """The newest entries first, filtered by who, what, on what and when; 100 a page."""
    args = request.args
    filters = {
        "actor": (args.get("actor") or "").strip() or None,
        "action": (args.get("action") or "").strip() or None,
        "target": (args.get("target") or "").strip() or None,
        "since": _day(args, "since"),
        "until": _day(args, "until"),
    }
    before = SEARCH_PAGING.read(args, strict=True)  # a key that is not one: 400, naming it
    session = db()
    found = search(session, **filters, before_seq=before, limit=SEARCH_PAGING.fetch)
    page = SEARCH_PAGING.page(found, key=lambda e: e.seq, cursor=before)
    shown = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in filters.items() if v}
    record_read(session, g.user, "audit.search", "audit", filters=shown, before=before)
    return render_template(
        "audit_index.html",
        entries=[(e, _details(e.details)) for e in page.rows],
        filters={k: ("" if v is None else v) for k, v in filters.items()},
        older=page.next,
        deeper=before is not None,
        shown=shown,
    )


@bp.route("/audit/verify")
@allow("admin")
def audit_verify():
    """Recompute the whole chain and say whether it holds (what `clms audit verify` does)."""
    session = db()
    result = verify(session)
    record_read(session, g.user, "audit.verify", "audit", ok=result.ok, checked=result.checked)
    return render_template("audit_verify.html", result=result), 200 if result.ok else 409


def _day(args, name: str) -> dt.date | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        detail = Msg("must be a date as YYYY-MM-DD, not {value!r}", value=value[:40])
        raise problem("request.invalid_parameter", parameter=name, detail=detail) from None


def _details(text: str) -> list[tuple[str, str]]:
    """An entry's details as (key, value) pairs to show."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return [("", text)]
    if not isinstance(data, dict):
        return [("", str(data))]
    return [
        (k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in data.items()
    ]
