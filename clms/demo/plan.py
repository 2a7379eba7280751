"""The plan: what the demo builds, who can sign in and where (kept in memory while it runs)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

# --- the plan: what is built ---------------------------------------------------------------------


@dataclass
class MonitorPlan:
    username: str
    full_name: str
    password: str
    village_codes: list[str]
    device_id: str
    careless: bool = False


@dataclass
class VillagePoint:
    code: str
    name: str
    lat: float
    lon: float
    suppliers: list[tuple[str, int]]  # (code, tier) of the suppliers that buy there
    # how far from the village point households are drawn: within its own cell (the server finds
    # a visit's village from its GPS point), 1 km at most
    spread_m: float = 1000.0


@dataclass
class Account:
    role: str
    username: str
    password: str
    note: str = ""


@dataclass
class DemoPlan:
    accounts: list[Account] = field(default_factory=list)
    monitors: list[MonitorPlan] = field(default_factory=list)
    villages: dict[str, VillagePoint] = field(default_factory=dict)


def new_password() -> str:
    return secrets.token_urlsafe(12)
