"""What keeps other sites and injected text from acting in a signed-in person's browser: a
CSRF token on every form, and security headers (a strict Content-Security-Policy) on every
response. And the transaction boundary of a sign-in attempt (:func:`guard_sign_in`), for the
three surfaces that check a password.

CSRF
    Each browser session holds a random token (``secrets.token_urlsafe``) in the signed session
    cookie. Every form renders it with ``{{ csrf_field() }}``; a script sends it in the
    ``X-CSRF-Token`` header. A POST, PUT, PATCH or DELETE without the right token (compared with
    :func:`hmac.compare_digest`) is refused with 400 before any view runs, so nothing changes. The
    sign-in form carries it too (login CSRF: another site must not sign a person into an account
    of its choosing). As a second line, when the browser says where the request comes from
    (``Origin``, else ``Referer``), it must be this site.

    Not checked: the JSON API (``/api/v1``: a bearer token in a header, never a cookie, so a
    cross-site request carries no authority) and OpenRosa (Digest or Basic authentication plus
    the ``X-OpenRosa-Version`` header, which a cross-site form cannot send). Every other route,
    including ones added later, is checked.

Headers
    ``Content-Security-Policy``: nothing loads from another origin (the basemap's tile host
    excepted, when ``MAP_TILES_URL`` is set), no inline script or style runs unless it carries
    the response's nonce (``{{ csp_nonce() }}`` in a template), no page may be framed except the
    map document (``/map/frame``), which only our own pages frame. The map document is built by
    folium with inline ``<script>`` and ``<style>`` elements: each receives the nonce on the way
    out (:func:`nonce_tags`). Leaflet positions its panes through ``element.style`` (the CSS
    object model), which a policy without ``'unsafe-inline'`` allows; no ``style`` attribute is
    written in any page or map document, so ``style-src`` stays without ``'unsafe-inline'``
    everywhere. The downloaded standalone map is a file opened from disk: no header applies to
    it and it works offline as before.

    Also ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``,
    ``X-Frame-Options`` (as ``frame-ancestors``), ``Permissions-Policy`` (no camera, microphone
    or geolocation), ``Strict-Transport-Security`` over https, and ``Cache-Control: no-store`` on
    everything but static files (pages carry child-level data).

>>> content_security_policy("abc", frame=False, tiles_url="")  # doctest: +NORMALIZE_WHITESPACE
"default-src 'none'; script-src 'self' 'nonce-abc'; style-src 'self' 'nonce-abc'; img-src 'self'
data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self';
base-uri 'none'; object-src 'none'"
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request, session
from markupsafe import Markup
from sqlalchemy.orm import Session as SqlSession

from clms.auth.limits import Limits, attempt_sign_in
from clms.errors import problem
from clms.models import User

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: blueprints whose requests carry their credentials in a header a cross-site page cannot set
EXEMPT_BLUEPRINTS = ("api", "openrosa")
SESSION_KEY = "csrf_token"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
#: the documents built by folium, whose inline scripts and styles get the response's nonce and
#: which our own pages may frame
MAP_DOCUMENTS = frozenset({"web.map_frame"})


def init_app(app: Flask) -> None:
    """Check the CSRF token of every state-changing request, add the security headers to every
    response, and give templates ``csrf_field()``, ``csrf_token()`` and ``csp_nonce()``."""
    app.before_request(check_csrf)
    app.after_request(add_security_headers)
    app.jinja_env.globals.update(csrf_field=csrf_field, csrf_token=csrf_token, csp_nonce=csp_nonce,
                                 once_field=once_field)  # fmt: skip


# --- forms sent once -----------------------------------------------------------------------------

ONCE_KEY = "once"
ONCE_FIELD = "once"
#: how many unsent one-time keys a session keeps (one per form page opened, the oldest dropped)
ONCE_KEPT = 10


def once_field() -> Markup:
    """A hidden one-time key for a form whose answer must not be made twice (a token shown once):
    ``{{ once_field() }}``. Reloading the answer sends the same key again: :func:`use_once`
    refuses it, so a reload does not issue a second token behind the person's back."""
    key = secrets.token_urlsafe(16)
    kept = [k for k in session.get(ONCE_KEY, []) if isinstance(k, str)][-(ONCE_KEPT - 1):]
    session[ONCE_KEY] = [*kept, key]
    return Markup('<input type="hidden" name="{}" value="{}">').format(ONCE_FIELD, key)


def use_once(form) -> bool:
    """Whether a form sent with :func:`once_field` may be acted on: its key not used before (then
    spent). A request without the field (a script, an API client) is not concerned."""
    key = form.get(ONCE_FIELD)
    if key is None:
        return True
    kept = [k for k in session.get(ONCE_KEY, []) if isinstance(k, str)]
    if key not in kept:
        return False
    kept.remove(key)
    session[ONCE_KEY] = kept
    return True


# --- CSRF ----------------------------------------------------------------------------------------


def csrf_token() -> str:
    """The session's CSRF token, made (and kept in the signed session) on first use."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def csrf_field() -> Markup:
    """The hidden input every form carries: ``{{ csrf_field() }}``."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, csrf_token())


def check_csrf() -> None:
    """Refuse a state-changing request that does not carry the session's token, or that the
    browser says comes from another site (before any view runs: nothing is changed)."""
    if request.method not in UNSAFE_METHODS or _exempt():
        return
    expected = session.get(SESSION_KEY)
    sent = request.headers.get(HEADER) or request.form.get(FIELD) or ""
    if not isinstance(expected, str) or not expected:
        _refuse("the session holds no token (expired, or the form was never loaded)")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        _refuse("the token is missing or wrong" if sent else "the request carries no token")
    origin = _claimed_origin()
    if origin is not None and origin not in _own_origins():
        _refuse(f"it comes from {origin!r}, not from this site")


def _exempt() -> bool:
    blueprint = request.blueprint or ""
    return any(blueprint == b or blueprint.startswith(b + "_") for b in EXEMPT_BLUEPRINTS)


def _claimed_origin() -> str | None:
    """``scheme://host[:port]`` of ``Origin``, else of ``Referer``; None when neither is sent."""
    origin = request.headers.get("Origin")
    if origin:
        # "null": a sandboxed frame, a file or a privacy redirect; never one of our pages
        return origin.strip().lower()
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return None


def _own_origins() -> set[str]:
    """This site as the request reached it, and as ``BASE_URL`` names it behind a proxy."""
    origins = {request.host_url.rstrip("/").lower()}
    base = current_app.config.get("BASE_URL") or ""
    if base:
        parts = urlsplit(base)
        origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origins


def _refuse(reason: str) -> None:
    current_app.logger.warning(
        "CSRF check refused %s %s from %s: %s",
        request.method,
        request.path,
        request.remote_addr,
        reason,
    )
    raise problem("request.csrf", reason=reason)


# --- headers -------------------------------------------------------------------------------------


def csp_nonce() -> str:
    """This response's nonce, for an inline ``<script nonce="{{ csp_nonce() }}">``."""
    nonce = g.get("_csp_nonce")
    if nonce is None:
        nonce = g._csp_nonce = secrets.token_urlsafe(16)
    return nonce


def content_security_policy(nonce: str | None, *, frame: bool, tiles_url: str) -> str:
    """The policy of one response: ``frame`` for the map document our pages show in an iframe.

    >>> content_security_policy(None, frame=True, tiles_url="https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    ... # doctest: +NORMALIZE_WHITESPACE
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:
    https://*.tiles.example.org; connect-src 'self'; frame-src 'self'; frame-ancestors 'self';
    form-action 'self'; base-uri 'none'; object-src 'none'"
    """
    inline = f" 'nonce-{nonce}'" if nonce else ""
    ancestors = "'self'" if frame else "'none'"
    images = "img-src 'self' data:"
    tiles = tiles_source(tiles_url)
    if tiles:
        images += f" {tiles}"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self'{inline}",
            f"style-src 'self'{inline}",
            images,
            "connect-src 'self'",
            "frame-src 'self'",
            f"frame-ancestors {ancestors}",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


def tiles_source(url: str) -> str:
    """The CSP source of a Leaflet tile URL template: its scheme and host, with a ``{s}``
    subdomain as a wildcard; "" for none.

    >>> tiles_source("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    'https://*.tile.example.org'
    >>> tiles_source("http://tiles.local:8080/{z}/{x}/{y}.png")
    'http://tiles.local:8080'
    >>> tiles_source("")
    ''
    """
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "SUBDOMAIN"))
    host = parts.netloc.replace("SUBDOMAIN", "*")
    if parts.scheme not in ("http", "https") or not host or "{" in host:
        # a template this cannot read: allow tiles from that scheme only
        return f"{parts.scheme or 'https'}:"
    return f"{parts.scheme}://{host}"


#: a ``<script`` or ``<style`` start tag
_INLINE_TAG = re.compile(r"<(script|style)(?=[\s>])", re.IGNORECASE)


def nonce_tags(html: str, nonce: str) -> str:
    """Give every ``<script>`` and ``<style>`` element of a map document the response's nonce.

    Sound for the documents of :mod:`geo.maps` only: every datum in them is written as JSON with
    ``<`` escaped (``geo.maps.build._js``, folium's ``tojson``), so each such tag in the document is
    one the builder wrote, never one a name or a figure brought in.

    >>> nonce_tags('<script src="/l.js"></script><style>a{}</style><script>f()</script>', "n")
    ... # doctest: +NORMALIZE_WHITESPACE
    '<script nonce="n" src="/l.js"></script><style nonce="n">a{}</style><script
    nonce="n">f()</script>'
    """
    return _INLINE_TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', html)


def add_security_headers(response: Response) -> Response:
    """The security headers of every response (see the module documentation)."""
    frame = request.endpoint in MAP_DOCUMENTS
    if frame and response.mimetype == "text/html" and not response.direct_passthrough:
        response.set_data(nonce_tags(response.get_data(as_text=True), csp_nonce()))
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(
        g.get("_csp_nonce"),
        frame=frame,
        tiles_url=str(current_app.config.get("MAP_TILES_URL") or ""),
    )
    headers["X-Frame-Options"] = "SAMEORIGIN" if frame else "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "static":
        # pages, exports and API answers hold child-level data: never kept by a browser or proxy
        headers["Cache-Control"] = "no-store"
    return response


# --- sign-in -------------------------------------------------------------------------------------


def guard_sign_in(
    session: SqlSession,
    username: str,
    verify: Callable[[], User | None],
    *,
    address: str,
    limits: Limits,
    surface: str,
    count_every_attempt: bool = True,
) -> User:
    """The transaction boundary of a sign-in attempt (the web sign-in page, the API's token
    endpoint, OpenRosa's Basic and Digest): :func:`clms.auth.limits.attempt_sign_in` in the
    request's ``session``, and the user it found.

    A refusal (``auth.rate_limited``, ``auth.locked``, ``auth.failed``) is committed here, its
    counts and audit entries, before it is raised: the error handler rolls the request's
    transaction back, and a refused attempt must still count. A success commits nothing: the
    caller commits with its own work (its ``auth.login`` entry).
    """
    attempt = attempt_sign_in(
        session, username, verify, address=address, limits=limits, surface=surface,
        count_every_attempt=count_every_attempt,
    )  # fmt: skip
    if attempt.refusal is not None:
        session.commit()
        raise attempt.refusal
    return attempt.user
