"""``clms supply``: brands, suppliers and the links between them, from CSV.

``clms supply import FILE...`` reads a whole chain (all of it or nothing; see
:func:`clms.supply.imports.import_chain` for the file formats), ``clms supply show`` prints it as a
tree per brand and ``clms supply check`` looks for cycles, suppliers no brand reaches and
households selling outside every chain.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from clms.cli import refusals
from clms.db import session_scope
from clms.supply.csvfiles import ChainImportError


@click.group("supply")
def supply_group() -> None:
    """Brands, suppliers in tiers, supplier links, and who buys where."""


def _progress(line: str) -> None:
    click.echo(f"  {line}", err=True)


@supply_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the files and show what would change.")
@click.option(
    "--replace",
    is_flag=True,
    help="Also remove the links (and supplier villages) that the links (villages) files do not "
    "list.",
)
@with_appcontext
def import_command(files: tuple[str, ...], dry_run: bool, replace: bool) -> None:
    """Import brands, suppliers, links, supplier villages and household suppliers from CSV.

    Each file's kind comes from its header: brands "code,name"; suppliers
    "code,name,tier[,kind]"; links "buyer,seller" (buyer: a brand or supplier code; seller: a
    supplier code); supplier villages "supplier,village"; household suppliers
    "household,supplier". All files are checked together and nothing is written if any row is
    wrong; each problem names the file, line and column. A link that would close a cycle is
    refused with the cycle's path. Importing the same files again changes nothing.
    """
    from clms.supply.imports import import_chain

    loaded = [(Path(f).name, Path(f).read_bytes()) for f in files]
    with session_scope() as session:
        with refusals(ChainImportError, say=_issues):
            summary = import_chain(session, loaded, replace=replace, progress=_progress)
        for warning in summary.warnings:
            click.echo(f"Warning: {warning}", err=True)
        for line in summary.lines():
            click.echo(line)
        if dry_run:
            session.rollback()
            click.echo("Dry run: nothing was written.")


def _issues(refused: ChainImportError) -> str:
    """A refused import in words: each issue on a line of its own, then how many (click puts
    ``Error:`` before the first line; the others carry it too)."""
    return "".join(f"{issue}\nError: " for issue in refused.issues) + refused.message


@supply_group.command("show")
@click.option("--brand", "brand_code", help="Only this brand's chain (its code).")
@with_appcontext
def show_command(brand_code: str | None) -> None:
    """Print the chain as a tree: each brand, its tier-1 suppliers, whom they buy from, down to
    the farmer groups, with the villages and households of each supplier."""
    from clms.supply.tree import chain_tree, tree_lines

    with session_scope() as session:
        tree = chain_tree(session, brand_code)
    if brand_code is not None and not tree.brands:
        raise click.ClickException(f"No brand has the code {brand_code!r}.")
    if not tree.brands and not tree.unreached:
        click.echo("No brands or suppliers yet: clms supply import FILE...")
        return
    for line in tree_lines(tree):
        click.echo(line)


@supply_group.command("check")
@with_appcontext
def check_command() -> None:
    """Look for cycles, suppliers no brand reaches, links whose tiers look the wrong way round,
    households selling outside every chain and unknown supplier codes in submissions. Exits with
    status 1 when it finds anything but tier warnings."""
    from clms.supply.graph import cycle_words
    from clms.supply.tree import check_chain

    with session_scope() as session:
        found = check_chain(session)
    for cycle in found.cycles:
        click.echo(f"Cycle: {cycle_words(cycle)}")
    if found.unreached:
        click.echo(
            f"Suppliers no brand reaches ({len(found.unreached)}): {', '.join(found.unreached)}"
        )
    for warning in found.tier_warnings:
        click.echo(f"Warning: the seller is not at a deeper tier than its buyer: {warning}")
    if found.households_outside:
        click.echo(f"Households selling to a supplier no brand reaches: {found.households_outside}")
    for code, n in found.unknown_suppliers.items():
        click.echo(f"Unknown supplier code {code!r} in {n} submission(s) held for review")
    if found.ok:
        click.echo("The supply chain is sound: no cycles, every supplier reached by a brand.")
    else:
        raise click.exceptions.Exit(1)
