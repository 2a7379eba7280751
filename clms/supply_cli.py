"""``clms supply``: brands, suppliers and the links between them, from CSV."""

from __future__ import annotations

import click


@click.group("supply")
def supply_group() -> None:
    """Brands, suppliers in tiers, supplier links, and who buys where."""
