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
from typing import IO, Any


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
    with _atomic(path, "w", encoding, newline) as handle:
        yield handle


@contextlib.contextmanager
def atomic_binary_output(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """:func:`atomic_output` for bytes (an image, say): the same guarantees.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.bin"
    >>> with atomic_binary_output(target) as handle:
    ...     _ = handle.write(b"\\x89PNG")
    >>> target.read_bytes()
    b'\\x89PNG'
    """
    with _atomic(path, "wb", None, None) as handle:
        yield handle


@contextlib.contextmanager
def _atomic(
    path: str | os.PathLike[str], mode: str, encoding: str | None, newline: str | None
) -> Iterator[Any]:
    """The shared body of :func:`atomic_output` and :func:`atomic_binary_output`."""
    target = os.path.realpath(os.fspath(path))
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(target, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        return
    directory = os.path.dirname(target)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
    )
    try:
        # mkstemp makes 0600 files: keep the mode of the file replaced, or give a new
        # file the permissions a plain open() would.
        mode_bits = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask()
        os.chmod(temporary, mode_bits)
        with os.fdopen(descriptor, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
