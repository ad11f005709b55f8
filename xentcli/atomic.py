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
import os
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

    Raises :class:`OSError` (before anything is written) when the directory does not
    exist, is not writable, or *path* is a directory.
    """
    target = os.fspath(path)
    if os.path.isdir(target):
        raise IsADirectoryError(21, "is a directory", target)
    directory = os.path.dirname(os.path.abspath(target))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
    )
    try:
        # mkstemp makes 0600 files; give the output the permissions a plain open() would.
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(descriptor, "w", encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
