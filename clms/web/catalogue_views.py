"""Administration of the service catalogue and of the service providers."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from clms.auth import allow
from clms.cases import catalogue
from clms.db import db
from clms.errors import Problem
from clms.i18n import Msg
from clms.locale import localize
from clms.web import bp, flash_problem


@bp.route("/services")
@allow("admin")
def services_index():
    """The catalogue of services and the providers."""
    session = db()
    return render_template(
        "services_index.html",
        services=catalogue.services(session),
        providers=catalogue.providers(session),
        areas={a.id: a for a in catalogue.areas(session)},
    )


def _save(template: str, build, save, *, new: bool, done: Msg, **context):
    session = db()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            save(session, build(request.form), new=new)
        except Problem as p:
            session.rollback()
            errors = {k: localize(m) for k, m in p.fields.items()} or {"form": localize(p.msg)}
            status = 400
        else:
            session.commit()
            flash(localize(done), "success")
            return redirect(url_for("web.services_index"), code=303)
    return render_template(template, errors=errors, values=request.form, new=new,
                           **context), status  # fmt: skip


def _service_input(form) -> catalogue.ServiceInput:
    return catalogue.ServiceInput(
        code=form.get("code", ""),
        name_en=form.get("name_en", ""),
        name_fr=form.get("name_fr", ""),
        description=form.get("description", ""),
        urgent=form.get("urgent") == "1",
        min_age=form.get("min_age"),
        max_age=form.get("max_age"),
        active=form.get("active") == "1",
    )


@bp.route("/services/new", methods=["GET", "POST"])
@allow("admin")
def service_new():
    """Add a service to the catalogue."""
    return _save("service_form.html", _service_input, catalogue.save_service, new=True,
                 done=Msg("Service added."), service=None)  # fmt: skip


@bp.route("/services/<code>/edit", methods=["GET", "POST"])
@allow("admin")
def service_edit(code: str):
    """Change a service of the catalogue (its code stays)."""
    service = catalogue.service_by_code(db(), code)
    if service is None:
        abort(404)
    return _save("service_form.html", _service_input, catalogue.save_service, new=False,
                 done=Msg("Service saved."), service=service)  # fmt: skip


def _provider_input(form) -> catalogue.ProviderInput:
    return catalogue.ProviderInput(
        code=form.get("code", ""),
        name=form.get("name", ""),
        kind=form.get("kind", ""),
        email=form.get("email", ""),
        phone=form.get("phone", ""),
        area=form.get("area", ""),
        services=tuple(form.getlist("services")),
        active=form.get("active") == "1",
    )


def _provider_context(provider):
    session = db()
    return {
        "provider": provider,
        "kinds": catalogue.PROVIDER_KINDS,
        "services": catalogue.services(session),
        "areas": catalogue.areas(session),
    }


@bp.route("/providers/new", methods=["GET", "POST"])
@allow("admin")
def provider_new():
    """Add a service provider."""
    return _save("provider_form.html", _provider_input, catalogue.save_provider, new=True,
                 done=Msg("Provider added."), **_provider_context(None))  # fmt: skip


@bp.route("/providers/<code>/edit", methods=["GET", "POST"])
@allow("admin")
def provider_edit(code: str):
    """Change a service provider (its code stays)."""
    provider = catalogue.provider_by_code(db(), code)
    if provider is None:
        abort(404)
    return _save("provider_form.html", _provider_input, catalogue.save_provider, new=False,
                 done=Msg("Provider saved."), **_provider_context(provider))  # fmt: skip


@bp.route("/providers/import", methods=["POST"])
@allow("admin")
def providers_import():
    """Add or update providers from a CSV file: all rows or none."""
    session = db()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(localize(Msg("Choose a CSV file to import.")), "error")
        return redirect(url_for("web.services_index"), code=303)
    try:
        saved = catalogue.import_providers_csv(session, upload.read())
    except Problem as p:
        details = "; ".join(f"{k}: {localize(m)}" for k, m in p.fields.items())
        flash_problem(Msg("Nothing was imported. {details}", details=details), session)
    else:
        session.commit()
        flash(localize(Msg("{n} providers imported.", n=len(saved))), "success")
    return redirect(url_for("web.services_index"), code=303)
