"""The exit codes of every ``xent`` command (docs/errors.md), in one place."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How a ``xent`` command ends."""

    OK = 0
    BAD_DATA = 1  #: bad input data, or a file that cannot be read or written
    USAGE = 2  #: a bad, missing or conflicting option
    WORSE = 3  #: ``xent compare --fail-if-worse``: the gate failed
    INTERNAL = 70  #: a bug in xent (XENT_DEBUG=1 shows the traceback)
    INTERRUPTED = 130  #: Ctrl-C (SIGINT)
    BROKEN_PIPE = 141  #: the output pipe was closed early
    TERMINATED = 143  #: SIGTERM
