"""``clms places``: import administrative boundaries and villages, derive village cells, and find
each visit's village from its GPS point."""

from __future__ import annotations

import click


@click.group("places")
def places_group() -> None:
    """Administrative boundaries, villages, village cells and where visits are."""


# commands in other modules register on import, so this comes after the group exists
from geo import join_cli  # noqa: E402,F401
