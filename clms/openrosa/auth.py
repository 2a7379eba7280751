"""Authentication as ODK Collect does it.

- HTTP Digest (RFC 7616, MD5, qop=auth) on any scheme: Collect answers a 401 that carries
  ``WWW-Authenticate: Digest ...`` by retrying with credentials.
- HTTP Basic, only over https (on plain http the password would cross the network in clear).
- A device token in the URL path, ``/key/<token>/...``, as ODK Central's app users: a wrong token
  is 403, not 401, because no credentials could fix it.

Nonces are stateless: a timestamp signed with the secret key, so every gunicorn worker can check a
nonce another worker issued. A nonce older than ``NONCE_SECONDS`` is answered with ``stale=true``
and Collect retries without asking the person again.

Passwords checked here (Digest and Basic) go through the same username lock and address limit as
the web sign-in (:mod:`clms.auth.limits`); only failed checks count towards the address limit,
since Collect authenticates every request it makes. A request without credentials is no attempt:
it gets the challenge. Device tokens are random 256-bit values, not guessable, and are revoked
rather than locked (``clms users revoke-tokens NAME --kind device``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from flask import current_app, g, request
from sqlalchemy import bindparam, select

from clms.auth import authenticate, user_for_token
from clms.auth.limits import Limits, guard_sign_in
from clms.db import db
from clms.errors import problem
from clms.models import User

NONCE_SECONDS = 15 * 60


def _sign(stamp: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"nonce:{stamp}".encode(), hashlib.sha256).hexdigest()[:32]


def make_nonce(now: float | None = None) -> str:
    stamp = str(int(now if now is not None else time.time()))
    return base64.urlsafe_b64encode(f"{stamp}:{_sign(stamp)}".encode()).decode()


def nonce_state(nonce: str, now: float | None = None) -> str:
    """``valid``, ``stale`` (genuine but old) or ``invalid``."""
    try:
        stamp, sig = base64.urlsafe_b64decode(nonce.encode()).decode().split(":", 1)
        issued = int(stamp)
    except (ValueError, UnicodeDecodeError):
        return "invalid"
    if not hmac.compare_digest(sig, _sign(stamp)):
        return "invalid"
    age = (now if now is not None else time.time()) - issued
    return "valid" if 0 <= age <= NONCE_SECONDS else "stale"


def challenge_headers(stale: bool = False) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401 (Digest; Basic too when the request is https)."""
    realm = current_app.config["DIGEST_REALM"]
    digest = (
        f'Digest realm="{realm}", qop="auth", algorithm=MD5, nonce="{make_nonce()}", '
        f'opaque="{hashlib.md5(realm.encode()).hexdigest()}"'
    )
    if stale:
        digest += ", stale=true"
    return {"WWW-Authenticate": digest}


def load_openrosa_user(device_token: str | None) -> None:
    """Set ``g.user`` from the device token, Digest or Basic credentials; None when absent.

    Raises 401 (with a fresh challenge) for wrong credentials and 403 for a bad device token.
    """
    g.user = None
    if device_token is not None:
        g.user = user_for_token(db(), device_token, kinds=("device",))
        if g.user is None:
            raise problem("auth.bad_device_token")
        return
    auth = request.authorization
    if auth is None:
        return
    if auth.type == "basic":
        if not request.is_secure:
            raise problem("auth.basic_needs_https")
        username, password = auth.username or "", auth.password or ""
        g.user = _guarded(username, lambda: authenticate(db(), username, password))
    elif auth.type == "digest":
        g.user = _check_digest(auth)
    else:
        raise problem("auth.failed")


_USER_BY_NAME = select(User).where(User.username == bindparam("username"))


def _guarded(username: str, verify) -> User:
    """``verify()`` under the username lock and the address limit (failures counted only)."""
    return guard_sign_in(
        db(),
        username,
        verify,
        address=request.remote_addr or "",
        limits=Limits.from_config(current_app.config),
        surface="openrosa",
        count_every_attempt=False,
    )


def _check_digest(auth) -> User:
    params = auth.parameters
    username = params.get("username", "")
    state = nonce_state(params.get("nonce", ""))
    if state == "invalid":
        # not a password guess (the nonce was never ours): refused without counting
        raise problem("auth.failed")
    user = _guarded(username, lambda: _digest_user(auth, username))
    if state == "stale":
        # right password, old nonce: ask again with stale=true so the client retries silently
        raise problem("auth.required", headers=challenge_headers(stale=True))
    return user


def _digest_user(auth, username: str) -> User | None:
    """The active user whose Digest response this is, or None."""
    params = auth.parameters
    nonce = params.get("nonce", "")
    user = db().scalar(_USER_BY_NAME, {"username": username})
    realm = current_app.config["DIGEST_REALM"]
    if user is None or not user.active or user.digest_ha1 is None or user.digest_realm != realm:
        return None
    # the digest covers the request-target as the client sent it (path and query)
    uri = params.get("uri", "")
    expected_uri = request.full_path if request.query_string else request.path
    if uri not in (expected_uri, request.path, request.url):
        return None
    ha2 = hashlib.md5(f"{request.method}:{uri}".encode()).hexdigest()
    qop = params.get("qop")
    if qop == "auth":
        nc, cnonce = params.get("nc", ""), params.get("cnonce", "")
        material = f"{user.digest_ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"
    elif qop is None:
        material = f"{user.digest_ha1}:{nonce}:{ha2}"
    else:
        return None
    expected = hashlib.md5(material.encode()).hexdigest()
    if not hmac.compare_digest(expected, params.get("response", "")):
        return None
    return user
