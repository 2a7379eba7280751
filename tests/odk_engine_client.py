"""Fill XForms with ODK's own web form engine (npm ``@getodk/xforms-engine``) from Python tests.

``fill_form`` runs ``tests/odk_engine/fill.mjs`` under Node and returns the submission payload
(the ``xml_submission_file`` part) exactly as ODK Web Forms would post it. Answers are keyed by
field name; see the header of ``fill.mjs`` for the format. The engine's packages are installed with
``npm ci --prefix tests/odk_engine``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ENGINE_DIR = Path(__file__).resolve().parent / "odk_engine"
FILL_SCRIPT = ENGINE_DIR / "fill.mjs"
ENGINE_PACKAGE = ENGINE_DIR / "node_modules" / "@getodk" / "xforms-engine" / "package.json"
JSDOM_PACKAGE = ENGINE_DIR / "node_modules" / "jsdom" / "package.json"
DEFAULT_TIMEOUT = 120


class OdkEngineError(RuntimeError):
    """The engine could not load the form, or rejected an answer. The message is node's stderr."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def node_executable() -> str | None:
    return os.environ.get("CLMS_NODE") or shutil.which("node")


def engine_available() -> bool:
    """True when node is on PATH and tests/odk_engine/node_modules holds the engine and jsdom."""
    return (
        node_executable() is not None
        and FILL_SCRIPT.is_file()
        and ENGINE_PACKAGE.is_file()
        and JSDOM_PACKAGE.is_file()
    )


def fill_form(
    form_xml: bytes,
    answers: dict,
    media: dict[str, bytes] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """Load ``form_xml`` in ODK's engine, answer it, and return the ``xml_submission_file`` bytes.

    ``media`` maps form attachment file names (``villages.csv``) to their contents; the engine
    fetches ``jr://file-csv/villages.csv`` and the like from there. Raises ``OdkEngineError``
    carrying node's stderr when the form does not load or an answer is not accepted (unknown
    field, choice not offered, constraint or required violation, ...).
    """
    node = node_executable()
    if node is None:
        raise OdkEngineError("node is not installed (needed for the ODK web form engine)")
    if not ENGINE_PACKAGE.is_file():
        raise OdkEngineError(
            f"@getodk/xforms-engine is not installed: run `npm ci --prefix {ENGINE_DIR}`"
        )
    if isinstance(form_xml, str):
        form_xml = form_xml.encode("utf-8")

    with tempfile.TemporaryDirectory(prefix="odk-engine-") as tmp:
        tmp_path = Path(tmp)
        form_path = tmp_path / "form.xml"
        answers_path = tmp_path / "answers.json"
        form_path.write_bytes(form_xml)
        answers_path.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
        args = [node, str(FILL_SCRIPT), str(form_path), str(answers_path)]
        if media:
            media_dir = tmp_path / "media"
            media_dir.mkdir()
            for name, content in media.items():
                safe = Path(name).name
                if safe != name or safe in ("", ".", ".."):
                    raise ValueError(f"media file name must be a plain file name: {name!r}")
                if isinstance(content, str):
                    content = content.encode("utf-8")
                (media_dir / safe).write_bytes(content)
            args.append(str(media_dir))
        try:
            proc = subprocess.run(
                args,
                cwd=tmp,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = (exc.stderr or b"").decode("utf-8", "replace")
            raise OdkEngineError(
                f"fill.mjs timed out after {timeout}s\n{stderr}", stderr=stderr
            ) from exc

    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise OdkEngineError(
            f"ODK engine failed (exit {proc.returncode}):\n{stderr.strip()}",
            returncode=proc.returncode,
            stderr=stderr,
        )
    if not proc.stdout.strip():
        raise OdkEngineError(f"ODK engine produced no payload\n{stderr.strip()}", stderr=stderr)
    return proc.stdout
