"""``--plot FILE``: checked before anything is read, written atomically after the run.

A bad extension or a missing matplotlib is a usage error (exit 2); a path that cannot be
written is exit 1, like ``--per-row``. Both are found before the first input byte is
read, so a long run never ends in a figure that cannot be saved; the write itself is
atomic (:func:`~xentcli.cli.atomic.atomic_binary_output`), so a failure then still
leaves no partial file.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from xentcli.cli.tools import BadData, BadInvocation
from xentcli.errors import XentError


def check_plot_path(path: str) -> str:
    """The figure's format (from *path*'s extension), once matplotlib and the path are
    known to be usable; :class:`BadInvocation` or :class:`BadData` otherwise."""
    from xentcli.batch import plot

    try:
        kind = plot.plot_format(path)
        plot.require()
    except XentError as error:
        raise BadInvocation(str(error)) from None
    problem = _unwritable(path)
    if problem is not None:
        raise BadData(f"{path}: cannot write the plot: {os.strerror(problem)}")
    return kind


def _unwritable(path: str) -> int | None:
    """The errno that writing *path* would fail with, as far as can be told without
    writing (None: it looks writable)."""
    target = os.path.realpath(path)
    if os.path.isdir(target):
        return errno.EISDIR
    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        return errno.ENOENT
    if not os.access(directory, os.W_OK | os.X_OK):
        return errno.EACCES
    return None


def write_plot(summary: Any, path: str, kind: str, *, tokens: bool = False) -> None:
    """Draw *summary*'s figure and write it to *path* atomically (exit 1 if it cannot)."""
    from xentcli.batch import plot
    from xentcli.cli.atomic import atomic_binary_output

    figure = plot.token_figure(summary) if tokens else plot.report_figure(summary)
    try:
        with atomic_binary_output(path) as handle:
            plot.save(figure, handle, kind)
    except OSError as error:
        raise BadData(f"{path}: cannot write the plot: {error.strerror or error}") from None
