"""The command line: the ``xent`` group, its commands, and ``main``."""

from xentcli.cli.main import cli, main

__all__ = ["cli", "main"]
