"""``xent compute``: one sample worked through (in progress)."""

import click


@click.command()
def compute() -> None:
    """Work one sample through the softmax and the cross-entropy loss."""
    raise click.ClickException("not built yet")
