"""The ``xent`` command line: the group, and ``main`` which maps failures to exit codes.

Exit codes: 0 success, 1 bad input data or unreadable file, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from xentcli._version import __version__
from xentcli.cli_batch import batch
from xentcli.cli_compute import compute

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="xent")
def cli() -> None:
    """Softmax and numerically stable cross-entropy, worked step by step.

    \b
    Examples:
      xent compute --logits 1.2,2.3,0.8 --label 1
      xent compute --logits 1.2,2.3,0.8 --label 1 --explain
      xent batch examples/digits.csv

    Shell completion is click's own, for example in bash:
    eval "$(_XENT_COMPLETE=bash_source xent)"
    """


cli.add_command(compute)
cli.add_command(batch)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``xent`` script and ``python -m xentcli``."""
    try:
        cli.main(args=argv, prog_name="xent", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
