"""The checks of a case form's values: each wrong answer goes into ``errors`` (field name ->
words), so a form names every wrong answer at once (:func:`~clms.errors.field_errors`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.i18n import Msg
from clms.models import ServiceProvider, ServiceType

MAX_TEXT = 4000
MAX_SHORT = 300


def _text(errors: dict, name: str, value, *, required: bool, limit: int = MAX_TEXT) -> str | None:
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if not text:
        if required:
            errors[name] = Msg("is required")
        return None
    if len(text) > limit:
        errors[name] = Msg("must be at most {n} characters", n=limit)
        return None
    return text


def _choice(errors: dict, name: str, value, choices, *, required: bool = True) -> str | None:
    if value in (None, ""):
        if required:
            errors[name] = Msg("is required")
        return None
    if value not in choices:
        errors[name] = Msg("must be one of: {choices}", choices=", ".join(choices))
        return None
    return value


def _date(errors: dict, name: str, value, *, required: bool = True) -> dt.date | None:
    if value in (None, ""):
        if required:
            errors[name] = Msg("is required")
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        errors[name] = Msg("must be a date (YYYY-MM-DD)")
        return None


def _at(day: dt.date, now: dt.datetime) -> dt.datetime:
    """A moment for something done on ``day``: now if today, else midday UTC of that day."""
    if day == now.date():
        return now
    return dt.datetime.combine(day, dt.time(12), dt.UTC)


def _provider(errors: dict, session: Session, provider_code, service: ServiceType | None):
    if not provider_code:
        errors["provider"] = Msg("is required")
        return None
    provider = session.scalar(select(ServiceProvider).where(ServiceProvider.code == provider_code))
    if provider is None or not provider.active:
        errors["provider"] = Msg("is not an active provider")
        return None
    if service is not None and not offers(provider, service.code):
        errors["provider"] = Msg("{provider} does not offer this service", provider=provider.name)
        return None
    return provider


def offers(provider: ServiceProvider, service_code: str) -> bool:
    """Whether ``provider`` delivers the service ``service_code`` (a provider that lists no
    service delivers any)."""
    return not provider.services or service_code in provider.services


def fits_age(service: ServiceType, age: int | None) -> bool:
    """Whether ``service`` is for a child of ``age`` (its age range, where it has one; a child
    of unknown age fits every service)."""
    return age is None or (
        (service.min_age is None or age >= service.min_age)
        and (service.max_age is None or age <= service.max_age)
    )


def check_fits_child(errors: dict, service: ServiceType | None, age: int | None) -> None:
    """Say in ``errors["service"]`` when ``service`` is not for a child of ``age``."""
    if service is not None and not fits_age(service, age):
        errors["service"] = Msg(
            "is for children aged {low} to {high}; this child is {age}",
            low=service.min_age if service.min_age is not None else 0,
            high=service.max_age if service.max_age is not None else 17,
            age=age,
        )
