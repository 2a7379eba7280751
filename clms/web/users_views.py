"""Web pages for administrators: the people who sign in, and their phones.

Everything the ``clms users`` commands do, through the same operations (:mod:`clms.auth.users`,
:mod:`clms.auth.accounts`), so the web and the command line write the same audit entries. A
password generated here and a device token (with its ODK Collect QR code) are shown once, in the
answer to the POST that made them: the page is never stored (``Cache-Control: no-store``) and
reloading it shows nothing again. A refused change comes back on the same page with the message
next to its field and what was typed kept (passwords excepted).
"""

from __future__ import annotations

import re

from flask import (
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from clms.auth import allow, password_min_length
from clms.auth.accounts import (
    STATES,
    USER_PAGING,
    change_scope,
    generate_password,
    get_user,
    list_users,
    scope_choices,
    user_facts,
)
from clms.auth.collect import collect_payload, collect_settings, qr_svg, server_url
from clms.auth.users import (
    DEVICE_TOKEN_DAYS,
    SCOPED_ROLES,
    UserError,
    activate_user,
    add_user,
    change_password,
    change_role,
    deactivate_user,
    issue_device_token,
    renew_device_token,
    revoke_user_tokens,
    token_state,
    unlock_user,
)
from clms.db import db
from clms.errors import problem
from clms.i18n import Msg, NMsg, locale_name
from clms.locale import languages, localize
from clms.models import ROLES
from clms.security import use_once
from clms.web import bp

#: the forms of a user's page, each with the prefix of its fields' names (one page, one id each)
FORMS = ("role", "scope", "password", "state", "token", "revoke")
#: the choice of a password typed by the administrator (else one is generated and shown once)
TYPED, GENERATE = "typed", "generate"
_NEW_FIELDS = ("username", "full_name", "email", "role", "locale", "areas", "brand", "provider")


def _codes(text: str) -> list[str]:
    """Area and village codes typed in one field, separated by commas, semicolons or spaces."""
    return [code for code in re.split(r"[,;\s]+", text or "") if code]


def _min_length() -> int:
    return password_min_length(current_app.config)


def _realm() -> str:
    return current_app.config["DIGEST_REALM"]


def _token_days() -> int:
    return int(current_app.config.get("DEVICE_TOKEN_DAYS") or DEVICE_TOKEN_DAYS)


def _shown_once(html: str):
    """A page holding a secret: never kept by the browser or a proxy."""
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/users")
@allow("admin")
def users_index():
    """Everyone who signs in: search by name, filter by role and state, a page at a time."""
    search = request.args.get("q", "")[:100]
    role = request.args.get("role") if request.args.get("role") in ROLES else None
    state = request.args.get("state") if request.args.get("state") in STATES else None
    page = list_users(
        db(), search=search, role=role, state=state, page=USER_PAGING.read(request.args).page
    )
    return render_template(
        "users_index.html", page=page, search=search, role=role, state=state, roles=ROLES,
        states=STATES,
    )  # fmt: skip


@bp.route("/users/new", methods=["GET", "POST"])
@allow("admin")
def user_new():
    """Add a person with a role and what it comes with; the password is typed or generated (and
    then shown once)."""
    if request.method == "GET":
        return _new_form({"role": "monitor", "locale": "fr", "password_mode": "generate"}, {})
    form = request.form
    values = {name: form.get(name, "").strip() for name in _NEW_FIELDS}
    values["password_mode"] = form.get("password_mode", "generate")
    generated = values["password_mode"] != TYPED
    password = generate_password(values["username"]) if generated else form.get("password", "")
    session = db()
    if not generated and password != form.get("password_again", ""):
        return _new_form(values, {"password_again": localize(Msg("The two passwords differ."))})
    try:
        user = add_user(
            session, username=values["username"], role=values["role"], password=password,
            realm=_realm(), scope_codes=_codes(values["areas"]) if values["role"] in SCOPED_ROLES
            else [], brand_code=values["brand"] if values["role"] == "brand" else None,
            provider_code=values["provider"] if values["role"] == "provider" else None,
            full_name=values["full_name"], email=values["email"] or None, actor=g.user,
            min_length=_min_length(), locale=values["locale"] or None, languages=languages(),
        )  # fmt: skip
    except UserError as p:
        session.rollback()
        return _new_form(values, {p.field or "username": localize(p)})
    user_id, username = user.id, user.username
    session.commit()
    if generated:
        html = render_template(
            "user_secret.html", user_id=user_id, username=username, password=password, new=True
        )
        return _shown_once(html)
    flash(localize(Msg("Added {username}.", username=username)), "success")
    return redirect(url_for("web.user_detail", user_id=user_id))


def _new_form(values: dict, errors: dict):
    status = 400 if errors else 200
    return render_template(
        "user_new.html", values=values, errors=errors, roles=ROLES,
        locales=[(c, locale_name(c)) for c in languages()], offer=scope_choices(db()),
        min_length=_min_length(),
    ), status  # fmt: skip


@bp.route("/users/<int:user_id>")
@allow("admin")
def user_detail(user_id: int):
    """One person: role, scope, state, sign-ins, phones' tokens, and every action on them."""
    return _detail(_user_or_404(user_id), {}, {})


def _user_or_404(user_id: int):
    user = get_user(db(), user_id)
    if user is None:
        raise problem("not_found")
    return user


def _detail(user, values: dict, errors: dict, status: int = 200):
    return render_template(
        "user_detail.html", u=user, facts=user_facts(db(), user), values=values, errors=errors,
        roles=ROLES, offer=scope_choices(db()), scoped=SCOPED_ROLES, token_days=_token_days(),
        min_length=_min_length(), token_state=token_state,
        open_forms={name.split("_")[0] for name in errors},
    ), status  # fmt: skip


def _refused(user_id: int, prefix: str, p: UserError, values: dict):
    """The user's page again, the refusal next to the field of the form it came from."""
    session = db()
    session.rollback()
    user = _user_or_404(user_id)
    errors = {f"{prefix}_{p.field or 'form'}": localize(p)}
    return _detail(user, {k: v for k, v in values.items() if "password" not in k}, errors, p.status)


def _done(user_id: int, message: Msg):
    db().commit()
    flash(localize(message), "success")
    return redirect(url_for("web.user_detail", user_id=user_id))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@allow("admin")
def user_role(user_id: int):
    """Give the person another role, with what it comes with, and say why."""
    user = _user_or_404(user_id)
    form = request.form.to_dict()
    role = form.get("role_role", "")
    try:
        change_role(
            db(), user.username, role, reason=form.get("role_reason", ""), actor=g.user,
            scope_codes=_codes(form.get("role_areas", "")) if role in SCOPED_ROLES else [],
            brand_code=form.get("role_brand") or None if role == "brand" else None,
            provider_code=form.get("role_provider") or None if role == "provider" else None,
        )  # fmt: skip
    except UserError as p:
        return _refused(user_id, "role", p, form)
    return _done(user_id, Msg("{username} is now a {role}.", username=user.username,
                              role=Msg(role)))  # fmt: skip


@bp.route("/users/<int:user_id>/scope", methods=["POST"])
@allow("admin")
def user_scope(user_id: int):
    """Change the areas and villages (or the brand, or the provider) of the person's role."""
    user = _user_or_404(user_id)
    form = request.form.to_dict()
    try:
        change_scope(
            db(), user.username, reason=form.get("scope_reason", ""), actor=g.user,
            scope_codes=_codes(form.get("scope_areas", "")),
            brand_code=form.get("scope_brand") or None,
            provider_code=form.get("scope_provider") or None,
        )  # fmt: skip
    except UserError as p:
        return _refused(user_id, "scope", p, form)
    return _done(user_id, Msg("Changed what {username} may see.", username=user.username))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@allow("admin")
def user_password(user_id: int):
    """Reset the person's password: generated (shown once) or typed. Their web sessions end and
    their API tokens are revoked; phones keep working."""
    user = _user_or_404(user_id)
    form = request.form.to_dict()
    mode = form.get("password_mode", "")
    if mode not in (GENERATE, TYPED):
        p = UserError(Msg("Choose: a generated password, or one you type."), field="mode")
        return _refused(user_id, "password", p, form)
    generated = mode == GENERATE
    password = generate_password(user.username) if generated else form.get("password_password", "")
    if not generated and password != form.get("password_again", ""):
        p = UserError(Msg("The two passwords differ."), field="again")
        return _refused(user_id, "password", p, form)
    try:
        change_password(
            db(), user.username, password, realm=_realm(), actor=g.user,
            reason=form.get("password_reason", ""), min_length=_min_length(),
            revoke_devices=form.get("password_revoke_devices") == "yes",
        )  # fmt: skip
    except UserError as p:
        return _refused(user_id, "password", p, form)
    if not generated:
        return _done(user_id, Msg("New password set for {username}; their sessions ended.",
                                  username=user.username))  # fmt: skip
    username = user.username
    db().commit()
    html = render_template(
        "user_secret.html", user_id=user_id, username=username, password=password, new=False
    )
    return _shown_once(html)


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
@allow("admin")
def user_unlock(user_id: int):
    """End the sign-in lock of the person (after too many wrong passwords) before its time."""
    user = _user_or_404(user_id)
    try:
        unlock_user(db(), user.username, actor=g.user, reason=request.form.get("reason", ""))
    except UserError as p:
        return _refused(user_id, "unlock", p, {})
    return _done(user_id, Msg("Unlocked {username}.", username=user.username))


@bp.route("/users/<int:user_id>/state", methods=["POST"])
@allow("admin")
def user_state(user_id: int):
    """Deactivate (confirmed: sessions end, every token is revoked) or reactivate the person,
    with a reason."""
    user = _user_or_404(user_id)
    form = request.form.to_dict()
    reason = form.get("state_reason", "")
    try:
        if user.active:
            if form.get("state_confirm") != "yes":
                raise UserError(Msg("Tick the box to confirm: every token of this person is "
                                    "revoked and cannot be used again."),
                                field="confirm")  # fmt: skip
            deactivate_user(db(), user.username, reason=reason, actor=g.user)
            said = Msg("Deactivated {username}; their tokens are revoked.", username=user.username)
        else:
            activate_user(db(), user.username, reason=reason, actor=g.user)
            said = Msg("Reactivated {username}.", username=user.username)
    except UserError as p:
        return _refused(user_id, "state", p, form)
    return _done(user_id, said)


@bp.route("/users/<int:user_id>/tokens", methods=["POST"])
@allow("admin")
def user_token(user_id: int):
    """Issue a device token for a phone of the person and show it once, with the QR code that
    configures ODK Collect with it."""
    user = _user_or_404(user_id)
    form = request.form.to_dict()
    if not use_once(request.form):  # a reload of the page that showed the token
        flash(localize(ALREADY_SHOWN), "error")
        return redirect(url_for("web.user_detail", user_id=user_id), 303)
    try:
        days = int(form.get("token_days") or _token_days())
    except ValueError:
        days = -1
    try:
        token, row = issue_device_token(
            db(), user.username, actor=g.user, label=form.get("token_label", "").strip(), days=days
        )
    except UserError as p:
        return _refused(user_id, "token", p, form)
    return phone_page(user, token, row, back=url_for("web.user_detail", user_id=user_id))


#: said to a reload of the page that showed a token (the form is not sent twice)
ALREADY_SHOWN = Msg(
    "That token was already issued and shown once; nothing new was issued. If its code was not "
    "scanned, revoke it and issue another."
)


def phone_page(user, token: str, row, *, back: str):
    """Commit the token just issued to ``user`` and show it once, with the QR code that sets up
    ODK Collect with it; ``back``: where the page's last link goes."""
    base = current_app.config.get("BASE_URL") or request.url_root
    url = server_url(base, token)
    name = f"CLMS · {user.full_name or user.username}"[:60]
    payload = collect_payload(collect_settings(url, name, user.username))
    username, expires_at, label = user.username, row.expires_at, row.label
    db().commit()
    html = render_template(
        "user_token.html", back=back, username=username, url=url, qr=qr_svg(payload),
        expires_at=expires_at, label=label, own=user.id == g.user.id,
    )  # fmt: skip
    return _shown_once(html)


@bp.route("/users/<int:user_id>/tokens/<int:token_id>/renew", methods=["POST"])
@allow("admin")
def user_token_renew(user_id: int, token_id: int):
    """Extend a device token still in use; the phone keeps it and needs nothing new."""
    user = _user_or_404(user_id)
    try:
        row = renew_device_token(db(), user.username, token_id, actor=g.user, days=_token_days())
    except UserError as p:
        return _refused(user_id, "revoke", p, {})
    ends = row.expires_at.date()  # in the reader's language
    return _done(user_id, Msg("Device token {token_id} now lasts until {date}.",
                              token_id=token_id, date=ends))  # fmt: skip


@bp.route("/users/<int:user_id>/tokens/revoke", methods=["POST"])
@allow("admin")
def user_tokens_revoke(user_id: int):
    """Revoke the person's live tokens (phones', API's, or both), confirmed: it cannot be
    undone, and a phone needs a new token afterwards."""
    user = _user_or_404(user_id)
    form = request.form.to_dict()
    kind = form.get("revoke_kind") or None
    try:
        if form.get("revoke_confirm") != "yes":
            raise UserError(Msg("Tick the box to confirm: revoked tokens cannot be used again."),
                            field="confirm")  # fmt: skip
        count = revoke_user_tokens(
            db(), user.username, actor=g.user, kind=kind, reason=form.get("revoke_reason", "")
        )
    except UserError as p:
        return _refused(user_id, "revoke", p, form)
    return _done(user_id, NMsg("Revoked {n} token of {username}.",
                               "Revoked {n} tokens of {username}.", n=count,
                               username=user.username))  # fmt: skip
