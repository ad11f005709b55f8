"""Files and streams -> chunks of (logits, labels | targets, line numbers).

CONTRACT (shared with batch.py; ``chunk_bytes`` in ReadOptions and the attributes
after ``skipped`` are additions):

    with open_table(path, options) as table:   # path may be "-" for stdin
        table.display_name      # "predictions.csv" or "<stdin>"
        table.logit_names       # list[str]: names of the logit columns (header or "0".."K-1")
        table.label_name        # str | None: name of the label column (None with targets)
        table.size_bytes        # int | None: on-disk size when known (for progress)
        table.bytes_read        # int: compressed bytes consumed so far (for progress)
        table.rows_skipped      # int: rows skipped with on_error="skip"
        table.skipped           # list[DataError]: the first few skipped rows' errors
        table.rows_read         # int: rows yielded so far
        table.has_header        # bool; table.header_line: int | None (its line number)
        table.target_names      # list[str] | None: names of the target columns
        for chunk in table.chunks():
            chunk.logits        # float64 (n, K), C-contiguous, validated (no NaN/+inf,
                                #   no all -inf row)
            chunk.labels        # int64 (n,) validated in [0, K) or == ignore_index; or None
            chunk.targets       # float64 (n, K) validated distributions; or None
            chunk.lines         # int64 (n,): 1-based physical line numbers (header = line 1)

All input validation happens here, where the file, line, column and raw text are known:
errors are raised as xentcli.errors.DataError (or, with on_error="skip", the row is
dropped, counted and its error kept in ``skipped``). The kernel is then called with
``check=False``. ``open_table`` itself raises the file-level errors (missing file,
directory, permission, not compressed as named, empty file, bad header, unknown column);
``chunks()`` raises the row errors, "no data rows", and corrupt compressed data met
later in the stream. ``chunks()`` can be iterated once.

What a file may contain (the accepted syntax)
---------------------------------------------
* Encoding: UTF-8, with or without a byte-order mark at the very start (a BOM anywhere
  else is an ordinary character, so a cell holding one is not a number). Line ends LF or
  CRLF (a lone CR inside a line is an ordinary character). Compression by file name:
  ``.gz``, ``.bz2``, ``.xz`` (standard input: detected from the magic bytes).
* Delimiter: ``options.delimiter``; else tab for ``.tsv``/``.tab`` (also compressed),
  comma for ``.csv``; for standard input and other names, tab when the first line has a
  tab and no comma, otherwise comma.
* Quoting: RFC 4180 double quotes (``"1.5"``, ``"a""b"``), as pyarrow and Python's csv
  module read them; a quoted field cannot contain a line break (every row is one
  physical line), so an unterminated quote is an error on its line.
* Blank lines (empty, or only spaces and tabs) are skipped anywhere, are not rows and
  are not counted; line numbers stay physical (they count blank lines too).
* Header: ``options.header`` forces it; otherwise the first non-blank line is a header
  when one of its cells is neither a number nor blank (with ``options.classes``, a
  class name also counts as data). Header names are stripped of surrounding spaces and tabs; a name
  appearing twice is an error. Without a header, columns are named by their 0-based
  index and only indices, ranges and (unhelpfully) globs over those can select them.
* Numbers (logits, targets), the syntax of :func:`xentcli.options.parse_float` restricted
  to ASCII: optional surrounding spaces/tabs, optional sign, decimal digits with an
  optional point and an optional exponent (``1``, ``-2.5``, ``.5``, ``5.``, ``1e-3``,
  ``1.5E+10``), or ``inf``/``infinity``/``nan`` in any case with an optional sign. Not
  numbers: empty or blank cells, ``1_000``, hex (``0x10``, ``0x1p3``), ``1e``, ``1.2.3``,
  ``--5``, unicode minus or full-width digits, ``NA``/``null``. Values beyond the float
  range round to +-inf (``-1e400`` is a masked class, ``1e400`` is +inf: invalid).
* Logits: finite or ``-inf``; NaN, +inf and a row of only -inf are errors.
* Labels: integer text only, ``[+-]?[0-9]+`` with optional surrounding spaces/tabs
  (``" 2 "`` is 2); ``1.0``, ``1e3``, ``1.5`` are errors ("not an integer"), as is any
  value outside [0, K) unless it equals ``ignore_index``, however many digits it has
  (no 64-bit overflow: it is out of range). With ``options.classes`` a label is a class
  name (stripped of surrounding spaces/tabs, case-sensitive), mapped to its index.
* Targets: numbers >= 0, finite, each row summing to 1 within TARGET_SUM_TOLERANCE.
* Errors name the 1-based physical line (header = line 1) and the 1-based field number
  in that line (the label column included), or no column when the row as a whole is
  wrong (wrong number of fields, only -inf, targets not summing to 1).
* A line longer than MAX_LINE_BYTES is a file-level error (memory stays bounded).

Column selection (``label_column``, ``logit_columns``, ``target_columns``): each item is
a header name (exact match, tried first), a 0-based index (negative counts from the
end, as in Python), a range ``start:stop[:step]`` with Python slice semantics (``1:11``
is columns 1 to 10, ``3:`` is column 3 to the end), or a glob (``logit_*``, fnmatch,
case-sensitive). The default label column is the first header column named ``label``,
``target``, ``y`` or ``class`` (any case, in that order of preference), otherwise the
last column; the default logit columns are all the other columns (all columns but the
targets when ``target_columns`` is given). Columns that are neither are not read.

How it is fast: a background thread reads (and decompresses) the text and cuts it into
blocks of whole lines (BLOCK_BYTES), each parsed by pyarrow's multithreaded CSV reader
with forced column types (a table of WIDE_COLUMNS or more columns is parsed as one long
column of numbers instead: pyarrow slows down steeply with the number of columns); the
values are checked with a few vectorised reductions. Only when pyarrow refuses a block,
or the check finds something wrong, is the block split and the faulty part re-read by a
precise pure-Python reader which defines the accepted syntax above (the fast path never
accepts what the precise reader refuses, and both give identical arrays) and writes the
exact message.
Memory is bounded by a few blocks plus one chunk (about 135 MB of peak RSS for a 2 GB
file with K = 10, including the interpreter, numpy and pyarrow). Chunks hold at most
``chunk_rows`` rows and ``chunk_bytes`` bytes of logits. Their arrays may be views of a
whole block's arrays: to keep a few rows, copy them rather than hold on to the chunk.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from xentcli._prefetch import Stage
from xentcli._sources import BOM, Source, count_newlines, default_delimiter
from xentcli.errors import DataError

TARGET_SUM_TOLERANCE = 1e-6

#: bytes of text parsed at a time (tests lower it to exercise block boundaries)
BLOCK_BYTES = 4 << 20
#: read the next blocks in a background thread while the current one is parsed
PREFETCH = True
#: a longer line is an error rather than a reason to exhaust memory
MAX_LINE_BYTES = 32 << 20
#: from this many columns on, blocks are parsed as one long column (see _fast_wide)
WIDE_COLUMNS = 50
#: a wide table is tried with the ordinary fast path only up to this many columns
_NARROW_ENOUGH = 5000
#: how many skipped rows' errors are kept in ``Table.skipped``
SKIPPED_KEPT = 10
#: below this size a failing block goes straight to the precise reader
_SPLIT_MIN_BYTES = 64 << 10

_LABEL_NAMES = ("label", "target", "y", "class")
_BLANK = b" \t\r\n"
_NUMBER = re.compile(
    r"[ \t]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)[ \t]*",
    re.IGNORECASE,
)
_INTEGER = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
_RANGE = re.compile(r"(-?[0-9]*):(-?[0-9]*)(?::(-?[0-9]*))?")
_INDEX = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a table of model outputs."""

    delimiter: str | None = None  #: None: tab for .tsv(.gz...), comma otherwise
    header: bool | None = None  #: None: detect (first row not all numbers)
    label_column: str | int | None = None  #: None: label/target/y/class, else last column
    logit_columns: Sequence[str] | None = None  #: names, 0-based indices, "1:11", globs
    target_columns: Sequence[str] | None = None  #: soft targets instead of a label column
    classes: Sequence[str] | None = None  #: class names; labels are then names
    ignore_index: int | None = None  #: a label value that is allowed and not counted
    on_error: Literal["raise", "skip"] = "raise"
    chunk_rows: int = 1 << 16  #: rows per chunk (tests use tiny values)
    #: at most this many bytes of logits per chunk (caps rows when K is large)
    chunk_bytes: int = 8 << 20


@dataclass(frozen=True)
class Chunk:
    """A block of validated rows from one file."""

    path: str
    logits: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64] | None
    targets: npt.NDArray[np.float64] | None
    lines: npt.NDArray[np.int64]


@dataclass
class _Parsed:
    logits: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64] | None
    targets: npt.NDArray[np.float64] | None
    lines: npt.NDArray[np.int64]


def is_number(text: str) -> bool:
    """True when *text* is a number in the reader's syntax (see the module docstring).

    >>> [is_number(t) for t in ["1.5", " -2e3 ", "-Inf", "nan", "1_000", "0x10", "", "1e"]]
    [True, True, True, True, False, False, False, False]
    """
    return _NUMBER.fullmatch(text) is not None


# --------------------------------------------------------------------------- lines


def _decode(raw: bytes, path: str, line: int, delimiter: str) -> str:
    """Decode one line, or name the field holding bytes that are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="surrogateescape")
    column = None
    with contextlib.suppress(csv.Error):
        for number, field in enumerate(next(csv.reader([text], delimiter=delimiter)), 1):
            if any("\udc80" <= char <= "\udcff" for char in field):
                column = number
                break
    shown = raw.decode("utf-8", errors="backslashreplace")
    raise DataError(path, line, column, "not valid UTF-8", shown)


def _split_fields(text: str, delimiter: str, path: str, line: int) -> list[str]:
    if '"' not in text:
        return text.split(delimiter)
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            raise DataError(
                path, line, None, "unterminated quote (a field cannot span lines)", text
            ) from None
    # Like pyarrow, text after a closing quote is kept ('"2"x' reads as '2x').
    return next(csv.reader([text], delimiter=delimiter, strict=False))


def _is_blank(raw: bytes) -> bool:
    return not raw.strip(_BLANK)


def _lone_carriage_return(block: bytes) -> bool:
    """True when a CR is not followed by LF (pyarrow would end a row there)."""
    if b"\r" not in block:
        return False
    data = np.frombuffer(block, dtype=np.uint8)
    after = np.flatnonzero(data == 13) + 1
    if after[-1] == len(data):
        return True
    return bool((data[after] != 10).any())


def _utf8(block: bytes) -> bool:
    """True when *block* is valid UTF-8 (also in the columns that are not read)."""
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: a block the reading thread did not try to parse (it came before the header was known)
_UNTRIED: Any = object()


def _line_numbers(block: bytes, first_line: int) -> npt.NDArray[np.int64]:
    """Physical line numbers of the non-empty lines of *block* (as pyarrow skips them)."""
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    has_cr = (lengths > 0) & (data[np.maximum(ends - 1, 0)] == 13)
    lengths -= has_cr
    return (first_line + np.flatnonzero(lengths > 0)).astype(np.int64)


def _quotes_balanced(block: bytes) -> bool:
    """True when every line of *block* holds an even number of double quotes."""
    data = np.frombuffer(block, dtype=np.uint8)
    quotes = np.flatnonzero(data == 34)
    newlines = np.flatnonzero(data == 10)
    per_line = np.bincount(np.searchsorted(newlines, quotes), minlength=1)
    return not bool((per_line & 1).any())


# --------------------------------------------------------------------------- the table


def _untried(got: tuple[bytes, int] | None) -> tuple[bytes, int, Any] | None:
    return None if got is None else (*got, _UNTRIED)


class Table:
    """An open table of model outputs; see the module docstring (use :func:`open_table`)."""

    def __init__(self, path: str, options: ReadOptions) -> None:
        self.options = options
        self.path = path
        self.display_name = "<stdin>" if path == "-" else path
        self.size_bytes: int | None = None
        self.rows_skipped = 0
        self.skipped: list[DataError] = []
        self.rows_read = 0
        self._stack = contextlib.ExitStack()
        self._consumed = False
        try:
            # ``open`` is looked up in this module, where a test can replace it.
            self._source = Source(
                path,
                self.display_name,
                self._stack,
                block_bytes=BLOCK_BYTES,
                max_line=MAX_LINE_BYTES,
                opener=open,
            )
            self.size_bytes = self._source.size_bytes
            # Reading, decompressing and cutting the next blocks overlaps with parsing.
            # It also keeps blocking reads out of the main thread, where a signal that
            # arrives just before a read() of an idle pipe would wait for more input.
            if PREFETCH:
                blocks = Stage(self._source.next_block)
                self._stack.callback(blocks.close)
                self._next_block = lambda: _untried(blocks.get())
                self._read_header()
                parsed = Stage(lambda: self._parse_ahead(blocks.get()))
                self._stack.callback(parsed.close)
                self._next_block = parsed.get
            else:
                self._next_block = lambda: _untried(self._source.next_block())
                self._read_header()
        except BaseException:
            self._stack.close()
            raise

    def _parse_ahead(self, got: tuple[bytes, int] | None) -> tuple[bytes, int, Any] | None:
        return None if got is None else (*got, self._fast_top(*got))

    # -- opening -------------------------------------------------------------------------

    def _error(self, reason: str, value: object = None) -> DataError:
        return DataError(self.display_name, None, None, reason, value)

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file or stream so far (compressed bytes)."""
        return self._source.bytes_read

    def close(self) -> None:
        """Release the file (standard input is left open)."""
        self._stack.close()

    # -- header and columns --------------------------------------------------------------

    def _read_header(self) -> None:
        options = self.options
        found = None
        while found is None:
            got = self._next_block()
            if got is None:
                raise self._error("file is empty")
            block, first, _ = got
            offset, line = 0, first
            while offset < len(block):
                end = block.find(b"\n", offset)
                end = len(block) if end < 0 else end + 1
                if not _is_blank(block[offset:end]):
                    found = (block, offset, end, line)
                    break
                offset, line = end, line + 1
        block, offset, end, line = found
        raw = block[offset:end].rstrip(b"\n")
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        self._delimiter = self.options.delimiter
        if self.path != "-":
            self._delimiter = self._delimiter or default_delimiter(self.display_name)
        if self._delimiter is None:
            self._delimiter = "\t" if b"\t" in raw and b"," not in raw else ","
        if len(self._delimiter) != 1:
            raise self._error("the delimiter must be one character", self._delimiter)
        text = _decode(raw, self.display_name, line, self._delimiter)
        fields = _split_fields(text, self._delimiter, self.display_name, line)
        self._ncols = len(fields)
        classes = set(options.classes or ())
        header = options.header
        if header is None:
            # A blank cell is a bad data cell, not the sign of a header.
            header = any(
                f.strip(" \t") and not is_number(f) and f.strip(" \t") not in classes
                for f in fields
            )
        self.has_header = header
        if header:
            self.header_line: int | None = line
            names = [f.strip(" \t") for f in fields]
            seen: dict[str, int] = {}
            for number, name in enumerate(names, 1):
                if name in seen:
                    raise DataError(
                        self.display_name,
                        line,
                        number,
                        f"column name appears twice (also column {seen[name]})",
                        name,
                    )
                seen[name] = number
            self._pending = (block[end:], line + 1, _UNTRIED)
        else:
            self.header_line = None
            names = [str(i) for i in range(self._ncols)]
            self._pending = (block[offset:], line, _UNTRIED)
        self._names = names
        self._long_line = end - offset
        self._resolve_columns()

    def _select(self, spec: str | int, what: str) -> list[int]:
        names, ncols = self._names, self._ncols
        if isinstance(spec, int) and not isinstance(spec, bool):
            index = spec
        elif isinstance(spec, str):
            text = spec.strip()
            if self.has_header and text in names:
                return [names.index(text)]
            if _INDEX.fullmatch(text):
                index = int(text)
            elif (match := _RANGE.fullmatch(text)) is not None:
                parts = [int(p) if p not in (None, "", "-") else None for p in match.groups()]
                if parts[2] == 0:
                    raise self._error(f"{what}: a range step cannot be 0", spec)
                selected = list(range(ncols))[slice(*parts)]
                if not selected:
                    raise self._error(
                        f"{what}: the range selects no column (the file has {ncols})", spec
                    )
                return selected
            elif any(c in text for c in "*?["):
                selected = [i for i, n in enumerate(names) if fnmatch.fnmatchcase(n, text)]
                if not selected:
                    raise self._error(f"{what}: no column matches the pattern", spec)
                return selected
            else:
                shown = ", ".join(names[:8]) + (", ..." if ncols > 8 else "")
                where = f"columns: {shown}" if self.has_header else "the file has no header"
                raise self._error(f"{what}: no column of that name ({where})", spec)
        else:
            raise self._error(f"{what}: not a column name or index", spec)
        if not -ncols <= index < ncols:
            raise self._error(
                f"{what}: column index out of range (the file has {ncols} columns)", spec
            )
        return [index % ncols]

    def _select_many(self, specs: Sequence[str | int], what: str) -> list[int]:
        chosen: list[int] = []
        for spec in specs:
            for index in self._select(spec, what):
                if index in chosen:
                    raise self._error(
                        f"{what}: column {self._names[index]!r} is selected twice", spec
                    )
                chosen.append(index)
        if not chosen:
            raise self._error(f"{what}: no column selected")
        return chosen

    def _resolve_columns(self) -> None:
        options, names, ncols = self.options, self._names, self._ncols
        label: int | None = None
        targets: list[int] | None = None
        if options.target_columns is not None:
            targets = self._select_many(options.target_columns, "target columns")
        elif options.label_column is not None:
            label = self._select(options.label_column, "label column")[0]
        else:
            label = ncols - 1
            if self.has_header:
                lowered = [n.lower() for n in names]
                for wanted in _LABEL_NAMES:
                    if wanted in lowered:
                        label = lowered.index(wanted)
                        break
        taken = set(targets or ()) | ({label} if label is not None else set())
        if options.logit_columns is not None:
            logits = self._select_many(options.logit_columns, "logit columns")
            for index in logits:
                if index in taken:
                    role = "label" if index == label else "target"
                    raise self._error(
                        f"logit columns: column {names[index]!r} is also the {role} column"
                    )
        else:
            logits = [i for i in range(ncols) if i not in taken]
        if not logits:
            raise self._error(f"no logit column (the file has {ncols} column{'s' * (ncols != 1)})")
        K = len(logits)
        if targets is not None and len(targets) != K:
            raise self._error(f"{len(targets)} target columns for {K} logit columns")
        if options.classes is not None and len(options.classes) != K:
            raise self._error(f"{len(options.classes)} class names for {K} logit columns")
        self._label = label
        self._logits = logits
        self._targets = targets
        self.logit_names = (
            [names[i] for i in logits] if self.has_header else [str(i) for i in range(K)]
        )
        self.label_name = None if label is None else names[label]
        self.target_names = None if targets is None else [names[i] for i in targets]
        self._class_index = {c: i for i, c in enumerate(options.classes or ())}
        self._wide = ncols >= WIDE_COLUMNS and options.classes is None

    # -- chunks --------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """Yield the validated rows in chunks; raise DataError at the first bad row."""
        if self._consumed:
            raise RuntimeError("chunks() can be iterated only once")
        self._consumed = True
        K = len(self._logits)
        step = max(1, min(self.options.chunk_rows, self.options.chunk_bytes // (8 * K)))
        got: tuple[bytes, int, Any] | None = self._pending
        while got is not None:
            block, first, tried = got
            for parsed in self._parse(block, first, tried=tried):
                for start in range(0, len(parsed.lines), step):
                    stop = start + step
                    self.rows_read += len(parsed.lines[start:stop])
                    yield Chunk(
                        self.display_name,
                        parsed.logits[start:stop],
                        None if parsed.labels is None else parsed.labels[start:stop],
                        None if parsed.targets is None else parsed.targets[start:stop],
                        parsed.lines[start:stop],
                    )
            got = self._next_block()
        if self.rows_read == 0 and self.rows_skipped == 0:
            raise self._error("no data rows")

    def _fast_top(self, block: bytes, first: int) -> _Parsed | None:
        """The fast parse of a whole block (choosing between wide and ordinary mode)."""
        if not self._wide:
            return self._fast(block, first)
        parsed = self._fast_wide(block, first)
        if parsed is None and self._ncols <= _NARROW_ENOUGH:
            # Maybe a column that is not numeric (wide mode parses every column as a
            # number): if the ordinary fast path reads the block, keep to it.
            parsed = self._fast(block, first)
            self._wide = parsed is None
        return parsed

    def _parse(
        self, block: bytes, first: int, top: bool = True, tried: Any = _UNTRIED
    ) -> Iterator[_Parsed]:
        """Parse *block* fast, or split it and re-read the faulty part precisely.

        *tried* is the result of a fast parse already attempted (None if it failed).
        """
        if tried is not _UNTRIED:
            parsed = tried
        elif top:
            parsed = self._fast_top(block, first)
        else:
            parsed = self._fast_wide(block, first) if self._wide else self._fast(block, first)
        if parsed is not None:
            yield parsed
            return
        if len(block) <= _SPLIT_MIN_BYTES:
            yield self._precise(block, first)
            return
        middle = block.rfind(b"\n", 0, len(block) // 2) + 1
        if middle <= 0:
            middle = block.find(b"\n", len(block) // 2) + 1
        if middle <= 0 or middle >= len(block):
            yield self._precise(block, first)
            return
        yield from self._parse(block[:middle], first, top=False)
        yield from self._parse(block[middle:], first + block.count(b"\n", 0, middle), top=False)

    # -- the fast path -------------------------------------------------------------------

    def _arrow_options(self) -> tuple[Any, Any, Any]:
        cached = getattr(self, "_arrow", None)
        if cached is not None:
            return cached
        import pyarrow as pa
        import pyarrow.csv as pacsv

        columns = [f"c{i}" for i in range(self._ncols)]
        types = {columns[i]: pa.float64() for i in self._logits + (self._targets or [])}
        include = [columns[i] for i in self._logits + (self._targets or [])]
        if self._label is not None:
            include.append(columns[self._label])
            label_type = (
                pa.dictionary(pa.int32(), pa.string())
                if self.options.classes is not None
                else pa.int64()
            )
            types[columns[self._label]] = label_type
        # pyarrow's blocks must hold whole lines: size them from the first line.
        block_size = max(1 << 20, 4 * self._long_line)
        cached = (
            pacsv.ReadOptions(column_names=columns, block_size=block_size, use_threads=True),
            pacsv.ParseOptions(
                delimiter=self._delimiter, newlines_in_values=False, ignore_empty_lines=True
            ),
            pacsv.ConvertOptions(
                column_types=types,
                include_columns=include,
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
        self._arrow = cached
        return cached

    def _fast(self, block: bytes, first: int) -> _Parsed | None:
        """pyarrow's parse of a block, or None when it or the validation fails."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        # Each row must be one physical line for the line numbers to hold.
        if b'"' in block and not _quotes_balanced(block):
            return None
        if _lone_carriage_return(block) or not _utf8(block) or block.startswith(BOM):
            return None  # (pyarrow drops a BOM starting its input; here it is a character)
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
        n = table.num_rows
        count = block.count(b"\n") if len(block) < 4096 else count_newlines(block)
        count += not block.endswith(b"\n")
        if n == count:
            lines = np.arange(first, first + count, dtype=np.int64)
        else:  # pyarrow skipped empty lines
            lines = _line_numbers(block, first)
            if n != len(lines):
                return None
        logits = _to_matrix(table, self._logits, n)
        if not _logits_ok(logits):
            return None
        labels = targets = None
        if self._targets is not None:
            targets = _to_matrix(table, self._targets, n)
            if _bad_target_rows(targets).any():
                return None
        if self._label is not None:
            labels = self._fast_labels(table, block, n)
            if labels is None or _bad_labels(labels, len(self._logits), self._ignore()).any():
                return None
        return _Parsed(logits, labels, targets, lines)

    def _fast_wide(self, block: bytes, first: int) -> _Parsed | None:
        """Parse a block of a wide table (many columns) as one column of numbers.

        pyarrow's cost grows steeply with the number of columns (a 100000-column file
        takes seconds per row), so each delimiter becomes a line break and the numbers
        are read as one long column, then reshaped after checking that every line has
        exactly the right number of fields. Every column must then be numeric and
        unquoted; otherwise this returns None.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        if (
            b'"' in block
            or _lone_carriage_return(block)
            or not _utf8(block)
            or block.startswith(BOM)
        ):
            return None
        delimiter = (self._delimiter or ",").encode()
        if len(delimiter) != 1 or not block:
            return None
        data = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(data == 10)
        if not block.endswith(b"\n"):
            ends = np.append(ends, len(block))
        line_starts = np.empty_like(ends)
        line_starts[0] = 0
        line_starts[1:] = ends[:-1] + 1
        ends = ends - (data[np.maximum(ends - 1, 0)] == 13) * (ends > line_starts)
        filled = ends > line_starts  # empty lines are skipped
        ncols = self._ncols
        marks = np.flatnonzero(data == delimiter[0])
        per_line = np.diff(np.searchsorted(marks, ends), prepend=0)
        if (per_line[filled] != ncols - 1).any():
            return None
        ends, line_starts = ends[filled], line_starts[filled]
        n = len(ends)
        try:
            column = pacsv.read_csv(
                pa.py_buffer(block.replace(delimiter, b"\n")),
                read_options=pacsv.ReadOptions(
                    column_names=["v"], block_size=1 << 20, use_threads=True
                ),
                # An empty field also makes an empty line: the count below catches it.
                parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={"v": pa.float64()},
                    null_values=[],
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            ).column(0)
        except (pa.ArrowException, ValueError):
            return None
        if len(column) != n * ncols:
            return None
        values = np.empty(n * ncols, dtype=np.float64)
        start = 0
        for piece in column.chunks:
            values[start : start + len(piece)] = _view(piece, np.float64)
            start += len(piece)
        table = values.reshape(n, ncols)
        logits = _columns(table, self._logits)
        if not _logits_ok(logits):
            return None
        targets = labels = None
        if self._targets is not None:
            targets = _columns(table, self._targets)
            if _bad_target_rows(targets).any():
                return None
        if self._label is not None:
            if self.options.classes is not None:
                return None
            index = self._label
            fields = marks.reshape(n, ncols - 1)
            starts = line_starts if index == 0 else fields[:, index - 1] + 1
            stops = ends if index == ncols - 1 else fields[:, index]
            if not _integer_text(data, starts, stops):
                return None
            floats = table[:, index]
            if not bool((np.abs(floats) < 2.0**53).all()):
                return None
            labels = floats.astype(np.int64)
            if _bad_labels(labels, len(self._logits), self._ignore()).any():
                return None
        lines = (first + np.flatnonzero(filled)).astype(np.int64)
        return _Parsed(logits, labels, targets, lines)

    def _ignore(self) -> int | None:
        return None if self.options.classes is not None else self.options.ignore_index

    def _fast_labels(self, table: Any, block: bytes, n: int) -> npt.NDArray[np.int64] | None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        assert self._label is not None
        column = table.column(f"c{self._label}")
        if self.options.classes is not None:
            # A dictionary-encoded column: map the few distinct names, not every row.
            return self._class_indices(column)
        if b"x" in block or b"X" in block:
            # pyarrow reads '0x1F' as an integer; the precise reader does not.
            read_options, parse_options, _ = self._arrow_options()
            name = f"c{self._label}"
            try:
                text = pacsv.read_csv(
                    pa.py_buffer(block),
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=pacsv.ConvertOptions(
                        column_types={name: pa.dictionary(pa.int32(), pa.string())},
                        include_columns=[name],
                        null_values=[],
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                ).column(0)
            except (pa.ArrowException, ValueError):
                return None
            for piece in text.chunks:
                if not all(_INTEGER.fullmatch(v) for v in piece.dictionary.to_pylist()):
                    return None
        return _gather(column, np.int64)

    def _class_indices(self, column: Any) -> npt.NDArray[np.int64] | None:
        """Class indices of a dictionary-encoded column of names, or None if one is unknown."""
        pieces = []
        for piece in column.chunks:
            names = piece.dictionary.to_pylist()
            mapping = np.array(
                [self._class_index.get(name.strip(" \t"), -1) for name in names] + [-1],
                dtype=np.int64,
            )
            indices = mapping[_view(piece.indices, np.int32)]
            if (indices < 0).any():
                return None
            pieces.append(indices)
        if not pieces:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(pieces)

    # -- the precise path ----------------------------------------------------------------

    def _precise(self, block: bytes, first: int) -> _Parsed:
        """Read *block* line by line with exact messages; skip or raise on bad rows."""
        K = len(self._logits)
        logits: list[list[float]] = []
        targets: list[list[float]] = []
        labels: list[int] = []
        lines: list[int] = []
        skip = self.options.on_error == "skip"
        for offset, raw in enumerate(block.split(b"\n")):
            number = first + offset
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            if _is_blank(raw):
                continue
            try:
                row_logits, label, row_targets = self._precise_row(raw, number)
            except DataError as error:
                if not skip:
                    raise
                self.rows_skipped += 1
                if len(self.skipped) < SKIPPED_KEPT:
                    self.skipped.append(error)
                continue
            logits.append(row_logits)
            lines.append(number)
            if row_targets is not None:
                targets.append(row_targets)
            if label is not None:
                labels.append(label)
        n = len(lines)
        return _Parsed(
            np.array(logits, dtype=np.float64).reshape(n, K),
            np.array(labels, dtype=np.int64) if self._label is not None else None,
            np.array(targets, dtype=np.float64).reshape(n, K)
            if self._targets is not None
            else None,
            np.array(lines, dtype=np.int64),
        )

    def _precise_row(
        self, raw: bytes, number: int
    ) -> tuple[list[float], int | None, list[float] | None]:
        path = self.display_name
        text = _decode(raw, path, number, self._delimiter or ",")
        fields = _split_fields(text, self._delimiter or ",", path, number)
        if len(fields) != self._ncols:
            raise DataError(
                path, number, None, f"expected {self._ncols} fields, found {len(fields)}", text
            )

        def number_at(index: int, what: str) -> float:
            cell = fields[index]
            if not cell.strip(" \t"):
                raise DataError(path, number, index + 1, f"empty {what} cell", cell)
            if not is_number(cell):
                raise DataError(path, number, index + 1, f"{what} is not a number", cell)
            return float(cell)

        row: list[float] = []
        for index in self._logits:
            value = number_at(index, "logit")
            if value != value:
                raise DataError(path, number, index + 1, "logit is NaN", fields[index])
            if value == float("inf"):
                raise DataError(path, number, index + 1, "logit is +inf", fields[index])
            row.append(value)
        if all(v == float("-inf") for v in row):
            raise DataError(path, number, None, "every logit of the row is -inf", text)
        row_targets = None
        if self._targets is not None:
            row_targets = []
            for index in self._targets:
                value = number_at(index, "target")
                if not abs(value) < float("inf"):  # NaN or an infinity
                    raise DataError(path, number, index + 1, "target is not finite", fields[index])
                if value < 0:
                    raise DataError(path, number, index + 1, "target is negative", fields[index])
                row_targets.append(value)
            total = float(_row_sums(np.array([row_targets], dtype=np.float64))[0])
            if not abs(total - 1.0) <= TARGET_SUM_TOLERANCE:
                raise DataError(
                    path,
                    number,
                    None,
                    f"targets sum to {total!r}, not 1 (tolerance {TARGET_SUM_TOLERANCE:g})",
                    text,
                )
        label = None
        if self._label is not None:
            label = self._precise_label(fields, self._label, number)
        return row, label, row_targets

    def _precise_label(self, fields: list[str], index: int, number: int) -> int:
        path, cell, K = self.display_name, fields[index], len(self._logits)
        column = index + 1
        if self.options.classes is not None:
            name = cell.strip(" \t")
            if name not in self._class_index:
                shown = ", ".join(list(self.options.classes)[:8])
                more = ", ..." if K > 8 else ""
                raise DataError(
                    path, number, column, f"unknown class name (classes: {shown}{more})", cell
                )
            return self._class_index[name]
        if not cell.strip(" \t"):
            raise DataError(path, number, column, "empty label cell", cell)
        if not _INTEGER.fullmatch(cell):
            reason = "label is not an integer"
            if is_number(cell):
                reason += " (write labels without a decimal point or exponent)"
            raise DataError(path, number, column, reason, cell)
        value = int(cell)
        if value == self.options.ignore_index:
            return value
        if value < 0:
            raise DataError(path, number, column, "label is negative", cell)
        if value >= K:
            raise DataError(path, number, column, f"label is out of range [0, {K})", cell)
        return value


# --------------------------------------------------------------------------- checks


def _to_matrix(table: Any, indices: list[int], n: int) -> npt.NDArray[np.float64]:
    """The float64 columns *indices* of an arrow table as one C-contiguous (n, k) array."""
    out = np.empty((n, len(indices)), dtype=np.float64)
    for j, index in enumerate(indices):
        start = 0
        for piece in table.column(f"c{index}").chunks:
            size = len(piece)
            out[start : start + size, j] = _view(piece, np.float64)
            start += size
    return out


def _view(array: Any, dtype: Any) -> npt.NDArray[Any]:
    """A numpy view of a null-free arrow array of a fixed-width type.

    (``Array.to_numpy`` imports pandas, which costs 40 MB of memory and a second.)
    """
    itemsize = np.dtype(dtype).itemsize
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * itemsize
    )


def _gather(column: Any, dtype: Any) -> npt.NDArray[np.int64]:
    """The values of a null-free chunked arrow column as a new int64 array."""
    pieces = [_view(piece, dtype) for piece in column.chunks]
    if not pieces:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(pieces).astype(np.int64, copy=False)


def _columns(table: npt.NDArray[np.float64], indices: list[int]) -> npt.NDArray[np.float64]:
    """Columns *indices* of *table* as a C-contiguous array (a slice when contiguous)."""
    low = indices[0]
    if indices == list(range(low, low + len(indices))):
        return np.ascontiguousarray(table[:, low : low + len(indices)])
    return table[:, indices]


_INTEGER_BYTES = np.zeros(256, dtype=bool)
_INTEGER_BYTES[list(b"0123456789+- \t")] = True


def _integer_text(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], stops: npt.NDArray[np.int64]
) -> bool:
    """True when every field data[start:stop] holds only digits, signs, spaces and tabs."""
    lengths = stops - starts
    if len(lengths) == 0:
        return True
    longest = int(lengths.max())
    if longest > 24:
        return False
    offsets = np.arange(longest)
    window = data[np.minimum(starts[:, None] + offsets, len(data) - 1)]
    return bool((_INTEGER_BYTES[window] | (offsets >= lengths[:, None])).all())


def _logits_ok(logits: npt.NDArray[np.float64]) -> bool:
    """No NaN, no +inf, no row of only -inf (one fast sum in the usual case)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if logits.size == 0 or np.isfinite(logits.sum()):
            return True
        top = logits.max(axis=1)  # NaN propagates
        return bool(np.all((top > -np.inf) & (top < np.inf)))


def _row_sums(targets: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return targets.sum(axis=1)


def _bad_target_rows(targets: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        cells_ok = np.isfinite(targets) & (targets >= 0)
        sums_ok = np.abs(_row_sums(targets) - 1.0) <= TARGET_SUM_TOLERANCE
    return ~(cells_ok.all(axis=1) & sums_ok)


def _bad_labels(
    labels: npt.NDArray[np.int64], K: int, ignore_index: int | None
) -> npt.NDArray[np.bool_]:
    bad = (labels < 0) | (labels >= K)
    if ignore_index is not None:
        bad &= labels != ignore_index
    return bad


@contextlib.contextmanager
def open_table(path: str, options: ReadOptions | None = None) -> Iterator[Table]:
    """Open *path* (``"-"`` for standard input) as a table of model outputs.

    Raises :class:`~xentcli.errors.DataError` for a file that cannot be read (see the
    module docstring); the table's :meth:`Table.chunks` yields validated chunks.
    """
    table = Table(path, options if options is not None else ReadOptions())
    try:
        yield table
    finally:
        table.close()
