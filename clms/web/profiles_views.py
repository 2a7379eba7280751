"""Web pages for country profiles: everyone who works on cases reads them, administrators change
them (each change is a new version; the old ones stay, with who, when and why).
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for

from alerts.profiles.model import (
    EDITABLE_FIELDS,
    FIELD_LABELS,
    HAZARD_LABELS,
    changed_fields,
    read_changes,
)
from alerts.profiles.store import (
    current_profiles_rows,
    profile_history,
    profile_values,
    update_profile,
)
from alerts.rules import HAZARD_CODES, RULE_FIELDS, ProfileError
from clms.auth import allow
from clms.db import db
from clms.i18n import Msg
from clms.locale import gettext, localize
from clms.web import bp

READERS = ("admin", "officer", "supervisor")


@bp.route("/profiles")
@allow(*READERS)
def profiles_index():
    """The current version of every country profile."""
    return render_template("profiles_index.html", profiles=current_profiles_rows(db()))


@bp.route("/profiles/<code>")
@allow(*READERS)
def profile_detail(code: str):
    """One profile: current values with their sources, every version, and (admins) the edit form."""
    return _render_detail(code.upper())


@bp.route("/profiles/<code>", methods=["POST"])
@allow("admin")
def profile_update(code: str):
    """Save the edit form as the next version; errors re-render the form next to their fields."""
    session = db()
    code = code.upper()
    raw = {name: request.form.get(name, "") for name in EDITABLE_FIELDS}
    raw["hazardous_list"] = request.form.getlist("hazardous_list")
    raw["national_hazardous_list"] = request.form.get("national_hazardous_list", "no")
    note = request.form.get("note", "")
    changes, unreadable = read_changes(raw)
    try:
        row = update_profile(session, code, changes, g.user, note, unreadable=unreadable)
    except ProfileError as p:  # each field's error next to it
        session.rollback()
        if set(p.errors) == {"code"}:
            abort(404)
        return _render_detail(code, errors=p.errors, submitted=raw, note=note), p.status
    session.commit()
    flash(localize(Msg("Saved {code} version {version}.", code=row.code, version=row.version)),
          "success")  # fmt: skip
    return redirect(url_for("web.profile_detail", code=row.code))


def _render_detail(code: str, errors: dict | None = None, submitted: dict | None = None,
                   note: str = ""):  # fmt: skip
    versions = profile_history(db(), code)
    current = next((v for v in versions if v.current), None)
    if current is None:
        abort(404)
    values = profile_values(current)
    # what each version changed on the one before, in words
    changes = {
        newer.id: [
            gettext(FIELD_LABELS[f])
            for f in changed_fields(profile_values(older), profile_values(newer))
        ]
        for newer, older in zip(versions, versions[1:], strict=False)
    }
    form = dict(values)
    if submitted is not None:
        form.update(submitted)
    return render_template(
        "profile_detail.html",
        profile=current,
        values=values,
        versions=versions,
        changes=changes,
        form=form,
        errors=errors or {},
        note=note,
        labels={name: gettext(label) for name, label in FIELD_LABELS.items()},
        number_fields=[f for f in RULE_FIELDS if f != "hazardous_list"],
        hazard_codes=sorted(HAZARD_CODES),
        hazard_labels={code: gettext(label) for code, label in HAZARD_LABELS.items()},
        can_edit=g.user.role == "admin",
    )
