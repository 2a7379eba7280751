"""Administration of the supply chain: the chain as a tree per brand, suppliers, links, the
villages a supplier buys in, and the CSV import (all files or nothing).

Admins only: the pages show household counts per supplier, never a household (brands see their
chain only through the aggregates of the maps and indicators).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from clms.auth import allow
from clms.db import db
from clms.errors import Problem
from clms.i18n import Msg
from clms.locale import localize
from clms.models import Supplier
from clms.supply.csvfiles import ChainImportError
from clms.supply.imports import import_chain
from clms.supply.operations import (
    SupplierInput,
    attach_village,
    detach_village,
    link,
    save_supplier,
    unlink,
)
from clms.supply.queries import brands, supplier_by_code, supplier_villages, village_choices
from clms.supply.tree import build_tree, read_chain, supplier_rows
from clms.web import bp

MAX_IMPORT_FILES = 10


def _index(status: int = 200, *, link_errors=None, import_issues=None, values=None):
    """The chain page, with the errors of a refused link or import when there are some."""
    session = db()
    data = read_chain(session)
    return render_template(
        "supply_index.html",
        tree=build_tree(data),
        suppliers=supplier_rows(data),
        brands=brands(session),
        link_errors=link_errors or {},
        import_issues=import_issues or [],
        values=values if values is not None else request.form,
    ), status


@bp.route("/supply")
@allow("admin")
def supply_index():
    """The chain as a tree per brand, the suppliers, and the forms to change them."""
    return _index()


@bp.route("/supply/links", methods=["POST"])
@allow("admin")
def supply_link():
    """Add a link: a brand or supplier (the buyer) buys from a supplier (the seller)."""
    session = db()
    try:
        result = link(session, request.form.get("buyer", ""), request.form.get("seller", ""))
    except Problem as p:
        session.rollback()
        errors = {k: localize(m) for k, m in p.fields.items()}
        errors["form"] = localize(p.msg)
        return _index(p.status, link_errors=errors)
    session.commit()
    if result.changed:
        flash(localize(Msg("{buyer} now buys from {seller}.", buyer=result.buyer,
                           seller=result.seller)), "success")  # fmt: skip
    else:
        flash(localize(Msg("{buyer} already buys from {seller}.", buyer=result.buyer,
                           seller=result.seller)), "success")  # fmt: skip
    if result.warning is not None:
        flash(localize(result.warning), "warning")
    return redirect(url_for("web.supply_index"), code=303)


@bp.route("/supply/links/remove", methods=["POST"])
@allow("admin")
def supply_unlink():
    """Remove a link."""
    session = db()
    try:
        result = unlink(session, request.form.get("buyer", ""),
                        request.form.get("seller", ""))  # fmt: skip
    except Problem as p:
        session.rollback()
        return _index(p.status, link_errors={k: localize(m) for k, m in p.fields.items()})
    session.commit()
    if result.changed:
        flash(localize(Msg("{buyer} no longer buys from {seller}.", buyer=result.buyer,
                           seller=result.seller)), "success")  # fmt: skip
    return redirect(url_for("web.supply_index"), code=303)


@bp.route("/supply/import", methods=["POST"])
@allow("admin")
def supply_import():
    """Import CSV files of the chain: every file or nothing, each problem named."""
    session = db()
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    if not uploads:
        flash(localize(Msg("Choose a CSV file to import.")), "error")
        return redirect(url_for("web.supply_index"), code=303)
    if len(uploads) > MAX_IMPORT_FILES:
        flash(localize(Msg("Import at most {n} files at a time.", n=MAX_IMPORT_FILES)), "error")
        return redirect(url_for("web.supply_index"), code=303)
    try:
        summary = import_chain(
            session,
            [(f.filename, f.read()) for f in uploads],
            replace=bool(request.form.get("replace")),
        )
    except ChainImportError as p:  # every issue listed in the page (422)
        session.rollback()
        return _index(p.status, import_issues=[issue.render(localize) for issue in p.issues])
    session.commit()
    flash(localize(summary.msg()), "success")
    for warning in summary.warnings:
        flash(warning.render(localize), "warning")
    return redirect(url_for("web.supply_index"), code=303)


def _supplier_page(supplier: Supplier | None, *, errors=None, status: int = 200, values=None):
    session = db()
    villages = []
    if supplier is not None:
        villages = supplier_villages(session, supplier)
    return render_template(
        "supply_supplier_form.html",
        supplier=supplier,
        new=supplier is None,
        villages=villages,
        all_villages=village_choices(session),
        errors=errors or {},
        values=values if values is not None else request.form,
    ), status


def _save_supplier(supplier: Supplier | None):
    session = db()
    if request.method == "POST":
        form = request.form
        data = SupplierInput(
            code=form.get("code", "") if supplier is None else supplier.code,
            name=form.get("name", ""),
            tier=form.get("tier", ""),
            kind=form.get("kind", ""),
        )
        try:
            saved = save_supplier(session, data, new=supplier is None)
        except Problem as p:
            session.rollback()
            errors = {k: localize(m) for k, m in p.fields.items()} or {"form": localize(p.msg)}
            return _supplier_page(supplier, errors=errors, status=422)
        session.commit()
        flash(localize(Msg("Supplier {code} saved.", code=saved.code)), "success")
        return redirect(url_for("web.supply_supplier_edit", code=saved.code), code=303)
    return _supplier_page(supplier)


@bp.route("/supply/suppliers/new", methods=["GET", "POST"])
@allow("admin")
def supply_supplier_new():
    """Add a supplier."""
    return _save_supplier(None)


def _supplier_or_404(code: str) -> Supplier:
    supplier = supplier_by_code(db(), code)
    if supplier is None:
        abort(404)
    return supplier


@bp.route("/supply/suppliers/<code>/edit", methods=["GET", "POST"])
@allow("admin")
def supply_supplier_edit(code: str):
    """Change a supplier's name, tier and kind (its code stays), and its villages."""
    return _save_supplier(_supplier_or_404(code))


@bp.route("/supply/suppliers/<code>/villages", methods=["POST"])
@allow("admin")
def supply_village_attach(code: str):
    """The supplier buys in one more village."""
    return _village_change(code, attach_village, Msg("Village {village} attached."))


@bp.route("/supply/suppliers/<code>/villages/remove", methods=["POST"])
@allow("admin")
def supply_village_detach(code: str):
    """The supplier no longer buys in a village."""
    return _village_change(code, detach_village, Msg("Village {village} detached."))


def _village_change(code: str, change, done: Msg):
    session = db()
    supplier = _supplier_or_404(code)
    village = request.form.get("village", "").strip()
    try:
        change(session, supplier.code, village)
    except Problem as p:
        session.rollback()
        errors = {k: localize(m) for k, m in p.fields.items()}
        return _supplier_page(supplier, errors=errors, status=422, values={})
    session.commit()
    flash(localize(Msg(done.template, village=village)), "success")
    return redirect(url_for("web.supply_supplier_edit", code=supplier.code), code=303)
