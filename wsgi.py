"""WSGI entry point: ``gunicorn wsgi:app``."""

from clms.app import create_app

app = create_app()
