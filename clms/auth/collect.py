"""ODK Collect's configuration QR code for a phone's device token.

Collect configures a project from a QR code holding its settings: the JSON of the ``general``
(unprotected) and ``admin`` (protected) settings and of the ``project`` (name, icon, colour),
zlib-compressed (deflate with the zlib header, as ``java.util.zip.Deflater`` writes it) and then
base64-encoded without line breaks. Collect reads it back the other way (base64, inflate, JSON),
checks it against its settings schema, and keeps only the keys and values the schema knows: a key
it does not know is dropped without a word, so :data:`GENERAL` uses only keys of that schema
(``settings/src/main/resources/client-settings.schema.json`` in getodk/collect; the test checks
each one). ODK Central and KoboToolbox make their QR codes the same way.

The server URL holds the device token (``<base>/key/<token>``, :mod:`clms.openrosa`): the phone
then needs no username or password, as an app user of ODK Central. The code is shown once, with
the token, and never stored: it *is* the token.

>>> payload = collect_payload(collect_settings("https://clms.example/key/abc", "CLMS awa", "awa"))
>>> settings_of_payload(payload)["general"]["server_url"]
'https://clms.example/key/abc'
"""

from __future__ import annotations

import base64
import json
import zlib

import segno
from markupsafe import Markup

#: the general settings an app user's phone gets, as ODK Central's "managed" QR code sets them:
#: forms on the phone match the server's exactly (new versions come, withdrawn forms go) and
#: finished visits are sent as soon as there is any connection
GENERAL = {
    "form_update_mode": "match_exactly",
    "periodic_form_updates_check": "every_one_hour",
    "autosend": "wifi_and_cellular",
}


def server_url(base_url: str, token: str) -> str:
    """The OpenRosa server URL of a device token: ``<base>/key/<token>`` (no slash at the end:
    Collect adds ``/formList`` and ``/submission`` to it)."""
    return f"{base_url.rstrip('/')}/key/{token}"


def collect_settings(url: str, project_name: str, username: str) -> dict:
    """The settings a phone of ``username`` is configured with: the server ``url`` (with the
    token), the forms and sending as :data:`GENERAL` says, the person's username in the forms'
    metadata, and a project named ``project_name`` (Collect shows it on its projects list).
    ``admin`` stays empty (Collect requires the object): the phone's own protections are its
    administrator's choice."""
    return {
        "general": {"server_url": url, **GENERAL, "metadata_username": username},
        "admin": {},
        "project": {"name": project_name, "icon": "C", "color": "#1f6f8b"},
    }


def collect_payload(settings: dict) -> str:
    """The text of the QR code: the settings' JSON, zlib-compressed, base64-encoded."""
    text = json.dumps(settings, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def settings_of_payload(payload: str) -> dict:
    """The settings a QR code's text holds, read as Collect reads them (the reverse of
    :func:`collect_payload`)."""
    return json.loads(zlib.decompress(base64.b64decode(payload, validate=True)).decode("utf-8"))


def qr_code(payload: str) -> segno.QRCode:
    """The QR code of ``payload``: a full QR code (never a Micro QR, which phones' scanners do
    not all read), error correction L as ODK Central uses (the payload is long; a screen is a
    clean surface)."""
    return segno.make_qr(payload, error="l", boost_error=False)


def qr_svg(payload: str) -> Markup:
    """The QR code as an inline SVG element (no file on disk, no XML declaration), scaled by the
    page's CSS; markup a template writes as it is (segno draws it from the modules of the code:
    nothing of the payload is in it as text)."""
    svg = qr_code(payload).svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title="ODK Collect", omitsize=True
    )
    return Markup(svg)  # noqa: S704 (drawn by segno, no text of ours in it: tested)
