"""The ODK Collect configuration QR code of a device token: a real QR decoder reads it back, and
what it holds is what Collect accepts (its settings schema), and configures the server URL with
the token that the OpenRosa endpoints take."""

from __future__ import annotations

import base64
import io
import json
import zlib

import jsonschema
import pytest
import zxingcpp
from PIL import Image

from clms.auth.collect import (
    GENERAL,
    collect_payload,
    collect_settings,
    qr_code,
    qr_svg,
    server_url,
    settings_of_payload,
)

# What Collect accepts, from getodk/collect settings/src/main/resources/client-settings.schema.json
# (commit 137f3259b18e5af3c08339f9016278b277812cc2, August 2026), for the keys we set. Collect
# validates a scanned configuration against that schema (settings/.../validation/
# JsonSchemaSettingsValidator.kt), then imports only the keys the schema lists and the values of
# their enums (importing/SettingsImporter.kt: isKeySupported, isValueSupported): an unknown key or
# value is dropped without a word. So every key here is closed (additionalProperties false): a
# key we add that Collect does not know fails this test instead of being silently ignored.
COLLECT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "type": "object",
    "required": ["general", "admin"],  # Collect refuses a configuration without either
    "additionalProperties": False,
    "properties": {
        "project": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "icon": {"type": "string"},
                "color": {"type": "string"},
            },
        },
        "general": {
            "type": "object",
            "additionalProperties": False,
            "required": ["server_url"],
            "properties": {
                "server_url": {"type": "string"},
                "form_update_mode": {"enum": ["manual", "previously_downloaded", "match_exactly"]},
                "periodic_form_updates_check": {
                    "enum": [
                        "every_fifteen_minutes",
                        "every_one_hour",
                        "every_six_hours",
                        "every_24_hours",
                    ]
                },
                "autosend": {"enum": ["off", "wifi_only", "cellular_only", "wifi_and_cellular"]},
                "metadata_username": {"type": "string"},
            },
        },
        # the protected settings: every key of Collect's schema is a boolean but admin_pw; we set
        # none (the phone's protections are its administrator's choice)
        "admin": {"type": "object", "maxProperties": 0},
    },
}

TOKEN = "Zx9-_aB3" * 5 + "q1w"  # the shape of secrets.token_urlsafe(32): 43 characters


def decode_png(png: bytes) -> str:
    """The text of the one QR code in a PNG image, read by zxing-cpp."""
    image = Image.open(io.BytesIO(png)).convert("L")
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, found
    return found[0].text


def settings_for(username="awa", name="CLMS · Awa Koné", base="https://clms.example.org"):
    return collect_settings(server_url(base, TOKEN), name, username)


def test_the_qr_code_decodes_to_settings_collect_accepts():
    settings = settings_for()
    payload = collect_payload(settings)
    png = io.BytesIO()
    qr_code(payload).save(png, kind="png", scale=4, border=4)
    text = decode_png(png.getvalue())
    assert text == payload
    # as Collect reads it (CompressionUtils.decompress): base64 without line breaks, then
    # java.util.zip.Inflater (zlib header), then JSON
    assert "\n" not in text
    read = json.loads(zlib.decompressobj().decompress(base64.b64decode(text)).decode("utf-8"))
    assert read == settings == settings_of_payload(text)
    jsonschema.validate(read, COLLECT_SCHEMA)
    assert read["general"]["server_url"] == f"https://clms.example.org/key/{TOKEN}"
    assert read["general"]["form_update_mode"] == "match_exactly"
    assert read["general"]["autosend"] == "wifi_and_cellular"
    assert read["general"]["metadata_username"] == "awa"
    assert read["project"]["name"] == "CLMS · Awa Koné"  # non-ASCII survives the round trip


def test_the_schema_check_would_catch_a_key_or_value_collect_drops():
    """The test above can fail: Collect's schema refuses these, so must ours."""
    for broken in (
        {**settings_for(), "general": {**settings_for()["general"], "server": "x"}},
        {**settings_for(), "general": {**settings_for()["general"], "autosend": "always"}},
        {"general": settings_for()["general"]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, COLLECT_SCHEMA)


def test_every_general_setting_is_one_collect_knows():
    known = COLLECT_SCHEMA["properties"]["general"]["properties"]
    for key, value in GENERAL.items():
        assert key in known and value in known[key]["enum"]


@pytest.mark.parametrize(
    "base", ["https://clms.example.org/", "https://x.org/clms", "http://h:8080"]
)
def test_the_server_url_is_the_base_and_the_token_path(base):
    url = server_url(base, TOKEN)
    assert url == base.rstrip("/") + f"/key/{TOKEN}"
    assert not url.endswith("/")  # Collect adds /formList and /submission itself


def test_the_longest_settings_still_make_a_readable_code():
    """A long project name and a long base URL still give one QR code a phone reads."""
    settings = settings_for(
        "u" * 80, "CLMS · " + "Nom très long " * 4, "https://" + "a" * 60 + ".org"
    )
    payload = collect_payload(settings)
    code = qr_code(payload)
    assert code.is_micro is False and code.version <= 20
    png = io.BytesIO()
    code.save(png, kind="png", scale=3, border=4)
    assert settings_of_payload(decode_png(png.getvalue())) == settings


def test_the_svg_is_inline_and_carries_no_size_or_script():
    svg = qr_svg(collect_payload(settings_for()))
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert "<script" not in svg and "style=" not in svg  # the pages' CSP forbids inline styles
    assert 'class="segno"' in svg and "width=" not in svg.split(">", 1)[0]


def test_nothing_of_the_payload_is_written_as_text_in_the_svg():
    """The SVG is written into the page as it is: it must hold no text from the settings (a
    full name is typed by a person), only the drawn modules."""
    settings = settings_for(name='CLMS · <script>alert("x")</script>')
    svg = str(qr_svg(collect_payload(settings)))
    assert "<script" not in svg and "alert" not in svg and "CLMS" not in svg
