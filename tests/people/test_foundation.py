"""The foundation: migrations, users and roles, sign-in, bearer tokens, the CLI."""

from __future__ import annotations

from sqlalchemy import select

from clms.db import session_scope
from clms.models import User
from tests.conftest import PASSWORD


def test_users_add_reads_password_from_stdin_and_scopes_areas(app, runner, places):
    result = runner.invoke(
        args=["users", "add", "awa", "--role", "monitor", "--area", "CI-D1", "--area", "V3"],
        input="a strong passphrase\n",
    )
    assert result.exit_code == 0, result.output
    with session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == "awa"))
        assert user.role == "monitor"
        assert "a strong passphrase" not in user.password_hash
        assert len(user.scopes) == 2


def test_users_add_refuses_unknown_area_and_missing_scope(app, runner, places):
    bad = runner.invoke(
        args=["users", "add", "xena", "--role", "officer", "--area", "NOPE"],
        input="a strong passphrase\n",
    )
    assert bad.exit_code != 0 and "Unknown area or village code 'NOPE'" in bad.output
    none = runner.invoke(
        args=["users", "add", "yao", "--role", "monitor"], input="a strong passphrase\n"
    )
    assert none.exit_code != 0 and "needs at least one area or village" in none.output
    short = runner.invoke(args=["users", "add", "zoe", "--role", "admin"], input="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    with session_scope(app) as s:
        assert s.scalars(select(User)).all() == []


def test_areas_lists_area_and_village_codes(runner, places):
    result = runner.invoke(args=["areas"])
    assert result.exit_code == 0
    for code in ["CI", "CI-R1", "CI-D1", "CI-D2", "V1", "V4"]:
        assert code in result.output


def test_api_session_returns_bearer_token(client, make_user, places):
    make_user("olga", "officer", areas=["CI-D1"])
    bad = client.post("/api/v1/sessions", json={"username": "olga", "password": "wrong password"})
    assert bad.status_code == 401 and bad.json["code"] == "401.2"
    missing = client.post("/api/v1/sessions", json={"username": "olga"})
    assert missing.status_code == 400 and "password" in missing.json["message"]
    ok = client.post("/api/v1/sessions", json={"username": "olga", "password": PASSWORD})
    assert ok.status_code == 201
    token = ok.json["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["role"] == "officer"
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_web_login_and_logout(client, make_user, places):
    make_user("ada", "admin")
    assert client.get("/").status_code == 302
    fail = client.post("/login", data={"username": "ada", "password": "nope nope nope"})
    assert fail.status_code == 401 and b"Wrong username or password" in fail.data
    ok = client.post("/login?next=//evil.example/", data={"username": "ada", "password": PASSWORD})
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert b"Welcome" in client.get("/").data
    client.post("/logout")
    assert client.get("/").status_code == 302


def test_every_route_declares_its_roles(app):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        if not getattr(view, "allowed_roles", None):
            missing.append(f"{rule.rule} ({rule.endpoint})")
    assert missing == []


def test_init_migrates_and_publishes_our_forms_once(app, runner):
    from clms.models import Form

    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    assert "Published clms_household_visit" in first.output
    again = runner.invoke(args=["init"])
    assert again.exit_code == 0 and "Published" not in again.output
    with session_scope(app) as s:
        assert sorted(s.scalars(select(Form.xml_form_id))) == [
            "clms_followup",
            "clms_household_visit",
            "clms_report",
        ]
    assert "Seeded 10 country profiles" in first.output
    assert "Seeded" not in again.output


def test_the_migrations_build_exactly_the_schema_the_models_declare(app):
    """A model changed without a migration (or the reverse) fails here, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from clms.db import Base
    from clms.migrate import include_object

    with app.extensions["clms_engine"].connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        assert compare_metadata(context, Base.metadata) == []
