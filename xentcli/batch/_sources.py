"""Opening a table's bytes: a file or standard input, decompressed, counted, in blocks.

A :class:`Source` opens the path (or standard input), checks or sniffs the compression,
counts the compressed bytes consumed (for progress) and cuts the decompressed text into
blocks of whole lines with their physical line numbers. Every error is a file-level
:class:`~xentcli.errors.DataError`.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Callable
from typing import IO, Any, NamedTuple

import numpy as np

from xentcli.errors import DataError

BOM = b"\xef\xbb\xbf"
_MAGIC = {b"\x1f\x8b": ".gz", b"BZh": ".bz2", b"\xfd7zXZ\x00": ".xz"}
_KIND_NAMES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}


class _CountingReader(io.RawIOBase):
    """A raw stream that counts the bytes read through it (the compressed bytes)."""

    def __init__(self, raw: IO[bytes], prefix: bytes = b"") -> None:
        super().__init__()
        self.raw = raw
        self._prefix = prefix
        self.count = 0

    def push_back(self, prefix: bytes) -> None:
        """Serve *prefix* (bytes read from ``raw`` directly) before reading on."""
        self._prefix = prefix + self._prefix

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            size = min(len(view), len(self._prefix))
            view[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            self.count += size
            return size
        size = self.raw.readinto(view) or 0  # type: ignore[attr-defined]
        self.count += size
        return size


def _compression(name: str) -> str | None:
    lower = name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        if lower.endswith(suffix):
            return suffix
    return None


def _decompressed(kind: str | None, raw: Any) -> Any:
    """A buffered stream of the decompressed bytes of *raw* (*kind*: ".gz", ... or None)."""
    if kind == ".gz":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == ".bz2":
        import bz2

        return bz2.BZ2File(raw, mode="rb")
    if kind == ".xz":
        import lzma

        return lzma.LZMAFile(raw, mode="rb")
    return io.BufferedReader(raw, 1 << 20)


def default_delimiter(name: str) -> str | None:
    """Tab for ``.tsv``/``.tab``, comma for ``.csv`` (also compressed), else None."""
    lower = name.lower()
    kind = _compression(lower)
    if kind:
        lower = lower[: -len(kind)]
    if lower.endswith((".tsv", ".tab")):
        return "\t"
    if lower.endswith(".csv"):
        return ","
    return None


def count_newlines(block: bytes) -> int:
    # numpy's vectorised compare counts several times faster than bytes.count
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))


class Block(NamedTuple):
    """A block of whole lines."""

    text: bytes
    first: int  #: the physical line number of its first line
    newlines: int  #: how many line breaks it holds (its last line may have none)


class _LineBlocks:
    """Cut a byte stream into blocks of whole lines, tracking physical line numbers."""

    def __init__(
        self, read: Any, path: str, block_bytes: int, max_line: int, first_line: int = 1
    ) -> None:
        self._read = read
        self._path = path
        self._block_bytes = block_bytes
        self._max_line = max_line
        self._pending = b""
        self._eof = False
        self._first = True
        self.next_line = first_line

    def next_block(self) -> Block | None:
        """The next block of whole lines, or None at the end."""
        parts = [self._pending] if self._pending else []
        size = len(self._pending)
        while not self._eof:
            data = self._read(self._block_bytes)
            if self._first and data:
                self._first = False
                if data.startswith(BOM):
                    data = data[3:]
                    if not data:
                        continue
            if not data:
                self._eof = True
                break
            parts.append(data)
            size += len(data)
            if b"\n" in data:
                break
            if size > self._max_line:
                raise DataError(
                    self._path,
                    self.next_line,
                    None,
                    f"line longer than {self._max_line >> 20} MiB without a line break",
                )
        if self._eof:
            block, self._pending = b"".join(parts), b""
        else:
            # The last part holds a line break: cut there, copying each byte at most once
            # (a fresh multi-megabyte copy costs its page faults as well).
            last = parts[-1]
            cut = last.rfind(b"\n") + 1
            if len(parts) == 1 and cut == len(last):
                block = last
            else:
                block = b"".join([*parts[:-1], memoryview(last)[:cut]])
            self._pending = last[cut:]
        if not block:
            return None
        first = self.next_line
        newlines = count_newlines(block)
        self.next_line += newlines
        return Block(block, first, newlines)


class Source:
    """The decompressed text of *path* (``"-"``: standard input), in blocks of whole lines.

    The file is closed by *stack*; standard input is left open. *opener* opens a file
    (``open``). An open binary *stream* is read instead of the file (its owner closes
    it), its first line numbered *first_line*. Blocks hold about *block_bytes*; a line longer than *max_line* is an error.
    """

    def __init__(
        self,
        path: str,
        display_name: str,
        stack: contextlib.ExitStack,
        *,
        block_bytes: int,
        max_line: int,
        opener: Callable[..., Any],
        stream: Any = None,
        first_line: int = 1,
    ) -> None:
        self._name = display_name
        self.size_bytes: int | None = None
        self._stream: Any = None
        self._compression: str | None = None
        if stream is not None:  # an open binary stream (a part of a file, an fsspec file)
            self._counter = _CountingReader(stream)
            self._compression = _compression(self._name)
            self._stream = _decompressed(self._compression, self._counter)
        elif path == "-":
            self._open_stdin()
        else:
            self._open_file(path, stack, opener)
        self._blocks = _LineBlocks(self._read, display_name, block_bytes, max_line, first_line)

    def _error(self, reason: str) -> DataError:
        return DataError(self._name, None, None, reason)

    def _open_stdin(self) -> None:
        stdin = sys.stdin
        raw = getattr(stdin, "buffer", None) if stdin is not None else None
        if raw is None or getattr(raw, "closed", False):
            raise self._error("standard input is closed")
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            descriptor = raw.fileno()
            info = os.fstat(descriptor)
            if stat.S_ISREG(info.st_mode):
                self.size_bytes = info.st_size
            # Unbuffered and lock-free: the reading thread may still be blocked in
            # it at exit, which a BufferedReader's lock would turn into a crash.
            raw = io.FileIO(descriptor, "rb", closefd=False)
        # The compression is sniffed on the first read, in the reading thread.
        self._counter = _CountingReader(raw)

    def _open_file(
        self, path: str, stack: contextlib.ExitStack, opener: Callable[..., Any]
    ) -> None:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise self._error("no such file") from None
        except PermissionError:
            raise self._error("permission denied") from None
        except OSError as error:
            raise self._error(f"cannot open: {error.strerror or error}") from None
        if stat.S_ISDIR(info.st_mode):
            raise self._error("is a directory, not a file")
        try:
            handle = stack.enter_context(opener(path, "rb", buffering=0))
        except FileNotFoundError:  # removed since the stat: missing all the same
            raise self._error("no such file") from None
        except PermissionError:
            raise self._error("permission denied") from None
        except OSError as error:
            raise self._error(f"cannot open: {error.strerror or error}") from None
        if stat.S_ISREG(info.st_mode):
            self.size_bytes = info.st_size
        kind = _compression(self._name)
        head = b""
        if kind is not None:
            magic = next(m for m, k in _MAGIC.items() if k == kind)
            head = handle.read(len(magic))
            if head and head != magic:
                raise self._error(f"not a {kind[1:]} file (its name ends in {kind})")
        self._counter = _CountingReader(handle, head)
        self._compression = kind
        self._stream = _decompressed(kind, self._counter)

    def _sniff_stdin(self) -> None:
        """Detect a compressed standard input from its first bytes."""
        prefix = b""
        try:
            while len(prefix) < 6:
                data = self._counter.raw.read(6 - len(prefix))
                if not data:
                    break
                prefix += data
        except (OSError, ValueError) as error:
            raise self._error(f"cannot read standard input: {error}") from None
        self._counter.push_back(prefix)
        kind = next((k for m, k in _MAGIC.items() if prefix.startswith(m)), None)
        self._compression = kind
        self._stream = _decompressed(kind, self._counter)

    def _read(self, size: int) -> bytes:
        """Read decompressed bytes, turning decompression failures into DataError."""
        import zlib

        if self._stream is None:
            self._sniff_stdin()
        try:
            return self._stream.read(size)
        except EOFError:
            raise self._error(f"{self._kind_name()} data is truncated") from None
        except zlib.error as error:
            raise self._error(f"corrupt {self._kind_name()} data: {error}") from None
        except OSError as error:
            # gzip.BadGzipFile and lzma.LZMAError are OSErrors; so is a read failure.
            kind = self._kind_name()
            raise self._error(f"cannot read {kind} data: {error}") from None

    def _kind_name(self) -> str:
        return _KIND_NAMES.get(self._compression or "", "file")

    def next_block(self) -> Block | None:
        """The next block of whole lines, or None at the end."""
        return self._blocks.next_block()

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file or stream so far (compressed bytes)."""
        return self._counter.count
