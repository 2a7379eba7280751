"""Benchmarks of CLMS. They are run by hand, never by the test suite.

- ``python -m bench.ingest``: OpenRosa submission ingest under real gunicorn, against a floor.
"""
