"""Step d of ``clms demo``: three brands and suppliers in tiers: exporters and grinders (tier 1),
a cooperative per department (tier 2) and farmer groups (tier 3); cooperatives and groups buy in
villages (``SupplierVillage``), which decides which suppliers a monitor's form lists.
"""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.demo.places import DemoPlaces, user_part
from clms.demo.progress import say
from clms.models import Brand, Supplier, SupplierVillage

BRANDS = [
    ("BR-CACAO-NOBLE", "Cacao Noble Chocolatiers"),
    ("BR-SWEETLEAF", "Sweetleaf Confectionery"),
    ("BR-KAKAOHAUS", "Kakaohaus Schokoladen"),
]
TIER1 = [
    ("T1-LAGUNE-EXPORT", "Lagune Cocoa Export SA (exporter)"),
    ("T1-SPD-GRINDING", "San-Pédro Grinding SARL (grinder)"),
]
COOP_NAMES = [
    "SCOOPS Espoir de {}",
    "Coopérative Agricole Union de {}",
    "SCOOP-CA Bénéfice de {}",
    "Coopérative des Planteurs de {}",
]


def build_supply_chain(session: Session, places: DemoPlaces) -> dict[int, list[tuple[str, int]]]:
    """Step d: the brands, the suppliers in tiers and the villages they buy in, and the links
    between them; returns, per village id, ``(code, tier)`` of the suppliers that buy there."""
    village_suppliers, chain, n_suppliers = _suppliers_in_tiers(session, places)
    # the links: the first exporter buys from the cooperatives of the first half of the
    # departments, the second from the second half (one department in common); each cooperative
    # buys from its department's farmer groups. Each brand buys from one or two exporters, so the
    # brands reach different parts of the cocoa belt.
    from clms.models import BrandSupplier, SupplierLink
    from clms.supply.operations import brand_supplier_ids

    brand_ids = dict(session.execute(select(Brand.code, Brand.id)).all())
    tier1_ids = dict(
        session.execute(select(Supplier.code, Supplier.id).where(Supplier.tier == 1)).all()
    )
    first, second = TIER1[0][0], TIER1[1][0]
    buys = {BRANDS[0][0]: [first], BRANDS[1][0]: [second], BRANDS[2][0]: [first, second]}
    for brand_code, exporters in buys.items():
        for exporter in exporters:
            session.add(
                BrandSupplier(brand_id=brand_ids[brand_code], supplier_id=tier1_ids[exporter])
            )
    half = math.ceil(len(chain) / 2)
    n_links = sum(len(e) for e in buys.values())
    for j, (coop, groups) in enumerate(chain):
        for exporter in ([first] if j < half else []) + ([second] if j >= half - 1 else []):
            session.add(SupplierLink(buyer_id=tier1_ids[exporter], seller_id=coop.id))
            n_links += 1
        for group in groups:
            session.add(SupplierLink(buyer_id=coop.id, seller_id=group.id))
            n_links += 1
    session.flush()
    reach = ", ".join(
        f"{code} {len(brand_supplier_ids(session, brand_ids[code]))}" for code, _name in BRANDS
    )
    say(
        f"Supply chain: {len(BRANDS)} brands, {n_suppliers} suppliers in 3 tiers, {n_links} links; "
        f"suppliers each brand reaches: {reach}."
    )
    return village_suppliers


def _suppliers_in_tiers(
    session: Session, places: DemoPlaces
) -> tuple[dict[int, list[tuple[str, int]]], list[tuple[Supplier, list[Supplier]]], int]:
    """The brands, the exporters and grinders (tier 1), a cooperative per department (tier 2)
    with its farmer groups (tier 3), and the villages each buys in; returns the suppliers of
    each village, each cooperative with its groups, and how many suppliers there are."""
    # d. brands and suppliers in tiers
    areas, departments, by_department, villages = places
    for code, name in BRANDS:
        session.add(Brand(code=code, name=name))
    for code, name in TIER1:
        session.add(Supplier(code=code, name=name, tier=1))
    session.flush()
    village_suppliers: dict[int, list[tuple[str, int]]] = {v.id: [] for v in villages}
    n_suppliers = len(TIER1)
    chain: list[tuple[Supplier, list[Supplier]]] = []  # each cooperative and its farmer groups
    for i, area_id in enumerate(departments):
        area = areas[area_id]
        short = user_part(area).upper()
        coop = Supplier(
            code=f"T2-COOP-{short}"[:64],
            name=COOP_NAMES[i % len(COOP_NAMES)].format(area.name),
            tier=2,
            kind="cooperative",
        )
        session.add(coop)
        session.flush()
        n_suppliers += 1
        chain.append((coop, []))
        members = by_department[area_id]
        # the cooperative buys in four villages out of five; farmer groups in a stretch each
        for j, v in enumerate(members):
            if j % 5 != 4:
                session.add(SupplierVillage(supplier_id=coop.id, village_id=v.id))
                village_suppliers[v.id].append((coop.code, 2))
        n_groups = max(1, min(3, len(members) // 8))
        stretch = math.ceil(len(members) / n_groups)
        for g in range(n_groups):
            part = members[g * stretch : (g + 1) * stretch]
            if not part:
                continue
            group = Supplier(
                code=f"T3-GRP-{short}-{g + 1}"[:64],
                name=f"Groupement des producteurs de {part[0].name}",
                tier=3,
                kind="farmer group",
            )
            session.add(group)
            session.flush()
            n_suppliers += 1
            chain[-1][1].append(group)
            for v in part:
                session.add(SupplierVillage(supplier_id=group.id, village_id=v.id))
                village_suppliers[v.id].append((group.code, 3))
    session.flush()
    return village_suppliers, chain, n_suppliers
