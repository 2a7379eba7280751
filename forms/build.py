"""Building our XForms from their XLSForm sources.

The sources are Markdown XLSForms in ``forms/xlsform/`` (readable diffs); the XForms built from
them are committed in ``forms/build/`` so that the server publishes exactly the reviewed bytes
(``forms.publish.ensure_builtin_forms``). Rebuild with ``clms forms build`` after every change to a
source, and raise the version in its settings sheet.

>>> [p.name for p in sources()]
['clms_followup.md', 'clms_household_visit.md', 'clms_report.md']
"""

from __future__ import annotations

from pathlib import Path

from clms.errors import DomainProblem, Problem
from forms.convert import convert_xlsform, read_xform
from forms.publish import BUILD_DIR, XLSFORM_DIR


class BuildError(DomainProblem):
    """A source did not build; the message names the source and the problem
    (``form.build_failed``)."""

    KEY = "form.build_failed"


def sources(source_dir: Path = XLSFORM_DIR) -> list[Path]:
    """The XLSForm sources, by name."""
    return sorted(source_dir.glob("*.md"))


def build_form(source: Path, validate: bool = True) -> tuple[str, bytes, list[str]]:
    """Compile one source; returns ``(form_id, xform_bytes, warnings)``.

    The form id must be the source's file name (``clms_report.md`` -> ``clms_report``): the server
    and the parser know our forms by these names.
    """
    try:
        xml, warnings = convert_xlsform(
            source.name, source.read_bytes(), kind="md", validate=validate, pretty=True
        )
        info = read_xform(xml, source.name)
    except Problem as p:
        raise BuildError(f"{source.name}: {p.message}") from p
    if info.form_id != source.stem:
        raise BuildError(
            f"{source.name}: the settings sheet's form_id is '{info.form_id}'; "
            f"it must be the file name '{source.stem}'."
        )
    return info.form_id, xml, warnings


def build_forms(
    out_dir: Path = BUILD_DIR,
    validate: bool = True,
    warnings: dict[str, list[str]] | None = None,
    source_dir: Path = XLSFORM_DIR,
) -> list[Path]:
    """Compile every source to ``<out_dir>/<form_id>.xml``; returns the paths written.

    Parameters
    ----------
    out_dir:
        Where the XForms go (``forms/build`` by default: the committed build).
    validate:
        Check each XForm with ODK Validate (needs java).
    warnings:
        If given, pyxform's warnings are added to it by form id.
    source_dir:
        Where the Markdown XLSForms are.

    Raises
    ------
    BuildError
        On the first source that does not build; no file is written for it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources(source_dir):
        form_id, xml, form_warnings = build_form(source, validate=validate)
        path = out_dir / f"{form_id}.xml"
        path.write_bytes(xml)
        written.append(path)
        if warnings is not None:
            warnings[form_id] = form_warnings
    return written
