"""Click plumbing shared by the commands: error classes with exit codes, consoles."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO

import click
from rich.console import Console

from xentcli.cli.exitcodes import ExitCode
from xentcli.errors import ColumnError, CountError, DataError, XentError


class BadInvocation(click.ClickException):
    """A bad option value found after parsing: one line ``Error: ...``, exit 2."""

    exit_code = ExitCode.USAGE

    @classmethod
    def of(cls, error: XentError) -> BadInvocation:
        """The usage error for a library's *error*, naming the option where the library
        names its parameter (``--weights: 3 values for 2 classes``, not ``weights: ...``)."""
        if isinstance(error, CountError):
            return cls(error.about(OPTION_OF.get(error.name, error.name)))
        return cls(str(error))


#: the option of each parameter that a library's CountError names
OPTION_OF = {"weights": "--weights", "class_names": "--classes", "targets": "--target"}


class BadData(click.ClickException):
    """Bad input data or an unreadable file: one line ``Error: ...``, exit 1."""

    exit_code = ExitCode.BAD_DATA


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """A closed output pipe ends the command with exit 141 (cli/main.py), as for
        every other writer; rich's own handler would exit 1."""
        raise BrokenPipeError


def make_console(
    file: IO[str] | None = None, *, stderr: bool = False, width: int | None = None
) -> Console:
    """A rich Console for *file* (stdout by default), plain when it is not a terminal.

    Colour and box-drawing only go to a terminal; ``NO_COLOR`` is honoured by rich;
    ``COLUMNS`` fixes the width (tests use it for reproducible output).
    """
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    is_terminal = stream.isatty() if hasattr(stream, "isatty") else False
    if width is None and os.environ.get("COLUMNS", "").isdigit():
        width = int(os.environ["COLUMNS"])
    return _Console(
        file=stream,
        width=width if width is not None else (None if is_terminal else 100),
        force_terminal=is_terminal,
        no_color=not is_terminal or bool(os.environ.get("NO_COLOR")),
        highlight=False,
        soft_wrap=False,
        emoji=False,
        safe_box=not is_terminal,
    )


@contextlib.contextmanager
def reading_errors(current: Callable[[], str], *, reads_only: bool = False) -> Iterator[None]:
    """Map what reading files can raise to the exit codes: an option naming no column and
    a library's usage error exit 2, a bad cell or file 1; *current* names the file being
    read when the system's error carries no place.

    *reads_only*: the block reads *current* and writes nothing, so any other system
    error (EIO, ENXIO, ...) is that file's too, named with it (exit 1). Otherwise (xent
    batch also writes its per-row file and stdout in the block) it is left to the
    command's caller, which reports a write error (a full disk, a closed pipe) as such.
    """
    try:
        yield
    except ColumnError as error:  # an option naming no column: a usage error
        raise BadInvocation(str(error)) from None
    except DataError as error:
        raise BadData(str(error)) from None
    except XentError as error:
        raise BadInvocation.of(error) from None
    except IsADirectoryError:
        raise BadData(_about(current(), "is a directory, not a file")) from None
    except FileNotFoundError:
        raise BadData(_about(current(), "no such file")) from None
    except PermissionError:
        raise BadData(_about(current(), "permission denied")) from None
    except OSError as error:
        if not reads_only:
            raise
        raise BadData(_about(current(), f"cannot read file data: {error}")) from None


def _about(path: str, reason: str) -> str:
    """``PATH: reason``, the path quoted as a reader's error quotes it (one line)."""
    return str(DataError(path, None, None, reason))
