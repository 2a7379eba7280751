"""The OpenRosa 1.0 server that ODK Collect, KoboCollect and Enketo talk to.

Served three times, by the same view functions: at the root (Digest, or Basic over https), under
``/key/<device_token>/`` for devices configured with a token URL, as ODK Central's app users are,
and under ``/<username>/`` for phones configured the KoboToolbox way (KoboCollect's server address
``https://<server>/<username>``, as kpi serves ``/<username>/formList`` and
``/<username>/submission``). Under ``/<username>/`` the person signs in as at the root, and the
name in the address must be their own (:func:`clms.openrosa.auth.check_address_user`); the form
list and manifests then give addresses under the same prefix, so the phone keeps using it.
"""

from __future__ import annotations

import contextlib

from flask import Blueprint, Flask, g, request

from clms.db import db, read_only
from clms.errors import problem

bp = Blueprint("openrosa", __name__)


@bp.url_value_preprocessor
def _pop_token(_endpoint, values):
    g.device_token = values.pop("device_token", None) if values else None
    g.address_username = values.pop("username", None) if values else None


@bp.url_defaults
def _add_token(endpoint, values):
    if endpoint.startswith("openrosa_key.") and g.get("device_token"):
        values.setdefault("device_token", g.device_token)
    if endpoint.startswith("openrosa_user.") and g.get("address_username"):
        values.setdefault("username", g.address_username)


@bp.before_request
def _openrosa_request():
    """Check the protocol version, then who is asking.

    Authentication is a read-only transaction of its own, ended here: on SQLite it does not queue
    for the database's single write lock, and a submission's XML is then parsed outside any
    transaction.
    """
    version = request.headers.get("X-OpenRosa-Version")
    if version != "1.0":
        raise problem("request.openrosa_version", got=version)
    from clms.openrosa.auth import check_address_user, load_openrosa_user

    session = db()
    read_only(session)
    try:
        load_openrosa_user(g.get("device_token"))
        check_address_user(g.get("address_username"))
    except BaseException:
        # the error is the answer (401, 403, or 503 when the database failed): a commit here
        # would raise again on a broken transaction and hide it (PendingRollbackError, a 500)
        with contextlib.suppress(Exception):
            session.rollback()
        raise
    session.commit()


from clms.openrosa import views  # noqa: E402,F401  (routes register on import)


def register(app: Flask) -> None:
    """Mount the OpenRosa routes at the root, under the device-token prefix and under a
    username (KoboCollect's way). Static addresses of the application win over ``/<username>/``:
    Werkzeug matches a fixed path segment before a variable one."""
    app.register_blueprint(bp)
    app.register_blueprint(bp, name="openrosa_key", url_prefix="/key/<device_token>")
    app.register_blueprint(bp, name="openrosa_user", url_prefix="/<username>")
