"""``GET /health``: what a load balancer in front of several web hosts asks each of them. 200 when
the worker answers and reaches the primary database, 503 when it cannot; public, and it says
nothing else."""

from __future__ import annotations

from clms.app import create_app


def test_a_host_that_reaches_its_database_is_healthy(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == "ok\n"
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_host_that_cannot_reach_its_database_is_not(tmp_path):
    # a database file in a folder that does not exist: every connection fails
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'clms.sqlite3'}",
            "SECRET_KEY": "k",
            "TESTING": True,
        }
    )
    answer = app.test_client().get("/health")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "60"
