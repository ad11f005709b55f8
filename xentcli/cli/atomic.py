"""Atomic output files: a run that fails or is interrupted leaves no half-written file.

The data goes to a temporary file in the destination's directory (so the final rename
stays on one file system) and is renamed over the destination with :func:`os.replace`
only when the block completes. On any exception, ``KeyboardInterrupt`` and ``SystemExit``
included, the temporary file is removed and an existing destination is left untouched.

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_output(folder / "out.csv") as handle:
...     _ = handle.write("a,b\\n")
>>> (folder / "out.csv").read_text()
'a,b\\n'
>>> try:
...     with atomic_output(folder / "out.csv") as handle:
...         _ = handle.write("half")
...         raise RuntimeError("boom")
... except RuntimeError:
...     pass
>>> (folder / "out.csv").read_text(), sorted(p.name for p in folder.iterdir())
('a,b\\n', ['out.csv'])
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO


def _umask() -> int:
    # os.umask can only be read by setting it; put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", newline: str = ""
) -> Iterator[IO[str]]:
    """Open a text file that appears at *path* only if the ``with`` block succeeds.

    A symbolic link is followed (the file it points to is replaced, the link stays). A
    destination that exists and is not a regular file (a FIFO, a terminal, a device such
    as ``/dev/stdout``) cannot be replaced atomically and is written directly instead.

    Raises :class:`OSError` (before anything is written) when the directory does not
    exist, is not writable, or *path* is a directory.
    """
    target = os.path.realpath(os.fspath(path))
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(target, "w", encoding=encoding, newline=newline) as handle:
            yield handle
        return
    directory = os.path.dirname(target)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
    )
    try:
        # mkstemp makes 0600 files: keep the mode of the file replaced, or give a new
        # file the permissions a plain open() would.
        mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask()
        os.chmod(temporary, mode)
        with os.fdopen(descriptor, "w", encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
