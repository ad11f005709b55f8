"""``xent compare --id-column NAME``: pair the rows of A and B by an id column (a join).

Each file is read twice: a light pass over its id column alone (pyarrow's CSV reader,
the Parquet / Arrow column, the JSON Lines field, the .npz array), then the usual streaming pass, whose chunks fold into that
side's own accumulator (so each side's figures stay the bits of ``xent batch`` on that
file alone) while a few numbers per row are kept (:class:`SideRows`). The i-th id is the
i-th data row of the file, and its place is the one the streaming pass gives that row.
The ids are then joined (Arrow's sort and ``index_in``), and the rows of B reordered to
A's order are folded into the paired statistics
(:meth:`~xentcli.batch.compare.PairedComparison.add_pairs`).

Memory grows with the rows: about :data:`BYTES_PER_ROW` bytes per row and side, plus the
ids themselves (their text), plus 8 bytes per class and row with soft targets. Files of
more than :data:`MAX_ROWS` rows are refused before the streaming pass. Ids are compared
as text (an integer id 7 in Parquet matches the cell ``7`` of a CSV file).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from xentcli.batch._types import place
from xentcli.batch.accumulator import BatchAccumulator, ChunkResult
from xentcli.batch.metrics import MetricRows, concat_rows, take_rows
from xentcli.errors import DataError, XentError

if TYPE_CHECKING:
    from xentcli.batch._types import Chunk

#: the most rows a file may have for a join (about 2 GB of per-row results for both sides)
MAX_ROWS = 20_000_000
#: what a join keeps per row and side, ids aside: line, label, prediction (int64),
#: probability, loss (float64), counted (bool), and the join's two int64 indices
BYTES_PER_ROW = 8 * 5 + 1 + 16

_NO_INTS = np.zeros(0, dtype=np.int64)
_NO_ROWS = MetricRows(_NO_INTS, _NO_INTS, np.zeros(0), np.zeros(0), _NO_INTS, _NO_INTS)

#: the formats whose id column can be read (an .npz: the array of that name)
FORMATS = ("csv", "parquet", "arrow", "jsonl", "npz")


@dataclass
class SideRows:
    """The per-row results of one file, in the file's order, kept for the join."""

    path: str
    unit: str
    results: list[ChunkResult] = dataclasses.field(default_factory=list)
    label_values: list[npt.NDArray[np.int64]] = dataclasses.field(default_factory=list)
    targets: list[npt.NDArray[np.float64]] = dataclasses.field(default_factory=list)
    #: keep the metric states' rows too (the paired bootstrap needs them: about 50 more
    #: bytes per row)
    keep_metrics: bool = False

    def keep(self, chunk: Chunk, result: ChunkResult) -> None:
        metrics = result.metrics if self.keep_metrics else None
        self.results.append(dataclasses.replace(result, path=self.path, metrics=metrics))
        self.unit = chunk.unit
        if chunk.labels is not None:
            self.label_values.append(np.array(chunk.labels, dtype=np.int64))
        if chunk.targets is not None:
            self.targets.append(np.array(chunk.targets, dtype=np.float64))

    def metric_rows(self) -> MetricRows:
        """The metric rows of every kept chunk, one after the other (``keep_metrics``)."""
        parts = [r.metrics for r in self.results if r.metrics is not None]
        if len(parts) != len(self.results) or not parts:
            return take_rows(_NO_ROWS, np.zeros(0, dtype=np.intp))
        return concat_rows(parts)

    def joined(self) -> ChunkResult:
        """All the rows as one :class:`ChunkResult`."""
        parts = self.results
        if not parts:
            empty_i = np.zeros(0, dtype=np.int64)
            empty_f = np.zeros(0)
            return ChunkResult(
                self.path, empty_i, empty_i, empty_i, empty_f, empty_f, np.zeros(0, bool)
            )
        lines, labels, predicted, probability, loss, counted = (
            np.concatenate([getattr(r, name) for r in parts])
            for name in ("lines", "labels", "predicted", "probability", "loss", "counted")
        )
        return ChunkResult(self.path, lines, labels, predicted, probability, loss, counted)


def fold_side(table: Any, accumulator: BatchAccumulator, side: SideRows) -> None:
    """Stream *table* into *accumulator* (as ``xent batch`` does), keeping its rows."""
    for chunk in table.chunks():
        chunk = dataclasses.replace(chunk, path=table.display_name)
        result = accumulator.add(chunk, per_row=True)
        if result is not None:
            side.keep(chunk, result)


def read_ids(table: Any, fmt: str, id_column: str) -> Any:
    """The id column of the open *table* (format *fmt*) as an Arrow string array.

    Raises :class:`~xentcli.errors.XentError` (a usage error) for a format whose ids
    cannot be read, :class:`~xentcli.errors.DataError` for a file of more than
    :data:`MAX_ROWS` rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    name = table.display_name
    if fmt not in FORMATS:
        raise XentError(
            f"--id-column reads CSV, Parquet, Arrow, JSON Lines and .npz files, not {fmt}"
            f" ({name}): a .npy holds one array; save the ids beside the scores in an .npz"
            " (np.savez(path, logits=..., labels=..., id=...)) and give --id-column id"
        )
    try:
        if fmt == "csv":
            column = _csv_ids(table, id_column)
        elif fmt == "jsonl":
            column = _jsonl_ids(table, id_column)
        elif fmt == "npz":
            column = _npz_ids(table, id_column)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            handle = pq.ParquetFile(table.path, memory_map=False)
            _check_rows(name, handle.metadata.num_rows)
            column = pa.chunked_array(
                [b.column(0) for b in handle.iter_batches(columns=[id_column])],
                type=handle.schema_arrow.field(id_column).type,
            )
        else:
            import pyarrow.ipc as ipc

            with pa.OSFile(table.path) as source:
                try:
                    reader: Any = ipc.open_file(source)
                    batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
                except pa.ArrowInvalid:
                    source.seek(0)
                    batches = list(ipc.open_stream(source))
            column = pa.chunked_array(
                [b.column(id_column) for b in batches],
                type=batches[0].schema.field(id_column).type if batches else pa.string(),
            )
        _check_rows(name, len(column))
        return pc.cast(column, pa.string()).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(name, None, None, f"id column {id_column!r}: {reason}") from None


def _csv_ids(table: Any, id_column: str) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    layout = table.layout
    names = [f"c{i}" for i in range(layout.ncols)]
    index = layout.names.index(id_column) if id_column in layout.names else int(id_column)
    skip = layout.header_line if layout.has_header else 0
    read = pacsv.read_csv(
        table.path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip),
        parse_options=pacsv.ParseOptions(delimiter=layout.delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=[names[index]], column_types={names[index]: pa.string()}
        ),
    )
    return read.column(0)


def _jsonl_ids(table: Any, id_column: str) -> Any:
    """The id field of every object of a JSON Lines file, in order (blank lines are not
    rows, as for the streaming pass); an object without it is an error naming its line."""
    import contextlib
    import io
    import json

    import pyarrow as pa
    import pyarrow.json as pj

    from xentcli.batch import reader
    from xentcli.batch._sources import Source

    name = table.display_name
    parts: list[Any] = []
    rows = 0
    with contextlib.ExitStack() as stack:
        source = Source(
            table.path,
            name,
            stack,
            block_bytes=reader.BLOCK_BYTES,
            max_line=reader.MAX_LINE_BYTES,
            opener=open,
        )
        kind = None
        block = source.next_block()
        while block is not None:
            numbered = [
                (block.first + i, line.rstrip(b"\r"))
                for i, line in enumerate(block.text.split(b"\n"))
                if line.strip(b" \t\r")
            ]
            if numbered and kind is None:
                first = json.loads(numbered[0][1])
                value = first.get(id_column) if isinstance(first, dict) else None
                kind = pa.int64() if isinstance(value, int) else pa.string()
            if numbered:
                schema = pa.schema([pa.field(id_column, kind)])
                try:
                    ids = pj.read_json(
                        io.BytesIO(b"\n".join(line for _, line in numbered)),
                        parse_options=pj.ParseOptions(
                            explicit_schema=schema, unexpected_field_behavior="ignore"
                        ),
                        read_options=pj.ReadOptions(block_size=max(1 << 20, len(block.text) + 1)),
                    ).column(0)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    ids = _json_ids_one_by_one(name, numbered, id_column)
                if ids.null_count:
                    missing = int(np.flatnonzero(_nulls(ids))[0])
                    raise DataError(
                        name, numbered[missing][0], None, f"no id (field {id_column!r})"
                    )
                parts.append(ids.cast(pa.string()))
                rows += len(numbered)
                _check_rows(name, rows)
            block = source.next_block()
    return pa.chunked_array(parts, type=pa.string())


def _json_ids_one_by_one(name: str, numbered: list[tuple[int, bytes]], id_column: str) -> Any:
    """The ids of a block pyarrow refused (a line that is not JSON, ids of mixed types),
    parsed line by line: the first bad line is the error."""
    import json

    import pyarrow as pa

    values = []
    for number, line in numbered:
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise DataError(name, number, None, "not a JSON object") from None
        value = record.get(id_column) if isinstance(record, dict) else None
        if value is None or isinstance(value, (dict, list)):
            raise DataError(name, number, None, f"no id (field {id_column!r})")
        values.append(str(value))
    return pa.array(values, type=pa.string())


def _nulls(column: Any) -> npt.NDArray[np.bool_]:
    import pyarrow as pa

    return np.asarray(column.is_null().cast(pa.uint8()).to_numpy(zero_copy_only=False), bool)


def _npz_ids(table: Any, id_column: str) -> Any:
    """The array named *id_column* of an .npz file (1-D integers or text)."""
    import pyarrow as pa

    name = table.display_name
    with np.load(table.path, allow_pickle=False) as archive:
        if id_column not in archive.files:
            raise DataError(
                name,
                None,
                None,
                f"no array named {id_column!r} for --id-column (arrays:"
                f" {', '.join(archive.files)})",
            )
        try:
            ids = archive[id_column]
        except ValueError:
            raise DataError(name, None, None, f"array {id_column!r} holds Python objects") from None
    if ids.ndim != 1 or ids.dtype.kind not in "iuUS":
        raise DataError(
            name,
            None,
            None,
            f"array {id_column!r} is {ids.ndim}-D {ids.dtype}: --id-column needs a 1-D array"
            " of integers or text",
        )
    _check_rows(name, len(ids))
    # bytes ids: through Python bytes (pyarrow takes numpy 'S' arrays only as binary)
    column = pa.array(ids.tolist(), type=pa.binary()) if ids.dtype.kind == "S" else pa.array(ids)
    return pa.chunked_array([column.cast(pa.string())])


def _check_rows(name: str, rows: int) -> None:
    if rows > MAX_ROWS:
        raise DataError(
            name,
            None,
            None,
            f"{rows:,} rows: --id-column joins at most {MAX_ROWS:,} rows per file (it keeps"
            f" about {BYTES_PER_ROW} bytes per row and side); sort both files the same way"
            " and compare them by position instead",
        )


def align(
    ids_a: Any,
    ids_b: Any,
    side_a: SideRows,
    side_b: SideRows,
    skipped: tuple[list[int], list[int]],
    *,
    skipping: bool,
) -> tuple[ChunkResult, ChunkResult, npt.NDArray[np.intp], npt.NDArray[np.intp], int, Any]:
    """Join the two files' rows on their ids.

    Returns both sides' results, the indices of the paired rows in each (A's order),
    the number of rows without a partner (with *skipping*; otherwise an id in one file only
    is an error) and the paired rows' ids (an Arrow string array, in the same order). *skipped* are the line or row numbers of the rows each streaming pass
    skipped, needed to tell which id each kept row has.
    """
    import pyarrow.compute as pc

    rows_a, rows_b = side_a.joined(), side_b.joined()
    keys_a = _row_ids(ids_a, rows_a, side_a, skipped[0])
    keys_b = _row_ids(ids_b, rows_b, side_b, skipped[1])
    for keys, rows, side in ((keys_a, rows_a, side_a), (keys_b, rows_b, side_b)):
        _refuse_repeats(keys, rows, side)
    in_a = pc.fill_null(pc.index_in(keys_b, value_set=keys_a), -1).to_numpy()
    in_a = np.asarray(in_a, dtype=np.intp)
    found = in_a >= 0
    only_b = np.nonzero(~found)[0]
    covered = np.zeros(len(keys_a), dtype=bool)
    covered[in_a[found]] = True
    only_a = np.nonzero(~covered)[0]
    if not skipping:
        for lonely, rows, keys, side, other in (
            (only_a, rows_a, keys_a, side_a, side_b),
            (only_b, rows_b, keys_b, side_b, side_a),
        ):
            if len(lonely):
                i = int(lonely[0])
                raise DataError(
                    place(side.path, int(rows.lines[i]), side.unit),
                    None,
                    None,
                    f"id {keys[i].as_py()!r} is not in {other.path} ({len(lonely):,} of"
                    f" this file's ids are not; --on-error skip counts them as unpaired)",
                )
    index_b = np.nonzero(found)[0]
    index_a = in_a[index_b]
    order = np.argsort(index_a, kind="stable")  # A's order: the first disagreement is A's first
    index_a, index_b = index_a[order], index_b[order]
    return rows_a, rows_b, index_a, index_b, len(only_a) + len(only_b), keys_a.take(index_a)


def _row_ids(ids: Any, rows: ChunkResult, side: SideRows, skipped: list[int]) -> Any:
    """The ids of the rows the streaming pass kept (ids are all the data rows, in order)."""
    kept = len(rows.lines)
    if len(ids) == kept:
        return ids
    if len(ids) == kept + len(skipped):
        # every data row is kept or skipped: its position among them all is its id's
        everything = np.concatenate([rows.lines, np.asarray(skipped, dtype=np.int64)])
        position = np.searchsorted(np.sort(everything), rows.lines)
        return ids.take(position)
    raise DataError(
        side.path,
        None,
        None,
        f"the id column has {len(ids):,} rows and the file {kept:,} readable rows"
        + (f" and {len(skipped):,} skipped" if skipped else "")
        + ": cannot tell which id each row has (more than a few skipped rows, or blank"
        " or multi-line rows the two passes count differently)",
    )


def _refuse_repeats(keys: Any, rows: ChunkResult, side: SideRows) -> None:
    import pyarrow.compute as pc

    if len(keys) < 2:
        return
    order = pc.sort_indices(keys).to_numpy()  # a stable sort: a repeat follows its first
    ordered = keys.take(order)
    same = pc.equal(ordered.slice(1), ordered.slice(0, len(keys) - 1))
    # as bytes: a boolean Arrow array has no zero-copy numpy view
    same = pc.cast(pc.fill_null(same, False), "uint8").to_numpy().astype(bool)
    if not same.any():
        return
    repeats = order[1:][same]
    repeat = int(repeats.min())
    first = int(pc.index(keys, keys[repeat]).as_py())
    raise DataError(
        place(side.path, int(rows.lines[repeat]), side.unit),
        None,
        None,
        f"id {keys[repeat].as_py()!r} appears again (first at"
        f" {place(side.path, int(rows.lines[first]), side.unit)}): --id-column needs"
        " unique ids",
    )
