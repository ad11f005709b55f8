"""Parts of a set of input files, each scored on its own into a state (the Dask engine's tasks).

:func:`plan` cuts the inputs into :class:`Part` s: a whole file; a run of a Parquet
file's row groups; or, for a large uncompressed CSV file, a byte range. :func:`score_part`
reads one part into a :class:`~xentcli.batch.accumulator.BatchAccumulator` and returns
its state as JSON text; :func:`merge_results` merges two results (in file order). None of
this imports Dask: a task is a plain function of plain data, so any engine can run it.

Byte ranges cut at line boundaries: a part ``[start, end)`` reads the lines that *begin*
in it (from the first line start at or after *start* to the first at or after *end*),
so the parts' lines tile the file whatever the cut points. A part reads the file's
header line first, then its range; its line numbers count from the range's first line,
and merging the parts in order makes them true line numbers (the accumulator shifts a
part's lines by the line breaks of the parts before it). An error met in a part names
its line relative to the part; :func:`true_line` turns it into the file's line.

Paths may be fsspec URLs (``memory://``, ``file://``, ``s3://`` ...) when fsspec and the
backend are installed; local paths are opened directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from xentcli.batch import state_file
from xentcli.batch._formats import file_format
from xentcli.batch._sources import BOM, count_newlines
from xentcli.batch.accumulator import BatchAccumulator, BatchOptions
from xentcli.batch.reader import Piece, ReadOptions, open_table
from xentcli.errors import DataError

#: the default size of a part: CSV byte ranges and runs of Parquet row groups
PART_BYTES = 64 << 20
_SCAN = 1 << 16  # bytes read at a time when looking for a line break
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


@dataclass(frozen=True)
class Part:
    """One part of one input: the unit of work of a task."""

    path: str  #: as given: a local path or an fsspec URL
    index: int  #: position among all parts (the report lists files in this order)
    kind: str = "file"  #: "file", "bytes" (a CSV byte range) or "rowgroups" (Parquet)
    start: int = 0  #: bytes: the range's start; rowgroups: the first row (0-based)
    end: int = 0  #: bytes: the range's end (exclusive); rowgroups: the end row
    header: bytes = b""  #: bytes: the file's first lines, up to its header line
    has_header: bool = True  #: bytes: whether the file has a header line
    num_classes: int = 0  #: bytes: the number of classes (for a part with no line)
    row_groups: tuple[int, ...] = ()  #: rowgroups: the row groups read


def is_url(path: str) -> bool:
    """Whether *path* is an fsspec URL (``scheme://...``) rather than a local path.

    >>> is_url("memory://a.csv"), is_url("runs/a.csv"), is_url("C:/a.csv")
    (True, False, False)
    """
    scheme, sep, _rest = path.partition("://")
    return bool(sep) and scheme.isidentifier()


@contextlib.contextmanager
def open_binary(path: str) -> Iterator[IO[bytes]]:
    """*path* (a local path or an fsspec URL) opened for reading bytes."""
    try:
        if is_url(path):
            import fsspec

            with fsspec.open(path, "rb") as handle:
                yield handle
        else:
            with open(path, "rb") as handle:
                yield handle
    except FileNotFoundError:
        raise DataError(path, None, None, "no such file") from None
    except IsADirectoryError:
        raise DataError(path, None, None, "is a directory, not a file") from None
    except PermissionError:
        raise DataError(path, None, None, "permission denied") from None
    except ImportError:
        raise DataError(
            path, None, None, "reading URLs needs fsspec: pip install 'xent[dask]'"
        ) from None


def file_size(path: str) -> int:
    """The size in bytes of *path* (local or URL)."""
    try:
        if is_url(path):
            import fsspec

            fs, inner = fsspec.core.url_to_fs(path)
            return int(fs.size(inner))
        return os.path.getsize(path)
    except FileNotFoundError:
        raise DataError(path, None, None, "no such file") from None
    except OSError as error:
        raise DataError(path, None, None, f"cannot open: {error.strerror or error}") from None


# ------------------------------------------------------------------------ planning
def plan(paths: list[str], read_options: ReadOptions, part_bytes: int = PART_BYTES) -> list[Part]:
    """The parts of *paths*, in order: large CSV files by byte range, Parquet files by
    runs of row groups, other files whole."""
    parts: list[Part] = []
    for path in paths:
        fmt = file_format(path, read_options.file_format)
        size = file_size(path) if path != "-" else 0
        compressed = path.lower().endswith(_COMPRESSED)
        if fmt == "csv" and not compressed and path != "-" and size > part_bytes:
            header, has_header, k = _csv_head(path, read_options)
            for start in range(0, size, part_bytes):
                end = min(start + part_bytes, size)
                parts.append(Part(path, len(parts), "bytes", start, end, header, has_header, k))
        elif fmt == "parquet" and not is_url(path):
            parts.extend(_row_group_parts(path, len(parts), part_bytes))
        else:
            parts.append(Part(path, len(parts)))
    return parts


def _csv_head(path: str, read_options: ReadOptions) -> tuple[bytes, bool, int]:
    """The file's lines up to its first non-blank one, whether that is a header, and K."""
    with open_binary(path) as handle:
        head = b""
        while True:
            data = handle.read(_SCAN)
            head += data
            text = head[3:] if head.startswith(BOM) else head
            lines = text.split(b"\n")
            if not data or any(line.strip(b" \t\r") for line in lines[:-1]):
                break
    end = 0
    for line in head.split(b"\n")[:-1]:
        end += len(line) + 1
        content = line[3:] if end == len(line) + 1 and line.startswith(BOM) else line
        if content.strip(b" \t\r"):
            break
    prefix = head[:end] if end else head
    with open_table(path, read_options, piece=Piece(stream=io.BytesIO(prefix))) as table:
        has_header = bool(getattr(table, "has_header", False))
        k = getattr(table, "num_classes", len(table.logit_names))
    return (prefix if has_header else b""), has_header, k


def _row_group_parts(path: str, first_index: int, part_bytes: int) -> list[Part]:
    """Runs of consecutive row groups of about *part_bytes* each (one part per file if
    the file cannot be read here: the task then reports the error)."""
    try:
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(path).metadata
    except Exception:
        return [Part(path, first_index)]
    groups = [
        (metadata.row_group(i).num_rows, metadata.row_group(i).total_byte_size)
        for i in range(metadata.num_row_groups)
    ]
    if len(groups) <= 1 or sum(rows for rows, _ in groups) == 0:
        return [Part(path, first_index)]
    parts: list[Part] = []
    run: list[int] = []
    run_bytes = 0
    row = 0
    start_row = 0
    for i, (rows, size) in enumerate(groups):
        run.append(i)
        run_bytes += size
        row += rows
        last = i == len(groups) - 1
        if (run_bytes >= part_bytes or last) and row > start_row:
            parts.append(
                Part(
                    path,
                    first_index + len(parts),
                    "rowgroups",
                    start_row,
                    row,
                    row_groups=tuple(run),
                )
            )
            run, run_bytes, start_row = [], 0, row
    if run:  # trailing empty row groups: fold them into the last part
        last_part = parts[-1]
        parts[-1] = dataclasses.replace(last_part, row_groups=last_part.row_groups + tuple(run))
    return parts


# ------------------------------------------------------------------------- scoring
class _Range(io.RawIOBase):
    """The bytes *prefix*, then the lines of *handle* that begin in ``[start, end)``.

    *start* must be the beginning of a line; reading goes on past *end* to the end of
    the line that holds it. :attr:`newlines` counts the line breaks served from the range.
    """

    def __init__(self, handle: IO[bytes], prefix: bytes, start: int, end: int) -> None:
        super().__init__()
        handle.seek(start)
        self._handle = handle
        self._prefix = prefix
        self._left = end - start  # bytes before *end*
        self._finishing = False  # past *end*: reading to the end of its line
        self._done = self._left <= 0
        self.newlines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            size = min(len(view), len(self._prefix))
            view[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        if self._done:
            return 0
        if not self._finishing:
            data = self._handle.read(min(len(view), self._left))
            self._left -= len(data)
            if not data:
                self._done = True
            elif self._left <= 0:
                self._finishing = not data.endswith(b"\n")
                self._done = not self._finishing
        else:
            data = self._handle.read(min(len(view), _SCAN))
            cut = data.find(b"\n")
            if cut >= 0:
                data = data[: cut + 1]
            self._done = cut >= 0 or not data
        self.newlines += count_newlines(data)
        view[: len(data)] = data
        return len(data)


def _line_start(handle: IO[bytes], offset: int) -> int | None:
    """The first offset >= *offset* at which a line begins (None: none before the end)."""
    if offset == 0:
        return 0
    handle.seek(offset - 1)
    position = offset - 1
    while True:
        data = handle.read(_SCAN)
        if not data:
            return None
        cut = data.find(b"\n")
        if cut >= 0:
            return position + cut + 1
        position += len(data)


def score_part(part: Part, read_options: ReadOptions, options: BatchOptions) -> dict[str, Any]:
    """Score one part: ``{"state": JSON text}``, ``{"error": ...}`` for bad data, or
    ``{"empty": True}`` for a part with no rows (plain data, whatever the engine)."""
    try:
        if part.kind == "bytes":
            acc = _score_range(part, read_options, options)
        else:
            acc = _score_whole(part, read_options, options)
    except DataError as error:
        return {"error": _error_data(error), "part": part.index, "start": _error_start(part)}
    if acc is None:
        return {"empty": True}
    return {"state": state_file.dumps(acc)}


def _error_data(error: DataError) -> dict[str, Any]:
    # The value travels inside the reason, as the message shows it (plain text).
    reason = str(DataError("", None, None, error.reason, error.value))[2:]
    return {
        "path": error.path,
        "line": error.line,
        "column": error.column,
        "reason": reason,
        "unit": error.unit,
    }


def _error_start(part: Part) -> int:
    return part.start if part.kind == "bytes" else 0


def _accumulate(
    table: Any, path: str, options: BatchOptions, acc: BatchAccumulator | None, part: Any = None
) -> BatchAccumulator:
    if acc is None:
        named = getattr(table, "class_names", None)
        if options.class_names is None and named is not None:
            options = dataclasses.replace(options, class_names=named)
        # One score column is the binary case: two classes.
        binary = bool(getattr(table, "binary", False))
        options = dataclasses.replace(options, binary=binary)
        acc = BatchAccumulator(getattr(table, "num_classes", len(table.logit_names)), options)
    table.prepare = acc.losses
    acc.start_file(path, part=part)
    for chunk in table.chunks():
        if chunk.path != path:
            chunk = dataclasses.replace(chunk, path=path)
        acc.add(chunk)
    acc.add_skipped(path, table.rows_skipped, table.skipped)
    return acc


def _score_whole(
    part: Part, read_options: ReadOptions, options: BatchOptions
) -> BatchAccumulator | None:
    path = part.path
    if part.kind == "rowgroups":
        piece = Piece(row_groups=part.row_groups, first_row=part.start + 1)
        with open_table(path, read_options, piece=piece) as table:
            acc = _accumulate(table, path, options, None, (part.start, part.end))
        acc.end_part(0)  # row numbers are the file's already: no shift
        return acc
    if not is_url(path):
        with open_table(path, read_options) as table:
            return _accumulate(table, path, options, None)
    if file_format(path, read_options.file_format) == "csv":
        with (
            open_binary(path) as handle,
            open_table(path, read_options, piece=Piece(stream=handle)) as table,
        ):
            return _accumulate(table, path, options, None)
    # Other formats need a seekable local file: a copy, named like the original.
    with tempfile.TemporaryDirectory(prefix="xent-") as folder:
        local = os.path.join(folder, os.path.basename(path.split("://", 1)[1]) or "input")
        with open_binary(path) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        try:
            with open_table(local, read_options) as table:
                return _accumulate(table, path, options, None)
        except DataError as error:
            raise DataError(
                path, error.line, error.column, error.reason, error.value, unit=error.unit
            ) from None


@contextlib.contextmanager
def open_input(path: str, read_options: ReadOptions) -> Iterator[Any]:
    """*path* (a local path or a CSV file's fsspec URL) opened whole as a table, for the
    second pass of --exact (:func:`xentcli.batch.exact_mean.second_pass`)."""
    if not is_url(path):
        with open_table(path, read_options) as table:
            yield table
        return
    if file_format(path, read_options.file_format) != "csv":
        raise DataError(
            path,
            None,
            None,
            "--exact: a figure is too near a rounding boundary to be decided in one pass"
            " (rare: about 3 figures in 10 million); reading it again is done for local files and CSV"
            " URLs only: copy the file locally",
        )
    with (
        open_binary(path) as handle,
        open_table(path, read_options, piece=Piece(stream=handle)) as table,
    ):
        yield table


def _score_range(
    part: Part, read_options: ReadOptions, options: BatchOptions
) -> BatchAccumulator | None:
    path = part.path
    with open_binary(path) as handle:
        start = _line_start(handle, part.start)
        if start is None or start >= part.end:
            # No line begins in this range: an empty part, so that its neighbours touch.
            acc = BatchAccumulator(part.num_classes, options)
            acc.start_file(path, part=(part.start, part.end))
            acc.end_part(0)
            return acc
        prefix = part.header if part.start > 0 else b""
        stream = _Range(handle, prefix, start, part.end)
        first_line = 1 - count_newlines(prefix) if part.start > 0 else 1
        if part.start > 0:
            read_options = dataclasses.replace(read_options, header=part.has_header)
        piece = Piece(stream=stream, first_line=first_line)
        try:
            with open_table(path, read_options, piece=piece) as table:
                acc = _accumulate(table, path, options, None, (part.start, part.end))
        except DataError as error:
            if error.line is not None or error.reason not in ("no data rows", "file is empty"):
                raise
            # Only blank lines here: the file as a whole is checked for rows at the end.
            acc = BatchAccumulator(part.num_classes, options)
            acc.start_file(path, part=(part.start, part.end))
        acc.end_part(stream.newlines)
        return acc


# ------------------------------------------------------------------------- merging
def merge_results(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The merge of two results of :func:`score_part` (or of this), *first* coming first.

    An error wins over a state and the earlier part's error over a later one, so the
    error reported is the one a single pass over the files in order would meet first.
    """
    errors = [r for r in (first, second) if "error" in r]
    if errors:
        return min(errors, key=lambda r: int(r["part"]))
    if "empty" in first:
        return second
    if "empty" in second:
        return first
    acc = state_file.loads(first["state"])
    acc.merge(state_file.loads(second["state"]))
    return {"state": state_file.dumps(acc)}


def true_line(result: dict[str, Any]) -> DataError:
    """The error of an ``{"error": ...}`` result, its line made the file's true line."""
    data = result["error"]
    line = data["line"]
    start = int(result["start"])
    if line is not None and start > 0:
        with open_binary(data["path"]) as handle:
            start = _line_start(handle, start) or 0
            handle.seek(0)
            before = 0
            left = start
            while left > 0:
                block = handle.read(min(left, 1 << 20))
                if not block:
                    break
                before += count_newlines(block)
                left -= len(block)
        line += before
    return DataError(data["path"], line, data["column"], data["reason"], unit=data["unit"])


def finish(result: dict[str, Any]) -> BatchAccumulator:
    """The accumulator of a final result; DataError for an error or a file with no rows."""
    if "error" in result:
        raise true_line(result)
    if "empty" in result:
        raise DataError("", None, None, "no data rows")
    acc = state_file.loads(result["state"])
    for record in acc.files:
        if record.rows == 0 and record.skipped == 0:
            raise DataError(record.path, None, None, "no data rows")
    return acc
