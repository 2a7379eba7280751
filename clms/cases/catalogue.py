"""The service catalogue and the service providers: seeded, listed, edited by administrators.

The catalogue is data, not code (domain.md section 5): :data:`SERVICES` is only the seed that
``clms init`` and the demo load when a code is missing; administrators change names, urgency and
ages, add services and retire them (a retired service stays on the cases that used it). Its codes
are those of the follow-up form's ``services_received`` list, so a monitor's report of a service
received finds the planned service it delivers.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.errors import Problem, field_errors
from clms.i18n import Msg
from clms.models import Area, ServiceProvider, ServiceType

#: (code, English, French, urgent, min age, max age); the seed of the catalogue
SERVICES: tuple[tuple[str, str, str, bool, int | None, int | None], ...] = (
    ("school_enrolment", "School enrolment or re-enrolment",
     "Inscription ou réinscription à l'école", False, None, None),
    ("school_kit_costs", "School kit or school costs", "Kit scolaire ou frais de scolarité",
     False, None, None),
    ("bridging_classes", "Bridging classes", "Classes passerelles", False, None, None),
    ("birth_certificate", "Birth certificate", "Acte de naissance", False, None, None),
    ("vocational_training", "Vocational training, or a move to non-hazardous decent work (15-17)",
     "Formation professionnelle, ou passage à un travail décent non dangereux (15-17 ans)",
     False, 15, 17),
    ("health_care", "Health care", "Soins de santé", True, None, None),
    ("psychosocial_support", "Psychosocial support", "Soutien psychosocial", False, None, None),
    ("legal_aid", "Legal aid", "Aide juridique", False, None, None),
    ("cash_transfer", "Cash transfer or social protection",
     "Transfert monétaire ou protection sociale", False, None, None),
    ("income_generating_activity", "Income-generating activity for the household",
     "Activité génératrice de revenus pour le ménage", False, None, None),
    ("community_service_group", "Community service group (hired adult labour)",
     "Groupe de services communautaires (main-d'œuvre adulte rémunérée)", False, None, None),
    ("awareness_counselling", "Awareness raising and counselling", "Sensibilisation et conseil",
     False, None, None),
    ("emergency_protection", "Emergency shelter or protection",
     "Hébergement d'urgence ou protection", True, None, None),
    ("law_enforcement_referral", "Referral to law enforcement (worst forms)",
     "Signalement aux forces de l'ordre (pires formes)", True, None, None),
    ("family_reunification", "Family tracing, reunification or safe repatriation",
     "Recherche familiale, réunification ou rapatriement en sécurité", False, None, None),
)  # fmt: skip

PROVIDER_KINDS = (
    "school",
    "clinic",
    "legal_aid",
    "social_services",
    "ngo",
    "police",
    "local_authority",
    "other",
)
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def ensure_services(session: Session) -> list[ServiceType]:
    """Add the seed services whose code is missing (an administrator's edits are kept)."""
    known = set(session.scalars(select(ServiceType.code)))
    added = [
        ServiceType(
            code=code, name_en=en, name_fr=fr, urgent=urgent, min_age=lo, max_age=hi,
            active=True, sort_order=i, description="",
        )
        for i, (code, en, fr, urgent, lo, hi) in enumerate(SERVICES)
        if code not in known
    ]  # fmt: skip
    session.add_all(added)
    session.flush()
    return added


def services(session: Session, *, active_only: bool = False) -> list[ServiceType]:
    """The catalogue in its order."""
    query = select(ServiceType).order_by(ServiceType.sort_order, ServiceType.code)
    if active_only:
        query = query.where(ServiceType.active.is_(True))
    return list(session.scalars(query))


def service_by_code(session: Session, code: str) -> ServiceType | None:
    """The service of this code, or None."""
    return session.scalar(select(ServiceType).where(ServiceType.code == code))


def service_name(service: ServiceType | None, code: str, locale: str = "en") -> str:
    """The name of a service in ``locale``, or its code in words when it is not in the catalogue."""
    if service is None:
        return code.replace("_", " ")
    return service.name_fr if locale == "fr" and service.name_fr else service.name_en


@dataclass
class ServiceInput:
    """What the catalogue form sends for one service."""

    code: str
    name_en: str
    name_fr: str
    description: str = ""
    urgent: bool = False
    min_age: str | int | None = None
    max_age: str | int | None = None
    active: bool = True


def save_service(session: Session, data: ServiceInput, *, new: bool) -> ServiceType:
    """Add (``new``) or change a catalogue entry; :func:`~clms.errors.field_errors` names every
    answer that is wrong. A code never changes once created: cases and forms refer to it."""
    errors: dict[str, str | Msg] = {}
    code = (data.code or "").strip()
    if not _CODE.match(code):
        errors["code"] = Msg("must be letters, digits, '_', '.' or '-' (up to 64)")
    existing = session.scalar(select(ServiceType).where(ServiceType.code == code))
    if new and existing is not None:
        errors["code"] = Msg("is already used by '{name}'", name=existing.name_en)
    if not new and existing is None:
        errors["code"] = Msg("names no service of the catalogue")
    for name in ("name_en", "name_fr"):
        value = (getattr(data, name) or "").strip()
        if not value:
            errors[name] = Msg("is required")
        elif len(value) > 200:
            errors[name] = Msg("must be at most {n} characters", n=200)
    ages = {}
    for name in ("min_age", "max_age"):
        raw = getattr(data, name)
        if raw in (None, ""):
            ages[name] = None
            continue
        try:
            ages[name] = int(raw)
        except (TypeError, ValueError):
            errors[name] = Msg("must be a whole number of years")
            continue
        if not 0 <= ages[name] <= 17:
            errors[name] = Msg("must be between 0 and 17 (services are for children)")
    if (
        ages.get("min_age") is not None
        and ages.get("max_age") is not None
        and ages["min_age"] > ages["max_age"]
    ):
        errors["max_age"] = Msg("must not be below the minimum age")
    if errors:
        raise field_errors(errors)
    service = existing or ServiceType(code=code, sort_order=_next_order(session))
    service.name_en = data.name_en.strip()
    service.name_fr = data.name_fr.strip()
    service.description = (data.description or "").strip()
    service.urgent = bool(data.urgent)
    service.min_age, service.max_age = ages["min_age"], ages["max_age"]
    service.active = bool(data.active)
    session.add(service)
    session.flush()
    return service


def _next_order(session: Session) -> int:
    orders = list(session.scalars(select(ServiceType.sort_order)))
    return max(orders, default=-1) + 1


# --- providers -------------------------------------------------------------------------------


@dataclass
class ProviderInput:
    """What the provider form (or one CSV row) gives."""

    code: str
    name: str
    kind: str
    email: str = ""
    phone: str = ""
    area: str = ""  # area code; empty: everywhere
    services: tuple[str, ...] = ()
    active: bool = True


def providers(session: Session, *, active_only: bool = False) -> list[ServiceProvider]:
    """Every provider by name."""
    query = select(ServiceProvider).order_by(ServiceProvider.name, ServiceProvider.code)
    if active_only:
        query = query.where(ServiceProvider.active.is_(True))
    return list(session.scalars(query))


def provider_by_code(session: Session, code: str) -> ServiceProvider | None:
    """The provider of this code, or None."""
    return session.scalar(select(ServiceProvider).where(ServiceProvider.code == code))


def areas(session: Session) -> list[Area]:
    """Every area, by code: those a provider may serve."""
    return list(session.scalars(select(Area).order_by(Area.code)))


def save_provider(session: Session, data: ProviderInput, *, new: bool) -> ServiceProvider:
    """Add (``new``) or change a provider; every wrong answer is named."""
    errors: dict[str, str | Msg] = {}
    code = (data.code or "").strip()
    if not _CODE.match(code):
        errors["code"] = Msg("must be letters, digits, '_', '.' or '-' (up to 64)")
    existing = session.scalar(select(ServiceProvider).where(ServiceProvider.code == code))
    if new and existing is not None:
        errors["code"] = Msg("is already used by '{name}'", name=existing.name)
    if not new and existing is None:
        errors["code"] = Msg("names no provider")
    name = (data.name or "").strip()
    if not name:
        errors["name"] = Msg("is required")
    elif len(name) > 200:
        errors["name"] = Msg("must be at most {n} characters", n=200)
    if data.kind not in PROVIDER_KINDS:
        errors["kind"] = Msg("must be one of {choices}", choices=", ".join(PROVIDER_KINDS))
    email = (data.email or "").strip()
    if email and not _EMAIL.match(email):
        errors["email"] = Msg("is not an email address")
    area_id = None
    if (data.area or "").strip():
        area_id = session.scalar(select(Area.id).where(Area.code == data.area.strip()))
        if area_id is None:
            errors["area"] = Msg("names no known area ({code!r})", code=data.area.strip())
    known = set(session.scalars(select(ServiceType.code)))
    unknown = [s for s in data.services if s not in known]
    if unknown:
        errors["services"] = Msg(
            "names services not in the catalogue: {codes}", codes=", ".join(unknown)
        )
    if errors:
        raise field_errors(errors)
    provider = existing or ServiceProvider(code=code)
    provider.name, provider.kind = name, data.kind
    provider.email, provider.phone = email or None, (data.phone or "").strip() or None
    provider.area_id = area_id
    provider.services = sorted(set(data.services))
    provider.active = bool(data.active)
    session.add(provider)
    session.flush()
    return provider


CSV_COLUMNS = ("code", "name", "kind", "email", "phone", "area", "services")


def import_providers_csv(session: Session, data: bytes) -> list[ServiceProvider]:
    """Add or update providers from a CSV (columns :data:`CSV_COLUMNS`; ``services`` separated
    by spaces or ``;``). All or nothing: any wrong row refuses the file, naming row and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise field_errors({"file": Msg("is not UTF-8 text (byte {n})", n=e.start)}) from e
    if "\x00" in text:  # no text column can hold it (PostgreSQL refuses it): say where it is
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise field_errors({"file": Msg("holds a NUL character on line {line}; save the file as "
                                        "CSV UTF-8 and import it again", line=line)})  # fmt: skip
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("code", "name", "kind") if c not in (reader.fieldnames or [])]
    if missing:
        raise field_errors(
            {"file": Msg("lacks the column(s) {columns}", columns=", ".join(missing))}
        )
    saved, errors = [], {}
    for row_number, row in enumerate(reader, start=2):
        code = (row.get("code") or "").strip()
        exists = session.scalar(select(ServiceProvider.id).where(ServiceProvider.code == code))
        data_in = ProviderInput(
            code=code,
            name=row.get("name") or "",
            kind=(row.get("kind") or "").strip(),
            email=row.get("email") or "",
            phone=row.get("phone") or "",
            area=row.get("area") or "",
            services=tuple(re.split(r"[;\s]+", (row.get("services") or "").strip()))
            if (row.get("services") or "").strip()
            else (),
        )
        try:
            saved.append(save_provider(session, data_in, new=exists is None))
        except Problem as e:  # the fields that were wrong
            fields = e.fields or getattr(e, "details", {}).get("fields") or {"row": str(e)}
            for column, message in fields.items():
                errors[f"row {row_number}, {column}"] = message
    if errors:
        raise field_errors(errors)
    return saved
