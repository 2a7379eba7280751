"""The product's application plus one bench-only route, ``POST /bench/floor``.

The floor is the least a server can do with an OpenRosa submission and still be honest: read the
multipart part, parse the XML safely (:func:`forms.xmlsafe.parse_xml`, the product's own parser) and
store the raw bytes with one INSERT and one commit, through the product's engine and request
session. No authentication, no form lookup, no households or children. Full ingest is measured
against it.

gunicorn loads it as ``'bench.floor_app:create()'`` with ``CLMS_DATABASE_URL`` and
``CLMS_SECRET_KEY`` in the environment. The route exists only in this bench app, never in the
product; the bench creates the ``bench_floor`` table itself (:data:`FLOOR`), next to the product's
tables, before gunicorn starts. Like the product's OpenRosa routes, it is a phone's POST, not a
browser's form: it lives on a blueprint of the OpenRosa family (``openrosa_bench``), which the
CSRF check leaves to their own authentication, as it does ``/submission``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, insert

from clms.app import create_app
from clms.db import db
from clms.errors import openrosa_message, problem
from clms.openrosa.responses import openrosa_response
from forms.xmlsafe import instance_ids, parse_xml

FLOOR_METADATA = MetaData()
FLOOR = Table(
    "bench_floor",
    FLOOR_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_id", String(200), nullable=False),
    Column("xml", LargeBinary, nullable=False),
)

FLOOR_PATH = "/bench/floor"


def create(test_config: dict | None = None) -> Flask:
    """``clms.app.create_app`` with the floor route added."""
    app = create_app(test_config)
    floor = Blueprint("openrosa_bench", __name__)

    @floor.post(FLOOR_PATH)
    def bench_floor():
        part = request.files.get("xml_submission_file")
        if part is None:
            raise problem("submission.file_missing")
        data = part.read()
        root = parse_xml(data)
        instance_id, _ = instance_ids(root)
        if instance_id is None:
            raise problem("submission.instance_id_missing")
        session = db()
        session.execute(insert(FLOOR).values(instance_id=instance_id, xml=data))
        session.commit()
        return openrosa_response(openrosa_message("Form received successfully."), 201)

    app.register_blueprint(floor)
    return app
