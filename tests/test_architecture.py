"""The map (ARCHITECTURE.md) is true: every module belongs to a part, every import follows an
arrow the map allows, the pure core loads neither Flask nor SQLAlchemy, and no module or function
grows past what a newcomer can hold in their head without saying why."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.architecture import ROOT, Part, modules, part_of, parts, violations

#: lines a module may have (migrations and benchmarks aside)
MAX_MODULE_LINES = 800
#: lines of code (its docstring aside) a function may have unless its docstring says why it must
#: be one piece
MAX_FUNCTION_LINES = 100
#: words a long function's docstring uses to say why it is one piece
ONE_PIECE = ("one piece", "on purpose")


def test_every_import_follows_an_arrow_of_the_map():
    assert violations() == []


def test_the_map_reads_as_it_should():
    """The checker itself: a made-up map with a forbidden arrow is caught, parts are chosen by
    the most specific pattern, and an import inside a function counts."""
    table = parts(
        "\n## Parts\n\n| part | modules | may import |\n|---|---|---|\n"
        "| **core** | `clms.i18n`, `geo.privacy` | nothing else |\n"
        "| **data** | `clms.models`, `clms.*` | core |\n"
        "| **roof** | `clms.web.*`, `*_cli` | core, data |\n"
    )
    assert part_of("clms.i18n", table).name == "core"
    assert part_of("clms.db", table).name == "data"
    assert part_of("clms.web.views", table).name == "roof"
    assert part_of("clms.supply_cli", table).name == "roof"
    assert part_of("forms.parse", table) is None
    found = violations(table)
    # the real code imports clms.models from the web (allowed) and has modules no part claims
    assert any("no part of ARCHITECTURE.md claims it" in line for line in found)
    assert not any("clms.web.views (roof) imports clms.models" in line for line in found)


def test_every_part_of_the_map_names_modules_that_exist():
    """A pattern that matches no module is a map gone stale."""
    names = list(modules())
    for part in parts():
        for pattern in part.patterns:
            alone = Part(part.name, (pattern,), part.may_import)
            assert any(part_of(name, [alone]) is alone for name in names), (part.name, pattern)


def test_the_pure_core_loads_neither_flask_nor_sqlalchemy():
    """Each module of the core imported alone in a fresh interpreter: nothing of Flask,
    SQLAlchemy or a database driver is loaded."""
    table = parts()
    names = sorted(n for n in modules() if getattr(part_of(n, table), "name", None) == "core")
    assert len(names) > 20
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'sqlalchemy', 'werkzeug', 'psycopg', 'alembic'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def _functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_and_functions_stay_small(name):
    path = modules()[name]
    text = path.read_text("utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path}: split it by what it does"
    for node in _functions(ast.parse(text)):
        # the lines of code: from the first statement after the docstring to the end
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        length = (node.end_lineno - body[0].lineno + 1) if body else 0
        if length > MAX_FUNCTION_LINES:
            doc = ast.get_docstring(node) or ""
            assert any(words in doc for words in ONE_PIECE), (
                f"{path}:{node.lineno} {node.name} has {length} lines of code: split it, or say "
                f"in its docstring why it must be one piece"
            )


#: the modules below the roof that may read the application: the request's session
#: (``clms.db.db()``/``engine()``) is found through it
READS_THE_APPLICATION = frozenset({"clms.db"})


def test_nothing_below_the_roof_reads_the_application():
    """Configuration is read from the application by the views, jobs and commands (the roof) and
    passed down as arguments: no module of another part mentions ``current_app``."""
    table = parts()
    found = []
    for name, path in modules().items():
        part = part_of(name, table)
        if part is None or part.name == "roof" or name in READS_THE_APPLICATION:
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if "current_app" in line:
                found.append(f"{path.relative_to(ROOT)}:{number} ({part.name}): {line.strip()}")
    assert not found, (
        "below the roof, settings come as arguments (the view, job or command reads "
        "current_app.config and passes them down):\n" + "\n".join(found)
    )


#: what a view may take from SQLAlchemy: names of types, never a way to build a query
VIEW_MAY_IMPORT_FROM_SQLALCHEMY = frozenset({"Row"})


def _is_view(name: str) -> bool:
    return name.startswith(("clms.web.", "clms.api.")) or name == "clms.openrosa.views"


def test_views_hold_no_sql():
    """SQL lives in the operations and queries of the features: a view (web pages, the API,
    OpenRosa's endpoints) imports nothing from SQLAlchemy that builds a query."""
    found = []
    for name, path in modules().items():
        if not _is_view(name):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                names = {alias.name for alias in node.names} - VIEW_MAY_IMPORT_FROM_SQLALCHEMY
                if names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {sorted(names)}")
            elif isinstance(node, ast.Import) and any(
                alias.name.startswith("sqlalchemy") for alias in node.names
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: import sqlalchemy")
    assert not found, "move the query to the feature's queries or operations:\n" + "\n".join(found)
    assert any(_is_view(name) for name in modules())  # the test reads something
