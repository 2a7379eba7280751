"""``READ_DATABASE_URL`` is a PostgreSQL standby of a PostgreSQL primary, or nothing: anything
else stops the start with the reason; unset, there is no replica and every read is the primary's.
"""

from __future__ import annotations

import pytest

from clms.app import create_app
from clms.config import load_config

PG = "postgresql+psycopg://clms@db-primary/clms"


def test_a_replica_of_sqlite_is_refused(tmp_path):
    with pytest.raises(ValueError, match="CLMS_DATABASE_URL is not PostgreSQL"):
        load_config(
            str(tmp_path), {"READ_DATABASE_URL": "postgresql+psycopg://clms@db-replica/clms"}
        )


def test_a_replica_that_is_not_postgresql_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must be a PostgreSQL URL.*'sqlite'"):
        load_config(
            str(tmp_path), {"DATABASE_URL": PG, "READ_DATABASE_URL": "sqlite:///replica.sqlite3"}
        )


def test_a_negative_lag_is_refused(tmp_path):
    with pytest.raises(ValueError, match="CLMS_READ_MAX_LAG_SECONDS is -1"):
        load_config(
            str(tmp_path),
            {"DATABASE_URL": PG, "READ_DATABASE_URL": PG, "READ_MAX_LAG_SECONDS": -1},
        )


def test_the_lag_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLMS_READ_MAX_LAG_SECONDS", "120")
    assert load_config(str(tmp_path))["READ_MAX_LAG_SECONDS"] == 120


def test_unset_there_is_no_replica(tmp_path):
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": "k", "TESTING": True}
    )
    assert "clms_replica" not in app.extensions
    assert app.config["READ_DATABASE_URL"] == ""
