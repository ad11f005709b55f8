"""The ``xent`` command line: the group, and ``main`` which maps failures to exit codes.

Exit codes: 0 success, 1 bad input data or unreadable file, 2 usage error,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 141 output pipe closed early,
70 internal error (a bug; XENT_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from gettext import gettext as _
from types import FrameType
from typing import Any

import click

from xentcli._version import __version__
from xentcli.cli.exitcodes import ExitCode

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Each command's module, the attribute holding the command, and the first paragraph of
# its docstring: ``xent --help`` lists the commands from this table, and a command's
# module (with numpy, rich or the reader behind it) is imported only when it runs.
# tests/test_startup.py checks the summaries against the commands' own help.
LAZY_COMMANDS = {
    "batch": (
        "xentcli.cli.batch",
        "batch",
        "Score CSV files of model outputs: loss, perplexity, accuracy and the worst rows.",
    ),
    "compare": (
        "xentcli.cli.compare",
        "compare",
        "Compare two models' outputs on the same rows: the difference and whether it is real.",
    ),
    "merge": (
        "xentcli.cli.merge",
        "merge",
        "Merge saved states of xent batch runs into the report of all their inputs.",
    ),
    "compute": (
        "xentcli.cli.compute",
        "compute",
        "Work one sample through the softmax and the cross-entropy loss.",
    ),
}


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # ``xent`` alone: its help
    except click.UsageError as error:
        error.ctx = None
        raise


def _one_blas_thread() -> None:
    """Ask OpenBLAS for one thread, unless the user chose, before numpy is first imported.

    ``xent compute`` works on a few numbers and never calls BLAS, but importing numpy
    starts OpenBLAS's thread pool, whose threads spin for a while after start-up. Measured
    (benchmarks/startup_ab.py, quiet 2-core machine, 30 runs): one thread takes ``xent
    compute`` from 330 to 177 ms of CPU time and from 231 to 177 ms of wall time. Only for
    ``compute``: for ``xent batch`` the same change measured within noise (its run is
    longer; its bootstrap keeps every product small enough for OpenBLAS to run it on one
    thread, metrics/_bootstrap.py), so it keeps the user's numpy as it is. In a process
    that has already imported numpy (a test, a notebook) the variable would change
    nothing but the environment of its children.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (see :data:`LAZY_COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, attribute, _summary = LAZY_COMMANDS[cmd_name]
            if cmd_name == "compute":
                _one_blas_thread()
            # __import__ rather than importlib.import_module, which python -X importtime
            # does not see (the start-up benchmark profiles the imports with it).
            command = getattr(__import__(module, fromlist=[attribute]), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    # A usage error is one line, ``Error: ...``, like every other error: click's preamble
    # (``Usage: ...``, ``Try ... --help``) is shown by UsageError.show only when the error
    # carries its context, so the context is dropped (docs/errors.md).
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as error:
            # click suggests close names from the commands already loaded only.
            raise click.exceptions.NoSuchCommand(
                error.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with a command not yet imported described by its summary."""
        commands = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                command = click.Command(name, help=LAZY_COMMANDS[name][2])
            if not command.hidden:
                commands.append((name, command))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _command in commands)
            rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="xent")
def cli() -> None:
    """Softmax and numerically stable cross-entropy, worked step by step.

    \b
    Examples:
      xent compute --logits 1.2,2.3,0.8 --label 1
      xent compute --logits 1.2,2.3,0.8 --label 1 --explain
      xent batch examples/digits.csv

    \b
    Shell completion is click's own; for bash:
      eval "$(_XENT_COMPLETE=bash_source xent)"
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (no partial files)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _silence_stdout() -> None:
    # After a broken pipe, the interpreter's final flush of stdout would fail again and
    # print "Exception ignored ..."; point stdout at /dev/null so the exit is quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``xent`` script and ``python -m xentcli``.

    The command is invoked through ``make_context``/``invoke`` rather than click's
    ``main``, because click's ``main`` turns a broken pipe into exit 1 and Ctrl-C or
    SIGTERM into an ``Abort``; here each gets its own exit code and a single line.
    """
    if os.environ.get("_XENT_COMPLETE"):
        cli.main(args=argv, prog_name="xent")  # click's shell completion; exits
    signal.signal(signal.SIGTERM, _raise_terminated)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with cli.make_context("xent", args) as context:
            cli.invoke(context)
        sys.stdout.flush()
    except Terminated:
        _report("Error: terminated.")
        sys.exit(ExitCode.TERMINATED)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _report("Error: interrupted.")
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(ExitCode.BROKEN_PIPE)
    except click.ClickException as error:
        with contextlib.suppress(OSError):
            error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as exit_request:
        sys.exit(exit_request.exit_code)
    except OSError as error:
        # A write error on the output (a full disk, /dev/full): one line, exit 1.
        _silence_stdout()
        _report(f"Error: {error.strerror or error}")
        sys.exit(1)
    except Exception as error:  # a bug: still one line unless debugging is asked for
        if os.environ.get("XENT_DEBUG"):
            raise
        _report(
            f"Error: internal error ({type(error).__name__}: {error}); please report it"
            " (set XENT_DEBUG=1 for the traceback)"
        )
        sys.exit(ExitCode.INTERNAL)


def _report(line: str) -> None:
    with contextlib.suppress(OSError):
        click.echo(line, err=True)
