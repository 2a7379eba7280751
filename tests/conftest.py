"""Shared fixtures.

Every test that uses ``app`` runs twice: on SQLite and on a real PostgreSQL server that this test
setup starts (see ``tests/pgserver.py``). The schema is created once per database through the real
Alembic migrations, and the tables are emptied once.

Each test then runs in a transaction rolled back at its end (``tests/transactions.py``): the
application's every connection is the test's one connection, every transaction of the code
under test a savepoint in it, so that code commits and rolls back as it does in production and
nothing it commits outlives the test. A test that needs real, separate connections (threads,
processes, a live server, a second application on the same database) is marked
``@pytest.mark.committing``: its ``app`` commits for real and the tables are emptied after it.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import jinja2
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, select, text

import clms.db
from clms.app import create_app
from clms.auth.users import add_user
from clms.db import Base, session_scope
from clms.migrate import upgrade
from clms.models import Area, Brand, ServiceProvider, Supplier, SupplierVillage, Village
from tests.transactions import REFUSED, SecondConnection, rolled_back

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLMS_SHARED_DATA", ROOT.parent / "shared" / "data"))
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True, scope="session")
def password_hashing_once_per_password():
    """Each password is hashed once and each (hash, password) pair checked once for the whole run.

    Werkzeug's scrypt costs about 0.2 s a call, on purpose (it is what makes a stolen table slow to
    attack), and the suite creates thousands of users with the same few passwords and signs them
    in thousands of times: over half of its time went there. The hashes stay real scrypt hashes
    of the password, checked by the real function; only the repetition is saved. (Users made with
    one password share one salt here, which production never does: no test compares two users'
    hashes.)
    """
    import functools

    import clms.auth

    hashed = functools.lru_cache(maxsize=None)(clms.auth.generate_password_hash)
    checked = functools.lru_cache(maxsize=None)(clms.auth.check_password_hash)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clms.auth, "generate_password_hash", hashed)
        patch.setattr(clms.auth, "check_password_hash", checked)
        yield


def pytest_addoption(parser):
    parser.addoption(
        "--db",
        action="store",
        default="sqlite,postgresql",
        help="comma-separated databases to run database tests on (sqlite, postgresql)",
    )


def pytest_generate_tests(metafunc):
    if "database_url" in metafunc.fixturenames:
        dbs = [d.strip() for d in metafunc.config.getoption("--db").split(",") if d.strip()]
        if metafunc.definition.get_closest_marker("browser") and len(dbs) > 1:
            # the browser journey runs on one database (SQLite when asked for): the pages and
            # the operations under them are the same, and a browser run is the slow part
            dbs = ["sqlite"] if "sqlite" in dbs else dbs[:1]
        metafunc.parametrize("database_url", dbs, indirect=True, scope="session")


#: ``./dev test`` runs the suite on every core with pytest-xdist (``-n logical --dist loadgroup``):
#: each worker is a process with its session fixtures of its own (its PostgreSQL server, its
#: SQLite files). What is costly to start, or must not run twice at once, is kept on ONE worker:
#: these modules are each handed to a worker whole (:func:`pytest_xdist_make_scheduler`).
ONE_WORKER_MODULES = {
    # the real ODK Central (about 25 s to start), also asked for at run time (getfixturevalue)
    "tests/intake/test_central_real.py": "real-central",
    # the replica's streaming standby of the worker's PostgreSQL server
    "tests/replica/test_read_replica.py": "pg-standby",
    # gunicorn, schedulers and PostgreSQL servers killed against deadlines: one at a time, not
    # two at once; and the module's own PostgreSQL server that its tests stop and fill
    "tests/intake/test_failures.py": "failures",
    # its second test checks, in the same process, that what the first committed is gone
    "tests/test_rolled_back.py": "rolled-back",
}
#: the session fixtures behind those groups: a test that asks for one must be in its module
ONE_WORKER_FIXTURES = {"real_central": "real-central", "standby": "pg-standby"}


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with :data:`ONE_WORKER_MODULES` as groups, every other test handed
    out on its own as a worker becomes free.

    pytest-xdist's own loadgroup learns a test's ``xdist_group`` mark from a suffix it writes
    into the test's id; pytest 9.2 no longer lets it (pytest-xdist issue 1386), and every group
    is then silently run on every worker. The groups here are read off the test ids as they are.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class OneWorkerModules(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = ONE_WORKER_MODULES.get(nodeid.split("::")[0])
            return f"group:{group}" if group else super()._split_scope(nodeid)

    return OneWorkerModules(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """After pytest's own ordering: a test asking for a fixture of :data:`ONE_WORKER_FIXTURES`
    outside its module is refused (a second worker would start a second Central or standby);
    and, in a worker of a parallel run, the long tests come first, since one left for last would
    keep its worker busy after the others have finished (the order is the same in every worker,
    as xdist requires; a run without workers, ``-n 0`` or ``python -m pytest``, keeps pytest's)."""
    yield
    loose = [
        f"{item.nodeid} asks for {fixture}"
        for item in items
        for fixture, group in ONE_WORKER_FIXTURES.items()
        if fixture in getattr(item, "fixturenames", ())
        and ONE_WORKER_MODULES.get(item.nodeid.split("::")[0]) != group
    ]
    if loose:
        raise pytest.UsageError(
            "tests/conftest.py: put these tests' modules in ONE_WORKER_MODULES, so that one "
            "worker only starts what they share:\n" + "\n".join(loose)
        )
    if hasattr(config, "workerinput"):  # a worker of a parallel run
        items.sort(key=lambda item: not _long(item))


def _long(item) -> bool:
    """A test of many seconds: marked ``slow`` or ``browser`` (chromium), or a benchmark's run."""
    marked = item.get_closest_marker("slow") or item.get_closest_marker("browser")
    return bool(marked) or item.nodeid.startswith("tests/bench/")


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of our own for the whole run, stopped at the end."""
    from tests.pgserver import PostgresServer

    # not under pytest's tmp folder: that is private to root and the server runs as postgres
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="clms-pg-")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory):
    """The URL of a migrated, empty database of the requested kind, made once in a process.

    pytest sets this fixture up again whenever the tests go from one database to the other; a
    worker of a parallel run (``./dev test``) may come back to a database after tests of the
    other, and finds it as its last test left it, as if it had never left it."""
    if request.param in _DATABASES:
        return _DATABASES[request.param]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'clms.sqlite3'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database("clms_test")
    engine = create_engine(url)
    upgrade(engine)
    empty_tables(engine)  # the rows the migrations write (the audit log's head): as after a test
    engine.dispose()
    _DATABASES[request.param] = url
    return url


_DATABASES: dict[str, str] = {}  # database kind -> URL, for :func:`database_url`


class _CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once for the whole run, not once per test's application (every test
    application has the same environment: the key is the template and the checksum of its source,
    so an edited template is compiled again)."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = _CompiledTemplates()


@pytest.fixture
def app(request, database_url, tmp_path):
    """The application, in a transaction rolled back at the end of the test
    (``tests/transactions.py``); for a test marked ``committing``, on the database itself, whose
    tables are emptied after the test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clms.db, "make_engine", _engine_of_the_run)
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret",
                "TESTING": True,
                "SHARED_DATA": str(SHARED),
                "ODK_VALIDATE": "0",
            }
        )
    app.instance_path = str(tmp_path / "instance")
    app.test_client_class = BrowserClient  # sends the form's CSRF token, as a page does
    app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    engine = app.extensions["clms_engine"]
    listening = _listeners(engine)
    try:
        if request.node.get_closest_marker("committing"):
            try:
                yield app
            finally:
                empty_tables(engine)
        else:
            with rolled_back(app) as shared, pytest.MonkeyPatch.context() as patch:
                refusing = _refusing(database_url)
                for module in list(sys.modules.values()):  # and where it was imported
                    if getattr(module, "make_engine", None) is _MAKE_ENGINE:
                        patch.setattr(module, "make_engine", refusing)
                yield app
            assert not shared.problems, shared.problems[0]
    finally:
        engine.dispose()
    assert _listeners(engine) == listening, (
        "the test left an event listener on the run's engine: remove it (sqlalchemy.event.remove) "
        "before the test ends, or it would act in the tests after it"
    )


_ENGINES: dict[str, Engine] = {}
_MAKE_ENGINE = clms.db.make_engine


def _engine_of_the_run(url: str) -> Engine:
    """One engine per test database for the whole run (``clms.db.make_engine``'s), so that the
    SQL each statement compiles to is compiled once, not once per test's application. Its pool is
    emptied after each test (``dispose``)."""
    if url not in _ENGINES:
        _ENGINES[url] = _MAKE_ENGINE(url)
    return _ENGINES[url]


def _refusing(database_url: str):
    """``clms.db.make_engine`` during a rolled-back test: a second application on the test's
    database is refused at once (on SQLite it would wait for the write lock the test holds until
    the test times out)."""

    def make_engine(url: str) -> Engine:
        if url == database_url:
            raise SecondConnection(REFUSED)
        return _MAKE_ENGINE(url)

    return make_engine


def _listeners(engine: Engine) -> tuple:
    """How many listeners each event of ``engine`` and its pool has."""
    return tuple(
        (name, len(getattr(target.dispatch, name)))
        for target in (engine, engine.pool)
        for name in target.dispatch._event_names
    )


AUDIT_NO_DELETE = (
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END"
)


def empty_tables(engine: Engine) -> None:
    """Empty every table of the schema (once after the migrations, and after a test that
    committed for real)."""
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # forms <-> form_versions reference each other: break the cycle first
            conn.execute(text("UPDATE forms SET live_version_id = NULL"))
            conn.execute(text("UPDATE cases SET alert_id = NULL"))
            # the audit log is append-only (a trigger refuses DELETE): lifted for the emptying
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
            for table in tables:
                conn.execute(table.delete())
            conn.execute(text(AUDIT_NO_DELETE))


class BrowserClient(FlaskClient):
    """Flask's test client sending what a page's form sends: the session's CSRF token with every
    POST, PUT, PATCH and DELETE (``clms.security``), in the ``X-CSRF-Token`` header.

    The token is the one the session cookie holds; a client that has not loaded a page yet gets
    one in its session first, as a browser has after opening the form. A request that already
    names a token (a ``csrf_token`` field or the header), or passes ``csrf=False``, is sent as it
    is: that is how tests send a wrong token or none.
    """

    def open(self, *args, csrf: bool = True, **kwargs):
        from werkzeug.datastructures import Headers

        from clms.security import FIELD, HEADER, UNSAFE_METHODS

        method = str(kwargs.get("method") or "GET").upper()
        headers = Headers(kwargs.get("headers") or {})
        data = kwargs.get("data")
        named = HEADER in headers or (isinstance(data, dict) and FIELD in data)
        if csrf and method in UNSAFE_METHODS and not named and self._cookies is not None:
            headers[HEADER] = self.csrf_token()
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        """The CSRF token of this client's session (made there if it has none yet)."""
        from clms.security import SESSION_KEY

        with self.session_transaction() as session:
            token = session.get(SESSION_KEY)
            if not token:
                token = session[SESSION_KEY] = secrets.token_urlsafe(32)
        return token


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def phone(app, client, places, make_user):
    """Monitor awa's phone (scoped to CI-D1), with our forms published."""
    from alerts.profiles.store import ensure_profiles
    from forms.publish import ensure_builtin_forms
    from tests.openrosa_client import Phone

    make_user("awa", "monitor", areas=["CI-D1"])
    with session_scope(app) as s:
        ensure_builtin_forms(s)
        ensure_profiles(s, SHARED / "reference" / "dol_ilab_countries_2021.xml")
    return Phone(client, "awa", PASSWORD)


@pytest.fixture
def version(app, phone):
    """The live version of clms_household_visit."""
    from tests.submissions import live_version

    return live_version(app, "clms_household_visit")


@pytest.fixture
def process(app):
    """Run the submission processor (clms.intake.process) until nothing is waiting; returns its
    result.

    The OpenRosa endpoint only stores what arrives; tests call this where production's
    ``clms scheduler`` would pick the submissions up.
    """
    from clms.intake.process import process_received

    return lambda: process_received(app.extensions["clms_sessionmaker"], config=app.config)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def places(app):
    """A small region: two departments with two villages each, three suppliers in tiers.

    Codes: region CI-R1; departments CI-D1, CI-D2; villages V1, V2 (in D1), V3, V4 (in D2);
    suppliers T1-EXP (tier 1), T2-COOP (tier 2, buys in V1-V3), T3-GRP (tier 3, buys in V4).
    """
    with session_scope(app) as s:
        country = Area(code="CI", name="Côte d'Ivoire", level="country", country_code="CIV")
        region = Area(code="CI-R1", name="Nawa", level="region", country_code="CIV", parent=country)
        d1 = Area(
            code="CI-D1", name="Soubré", level="department", country_code="CIV", parent=region
        )
        d2 = Area(
            code="CI-D2", name="Méagui", level="department", country_code="CIV", parent=region
        )
        s.add_all([country, region, d1, d2])
        s.flush()
        villages = [
            Village(code="V1", name="Gnamagui", area_id=d1.id, lat=5.78, lon=-6.59),
            Village(code="V2", name="Lobakuya", area_id=d1.id, lat=5.70, lon=-6.61),
            Village(code="V3", name="Oupoyo", area_id=d2.id, lat=5.55, lon=-6.90),
            Village(code="V4", name="Zogbodoua", area_id=d2.id, lat=5.52, lon=-6.95),
        ]
        s.add_all(villages)
        suppliers = [
            Supplier(code="T1-EXP", name="Coastal Cocoa Export", tier=1),
            Supplier(code="T2-COOP", name="Coop Soubré Espoir", tier=2),
            Supplier(code="T3-GRP", name="Groupement Méagui Sud", tier=3),
        ]
        s.add_all(suppliers)
        s.add(Brand(code="BRAND-A", name="Brand A Chocolate"))
        s.flush()
        for v in villages[:3]:
            s.add(SupplierVillage(supplier_id=suppliers[1].id, village_id=v.id))
        s.add(SupplierVillage(supplier_id=suppliers[2].id, village_id=villages[3].id))
    return {"villages": ["V1", "V2", "V3", "V4"], "suppliers": ["T1-EXP", "T2-COOP", "T3-GRP"]}


@pytest.fixture
def make_user(app):
    """Create a user: ``make_user("awa", "monitor", areas=["CI-D1"])``; password is PASSWORD."""

    def make(
        username: str, role: str, areas=(), brand: str | None = None, email=None, provider=None
    ):
        with session_scope(app) as s:
            if role == "provider" and provider is None:
                # A provider user works for an organisation; tests that do not care get one.
                provider = "TEST-PROVIDER"
                if (
                    s.scalar(select(ServiceProvider.id).where(ServiceProvider.code == provider))
                    is None
                ):
                    s.add(ServiceProvider(code=provider, name="Test provider", kind="ngo"))
                    s.flush()
            user = add_user(
                s,
                username=username,
                role=role,
                password=PASSWORD,
                realm=app.config["DIGEST_REALM"],
                scope_codes=list(areas),
                brand_code=brand,
                email=email,
                provider_code=provider,
            )
            return user.id

    return make


@pytest.fixture(scope="module")
def browser():
    """Headless chromium (tests/browser.py) for a browser test module; each person in it gets a
    context of their own."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
