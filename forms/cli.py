"""`clms forms ...` commands."""

import click


@click.group("forms")
def forms_group() -> None:
    """Build, publish and list forms."""
