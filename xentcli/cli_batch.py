"""``xent batch``: score CSV files (in progress)."""

import click


@click.command()
def batch() -> None:
    """Score CSV files of model outputs."""
    raise click.ClickException("not built yet")
