"""The fast path: whole blocks parsed by pyarrow, then validated with numpy reductions.

:class:`FastParser` reads a block of whole lines with pyarrow's CSV reader (forced
column types, one thread: the reader runs several parsers at once), or, for a wide
table, as one long column of numbers, and checks the values with a few vectorised
reductions. It answers None whenever the block is not plainly valid: the caller then
re-reads (part of) it with the precise reader (:mod:`xentcli.batch._precise`), which defines
the accepted syntax and writes the messages.
The fast path never accepts what the precise reader refuses, and gives identical arrays.
pyarrow is imported inside the methods, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli.batch._columns import Layout
from xentcli.batch._kinds import RowRules, finish
from xentcli.batch._rows import ParsedRows
from xentcli.batch._sources import BOM, count_newlines
from xentcli.batch._syntax import INTEGER
from xentcli.core import ROW_ARGMAX_CLASSES


class FastParser:
    """Parse blocks of one table fast, or give up (None) for the precise reader.

    *long_line* is the length of the table's first line (pyarrow's blocks must hold
    whole lines); *ignore_index* is the label value allowed outside [0, K).
    """

    def __init__(
        self, layout: Layout, ignore_index: int | None, long_line: int, rules: RowRules
    ) -> None:
        self._layout = layout
        #: the row rules (shared with the precise reader; the table sets the kind)
        self.rules = rules
        self._ignore = None if layout.class_index is not None else ignore_index
        self._long_line = long_line
        self._arrow: tuple[Any, Any, Any] | None = None

    def _arrow_options(self) -> tuple[Any, Any, Any]:
        if self._arrow is not None:
            return self._arrow
        import pyarrow as pa
        import pyarrow.csv as pacsv

        layout = self._layout
        columns = [f"c{i}" for i in range(layout.ncols)]
        numeric = layout.logits + (layout.targets or [])
        types = {columns[i]: pa.float64() for i in numeric}
        include = [columns[i] for i in numeric]
        if layout.label is not None:
            include.append(columns[layout.label])
            # Labels as float64: integral floats (1.0 from np.savetxt) are labels too.
            label_type = (
                pa.dictionary(pa.int32(), pa.string())
                if layout.class_index is not None
                else pa.float64()
            )
            types[columns[layout.label]] = label_type
        if layout.weight is not None:
            include.append(columns[layout.weight])
            types[columns[layout.weight]] = pa.float64()
        if layout.group is not None:
            include.append(columns[layout.group])
            types[columns[layout.group]] = pa.dictionary(pa.int32(), pa.string())
        # pyarrow's blocks must hold whole lines: size them from the first line.
        block_size = max(1 << 20, 4 * self._long_line)
        # No pyarrow threads: the reader parses two blocks at once (reader.PARSERS), and
        # pyarrow's hand-offs between its own threads cost a third more CPU time.
        self._arrow = (
            pacsv.ReadOptions(column_names=columns, block_size=block_size, use_threads=False),
            pacsv.ParseOptions(
                delimiter=layout.delimiter, newlines_in_values=False, ignore_empty_lines=True
            ),
            _convert_options(column_types=types, include_columns=include, check_utf8=True),
        )
        return self._arrow

    def parse(self, block: bytes, first: int, newlines: int | None = None) -> ParsedRows | None:
        """pyarrow's parse of a block, or None when it or the validation fails.

        *newlines*, when known, is the number of line breaks in *block*.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        # Each row must be one physical line for the line numbers to hold.
        if not _plain_lines(block) or (b'"' in block and not _quotes_balanced(block)):
            return None
        read_options, parse_options, convert_options = self._arrow_options()
        try:
            table = pacsv.read_csv(
                pa.py_buffer(block),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except (pa.ArrowException, ValueError):
            return None
        layout = self._layout
        n = table.num_rows
        if newlines is None:
            newlines = block.count(b"\n") if len(block) < 4096 else count_newlines(block)
        count = newlines + (not block.endswith(b"\n"))
        if n == count:
            lines = np.arange(first, first + count, dtype=np.int64)
        else:  # pyarrow skipped empty lines
            starts, ends = _line_spans(block)
            lines = (first + np.flatnonzero(ends > starts)).astype(np.int64)
            if n != len(lines):
                return None
        logits = _to_matrix(table, layout.logits, n)
        if not self._scores_ok(logits):
            return None
        labels = targets = None
        if layout.targets is not None:
            targets = _to_matrix(table, layout.targets, n)
            if self.rules.bad_target_rows(targets).any():
                return None
        if layout.label is not None:
            labels = self._labels(table, block)
            if labels is None or _bad_labels(labels, layout.num_classes, self._ignore).any():
                return None
        parsed = ParsedRows(logits, labels, targets, lines)
        if layout.weight is not None:
            parsed.weights = _floats(table.column(f"c{layout.weight}"))
            if not _weights_ok(parsed.weights):
                return None
        if layout.group is not None:
            parsed.groups = _group_names(table.column(f"c{layout.group}"))
            if parsed.groups is None:
                return None
        return finish(parsed, self.rules)

    def _scores_ok(self, scores: npt.NDArray[np.float64]) -> bool:
        """The logits' checks, and those of the kind of scores when it is not logits."""
        if not _logits_ok(scores) or self.rules.bad_logit_rows(scores).any():
            return False
        return self.rules.kind == "logits" or not self.rules.bad_score_rows(scores)[0].any()

    def parse_wide(self, block: bytes, first: int) -> ParsedRows | None:
        """Parse a block of a wide table (many columns) as one column of numbers.

        pyarrow's cost grows steeply with the number of columns (a 100000-column file
        takes seconds per row), so each delimiter becomes a line break and the numbers
        are read as one long column, then reshaped after checking that every line has
        exactly the right number of fields. Every column must then be numeric and
        unquoted; otherwise this returns None.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        layout = self._layout
        if b'"' in block or not _plain_lines(block):
            return None
        delimiter = layout.delimiter.encode()
        if len(delimiter) != 1 or not block:
            return None
        data = np.frombuffer(block, dtype=np.uint8)
        line_starts, ends = _line_spans(block)
        filled = ends > line_starts  # empty lines are skipped
        ends, line_starts = ends[filled], line_starts[filled]
        ncols = layout.ncols
        is_delimiter = data == delimiter[0]
        if not _fields_per_line_ok(is_delimiter, line_starts, ends, ncols - 1):
            return None
        n = len(ends)
        # Each delimiter becomes a line break, written over the mask (3x faster than
        # bytes.replace, and no new block-sized buffer): byte - mask * (delimiter - 10),
        # modulo 256.
        rewritten = is_delimiter.view(np.uint8)
        np.multiply(rewritten, np.uint8((delimiter[0] - 10) % 256), out=rewritten)
        np.subtract(data, rewritten, out=rewritten)
        try:
            column = pacsv.read_csv(
                pa.py_buffer(rewritten),
                # No pyarrow threads, as in _arrow_options.
                read_options=pacsv.ReadOptions(
                    column_names=["v"], block_size=len(rewritten) + 1, use_threads=False
                ),
                # An empty field also makes an empty line: the count below catches it.
                parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
                convert_options=_convert_options(column_types={"v": pa.float64()}),
            ).column(0)
        except (pa.ArrowException, ValueError):
            return None
        if len(column) != n * ncols:
            return None
        values = np.empty(n * ncols, dtype=np.float64)
        _copy_chunks(column, values)
        table = values.reshape(n, ncols)
        logits = _take_columns(table, layout.logits)
        if not self._scores_ok(logits):
            return None
        targets = labels = None
        if layout.targets is not None:
            targets = _take_columns(table, layout.targets)
            if self.rules.bad_target_rows(targets).any():
                return None
        if layout.label is not None:
            if layout.class_index is not None:
                return None
            labels = _integral(table[:, layout.label])
            if labels is None:
                return None
            if _bad_labels(labels, layout.num_classes, self._ignore).any():
                return None
        lines = (first + np.flatnonzero(filled)).astype(np.int64)
        if layout.group is not None:
            return None  # group names are text: the ordinary fast path reads them
        parsed = ParsedRows(logits, labels, targets, lines)
        if layout.weight is not None:
            parsed.weights = np.ascontiguousarray(table[:, layout.weight])
            if not _weights_ok(parsed.weights):
                return None
        return finish(parsed, self.rules)

    def _labels(self, table: Any, block: bytes) -> npt.NDArray[np.int64] | None:

        label = self._layout.label
        assert label is not None
        column = table.column(f"c{label}")
        if self._layout.class_index is not None:
            # A dictionary-encoded column: map the few distinct names, not every row.
            return self._class_indices(column)
        return _integral(_floats(column))

    def _class_indices(self, column: Any) -> npt.NDArray[np.int64] | None:
        """Class indices of a dictionary-encoded column of names, or None if one is unknown."""
        classes = self._layout.class_index
        assert classes is not None
        pieces = []
        for piece in column.chunks:
            names = piece.dictionary.to_pylist()
            mapping = np.array(
                [classes.get(name.strip(" \t"), _class_index(name, len(classes))) for name in names]
                + [-1],
                dtype=np.int64,
            )
            indices = mapping[_view(piece.indices, np.int32)]
            if (indices < 0).any():
                return None
            pieces.append(indices)
        if not pieces:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(pieces)


# --------------------------------------------------------------------------- blocks


def _convert_options(**options: Any) -> Any:
    """pyarrow conversion options under which no cell is read as null (empty is invalid)."""
    import pyarrow.csv as pacsv

    return pacsv.ConvertOptions(
        null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False, **options
    )


def _plain_lines(block: bytes) -> bool:
    """True when pyarrow reads each line of *block* as the precise reader does.

    That is: valid UTF-8 (also in the columns that are not read), no CR that is not
    followed by LF (pyarrow would end a row there), and no BOM at the start (pyarrow
    drops it; here it is a character).
    """
    if block.startswith(BOM):
        return False
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return False
    if b"\r" in block:
        data = np.frombuffer(block, dtype=np.uint8)
        after = np.flatnonzero(data == 13) + 1
        if after[-1] == len(data) or bool((data[after] != 10).any()):
            return False
    return True


def _line_spans(block: bytes) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Start and end offsets of the lines of *block*, each end before its CR LF or LF."""
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    ends = ends - ((data[np.maximum(ends - 1, 0)] == 13) & (ends > starts))
    return starts, ends


#: lines at least this long (on average) are checked one by one, shorter ones all at once
_LONG_LINE = 2048


def _fields_per_line_ok(
    is_delimiter: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.intp],
    ends: npt.NDArray[np.intp],
    expected: int,
) -> bool:
    """True when every line data[start:end] holds exactly *expected* delimiters."""
    if len(ends) == 0:
        return True
    if int(ends[-1] - starts[0]) >= _LONG_LINE * len(ends):
        # Few long lines: counting each line's slice is cheaper than locating every
        # delimiter (a K=1000 table has a delimiter every ten bytes or so).
        count = np.count_nonzero
        return all(
            count(is_delimiter[start:end]) == expected
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
        )
    marks = np.flatnonzero(is_delimiter)
    per_line = np.searchsorted(marks, ends) - np.searchsorted(marks, starts)
    return bool((per_line == expected).all())


def _quotes_balanced(block: bytes) -> bool:
    """True when every line of *block* holds an even number of double quotes."""
    data = np.frombuffer(block, dtype=np.uint8)
    quotes = np.flatnonzero(data == 34)
    newlines = np.flatnonzero(data == 10)
    per_line = np.bincount(np.searchsorted(newlines, quotes), minlength=1)
    return not bool((per_line & 1).any())


# --------------------------------------------------------------------------- arrays


def _view(array: Any, dtype: Any) -> npt.NDArray[Any]:
    """A numpy view of a null-free arrow array of a fixed-width type.

    (``Array.to_numpy`` imports pandas, which costs 40 MB of memory and a second.)
    """
    itemsize = np.dtype(dtype).itemsize
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * itemsize
    )


def _copy_chunks(column: Any, out: npt.NDArray[np.float64]) -> None:
    """Copy the float64 values of a chunked arrow column into the 1-D array *out*."""
    start = 0
    for piece in column.chunks:
        size = len(piece)
        out[start : start + size] = _view(piece, np.float64)
        start += size


def _to_matrix(table: Any, indices: list[int], n: int) -> npt.NDArray[np.float64]:
    """The float64 columns *indices* of an arrow table as one (n, k) array.

    Few columns come column-major (a C-contiguous (k, n) array, transposed): each column
    is one contiguous copy, and the kernel, which works on (k, rows) blocks, copies them
    straight. From ROW_ARGMAX_CLASSES columns on, the kernel's argmax wants contiguous
    rows, so they come row-major.
    """
    k = len(indices)
    if k < ROW_ARGMAX_CLASSES:
        by_column = np.empty((k, n), dtype=np.float64)
        for j, index in enumerate(indices):
            _copy_chunks(table.column(f"c{index}"), by_column[j])
        return by_column.T
    out = np.empty((n, k), dtype=np.float64)
    for j, index in enumerate(indices):
        _copy_chunks(table.column(f"c{index}"), out[:, j])
    return out


def _gather(column: Any, dtype: Any) -> npt.NDArray[np.int64]:
    """The values of a null-free chunked arrow column as a new int64 array."""
    pieces = [_view(piece, dtype) for piece in column.chunks]
    if not pieces:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(pieces).astype(np.int64, copy=False)


def _class_index(text: str, k: int) -> int:
    """An integer label among class names: the class index it is, or -1."""
    if INTEGER.fullmatch(text) and 0 <= int(text) < k:
        return int(text)
    return -1


def _floats(column: Any) -> npt.NDArray[np.float64]:
    """The values of a null-free chunked float64 arrow column as one array."""
    pieces = [_view(piece, np.float64) for piece in column.chunks]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.float64)


def _integral(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64] | None:
    """Labels read as floats, as integers; None unless every one is integral (and exact)."""
    with np.errstate(invalid="ignore"):
        if not bool(((np.abs(values) < 2.0**53) & (values == np.trunc(values))).all()):
            return None
    return values.astype(np.int64)


def _take_columns(table: npt.NDArray[np.float64], indices: list[int]) -> npt.NDArray[np.float64]:
    """Columns *indices* of *table*: a view when they are adjacent, else a copy.

    A view of adjacent columns has contiguous rows (the kernel reads it as fast as a
    contiguous array), and saves copying a block-sized array.
    """
    low = indices[0]
    if indices == list(range(low, low + len(indices))):
        return table[:, low : low + len(indices)]
    return table[:, indices]


# --------------------------------------------------------------------------- checks


def _logits_ok(logits: npt.NDArray[np.float64]) -> bool:
    """No NaN, no +inf, no row of only -inf (one fast sum in the usual case)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if logits.size == 0 or np.isfinite(logits.sum()):
            return True
        top = logits.max(axis=1)  # NaN propagates
        return bool(np.all((top > -np.inf) & (top < np.inf)))


def _weights_ok(weights: npt.NDArray[np.float64]) -> bool:
    """Every sample weight finite and >= 0 (else the precise reader says which is not)."""
    with np.errstate(invalid="ignore"):
        return bool(((weights >= 0) & (weights < np.inf)).all())


def _group_names(column: Any) -> npt.NDArray[np.str_] | None:
    """The stripped names of a dictionary-encoded column; None if one is empty."""
    pieces = []
    for piece in column.chunks:
        names = [name.strip(" \t") for name in piece.dictionary.to_pylist()]
        if "" in names:
            return None
        table = np.array([*names, ""], dtype=np.str_)
        pieces.append(table[_view(piece.indices, np.int32)])
    if not pieces:
        return np.empty(0, dtype=np.str_)
    return np.concatenate(pieces)


def _bad_labels(
    labels: npt.NDArray[np.int64], K: int, ignore_index: int | None
) -> npt.NDArray[np.bool_]:
    bad = (labels < 0) | (labels >= K)
    if ignore_index is not None:
        bad &= labels != ignore_index
    return bad
