"""The file formats other than delimited text: Parquet, Arrow IPC/Feather, NumPy, JSON Lines.

Each opener reads its format batch by batch (Parquet row groups, Arrow record batches,
slices of a memory-mapped ``.npy``, blocks of JSON lines), so memory stays flat whatever
the file's size, and hands :class:`~xentcli.batch._arrays.Batch` objects to an
:class:`~xentcli.batch._arrays.ArrayTable`, which checks them like the text reader does.

Columns are chosen by the same options as for CSV (``label_column``, ``logit_columns``,
``target_columns``, by name, index, range or glob). In Parquet, Arrow and JSON Lines the
scores may also be one list column (``list<double>``, the shape pandas and Hugging Face
datasets write): ``logit_columns=["logits"]`` naming a list column, or by default the
only list column. A pandas index stored as a column (``__index_level_0__``) is left out.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from xentcli.batch._arrays import (
    ArrayTable,
    Batch,
    FloatArray,
    Roles,
    closing_on_error,
    located_error,
    scores_matrix,
)
from xentcli.batch._columns import layout_from_names, text_hint
from xentcli.errors import ColumnError, DataError

if TYPE_CHECKING:
    from xentcli.batch._types import Chunk, ReadOptions

#: the formats by file-name ending (after a compression suffix is removed)
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".npy": "npy",
    ".npz": "npz",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
FORMATS = ("csv", "parquet", "arrow", "npy", "npz", "jsonl")
_COMPRESSIONS = (".gz", ".bz2", ".xz")
#: rows per batch read from a Parquet/Arrow/NumPy file (memory: a few batches) ...
BATCH_ROWS = 1 << 16
#: ... and at most this many bytes of scores per batch (caps rows when K is large)
BATCH_BYTES = 8 << 20
#: a Parquet file's column readers' buffers together: each column gets its share, between
#: 4 KB and 64 KB (1000 score columns: 4 KB each, not the 64 MB of 64 KB each)
PARQUET_BUFFERS = 4 << 20
#: from this many columns on, a Parquet row group is read this many columns at a time
#: (benchmarks/RESULTS.md: a reader per column at once holds ~90 KB each)
WIDE_PARQUET = 100


def rows_per_batch(bytes_per_row: float) -> int:
    """Rows per batch for rows of *bytes_per_row* bytes (as float64 scores).

    >>> rows_per_batch(80), rows_per_batch(8000)
    (65536, 1048)
    """
    return int(max(1, min(BATCH_ROWS, BATCH_BYTES // max(8.0, bytes_per_row))))


#: pandas writes its index as a column of this name when it is not a RangeIndex
_PANDAS_INDEX = "__index_level_0__"

Opener = Callable[[str, "ReadOptions", "Callable[[Chunk], Any] | None"], ArrayTable]


def file_format(path: str, override: str | None = None) -> str:
    """The format of *path*: *override*, else from its name (``csv`` when unknown).

    >>> file_format("runs/preds.parquet"), file_format("x.jsonl.gz"), file_format("-")
    ('parquet', 'jsonl', 'csv')
    """
    if override is not None:
        return override
    name = path.lower()
    for suffix in _COMPRESSIONS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return EXTENSIONS.get(os.path.splitext(name)[1], "csv")


def has_known_extension(name: str) -> bool:
    """Whether *name* ends like a file of one of the formats (compressed or not)."""
    lower = name.lower()
    for suffix in _COMPRESSIONS:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    return os.path.splitext(lower)[1] in EXTENSIONS and not lower.endswith(".txt")


def _compression(path: str) -> str | None:
    lower = path.lower()
    return next((s for s in _COMPRESSIONS if lower.endswith(s)), None)


def _file_error(path: str, reason: str) -> DataError:
    return DataError(path, None, None, reason)


def _check_file(path: str) -> int:
    """The size of *path*, or the usual file-level error."""
    if path == "-":
        raise _file_error("<stdin>", "standard input is read as CSV; this format needs a file")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise _file_error(path, "no such file") from None
    except PermissionError:
        raise _file_error(path, "permission denied") from None
    except OSError as error:
        raise _file_error(path, f"cannot open: {error.strerror or error}") from None
    if os.path.isdir(path):
        raise _file_error(path, "is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise _file_error(path, "permission denied")
    return info.st_size


def open_array_table(
    path: str,
    fmt: str,
    options: ReadOptions,
    prepare: Callable[[Chunk], Any] | None,
    *,
    block_bytes: int,
    max_line: int,
    parsers: int = 1,
    piece: Any = None,
) -> ArrayTable:
    """Open *path* in format *fmt* (not ``csv``) as an :class:`ArrayTable`.

    *block_bytes* and *max_line* are the reader's text limits (JSON Lines is text);
    *parsers* threads check the batches and run the table's ``prepare``. A *piece*
    (:class:`~xentcli.batch._types.Piece`) with row groups reads only those row groups
    of a Parquet file, its rows numbered from ``piece.first_row``.
    """
    if piece is not None and piece.row_groups is not None:
        if fmt != "parquet":
            raise _file_error(path, "row groups are a Parquet notion")
        table = _open_parquet(path, options, prepare, piece)
        table.parsers = parsers
        return table
    openers: dict[str, Opener] = {
        "parquet": _open_parquet,
        "arrow": _open_arrow,
        "npy": _open_npy,
        "npz": _open_npz,
        "jsonl": functools.partial(_open_jsonl, block_bytes=block_bytes, max_line=max_line),
    }
    table = openers[fmt](path, options, prepare)
    table.parsers = parsers
    return table


# -- Arrow-typed formats: Parquet, Arrow IPC / Feather, and JSON Lines -----------------


class _ArrowColumns:
    """The roles of an Arrow schema's columns, and the conversion of a batch to arrays."""

    def __init__(self, path: str, schema: Any, options: ReadOptions, unit: str) -> None:
        import pyarrow as pa

        self.path = path
        self.unit = unit
        names = [name for name in schema.names if name != _PANDAS_INDEX]
        self.names = names
        types = {name: schema.field(name).type for name in names}
        list_columns = [n for n in names if _is_list(types[n])]
        logit_columns = options.logit_columns
        if logit_columns is None and len(list_columns) == 1 and options.target_columns is None:
            logit_columns = list_columns
        layout = layout_from_names(path, names, dataclasses_replace(options, logit_columns))
        self.label = layout.label_name
        self.weight = layout.weight_name
        self.group = layout.group_name
        self.score_columns = layout.logit_names
        self.target_columns = layout.target_names
        self.list_scores = len(self.score_columns) == 1 and _is_list(types[self.score_columns[0]])
        self.list_targets = (
            self.target_columns is not None
            and len(self.target_columns) == 1
            and _is_list(types[self.target_columns[0]])
        )
        for name in self.score_columns if not self.list_scores else []:
            if not _is_number(types[name]):
                reason = f"column {name!r} holds {types[name]}, not numbers"
                if layout.logits_inferred and _is_text(types[name]):
                    holds = f"text ({types[name]}), not numbers"
                    reason = text_hint(name, options.roles, holds)
                raise _file_error(path, reason)
        self.K: int | None = None
        if self.list_scores:
            kind = types[self.score_columns[0]]
            if pa.types.is_fixed_size_list(kind):
                self.K = kind.list_size
        else:
            self.K = len(self.score_columns)
        # Float score columns (float32 or float64, the way models write them) become the
        # (n, K) matrix in one pyarrow call; other types are converted column by column.
        self.float_scores = (
            not self.list_scores
            and _row_major_tensors()
            and all(
                pa.types.is_float32(types[name]) or pa.types.is_float64(types[name])
                for name in self.score_columns
            )
        )
        self.layout = layout
        self.options = options
        self.label_type = None if self.label is None else types[self.label]

    @property
    def columns(self) -> list[str]:
        """The columns to read."""
        wanted = list(self.score_columns)
        if self.label is not None:
            wanted.append(self.label)
        wanted += self.target_columns or []
        wanted += [name for name in (self.weight, self.group) if name is not None]
        return wanted

    def roles(self) -> Roles:
        assert self.K is not None
        if self.list_scores:
            score_names = list(self.options.class_names or [str(k) for k in range(self.K)])
        else:
            score_names = list(self.score_columns)
        classes = None
        if self.options.class_names is not None:
            if len(self.options.class_names) != self.K:
                raise _file_error(
                    self.path, f"{len(self.options.class_names)} class names for {self.K} classes"
                )
            classes = {c: i for i, c in enumerate(self.options.class_names)}
        elif self.label_type is not None and _is_text(self.label_type) and not self.list_scores:
            # String labels with score columns named by class: the header names the classes.
            classes = {c: i for i, c in enumerate(score_names)}
        targets = None
        if self.target_columns is not None:
            targets = list(score_names) if self.list_targets else list(self.target_columns)
        return Roles(score_names, self.label, targets, classes, self.weight, self.group)

    def batch(self, record: Any, places: npt.NDArray[np.int64]) -> Batch:
        """A :class:`Batch` from an Arrow record batch (or table) with these columns."""
        n = record.num_rows
        errors: dict[int, DataError] = {}
        if self.list_scores:
            scores, nulls = self._list_matrix(record, self.score_columns[0], places, errors)
        elif self.float_scores and _is_record_batch(record):
            scores, nulls = self._float_matrix(record)
        else:
            columns, nulls = [], np.zeros(n, dtype=bool)
            for name in self.score_columns:
                column = record.column(name)
                nulls |= _null_mask(column)
                columns.append(_to_float(column))
            scores = scores_matrix(columns, n)
        labels = null_labels = None
        if self.label is not None:
            column = record.column(self.label)
            null_labels = _null_mask(column) if column.null_count else None
            labels = _label_values(column)
        targets = None
        if self.target_columns is not None:
            if self.list_targets:
                targets, _ = self._list_matrix(record, self.target_columns[0], places, errors)
            else:
                cols = [_to_float(record.column(t)) for t in self.target_columns]
                targets = scores_matrix(cols, n)
        out = Batch(
            scores,
            labels,
            targets,
            places,
            null_scores=nulls if nulls.any() else None,
            null_labels=null_labels,
            errors=errors,
        )
        if self.weight is not None:
            column = record.column(self.weight)
            if not _is_number(column.type):
                raise _file_error(self.path, f"weight column {self.weight!r} holds {column.type}")
            out.weights = _to_float(column)
            out.null_weights = _null_mask(column) if column.null_count else None
        if self.group is not None:
            column = record.column(self.group)
            out.null_groups = _null_mask(column) if column.null_count else None
            out.groups = _label_values(column)
        return out

    def _float_matrix(self, record: Any) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """The ``(n, K)`` float64 scores of float columns, and the rows holding a null.

        One column-major ``to_tensor`` (nulls as NaN) and one widening, not K numpy calls
        a batch: 50,000 rows x 1000 float32 columns read and converted in 1.0 s of CPU,
        not 3.3 s (benchmarks/RESULTS.md, the Parquet notes). Column-major because that is
        how Arrow holds the columns: 8192 rows x 1000 take 3.8 ms, against 29 ms for a
        row-major tensor, and the kernel reads its blocks class by class anyway (the
        text reader's blocks are column-major too). The values are the file's own bits
        (float32 widens exactly), as in the per-column path.
        """
        selected = record.select(self.score_columns)
        tensor = np.asarray(selected.to_tensor(null_to_nan=True, row_major=False))
        scores = tensor.astype(np.float64, order="F", copy=tensor.dtype != np.float64)
        nulls = np.zeros(record.num_rows, dtype=bool)
        with np.errstate(invalid="ignore", over="ignore"):
            finite = bool(np.isfinite(tensor.sum()))
        if not finite:  # a NaN or an infinity somewhere: find the nulls among them
            for column in selected.columns:
                if column.null_count:
                    nulls |= _null_mask(column)
        return scores, nulls

    def _list_matrix(
        self,
        record: Any,
        name: str,
        places: npt.NDArray[np.int64],
        errors: dict[int, DataError],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """An ``(n, K)`` array from a list column; rows of another length are errors.

        The lengths come from the list offsets and the values from the flattened child
        array, read as numpy views (no pyarrow.compute, which imports pandas).
        """
        import pyarrow as pa

        column = _plain(record.column(name))
        n = len(column)
        list_nulls = _null_mask(column)
        if pa.types.is_fixed_size_list(column.type):
            size = column.type.list_size
            lengths = np.full(n, size, dtype=np.int64)
            starts = (np.arange(n, dtype=np.int64) + column.offset) * size
            values_array = column.values
        else:
            offsets = _primitive(column.offsets).astype(np.int64)
            lengths = np.diff(offsets)
            starts = offsets[:-1]
            values_array = column.values
        lengths[list_nulls] = -1
        if self.K is None:
            known = lengths[lengths >= 0]
            if len(known) == 0:
                raise located_error(self.path, self.unit, int(places[0]), name, "scores are null")
            self.K = int(known[0])
            if self.K == 0:
                raise located_error(self.path, self.unit, int(places[0]), name, "empty list")
        K = self.K
        for row in np.nonzero(lengths != K)[0].tolist():
            reason = (
                "scores are missing (null)"
                if lengths[row] < 0
                else f"the list has {int(lengths[row])} values, not {K}"
            )
            errors.setdefault(
                row, located_error(self.path, self.unit, int(places[row]), name, reason)
            )
        values = _to_float(values_array)
        good = lengths == K
        out = np.full((n, K), np.nan)
        if good.all() and n and starts[-1] - starts[0] == (n - 1) * K:
            first = int(starts[0])
            out[:] = values[first : first + n * K].reshape(n, K)
        elif good.any():
            index = starts[good][:, None] + np.arange(K)
            out[good] = values[index]
        nulls = np.zeros(n, dtype=bool)
        if values_array.null_count:
            value_nulls = _null_mask(values_array)
            if good.any():
                nulls[good] = value_nulls[starts[good][:, None] + np.arange(K)].any(axis=1)
        return out, nulls


def dataclasses_replace(options: ReadOptions, logit_columns: Sequence[str] | None) -> ReadOptions:
    import dataclasses

    return dataclasses.replace(options, logit_columns=logit_columns)


@functools.cache
def _row_major_tensors() -> bool:
    """Whether pyarrow's ``RecordBatch.to_tensor`` takes ``row_major`` (pyarrow 16)."""
    import pyarrow as pa

    return int(pa.__version__.split(".")[0]) >= 16


def _is_record_batch(record: Any) -> bool:
    import pyarrow as pa

    return isinstance(record, pa.RecordBatch)


def _is_list(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _is_number(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind))


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


# pyarrow's ``to_numpy(zero_copy_only=False)`` and ``pa.array`` import pandas when it is
# installed (2.6 s on the benchmark machine, more than reading a 12 MB Parquet file):
# these conversions read the Arrow buffers directly instead.


def _plain(column: Any) -> Any:
    import pyarrow as pa

    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _null_mask(column: Any) -> npt.NDArray[np.bool_]:
    """True where *column* (an Arrow array) is null."""
    column = _plain(column)
    n = len(column)
    if column.null_count == 0:
        return np.zeros(n, dtype=bool)
    if column.null_count == n:
        return np.ones(n, dtype=bool)
    validity = column.buffers()[0]
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    return bits[column.offset : column.offset + n] == 0


def _primitive(column: Any) -> npt.NDArray[Any]:
    """The values of a numeric Arrow array as a numpy view (nulls hold garbage)."""
    import pyarrow as pa

    column = _plain(column)
    kind = column.type
    n = len(column)
    if pa.types.is_null(kind):
        return np.full(n, np.nan)
    if pa.types.is_boolean(kind):
        bits = np.unpackbits(np.frombuffer(column.buffers()[1], dtype=np.uint8), bitorder="little")
        return bits[column.offset : column.offset + n].astype(np.int64)
    dtype = np.dtype(kind.to_pandas_dtype())
    data = np.frombuffer(column.buffers()[1], dtype=dtype, count=column.offset + n)
    return data[column.offset :]


def _to_float(column: Any) -> npt.NDArray[np.float64]:
    """A numeric Arrow array as float64, NaN where it is null."""
    import pyarrow as pa

    column = _plain(column)
    if not (_is_number(column.type) or pa.types.is_boolean(column.type)):
        raise TypeError(f"not numbers: {column.type}")
    values = np.asarray(_primitive(column), dtype=np.float64)
    if column.null_count:
        values = values.copy() if not values.flags.writeable else values
        values[_null_mask(column)] = np.nan
    return values


def _label_values(column: Any) -> npt.NDArray[Any]:
    """A label (or id) column as integers, floats (NaN for null) or Python strings."""
    import pyarrow as pa

    column = _plain(column)
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if column.null_count:
            return _to_float(column)
        return np.asarray(_primitive(column))
    if pa.types.is_floating(kind):
        return _to_float(column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.array(column.to_pylist(), dtype=object)
    raise _file_error("", f"label column holds {kind}")


def _arrow_table(
    path: str,
    options: ReadOptions,
    prepare: Callable[[Chunk], Any] | None,
    schema: Any,
    records: Callable[[list[str]], Iterator[Any]],
    size: int,
    close: Callable[[], None],
    first_row: int = 1,
    rows: int | None = None,
) -> ArrayTable:
    """An ArrayTable over record batches of *schema*, rows numbered from *first_row*.

    Progress counts the rows read out of *rows* when the file says how many it holds
    (Parquet), else the batches' sizes (``nbytes`` walks every column: 20 ms a row group
    of 1000 columns).
    """
    columns = _ArrowColumns(path, schema, options, "row")
    read = {"bytes": 0}

    def batches() -> Iterator[Batch]:
        first = first_row
        for record in records(columns.columns):
            n = record.num_rows
            if n == 0:
                continue
            places = np.arange(first, first + n, dtype=np.int64)
            first += n
            if rows:
                read["bytes"] = min(size, size * (first - first_row) // rows)
            else:
                read["bytes"] = min(size, read["bytes"] + record.nbytes)
            batch = columns.batch(record, places)
            # The record views its whole row group: let it go before the next is read.
            del record
            yield batch

    if columns.K is None:
        # A list column's length is known from its first row: read ahead one batch.
        iterator = batches()
        head = next(iterator, None)
        if head is None:
            raise _file_error(path, "no data rows")

        def with_head() -> Iterator[Batch]:
            yield head
            yield from iterator

        return ArrayTable(
            path,
            columns.roles(),
            with_head,
            options,
            size_bytes=size,
            bytes_read=lambda: read["bytes"],
            close=close,
            prepare=prepare,
        )
    return ArrayTable(
        path,
        columns.roles(),
        batches,
        options,
        size_bytes=size,
        bytes_read=lambda: read["bytes"],
        close=close,
        prepare=prepare,
    )


def _arrow_errors(path: str, what: str) -> Any:
    import pyarrow as pa

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        try:
            yield
        except (pa.ArrowInvalid, pa.ArrowIOError, pa.ArrowNotImplementedError, OSError) as error:
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise _file_error(path, f"not a readable {what} file ({text})") from None

    return guard()


def _open_parquet(
    path: str, options: ReadOptions, prepare: Callable[[Chunk], Any] | None, piece: Any = None
) -> ArrayTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_groups = None if piece is None else piece.row_groups
    first_row = 1 if piece is None else piece.first_row
    size = _check_file(path)
    with _arrow_errors(path, "Parquet"):
        # Buffered page reads, not a memory map (whose pages count in the resident size)
        # nor pre-buffering (which reads whole column chunks): memory stays about a batch
        # (measured: 128 MB peak for 2,000,000 rows x 10, 144 MB for 50,000 x a list of 1000).
        columns = pq.read_metadata(path).num_columns
        handle = pq.ParquetFile(
            path,
            memory_map=False,
            buffer_size=max(4 << 10, min(64 << 10, PARQUET_BUFFERS // max(1, columns))),
            pre_buffer=False,
        )
    try:
        schema = handle.schema_arrow
        metadata = handle.metadata
        groups = range(metadata.num_row_groups) if row_groups is None else row_groups

        def records(columns: list[str]) -> Iterator[Any]:
            # float64 bytes per row, from the first row group's size (values as stored
            # take 4 or 8 bytes: twice the stored size is a safe bound)
            stored = metadata.row_group(0).total_byte_size if metadata.num_row_groups else 0
            per_row = 2 * stored / max(1, metadata.row_group(0).num_rows) if stored else 80
            batch_rows = rows_per_batch(per_row)
            if len(columns) >= WIDE_PARQUET:
                batch_rows = max(1, batch_rows // 2)
            with _arrow_errors(path, "Parquet"):
                if len(columns) < WIDE_PARQUET:
                    yield from handle.iter_batches(
                        batch_size=batch_rows, columns=columns, row_groups=row_groups
                    )
                    return
                # Many columns: a reader per column at once keeps each one's pages and
                # dictionary (about 90 KB a column); a row group read WIDE_PARQUET columns
                # at a time holds its values (as stored) and a few readers instead.
                for group in groups:
                    parts = [
                        handle.read_row_group(group, columns=columns[i : i + WIDE_PARQUET])
                        for i in range(0, len(columns), WIDE_PARQUET)
                    ]
                    whole = pa.table(
                        {name: p.column(name) for p in parts for name in p.column_names}
                    )
                    del parts
                    yield from whole.to_batches(max_chunksize=batch_rows)
                    del whole  # before the next group is read: one row group at a time

        rows = sum(metadata.row_group(group).num_rows for group in groups)
        return _arrow_table(
            path, options, prepare, schema, records, size, handle.close, first_row, rows
        )
    except BaseException:
        handle.close()
        raise


def _open_arrow(
    path: str, options: ReadOptions, prepare: Callable[[Chunk], Any] | None
) -> ArrayTable:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    size = _check_file(path)
    with _arrow_errors(path, "Arrow"):
        source = pa.OSFile(path)  # record batches read one by one (a map would stay resident)
    try:
        with _arrow_errors(path, "Arrow"):
            try:
                reader: Any = ipc.open_file(source)
                stream = False
            except pa.ArrowInvalid:
                source.seek(0)
                reader = ipc.open_stream(source)
                stream = True
        schema = reader.schema

        def records(columns: list[str]) -> Iterator[Any]:
            with _arrow_errors(path, "Arrow"):
                batches = (
                    reader
                    if stream
                    else (reader.get_batch(i) for i in range(reader.num_record_batches))
                )
                for record in batches:
                    # Feather files written by pandas hold one big batch: slice it.
                    selected = record.select(columns)
                    step = rows_per_batch(2 * selected.nbytes / max(1, selected.num_rows))
                    for start in range(0, record.num_rows, step):
                        yield selected.slice(start, step)

        return _arrow_table(path, options, prepare, schema, records, size, source.close)
    except BaseException:
        source.close()
        raise


# -- JSON Lines -------------------------------------------------------------------------


def _open_jsonl(
    path: str,
    options: ReadOptions,
    prepare: Callable[[Chunk], Any] | None,
    *,
    block_bytes: int,
    max_line: int,
) -> ArrayTable:
    from xentcli.batch._sources import Block, Source

    display = "<stdin>" if path == "-" else path
    stack = contextlib.ExitStack()
    try:
        source = Source(
            path,
            display,
            stack,
            block_bytes=block_bytes,
            max_line=max_line,
            opener=open,
        )
        first_block = source.next_block()
        if first_block is None:
            raise _file_error(display, "file is empty")
        first_record = _first_json_object(display, first_block.text, first_block.first)
        schema = _json_schema(display, first_record)
        columns = _ArrowColumns(display, schema, options, "line")
        blocks = [first_block]

        def batches() -> Iterator[Batch]:
            block: Block | None = blocks.pop()
            while block is not None:
                for record, places in _json_records(display, block.text, block.first, columns):
                    yield columns.batch(record, places)
                block = source.next_block()

        if columns.K is None:
            head_records = list(
                _json_records(display, first_block.text, first_block.first, columns)
            )
            head = [columns.batch(r, p) for r, p in head_records]

            def with_head() -> Iterator[Batch]:
                yield from head
                block = source.next_block()
                while block is not None:
                    for record, places in _json_records(display, block.text, block.first, columns):
                        yield columns.batch(record, places)
                    block = source.next_block()

            produce = with_head
        else:
            produce = batches
        return ArrayTable(
            display,
            columns.roles(),
            produce,
            options,
            place="line",
            size_bytes=source.size_bytes,
            bytes_read=lambda: source.bytes_read,
            close=stack.close,
            prepare=prepare,
        )
    except BaseException:
        stack.close()
        raise


def _lines_of(text: bytes, first: int) -> Iterator[tuple[int, bytes]]:
    for offset, raw in enumerate(text.split(b"\n")):
        line = raw.rstrip(b"\r")
        if line.strip(b" \t"):
            yield first + offset, line


def _first_json_object(path: str, text: bytes, first: int) -> dict[str, Any]:
    for number, line in _lines_of(text, first):
        return _parse_json_line(path, number, line)
    raise _file_error(path, "no data rows")


def _parse_json_line(path: str, number: int, line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        reason = getattr(error, "msg", None) or "not valid UTF-8"
        raise DataError(path, number, None, f"not a JSON object ({reason})") from None
    if not isinstance(value, dict):
        raise DataError(path, number, None, f"not a JSON object (a {type(value).__name__})")
    return value


def _json_schema(path: str, record: dict[str, Any]) -> Any:
    """An Arrow schema for the fields of *record* (numbers, strings, lists of numbers)."""
    import pyarrow as pa

    fields = []
    for name, value in record.items():
        if isinstance(value, list):
            fields.append(pa.field(name, pa.list_(pa.float64())))
        elif isinstance(value, (bool, int)):
            fields.append(pa.field(name, pa.int64()))
        elif isinstance(value, float) or value is None:
            fields.append(pa.field(name, pa.float64()))
        else:
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)


def _json_records(
    path: str, text: bytes, first: int, columns: _ArrowColumns
) -> Iterator[tuple[Any, npt.NDArray[np.int64]]]:
    """The block's objects as Arrow tables of the wanted columns, with their line numbers.

    pyarrow's JSON reader parses the block at once; when it refuses (a line that is not
    JSON, a field of another type), the block is read line by line for the exact message.
    """
    import pyarrow as pa
    import pyarrow.json as pj

    numbered = list(_lines_of(text, first))
    if not numbered:
        return
    places = np.fromiter((n for n, _ in numbered), dtype=np.int64, count=len(numbered))
    wanted = columns.columns
    schema = pa.schema([_json_field(columns, name) for name in wanted])
    try:
        table = pj.read_json(
            io.BytesIO(b"\n".join(line for _, line in numbered)),
            parse_options=pj.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
            read_options=pj.ReadOptions(block_size=max(1 << 20, len(text) + 1)),
        )
        if table.num_rows == len(numbered):
            for start in range(0, table.num_rows, BATCH_ROWS):
                yield table.slice(start, BATCH_ROWS), places[start : start + BATCH_ROWS]
            return
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    yield _precise_json(path, numbered, columns, schema), places


def _json_field(columns: _ArrowColumns, name: str) -> Any:
    import pyarrow as pa

    if name == columns.label:
        if columns.label_type is not None and _is_text(columns.label_type):
            return pa.field(name, pa.string())
        return pa.field(name, pa.float64())
    if name == columns.group:
        return pa.field(name, pa.string())
    if (name in columns.score_columns and columns.list_scores) or (
        columns.target_columns is not None
        and name in columns.target_columns
        and columns.list_targets
    ):
        return pa.field(name, pa.list_(pa.float64()))
    return pa.field(name, pa.float64())


def _precise_json(
    path: str, numbered: list[tuple[int, bytes]], columns: _ArrowColumns, schema: Any
) -> Any:
    """The objects parsed one by one, each bad line raised with its number and field."""
    import pyarrow as pa

    data: dict[str, list[Any]] = {name: [] for name in schema.names}
    for number, line in numbered:
        record = _parse_json_line(path, number, line)
        for field in schema:
            name = field.name
            if name not in record:
                raise DataError(path, number, name, f"the object has no field {name!r}")
            value = record[name]
            data[name].append(_json_value(path, number, name, value, field.type))
    try:
        return pa.table(data, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:  # pragma: no cover - checked above
        raise _file_error(path, f"cannot read the objects ({error})") from None


def _json_value(path: str, number: int, name: str, value: Any, kind: Any) -> Any:
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_list(kind):
        if not isinstance(value, list) or not all(
            (isinstance(v, (int, float)) and not isinstance(v, bool)) or v is None for v in value
        ):
            raise DataError(path, number, name, "not a list of numbers", value)
        return value
    if pa.types.is_string(kind):
        return str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(path, number, name, "not a number", value)
    return float(value)


# -- NumPy ------------------------------------------------------------------------------


class _NpyRows:
    """A C-ordered ``.npy`` array read by rows from its file.

    Not memory-mapped: the pages of a map stay in the resident size once touched (a
    400 MB file scored through a map peaked at 554 MB), while rows read into a buffer
    leave only the current batch in memory. Sliced like an array (``rows[a:b]``).
    """

    def __init__(
        self, path: str, handle: Any, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> None:
        self.path = path
        self._handle = handle
        self._offset = handle.tell()
        self.shape = shape
        self.ndim = len(shape)
        self.dtype = dtype
        self._row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __getitem__(self, rows: slice) -> npt.NDArray[Any]:
        start, stop, _ = rows.indices(len(self))
        count = max(0, stop - start) * self._row
        try:
            self._handle.seek(self._offset + start * self._row * self.dtype.itemsize)
            values = np.fromfile(self._handle, dtype=self.dtype, count=count)
        except OSError as error:  # a read error (EIO): the file's, as the text reader says
            raise _file_error(self.path, f"cannot read file data: {error}") from None
        if len(values) != count:
            raise _file_error(self.path, "the file is shorter than its header says (truncated)")
        return values.reshape((max(0, stop - start), *self.shape[1:]))

    def close(self) -> None:
        self._handle.close()


def _load_npy(path: str, what: str, stack: contextlib.ExitStack | None = None) -> Any:
    """A ``.npy`` array: read by rows (:class:`_NpyRows`) when it is a plain uncompressed
    C-ordered array and *stack* is given to close it, else loaded whole."""
    _check_file(path)
    kind = _compression(path)
    try:
        if kind is None and stack is not None:
            handle = stack.enter_context(open(path, "rb"))  # noqa: SIM115 (closed by the stack)
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(handle)
            if not fortran_order and not dtype.hasobject:
                return _NpyRows(path, handle, tuple(shape), dtype)
        if kind is None:
            return np.load(path, allow_pickle=False)
        opener = _decompressor(kind)
        with opener(path, "rb") as compressed:
            return np.load(io.BytesIO(compressed.read()), allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error) or "object" in str(error):
            raise _file_error(path, f"{what} hold Python objects, not numbers") from None
        raise _file_error(path, f"not a readable .npy file ({error})") from None
    except (OSError, EOFError) as error:
        raise _file_error(path, f"not a readable .npy file ({error})") from None


def _decompressor(kind: str) -> Any:
    import bz2
    import gzip
    import lzma

    return {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[kind]


def _array_table(
    path: str,
    scores: Any,
    labels: Any,
    targets: Any,
    options: ReadOptions,
    prepare: Callable[[Chunk], Any] | None,
    names: tuple[str, str, str],
    size: int | None,
    weights: Any = None,
    groups: Any = None,
) -> ArrayTable:
    """An ArrayTable over in-memory (or memory-mapped) score, label and target arrays."""
    score_name, label_name, target_name = names
    if scores.dtype.kind != "f":
        raise _file_error(path, f"{score_name}: scores must be floating point (got {scores.dtype})")
    if scores.ndim != 2:
        raise _file_error(
            path, f"{score_name}: scores must be a 2-D array (rows, classes), got {scores.ndim}-D"
        )
    n, K = scores.shape
    if K == 0:
        raise _file_error(path, f"{score_name}: no classes (shape {scores.shape})")
    if labels is None and targets is None:
        raise _file_error(path, "no labels: give --labels FILE.npy (or --targets FILE.npy)")
    if labels is not None:
        if labels.ndim != 1:
            raise _file_error(
                path, f"{label_name}: labels must be a 1-D array, got {labels.ndim}-D"
            )
        if labels.dtype.kind not in "iufUSb":
            raise _file_error(path, f"{label_name}: labels must be integers (got {labels.dtype})")
        if len(labels) != n:
            raise _file_error(
                path, f"{label_name} has {len(labels)} rows and {score_name} {n}: they must match"
            )
    if targets is not None:
        if targets.shape != scores.shape:
            raise _file_error(
                path,
                f"{target_name} has shape {targets.shape} and {score_name} {scores.shape}:"
                " they must match",
            )
        if targets.dtype.kind != "f":
            raise _file_error(path, f"{target_name}: targets must be floating point")
    for array, what, key in (
        (weights, "weights", options.weight_column),
        (groups, "groups", options.group_column),
    ):
        if array is not None and (array.ndim != 1 or len(array) != n):
            raise _file_error(path, f"{key}: {what} must be a 1-D array of {n} rows")
        if array is weights and array is not None and array.dtype.kind not in "iuf":
            raise _file_error(path, f"{key}: weights must be numbers (got {array.dtype})")
    classes = None
    if options.class_names is not None:
        if len(options.class_names) != K:
            raise _file_error(path, f"{len(options.class_names)} class names for {K} classes")
        classes = {c: i for i, c in enumerate(options.class_names)}
    score_names = list(options.class_names or [str(k) for k in range(K)])
    roles = Roles(
        score_names,
        None if labels is None else label_name,
        None if targets is None else list(score_names),
        classes,
        options.weight_column if weights is not None else None,
        options.group_column if groups is not None else None,
    )
    done = {"rows": 0}

    def batches() -> Iterator[Batch]:
        step = rows_per_batch(8 * K)
        for start in range(0, n, step):
            stop = min(n, start + step)
            done["rows"] = stop
            yield Batch(
                np.asarray(scores[start:stop], dtype=np.float64),
                None if labels is None else np.asarray(labels[start:stop]),
                None if targets is None else np.asarray(targets[start:stop], dtype=np.float64),
                np.arange(start + 1, stop + 1, dtype=np.int64),
                weights=None if weights is None else np.asarray(weights[start:stop], np.float64),
                groups=None if groups is None else np.asarray(groups[start:stop]),
            )

    def bytes_read() -> int:
        return 0 if size is None or n == 0 else size * done["rows"] // n

    return ArrayTable(
        path, roles, batches, options, size_bytes=size, bytes_read=bytes_read, prepare=prepare
    )


def _open_npy(
    path: str, options: ReadOptions, prepare: Callable[[Chunk], Any] | None
) -> ArrayTable:
    size = _check_file(path)
    if options.weight_column is not None or options.group_column is not None:
        raise _file_error(
            path,
            "--weight-column and --group-by name an array of a .npz file; a .npy file has one"
            " array only",
        )
    stack = contextlib.ExitStack()
    with closing_on_error(stack.close):
        scores = _load_npy(path, "scores", stack)
        labels = targets = None
        labels_path = getattr(options, "labels_path", None)
        targets_path = getattr(options, "targets_path", None)
        if labels_path is not None:
            labels = _load_npy(labels_path, "labels", stack)
        if targets_path is not None:
            targets = _load_npy(targets_path, "targets", stack)
        names = (
            os.path.basename(path),
            os.path.basename(labels_path or "labels"),
            os.path.basename(targets_path or "targets"),
        )
        table = _array_table(path, scores, labels, targets, options, prepare, names, size)
        table.on_close(stack.close)
        return table


def _open_npz(
    path: str, options: ReadOptions, prepare: Callable[[Chunk], Any] | None
) -> ArrayTable:
    import zipfile

    size = _check_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise _file_error(path, f"not a readable .npz file ({error})") from None
    with archive:
        keys = list(archive.files)
        scores_key = getattr(options, "scores_key", None)
        if scores_key is None:
            scores_key = next((k for k in ("logits", "probs", "scores") if k in keys), None)
            if scores_key is None:
                raise _file_error(
                    path,
                    f"no array named logits or probs (arrays: {', '.join(keys)}); give --scores-key",
                )
        elif scores_key not in keys:
            raise _file_error(path, f"no array named {scores_key!r} (arrays: {', '.join(keys)})")
        labels_key = getattr(options, "labels_key", None) or "labels"
        try:
            scores = archive[scores_key]
            labels = archive[labels_key] if labels_key in keys else None
            targets = archive["targets"] if labels is None and "targets" in keys else None
            extra = []
            for key, option in (
                (options.weight_column, "--weight-column"),
                (options.group_column, "--group-by"),
            ):
                if key is not None and key not in keys:
                    raise ColumnError(
                        path,
                        None,
                        None,
                        f"{option}: no array named {key!r} (arrays: {', '.join(keys)})",
                    )
                extra.append(None if key is None else archive[key])
        except ValueError:
            raise _file_error(path, "an array holds Python objects, not numbers") from None
    if labels is None and targets is None:
        raise _file_error(
            path, f"no array named {labels_key!r} (arrays: {', '.join(keys)}); give --labels-key"
        )
    return _array_table(
        path,
        scores,
        labels,
        targets,
        options,
        prepare,
        (scores_key, labels_key, "targets"),
        size,
        *extra,
    )
