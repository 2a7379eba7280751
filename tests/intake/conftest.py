"""Fixtures of the intake tests: a real ODK Central, started once per test session
(tests/central_server.py), and the double of one for what a real server will not do on demand
(tests/central_double.py)."""

from __future__ import annotations

import pytest

from tests.central_double import CentralDouble
from tests.central_server import real_central_server


@pytest.fixture(scope="session")
def real_central():
    yield from real_central_server()


@pytest.fixture
def central():
    double = CentralDouble().start()
    yield double
    double.stop()
