"""Authentication as ODK Collect does it.

- HTTP Digest (RFC 7616, MD5, qop=auth) on any scheme: Collect answers a 401 that carries
  ``WWW-Authenticate: Digest ...`` by retrying with credentials.
- HTTP Basic, only over https (on plain http the password would cross the network in clear).
- A device token in the URL path, ``/key/<token>/...``, as ODK Central's app users: a wrong token
  is 403, not 401, because no credentials could fix it.

Nonces are a timestamp signed with the secret key, so every gunicorn worker can check a nonce
another worker issued. A nonce older than ``NONCE_SECONDS`` is answered with ``stale=true`` and
Collect retries without asking the person again. Each (nonce, ``nc``) pair is accepted once: the
highest request count used with a nonce is kept in the database (``digest_nonces``, where every
worker and every process sees it, until the nonce expires), and a request that repeats or lowers
it gets a fresh challenge with ``stale=true`` (its credentials were right). So an Authorization
header captured on the network cannot be sent again with another body, while an honest client
(Collect, ``requests``' ``HTTPDigestAuth``) counts ``nc`` up with each request and never meets the
refusal. Digest without ``qop`` (RFC 2069, which has no request count) is refused: Collect and
every current client answer the ``qop="auth"`` this server offers.

A phone configured the KoboToolbox way puts a username in the address (``/<username>/formList``):
it signs in as at the root, and the name must be the person's own (compared without case, as kpi
lowercases it). Another person's name is 403 and a name nobody has is 404, both only once the
person has signed in, so the address tells a stranger nothing about who has an account.

Passwords checked here (Digest and Basic) go through the same username lock and address limit as
the web sign-in (:mod:`clms.auth.limits`); only failed checks count towards the address limit,
since Collect authenticates every request it makes. A request without credentials is no attempt:
it gets the challenge. Device tokens are random 256-bit values, not guessable, and are revoked
rather than locked (``clms users revoke-tokens NAME --kind device``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time

from flask import current_app, g, request
from sqlalchemy import bindparam, delete, select, update

from clms.auth import authenticate, user_for_token
from clms.auth.limits import Limits
from clms.db import db
from clms.errors import problem
from clms.models import User
from clms.security import guard_sign_in

NONCE_SECONDS = 15 * 60


def _sign(stamp: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"nonce:{stamp}".encode(), hashlib.sha256).hexdigest()[:32]


def make_nonce(now: float | None = None) -> str:
    """A new nonce: when it was issued, random bytes (two challenges of the same second differ,
    so that each is used by one client only) and a signature over both."""
    stamp = f"{int(now if now is not None else time.time())}.{secrets.token_hex(8)}"
    return base64.urlsafe_b64encode(f"{stamp}:{_sign(stamp)}".encode()).decode()


def _issued(nonce: str) -> int:
    """When a nonce (checked by :func:`nonce_state`) was issued, in seconds since the epoch."""
    stamp = base64.urlsafe_b64decode(nonce.encode()).decode().split(":", 1)[0]
    return int(stamp.split(".", 1)[0])


def nonce_state(nonce: str, now: float | None = None) -> str:
    """``valid``, ``stale`` (genuine but old) or ``invalid``."""
    try:
        stamp, sig = base64.urlsafe_b64decode(nonce.encode()).decode().split(":", 1)
        issued = int(stamp.split(".", 1)[0])
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
_USERNAME_TAKEN = select(User.id).where(User.username == bindparam("username"))


def check_address_user(address_username: str | None) -> None:
    """Refuse a signed-in person who uses an address under another's username (403) or under a
    username nobody has (404). Nothing to check without a username in the address or before the
    person has signed in (the view's ``allow`` answers with the challenge)."""
    user = g.get("user")
    if address_username is None or user is None:
        return
    wanted = address_username.lower()
    if wanted == user.username.lower():
        return
    if db().scalar(_USERNAME_TAKEN, {"username": wanted}) is None:
        raise problem("openrosa.unknown_user_address", username=address_username[:80])
    raise problem("auth.other_users_address", username=address_username[:80], you=user.username)


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
    nonce = params.get("nonce", "")
    state = nonce_state(nonce)
    if state == "invalid" or params.get("qop") != "auth" or _count(params) is None:
        # not a password guess (the nonce was never ours, or no request count to check it by):
        # refused without counting
        raise problem("auth.failed")
    user = _guarded(username, lambda: _digest_user(auth, username))
    # the request's transaction (only reads so far) ends here and gives its connection back to
    # the pool before the nonce is recorded on a connection of its own: a request never holds two
    # connections at once, or as many requests as the pool has connections, each holding one and
    # waiting for a second, would wait for each other until the pool's timeout (503s)
    db().commit()
    if state == "stale" or not _first_use(nonce, _count(params)):
        # right password, but an old nonce or a (nonce, nc) already used (a replay, or requests
        # overtaking each other): ask again with stale=true so the client retries silently
        raise problem("auth.required", headers=challenge_headers(stale=True))
    return user


def _count(params) -> int | None:
    """The request count ``nc`` (8 hexadecimal digits), or None when it is not one. Counts from
    2**31 up are refused too (no client makes two thousand million requests with one nonce in
    fifteen minutes, and the column keeping the highest count is a 32-bit integer)."""
    nc = params.get("nc", "")
    if len(nc) != 8:
        return None
    try:
        count = int(nc, 16)
    except ValueError:
        return None
    return count if count < 2**31 else None


def _first_use(nonce: str, nc: int) -> bool:
    """Record that ``nonce`` was used with the count ``nc``; False when it was already used with
    ``nc`` or a higher count. In a transaction of its own (the request's is read-only), committed
    at once, so that every worker sees it; expired nonces are dropped as new ones arrive."""
    from clms.db import engine, insert_ignoring_conflict
    from clms.models import DigestNonce, utcnow

    # kept a while past the nonce's life, so that hosts whose clocks differ a little agree
    expires = dt.datetime.fromtimestamp(_issued(nonce) + NONCE_SECONDS + 300, dt.UTC)
    table = DigestNonce.__table__
    with engine().begin() as conn:
        raised = conn.execute(
            update(table).where(table.c.nonce == nonce, table.c.nc < nc).values(nc=nc)
        ).rowcount
        if raised:
            return True
        added = insert_ignoring_conflict(
            conn, table, {"nonce": nonce, "nc": nc, "expires_at": expires}, ["nonce"]
        )
        if added:
            conn.execute(delete(table).where(table.c.expires_at < utcnow()))
        return bool(added)


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
