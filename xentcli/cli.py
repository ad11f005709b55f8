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
from types import FrameType

import click

from xentcli._version import __version__
from xentcli.cli_batch import batch
from xentcli.cli_compute import compute

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
EXIT_TERMINATED = 143
EXIT_INTERNAL = 70


@click.group(context_settings=CONTEXT_SETTINGS)
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


cli.add_command(compute)
cli.add_command(batch)


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
        sys.exit(EXIT_TERMINATED)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _report("Error: interrupted.")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
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
        sys.exit(EXIT_INTERNAL)


def _report(line: str) -> None:
    with contextlib.suppress(OSError):
        click.echo(line, err=True)
