"""The pull sources admins manage: an ODK Central form or a KoboToolbox asset, and the account that
may read it. Credentials are encrypted before they reach the database (:mod:`forms.credentials`)
and never shown back. Every operation flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clms.errors import DomainProblem
from clms.models import PullRetry, PullSource
from forms.credentials import Credentials, decrypt_credentials, encrypt_credentials

log = logging.getLogger(__name__)

KINDS = ("central", "kobo")
SERVICES = {"central": "ODK Central", "kobo": "KoboToolbox"}
CREDENTIAL_FIELDS = {"central": ("email", "password"), "kobo": ("token",)}


@dataclass
class SourceSummary:
    """A pull source as people see it: everything but the credentials."""

    id: int
    name: str
    kind: str
    base_url: str
    project_id: str | None
    remote_form_id: str
    enabled: bool
    cursor: str | None
    last_pull_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    pulled_total: int
    created_at: dt.datetime | None
    waiting: int = 0  # submissions on its retry list

    @property
    def service(self) -> str:
        return SERVICES.get(self.kind, self.kind)


@dataclass
class WaitingSubmission:
    """A submission on a source's retry list, as admins see it."""

    source_id: int
    source_name: str
    instance_id: str | None
    remote_id: str
    submitted_at: str | None
    code: str
    message: str
    attempts: int
    first_failed_at: dt.datetime
    last_tried_at: dt.datetime


class SourceInvalid(DomainProblem, ValueError):
    """A source cannot be saved as given (``sources.invalid``); ``errors`` maps each field to
    what is wrong with it."""

    KEY = "sources.invalid"

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(
            "; ".join(f"{name}: {message}" for name, message in errors.items()), fields=errors
        )


def add_source(
    session: Session,
    name: str,
    kind: str,
    base_url: str,
    remote_form_id: str,
    credentials: dict,
    project_id: str | None = None,
    *,
    enabled: bool = True,
    key: str,
) -> PullSource:
    """Add a pull source; its credentials are encrypted before they reach the database.

    ``credentials`` is ``{"email", "password"}`` for ODK Central and ``{"token"}`` for Kobo.
    ``key`` is the application's ``CREDENTIALS_KEY`` (the caller reads it; a missing one raises
    ValueError). Flushes, never commits. Raises :class:`SourceInvalid` naming each field that is
    wrong.

    >>> add_source(s, "nawa", "central", "https://central.example.org",
    ...            "clms_household_visit", {"email": "pull@example.org", "password": "..."},
    ...            project_id="3", key=app.config["CREDENTIALS_KEY"])  # doctest: +SKIP
    """
    errors: dict[str, str] = {}
    kind = (kind or "").strip()
    if kind not in KINDS:
        errors["kind"] = f"must be one of {', '.join(KINDS)} (got {kind!r})"
    values = _clean(session, errors, kind, name, base_url, remote_form_id, project_id)
    secrets = _clean_credentials(errors, kind, credentials or {}, old=None)
    if errors:
        raise SourceInvalid(errors)
    source = PullSource(
        kind=kind,
        credentials=encrypt_credentials(secrets, _key(key)),
        enabled=enabled,
        pulled_total=0,
        **values,
    )
    session.add(source)
    session.flush()
    log.info("pull source %r added (%s %s)", source.name, kind, source.base_url)
    return source


def update_source(
    session: Session,
    source_id: int,
    *,
    name: str | None = None,
    base_url: str | None = None,
    remote_form_id: str | None = None,
    project_id: str | None = None,
    credentials: dict | None = None,
    enabled: bool | None = None,
    reset_cursor: bool = False,
    key: str | None,
) -> PullSource:
    """Change a source; None keeps a value, and a blank credential keeps the stored one.

    Pointing it at another server, project or form starts its cursor again (ingest recognises
    what is already stored). The kind cannot change: add another source. ``key`` is the
    application's ``CREDENTIALS_KEY`` (the caller reads it), which new credentials need (a missing
    one then raises ValueError). Flushes, never commits.
    """
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    errors: dict[str, str] = {}
    values = _clean(
        session,
        errors,
        source.kind,
        source.name if name is None else name,
        source.base_url if base_url is None else base_url,
        source.remote_form_id if remote_form_id is None else remote_form_id,
        source.project_id if project_id is None else project_id,
        existing_id=source.id,
    )
    sealed = None
    given = {k: v for k, v in (credentials or {}).items() if (v or "").strip()}
    if given:
        old = decrypt_credentials(source.credentials, _key(key))
        secrets = _clean_credentials(errors, source.kind, given, old=old)
        if not errors:
            sealed = encrypt_credentials(secrets, _key(key))
    if errors:
        raise SourceInvalid(errors)
    moved = any(
        getattr(source, k) != values[k] for k in ("base_url", "project_id", "remote_form_id")
    )
    for k, v in values.items():
        setattr(source, k, v)
    if sealed is not None:
        source.credentials = sealed
    if enabled is not None:
        source.enabled = enabled
    if reset_cursor or moved:
        source.cursor = source.changes_cursor = None
    session.flush()
    log.info("pull source %r changed", source.name)
    return source


def set_source_enabled(session: Session, source_id: int, enabled: bool) -> PullSource:
    """Enable or disable a source (a disabled one is left out of :func:`pull_all`)."""
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    source.enabled = enabled
    session.flush()
    return source


def remove_source(session: Session, source_id: int) -> None:
    """Delete a source; the submissions pulled from it stay."""
    source = session.get(PullSource, source_id)
    if source is None:
        raise LookupError(f"There is no pull source with id {source_id}.")
    session.delete(source)
    session.flush()


def list_sources(session: Session) -> list[SourceSummary]:
    """Every source by name, without credentials, with how many submissions wait on its retry
    list."""
    waiting = dict(
        session.execute(
            select(PullRetry.source_id, func.count()).group_by(PullRetry.source_id)
        ).all()
    )
    return [
        replace(_summary(s), waiting=waiting.get(s.id, 0))
        for s in session.scalars(select(PullSource).order_by(PullSource.name))
    ]


def waiting_submissions(session: Session) -> list[WaitingSubmission]:
    """Every source's retry list: the submissions a pull could not take, by source name and
    oldest failure first. Each is tried again at every pull and leaves once stored."""
    rows = session.execute(
        select(PullRetry, PullSource.name)
        .join(PullSource, PullSource.id == PullRetry.source_id)
        .order_by(PullSource.name, PullRetry.first_failed_at, PullRetry.id)
    ).all()
    return [
        WaitingSubmission(
            r.source_id,
            name,
            r.instance_id,
            r.remote_id,
            r.submitted_at,
            r.code,
            r.message,
            r.attempts,
            r.first_failed_at,
            r.last_tried_at,
        )  # fmt: skip
        for r, name in rows
    ]


def get_source(session: Session, source_id: int) -> SourceSummary | None:
    """One source without credentials, or None."""
    source = session.get(PullSource, source_id)
    return _summary(source) if source is not None else None


def source_id_by_name(session: Session, name: str) -> int | None:
    """The id of the source called ``name``, or None."""
    return session.scalar(select(PullSource.id).where(PullSource.name == name))


def _summary(source: PullSource) -> SourceSummary:
    return SourceSummary(
        id=source.id, name=source.name, kind=source.kind, base_url=source.base_url,
        project_id=source.project_id, remote_form_id=source.remote_form_id,
        enabled=source.enabled, cursor=source.cursor, last_pull_at=source.last_pull_at,
        last_success_at=source.last_success_at, last_error=source.last_error,
        pulled_total=source.pulled_total or 0, created_at=source.created_at,
    )  # fmt: skip


def _clean(
    session: Session,
    errors: dict[str, str],
    kind: str,
    name: str | None,
    base_url: str | None,
    remote_form_id: str | None,
    project_id: str | None,
    existing_id: int | None = None,
) -> dict:
    """Checked and normalised values of a source's plain fields; problems go into ``errors``."""
    name = (name or "").strip()
    if not name:
        errors["name"] = "is required"
    elif len(name) > 100:
        errors["name"] = "must be at most 100 characters"
    else:
        other = session.scalar(select(PullSource.id).where(PullSource.name == name))
        if other is not None and other != existing_id:
            errors["name"] = f"there is already a source called {name!r}"

    url = (base_url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors["base_url"] = f"must be an http:// or https:// address (got {url[:100]!r})"
    elif parts.username or parts.password:
        errors["base_url"] = "must not hold a user name or password: use the credentials fields"
    elif parts.query or parts.fragment:
        errors["base_url"] = "must be the server's address, without ? or #"
    elif len(url) > 500:
        errors["base_url"] = "must be at most 500 characters"
    else:
        # people paste the API root they read in the documentation
        for suffix in ("/v1",) if kind == "central" else ("/api/v2", "/api/v2/assets"):
            url = url.removesuffix(suffix)

    form_id = (remote_form_id or "").strip()
    label = "the xmlFormId" if kind == "central" else "the asset uid"
    if not form_id:
        errors["remote_form_id"] = f"is required ({label})"
    elif len(form_id) > 200 or "/" in form_id or any(c.isspace() for c in form_id):
        errors["remote_form_id"] = f"must be {label}: no spaces or '/', at most 200 characters"

    project = (str(project_id).strip() if project_id is not None else "") or None
    if kind == "central":
        if project is None:
            errors["project_id"] = "is required for ODK Central (the number in the project's URL)"
        elif not project.isdigit():
            errors["project_id"] = f"must be a number (got {project[:40]!r})"
    else:
        project = None
    return {"name": name, "base_url": url, "remote_form_id": form_id, "project_id": project}


def _clean_credentials(
    errors: dict[str, str], kind: str, given: dict, old: Credentials | None
) -> dict[str, str]:
    """The credentials to store: ``given`` over ``old``; missing ones go into ``errors``."""
    wanted = CREDENTIAL_FIELDS.get(kind, ())
    merged = {k: (old or {}).get(k, "") for k in wanted}
    for k in wanted:
        value = (given.get(k) or "").strip() if k != "password" else (given.get(k) or "")
        if value:
            merged[k] = value
    for k in wanted:
        if not merged[k]:
            errors[k] = "is required"
    if kind == "central" and merged.get("email") and "@" not in merged["email"]:
        errors["email"] = "must be the email address of the ODK Central account"
    return merged


def _key(key: str | None) -> str:
    """The credentials key the caller gave (the application's ``CREDENTIALS_KEY``)."""
    if not key:
        raise ValueError(
            "no credentials key: pass key=, the application's CREDENTIALS_KEY "
            "(CLMS_CREDENTIALS_KEY), to encrypt or decrypt a pull source's credentials"
        )
    return str(key)
