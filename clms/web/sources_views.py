"""Web pages for administrators: the ODK Central and KoboToolbox sources we pull submissions from.

Passwords and tokens go one way: typed into a form, encrypted, sent to their server. No page shows
them back, and a form that comes back with an error never refills them.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from clms.auth import allow
from clms.db import db
from clms.errors import problem
from clms.i18n import Msg
from clms.intake.pull import pull_source
from clms.locale import localize
from clms.web import bp
from forms.pull.sources import (
    KINDS,
    SERVICES,
    SourceInvalid,
    add_source,
    get_source,
    list_sources,
    set_source_enabled,
    update_source,
    waiting_submissions,
)

_PLAIN_FIELDS = ("name", "kind", "base_url", "project_id", "remote_form_id")
_SECRET_FIELDS = ("email", "password", "token")


@bp.route("/sources")
@allow("admin")
def sources_index():
    """The sources with their cursor, last pull, last error and how much they brought, and the
    submissions waiting on their retry lists."""
    session = db()
    return render_template(
        "sources_index.html", sources=list_sources(session), waiting=waiting_submissions(session)
    )


@bp.route("/sources/new", methods=["GET", "POST"])
@allow("admin")
def source_new():
    """Add a source; errors are shown next to their fields (HTTP 400)."""
    if request.method == "GET":
        return _form(None, {"kind": request.args.get("kind", "central")}, {})
    values = _plain(request.form)
    session = db()
    try:
        source = add_source(
            session, values["name"], values["kind"], values["base_url"],
            values["remote_form_id"], _secrets(request.form), project_id=values["project_id"],
            key=current_app.config["CREDENTIALS_KEY"],
        )  # fmt: skip
    except SourceInvalid as p:  # each field's error next to it
        session.rollback()
        return _form(None, values, p.errors), p.status
    name = source.name
    session.commit()
    done = Msg(
        "Added source {name}. Pull it now to check the address and the credentials.", name=name
    )
    flash(localize(done), "success")
    return redirect(url_for("web.sources_index"))


@bp.route("/sources/<int:source_id>/edit", methods=["GET", "POST"])
@allow("admin")
def source_edit(source_id: int):
    """Change a source; blank credential fields keep the stored ones."""
    session = db()
    source = get_source(session, source_id)
    if source is None:
        raise problem("not_found")
    if request.method == "GET":
        return _form(source, {k: getattr(source, k) or "" for k in _PLAIN_FIELDS}, {})
    values = _plain(request.form)
    values["kind"] = source.kind
    try:
        update_source(
            session, source_id, name=values["name"], base_url=values["base_url"],
            remote_form_id=values["remote_form_id"], project_id=values["project_id"],
            credentials=_secrets(request.form), reset_cursor=bool(request.form.get("reset_cursor")),
            key=current_app.config["CREDENTIALS_KEY"],
        )  # fmt: skip
    except SourceInvalid as p:
        session.rollback()
        return _form(source, values, p.errors), p.status
    session.commit()
    flash(localize(Msg("Saved source {name}.", name=values["name"])), "success")
    return redirect(url_for("web.sources_index"))


@bp.route("/sources/<int:source_id>/pull", methods=["POST"])
@allow("admin")
def source_pull(source_id: int):
    """Pull the source now and show what it did."""
    session = db()
    if get_source(session, source_id) is None:
        raise problem("not_found")
    # end this request's transaction first: the pull commits in its own (SQLite has one writer)
    session.commit()
    result = pull_source(current_app.extensions["clms_sessionmaker"], source_id, current_app.config)
    category = "error" if not result.ok else ("warning" if result.problem_count else "success")
    summary = result.summary()
    if result.ok:
        said = Msg("Pulled {summary}", summary=summary)
    else:
        said = Msg("Pull failed: {summary}", summary=summary)
    flash(localize(said), category)
    return redirect(url_for("web.sources_index"))


@bp.route("/sources/<int:source_id>/enabled", methods=["POST"])
@allow("admin")
def source_enabled(source_id: int):
    """Enable (``enabled=1``) or disable (``enabled=0``) scheduled pulls of the source."""
    session = db()
    try:
        source = set_source_enabled(session, source_id, request.form.get("enabled") == "1")
    except LookupError:
        raise problem("not_found") from None
    name, enabled = source.name, source.enabled
    session.commit()
    said = (
        Msg("Enabled source {name}.", name=name)
        if enabled
        else Msg("Disabled source {name}.", name=name)
    )
    flash(localize(said), "success")
    return redirect(url_for("web.sources_index"))


def _plain(form) -> dict[str, str]:
    return {k: form.get(k, "").strip() for k in _PLAIN_FIELDS}


def _secrets(form) -> dict[str, str]:
    return {k: form.get(k, "") for k in _SECRET_FIELDS if form.get(k)}


def _form(source, values: dict, errors: dict[str, str]):
    # values never hold a password or token: only _PLAIN_FIELDS reach the template
    shown = {k: values.get(k, "") or "" for k in _PLAIN_FIELDS}
    return render_template(
        "source_form.html", source=source, values=shown, errors=errors, kinds=KINDS,
        services=SERVICES,
    )  # fmt: skip
