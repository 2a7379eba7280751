"""Fixtures of the intake tests: a real ODK Central, started once per test session
(tests/central_server.py)."""

from __future__ import annotations

import pytest

from tests.central_server import real_central_server


@pytest.fixture(scope="session")
def real_central():
    yield from real_central_server()
