"""The one configuration object, read from the environment.

Every setting has a safe default that runs with no set-up (SQLite in the instance folder) and can be
overridden by an environment variable of the same name prefixed with ``CLMS_``. Tests pass a dict to
:func:`clms.app.create_app` instead.

| variable | default | meaning |
|---|---|---|
| CLMS_DATABASE_URL | sqlite:///<instance>/clms.sqlite3 | SQLAlchemy URL (production: PostgreSQL) |
| CLMS_READ_DATABASE_URL | (empty: the primary) | its PostgreSQL streaming replica (heavy reads) |
| CLMS_READ_MAX_LAG_SECONDS | 30 | a replica further behind (or down): the primary answers |
| CLMS_SECRET_KEY | random, kept in <instance>/secret_key | signs sessions and nonces |
| CLMS_MAX_SUBMISSION_BYTES | 10485760 (10 MiB) | largest OpenRosa POST accepted; larger gets 413 |
| CLMS_DIGEST_REALM | CLMS | realm of HTTP Digest authentication (changing it invalidates digests) |
| CLMS_TRUST_PROXY | 0 | number of reverse proxies whose X-Forwarded-* headers are trusted |
| CLMS_TOKEN_HOURS | 24 | lifetime of a bearer token from POST /api/v1/sessions |
| CLMS_DEVICE_TOKEN_DAYS | 180 | lifetime of a phone's device token (`clms users renew-token`) |
| CLMS_ODK_VALIDATE | auto | run ODK Validate when publishing: auto (if java is present), 1, 0 |
| CLMS_SHARED_DATA | ../shared/data next to the checkout | where `clms demo` reads public data |
| CLMS_BASE_URL | (from the request) | public URL: formList links behind a proxy, Collect QR codes |
| CLMS_CREDENTIALS_KEY | random, in <instance>/credentials_key | encrypts pull-source credentials |
| CLMS_SMTP_HOST | (empty: mail is kept, not sent) | SMTP server for notifications |
| CLMS_SMTP_PORT | 25 | its port |
| CLMS_SMTP_USER, CLMS_SMTP_PASSWORD | (empty) | SMTP login, if the server wants one |
| CLMS_SMTP_STARTTLS | 0 | 1: upgrade the connection with STARTTLS before logging in |
| CLMS_MAIL_FROM | clms@localhost | sender address of notifications |
| CLMS_PULL_MINUTES | 15 | how often the scheduler pulls each ODK Central / Kobo source |
| CLMS_PULL_PAGE_SIZE | 250 | submissions asked for per page when pulling |
| CLMS_PULL_ATTEMPTS | 5 | tries per request on 429, 5xx or a lost connection, with backoff |
| CLMS_PULL_LOOKBACK_MINUTES | 15 | a pull reads again this far behind its cursors (late arrivals) |
| CLMS_PULL_KOBO_RECHECK_DAYS | 30 | days of a Kobo source re-read at each pull for changes |
| CLMS_DIGEST_HOUR | 6 | hour (UTC) of the daily digest of medium and low alerts |
| CLMS_CASE_CLOSURE_FOLLOWUPS | 2 | follow-ups finding the child out of child labour, to close |
| CLMS_CASE_CLOSURE_GAP_DAYS | 30 | days between the first and the last of them, at least |
| CLMS_CASE_FOLLOWUP_DAYS | 30 | days from a follow-up (or the plan) to the next follow-up due |
| CLMS_CASE_REOPEN_DAYS | 365 | a closed case reopens if the child works again within these days |
| CLMS_REFERRAL_RESPONSE_DAYS | 5 | days a provider has to answer a referral (urgent: 24 hours) |
| CLMS_GPS_FAR_METRES | 5000 | a visit's GPS point further from the chosen village gets a review |
| CLMS_PRIVACY_MIN_CHILDREN | 10 | brands see no figure of a cell with fewer children (raise only) |
| CLMS_PRIVACY_MIN_HOUSEHOLDS | 5 | nor of a cell with fewer households (raise only) |
| CLMS_BRAND_PERIOD_MONTHS | 3 | brands see periods of this many months (1, 2, 3, 4, 6, 12) |
| CLMS_BRAND_PERIOD_FIRST_MONTH | 1 | the month a year's first period begins (10: cocoa year) |
| CLMS_BRAND_PERIOD_GRACE_DAYS | 30 | a period is shown to brands this many days after it ends |
| CLMS_LANGUAGES | en,fr | languages offered, among those with a catalogue (clms/translations) |
| CLMS_MAP_TILES_URL | (empty: no basemap) | Leaflet tile URL template of your own tile server |
| CLMS_MAP_TILES_ATTRIBUTION | (empty) | its attribution line |
| CLMS_MAX_CHILDREN_PER_SUBMISSION | 100 | more children in one visit: held for review, unsaved |
| CLMS_SESSION_MINUTES | 480 | a web session ends after this much inactivity |
| CLMS_SESSION_MAX_HOURS | 12 | and after this long from sign-in, however active |
| CLMS_SESSION_COOKIE_SECURE | auto | session cookie Secure: auto (on https requests), 1, 0 |
| CLMS_LOGIN_MAX_FAILURES | 5 | failed sign-ins in a row that lock a username |
| CLMS_LOGIN_LOCK_MINUTES | 15 | how long the lock lasts (`clms users unlock` ends it early) |
| CLMS_LOGIN_RATE_PER_MINUTE | 20 | sign-in attempts per minute from one address before 429 |
| CLMS_PASSWORD_MIN_LENGTH | 10 | shortest password accepted (raise only) |
| CLMS_RETENTION_YEARS | 5 | a child whose cases all closed this long ago is anonymised (0: never) |
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

_INT_SETTINGS = {
    "MAX_SUBMISSION_BYTES", "TRUST_PROXY", "TOKEN_HOURS", "DEVICE_TOKEN_DAYS", "SESSION_MINUTES",
    "SMTP_PORT", "READ_MAX_LAG_SECONDS",
    "SMTP_STARTTLS", "PULL_MINUTES", "DIGEST_HOUR", "PULL_PAGE_SIZE", "PULL_ATTEMPTS",
    "PULL_LOOKBACK_MINUTES",
    "PULL_KOBO_RECHECK_DAYS",
    "CASE_CLOSURE_FOLLOWUPS", "CASE_CLOSURE_GAP_DAYS", "CASE_FOLLOWUP_DAYS", "CASE_REOPEN_DAYS",
    "REFERRAL_RESPONSE_DAYS", "GPS_FAR_METRES", "PRIVACY_MIN_CHILDREN", "PRIVACY_MIN_HOUSEHOLDS",
    "MAX_CHILDREN_PER_SUBMISSION", "SESSION_MAX_HOURS",
    "BRAND_PERIOD_MONTHS", "BRAND_PERIOD_FIRST_MONTH", "BRAND_PERIOD_GRACE_DAYS",
    "LOGIN_MAX_FAILURES", "LOGIN_LOCK_MINUTES", "LOGIN_RATE_PER_MINUTE", "PASSWORD_MIN_LENGTH",
    "RETENTION_YEARS",
}  # fmt: skip

DEFAULTS: dict[str, object] = {
    "DATABASE_URL": None,  # filled from the instance path
    # a PostgreSQL streaming replica of DATABASE_URL for the heavy reads (clms.db.Replica); how far
    # behind it may be and still be read
    "READ_DATABASE_URL": "",
    "READ_MAX_LAG_SECONDS": 30,
    "SECRET_KEY": None,  # filled from the instance path
    "MAX_SUBMISSION_BYTES": 10 * 1024 * 1024,
    "DIGEST_REALM": "CLMS",
    "TRUST_PROXY": 0,
    "TOKEN_HOURS": 24,
    # a phone's device token (clms.auth.users): a lost phone's stops working by itself
    "DEVICE_TOKEN_DAYS": 180,
    "SESSION_MINUTES": 8 * 60,
    "ODK_VALIDATE": "auto",
    "SHARED_DATA": str(Path(__file__).resolve().parents[2] / "shared" / "data"),
    "BASE_URL": "",
    "CREDENTIALS_KEY": None,  # filled from the instance path
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": 0,
    "MAIL_FROM": "clms@localhost",
    "PULL_MINUTES": 15,
    "PULL_PAGE_SIZE": 250,
    "PULL_ATTEMPTS": 5,
    # a server may make a submission visible after a newer one (Central writes attachments after
    # createdAt, Kobo back-dates _submission_time): every pull reads this far behind its cursors
    "PULL_LOOKBACK_MINUTES": 15,
    # kpi has no modified time: a Kobo source's last days are listed again at each pull
    # (forms.pull.kobo_changes)
    "PULL_KOBO_RECHECK_DAYS": 30,
    "DIGEST_HOUR": 6,
    # the case workflow's policy (clms.cases.workflow.Policy; domain.md section 5)
    "CASE_CLOSURE_FOLLOWUPS": 2,
    "CASE_CLOSURE_GAP_DAYS": 30,
    "CASE_FOLLOWUP_DAYS": 30,
    "CASE_REOPEN_DAYS": 365,
    "REFERRAL_RESPONSE_DAYS": 5,
    # where a visit is (geo.join) and what brands may see (geo.privacy; domain.md section 8)
    "GPS_FAR_METRES": 5000,
    "PRIVACY_MIN_CHILDREN": 10,
    "PRIVACY_MIN_HOUSEHOLDS": 5,
    # the reporting periods brands may see (geo.periods): a fixed grid, never overlapping,
    # published once a period has ended and its late visits have had time to arrive
    "BRAND_PERIOD_MONTHS": 3,
    "BRAND_PERIOD_FIRST_MONTH": 1,
    "BRAND_PERIOD_GRACE_DAYS": 30,
    # basemap tiles (geo.maps): none by default, a tile server learns where people look
    # the languages the pages are offered in: codes with a catalogue in clms/translations
    "LANGUAGES": "en,fr",
    "MAP_TILES_URL": "",
    "MAP_TILES_ATTRIBUTION": "",
    # a household visit naming more children is no household: kept as received, held for review
    # with the limit named, never half-saved (forms.store)
    "MAX_CHILDREN_PER_SUBMISSION": 100,
    # signing in (clms.auth): sessions end after inactivity and after a fixed lifetime; a
    # username is locked after failures in a row; one address may only try so often
    "SESSION_MAX_HOURS": 12,
    "SESSION_COOKIE_SECURE": "auto",
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCK_MINUTES": 15,
    "LOGIN_RATE_PER_MINUTE": 20,
    "PASSWORD_MIN_LENGTH": 10,
    # data protection (clms.dataprotection): closed cases' children anonymised after this long
    "RETENTION_YEARS": 5,
}


def load_config(instance_path: str, overrides: dict | None = None) -> dict[str, object]:
    """Return the settings: defaults, then ``CLMS_*`` environment variables, then ``overrides``.

    >>> cfg = load_config("/tmp/x", {"DATABASE_URL": "sqlite://"})
    >>> cfg["DATABASE_URL"]
    'sqlite://'
    """
    cfg = dict(DEFAULTS)
    for key in DEFAULTS:
        env = os.environ.get(f"CLMS_{key}")
        if env is not None and env != "":
            cfg[key] = int(env) if key in _INT_SETTINGS else env
    for key, value in (overrides or {}).items():
        cfg[key.removeprefix("CLMS_")] = value
    for key in ("PRIVACY_MIN_CHILDREN", "PRIVACY_MIN_HOUSEHOLDS", "PASSWORD_MIN_LENGTH"):
        if int(cfg[key]) < int(DEFAULTS[key]):  # domain.md section 8: only ever stricter
            raise ValueError(
                f"CLMS_{key} is {cfg[key]}: it may be raised above {DEFAULTS[key]}, never lowered."
            )
    from geo.periods import ReportingGrid

    ReportingGrid.from_config(cfg)  # a grid that does not divide a year is refused at start
    if not cfg["DATABASE_URL"]:
        cfg["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'clms.sqlite3'}"
    _check_read_database(cfg)
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _instance_secret(Path(instance_path))
    if not cfg["CREDENTIALS_KEY"]:
        cfg["CREDENTIALS_KEY"] = _instance_secret(Path(instance_path), "credentials_key")
    return cfg


def _check_read_database(cfg: dict) -> None:
    """A read replica is a PostgreSQL standby of a PostgreSQL primary: anything else stops the
    start with the reason (SQLite has no replicas; a typo must not silently read elsewhere)."""
    url = str(cfg.get("READ_DATABASE_URL") or "")
    if not url:
        return
    if not url.startswith("postgresql"):
        raise ValueError(
            "CLMS_READ_DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg://...), the "
            f"address of a streaming replica; it begins {url.split(':', 1)[0]!r}."
        )
    if not str(cfg["DATABASE_URL"]).startswith("postgresql"):
        raise ValueError(
            "CLMS_READ_DATABASE_URL is set but CLMS_DATABASE_URL is not PostgreSQL: a read replica "
            "is a PostgreSQL standby of a PostgreSQL primary; unset it."
        )
    if int(cfg["READ_MAX_LAG_SECONDS"]) < 0:
        raise ValueError(
            f"CLMS_READ_MAX_LAG_SECONDS is {cfg['READ_MAX_LAG_SECONDS']}: it must be 0 or more."
        )


def _instance_secret(instance: Path, name: str = "secret_key") -> str:
    """A random key kept in the instance folder, so it survives restarts without set-up."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / name
    if not path.exists():
        # O_EXCL: two workers starting at once must agree on one key
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        except FileExistsError:
            pass
    return path.read_text().strip()


def gps_far_km(config: Mapping | None = None) -> float:
    """``GPS_FAR_METRES`` of ``config`` in km: a visit's GPS point further than this from the
    village chosen in the form is held for review (forms.store) and counts against its monitor
    (alerts.kpis). The default without a configuration (or without the setting)."""
    metres = config.get("GPS_FAR_METRES") if config is not None else None
    return float(metres if metres is not None else DEFAULTS["GPS_FAR_METRES"]) / 1000


def max_children_per_submission(config: Mapping | None = None) -> int:
    """``MAX_CHILDREN_PER_SUBMISSION`` of ``config``: the most children one household visit may
    name (the default without a configuration, or without the setting)."""
    value = config.get("MAX_CHILDREN_PER_SUBMISSION") if config is not None else None
    return int(value if value is not None else DEFAULTS["MAX_CHILDREN_PER_SUBMISSION"])
