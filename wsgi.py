"""WSGI entry point: ``gunicorn wsgi:app``."""

from clms import create_app

app = create_app()
