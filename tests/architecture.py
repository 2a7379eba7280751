"""Reads the map of ``ARCHITECTURE.md`` and the imports of every module, for
``tests/test_architecture.py`` (and ``python -m tests.architecture``, which lists what breaks it).

The map's table *Parts* gives each part its modules (dotted names; ``x.*`` is every module
below ``x``; the most specific pattern a module matches decides its part) and the parts it may
import. Every ``import`` and ``from ... import`` of a first-party module counts, wherever it is
in the file (an import inside a function is an arrow all the same).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clms", "forms", "geo", "alerts")
#: third-party packages the pure core may not import
FRAMEWORKS = ("flask", "sqlalchemy", "werkzeug", "jinja2", "click", "alembic", "psycopg")


@dataclass(frozen=True)
class Part:
    name: str
    patterns: tuple[str, ...]
    may_import: frozenset[str]


def parts(text: str | None = None) -> list[Part]:
    """The parts of the map's table (the rows under the heading *Parts*)."""
    text = text if text is not None else (ROOT / "ARCHITECTURE.md").read_text("utf-8")
    section = text.split("\n## Parts", 1)[1].split("\n## ", 1)[0]
    out = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("**"):
            continue
        name = cells[0].strip("*").strip()
        patterns = tuple(re.findall(r"`([\w.*]+)`", cells[1]))
        allowed = {p.strip() for p in re.findall(r"[\w-]+", cells[2])} - {"nothing", "else"}
        out.append(Part(name, patterns, frozenset(allowed | {name})))
    return out


def modules() -> dict[str, Path]:
    """Every first-party module (migrations aside: Alembic's scripts are not code we import)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, name: str) -> list[tuple[str, int]]:
    """The modules ``path`` imports (first-party and others), with the line of each import."""
    out = []
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # "from clms import audit" imports the module clms.audit (the arrow goes there, not
            # to the package clms); "from clms.db import db" imports clms.db
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return out


def part_of(module: str, table: list[Part]) -> Part | None:
    """The part whose most specific pattern ``module`` matches (None: no part claims it): a name
    written out beats any pattern with ``*``, a pattern of names' ends (``*_cli``) beats a
    package's ``x.*``, and a longer pattern a shorter one (``x.*`` also matches ``x`` itself)."""
    best, score = None, -1
    for part in table:
        for pattern in part.patterns:
            if "*" not in pattern:
                points = 1000 + len(pattern) if module == pattern else -1
            elif pattern.endswith(".*") and module == pattern[:-2]:
                points = len(pattern)
            elif fnmatchcase(module, pattern):
                # a pattern of names' ends (*_cli) says what a module is wherever it lives: it
                # beats a package's x.*, not a name written out
                points = len(pattern) + (500 if pattern.startswith("*") else 0)
            else:
                points = -1
            if points > score:
                best, score = part, points
    return best


def violations(table: list[Part] | None = None) -> list[str]:
    """Every module no part claims, and every arrow the map does not allow."""
    table = table if table is not None else parts()
    known = modules()
    out = []
    for name, path in known.items():
        part = part_of(name, table)
        if part is None:
            out.append(f"{name}: no part of ARCHITECTURE.md claims it")
            continue
        for target, line in imports(path, name):
            top = target.split(".", 1)[0]
            if part.name == "core" and top in FRAMEWORKS:
                out.append(f"{path.relative_to(ROOT)}:{line}: core imports {target}")
                continue
            if top not in PACKAGES:
                continue
            # the module itself if it exists, else the module it is a name of
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target not in known or target == name:
                continue
            other = part_of(target, table)
            if other is not None and other.name not in part.may_import:
                out.append(
                    f"{path.relative_to(ROOT)}:{line}: {name} ({part.name}) imports "
                    f"{target} ({other.name})"
                )
    return sorted(set(out))


if __name__ == "__main__":  # pragma: no cover - a listing for people
    found = violations()
    print("\n".join(found) or "The map holds.")
    print(f"{len(found)} problem(s)")
