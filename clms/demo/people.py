"""Steps c-e of ``clms demo`` (:func:`build_places_and_people`): the places and the supply chain,
then the users, with random passwords: an admin, a monitor per ten villages (scoped to those
villages), an officer per department, a supervisor per region, a service provider and a user per
brand.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from sqlalchemy.orm import Session

from clms.demo.answers import person
from clms.demo.places import DemoPlaces, load_places, user_part, village_spreads
from clms.demo.plan import Account, DemoPlan, MonitorPlan, VillagePoint, new_password
from clms.demo.progress import ProgressLine, say
from clms.demo.supply_chain import BRANDS, build_supply_chain
from clms.models import Village

VILLAGES_PER_MONITOR = 10


def build_places_and_people(
    session: Session, shared_data: Path, realm: str, rng: random.Random
) -> DemoPlan:
    """Steps c-e: places, brands, suppliers and users; returns who can sign in and where."""
    places = load_places(session, shared_data)
    village_suppliers = build_supply_chain(session, places)
    return add_people(session, places, village_suppliers, realm, rng)


def add_people(
    session: Session,
    places: DemoPlaces,
    village_suppliers: dict[int, list[tuple[str, int]]],
    realm: str,
    rng: random.Random,
) -> DemoPlan:
    """Step e: the users, with random passwords; returns who can sign in and where, and the
    villages the monitors' visits are drawn around."""
    from flask import current_app

    from clms.auth import password_min_length
    from clms.auth.users import add_user

    # e. users
    _areas, departments, _by_department, villages = places
    plan = DemoPlan()
    spreads = village_spreads(villages)
    for v in villages:
        plan.villages[v.code] = VillagePoint(
            v.code, v.name, v.lat, v.lon, village_suppliers[v.id], spreads[v.id]
        )
    monitor_groups = _monitor_groups(places)
    people, regions, provider_of, shown_providers = _people(session, places, monitor_groups)
    progress = ProgressLine("Users", len(people))
    careless_index = len(monitor_groups) // 2 + 1 if len(monitor_groups) > 2 else None
    social = shown_providers.get("social")
    # the provider account shown is the social centre's: its referrals come from every case
    people.sort(key=lambda p: p[0] == "provider" and provider_of.get(p[1]) != social)
    for done, (role, username, scopes, brand_code, note) in enumerate(people, start=1):
        password = new_password()
        full_name = person(rng)
        add_user(
            session,
            username=username,
            role=role,
            password=password,
            realm=realm,
            scope_codes=scopes,
            brand_code=brand_code,
            provider_code=provider_of.get(username),
            full_name=full_name,
            min_length=password_min_length(current_app.config),
        )
        plan.accounts.append(Account(role, username, password, note))
        if role == "monitor":
            plan.monitors.append(
                MonitorPlan(
                    username=username,
                    full_name=full_name,
                    password=password,
                    village_codes=scopes,
                    device_id="collect:"
                    + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=16)),
                    careless=(len(plan.monitors) + 1 == careless_index),
                )
            )
        progress(done)
    progress.finish()
    say(
        f"Users: {len(people)} ({len(plan.monitors)} monitors, {len(departments)} officers, "
        f"{len(regions)} supervisors, 1 admin, {len(provider_of)} service providers, "
        f"{len(BRANDS)} brand users)."
    )
    return plan


def _monitor_groups(places: DemoPlaces) -> list[list[Village]]:
    """The villages of each monitor: about ten neighbours in one department."""
    _areas, departments, by_department, _villages = places
    monitor_groups: list[list[Village]] = []
    for area_id in departments:
        members = by_department[area_id]
        count = max(1, round(len(members) / VILLAGES_PER_MONITOR))
        size = math.ceil(len(members) / count)
        monitor_groups += [members[k : k + size] for k in range(0, len(members), size)]
    return monitor_groups


def _people(session: Session, places: DemoPlaces, monitor_groups: list[list[Village]]):
    """Who signs in: ``(role, username, scope codes, brand code, note)`` of each account; the
    regions of the supervisors, the organisation of each provider account, and the providers
    to show (:func:`clms.demo.cases.seed_providers` adds them)."""
    areas, departments, _by_department, _villages = places
    regions = sorted(
        {areas[a].parent_id for a in departments if areas[a].level == "department"},
        key=lambda a: areas[a].code,
    )
    people: list[tuple[str, str, list[str], str | None, str]] = [("admin", "admin", [], None, "")]
    for k, group in enumerate(monitor_groups, start=1):
        codes = [v.code for v in group]
        dept = areas[group[0].area_id]
        people.append(
            ("monitor", f"monitor{k:02d}", codes, None, f"{len(codes)} villages in {dept.name}")
        )
    for area_id in departments:
        area = areas[area_id]
        people.append(("officer", f"officer-{user_part(area)}", [area.code], None, area.name))
    for area_id in regions:
        area = areas[area_id]
        people.append(("supervisor", f"supervisor-{user_part(area)}", [area.code], None, area.name))
    from clms.demo.cases import provider_usernames, seed_providers

    shown_providers = seed_providers(session)
    provider_of: dict[str, str] = {}
    for username, code in provider_usernames(session):
        provider_of[username] = code
        people.append(("provider", username, [], None, f"service provider {code}"))
    for code, name in BRANDS:
        people.append(("brand", f"brand-{code.removeprefix('BR-').lower()}", [], code, name))
    return people, regions, provider_of, shown_providers
