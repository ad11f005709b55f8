"""Files and streams -> chunks of (logits, labels | targets, line numbers).

How it is used::

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

The accepted syntax of a file (encoding, delimiter, quoting, blank lines, header, numbers,
labels, targets, column selection) is the user's documentation: docs/input-formats.md.

The parts, one job each (this module joins them and keeps the tunable constants):
``_sources`` opens the file or standard input, decompresses, counts bytes and cuts the
text into blocks; ``_prefetch`` runs the reading and the parsing in background threads, in order;
``_columns`` reads the first line (delimiter, header, column selection); ``_syntax``
defines what a field, a number and an integer are; ``_fastparse`` is the pyarrow fast
path and its vectorised checks; ``_precise`` is the precise reader and its messages.
Memory is bounded by a few blocks plus one chunk (peak RSS about 175 MB for a 2 GB file
with K = 10 and 200 MB with K = 1000, including the interpreter, numpy and pyarrow).
Chunks hold at most ``chunk_rows`` rows and ``chunk_bytes`` bytes of logits. Their arrays
may be views of a whole block's arrays, in any memory layout: to keep a few rows, copy
them rather than hold on to the chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from xentcli.batch._arrays import ArrayTable
from xentcli.batch._columns import Layout, read_layout
from xentcli.batch._fastparse import FastParser
from xentcli.batch._kinds import RowRules, logits_in_unit_interval, resolve_kind
from xentcli.batch._precise import PreciseReader
from xentcli.batch._prefetch import Stage
from xentcli.batch._rows import ParsedRows
from xentcli.batch._sources import Block, Source, default_delimiter
from xentcli.batch._syntax import is_blank, is_number, split_fields
from xentcli.batch._types import SKIPPED_KEPT, Chunk, Piece, ReadOptions
from xentcli.core import TARGET_SUM_TOLERANCE, THREADS
from xentcli.errors import DataError

__all__ = [
    "BLOCK_BYTES",
    "MAX_LINE_BYTES",
    "PREFETCH",
    "SKIPPED_KEPT",
    "TARGET_SUM_TOLERANCE",
    "WIDE_COLUMNS",
    "Chunk",
    "Piece",
    "ReadOptions",
    "Table",
    "is_model_output",
    "is_number",
    "open_table",
]

# The tunables are read from this module when used (tests lower them).
#: bytes of text parsed at a time (tests lower it to exercise block boundaries)
BLOCK_BYTES = 4 << 20
#: read the next blocks in a background thread while the current one is parsed
PREFETCH = True
#: blocks parsed at once, in background threads, when PREFETCH is on (the kernel's
#: thread count: two, or fewer cores, or the environment variable XENT_THREADS)
PARSERS = THREADS
#: a longer line is an error rather than a reason to exhaust memory
MAX_LINE_BYTES = 32 << 20
#: from this many columns on, blocks are parsed as one long column (FastParser.parse_wide)
WIDE_COLUMNS = 50
#: a wide table is tried with the ordinary fast path only up to this many columns
_NARROW_ENOUGH = 5000
#: below this size a failing block goes straight to the precise reader
_SPLIT_MIN_BYTES = 64 << 10


#: a block the reading thread did not try to parse (it came before the header was known)
_UNTRIED: Any = object()


def _untried(got: Block | None) -> tuple[bytes, int, Any] | None:
    return None if got is None else (got.text, got.first, _UNTRIED)


class Table:
    """An open table of model outputs; see the module docstring (use :func:`open_table`)."""

    def __init__(
        self,
        path: str,
        options: ReadOptions,
        prepare: Callable[[Chunk], Any] | None = None,
        piece: Piece | None = None,
        readers: int = 1,
    ) -> None:
        self.options = options
        self.path = path
        self.display_name = "<stdin>" if path == "-" else path
        self.size_bytes: int | None = None
        self.rows_skipped = 0
        self.skipped: list[DataError] = []
        self.rows_read = 0
        #: a function of a Chunk, run in the parsing threads on each chunk they make; its
        #: result is the chunk's ``prepared``. Chunks of the first block and of blocks
        #: re-read by the precise reader are prepared in the calling thread. Set later
        #: (once the header tells what to do), blocks parsed before are not prepared.
        self.prepare = prepare
        self._stack = contextlib.ExitStack()
        self._consumed = False
        #: parsing threads and bytes per block: one reader's, or their share when
        #: *readers* tables are read at the same time (``xent compare``)
        self.parsers = _share(PARSERS, readers)
        self.block_bytes = _share(BLOCK_BYTES, readers)
        try:
            # ``open`` is looked up in this module, where a test can replace it.
            self._source = Source(
                path,
                self.display_name,
                self._stack,
                block_bytes=self.block_bytes,
                max_line=MAX_LINE_BYTES,
                opener=open,
                stream=None if piece is None else piece.stream,
                first_line=1 if piece is None else piece.first_line,
            )
            self.size_bytes = self._source.size_bytes
            # Reading, decompressing and cutting the next blocks overlaps with parsing.
            # It also keeps blocking reads out of the main thread, where a signal that
            # arrives just before a read() of an idle pipe would wait for more input.
            if PREFETCH:
                blocks = Stage(self._source.next_block, name="xent-reader")
                self._stack.callback(blocks.close)
                self._next_block = lambda: _untried(blocks.get())
                self._read_header()
                parsed = Stage(
                    blocks.get,
                    self._parse_ahead,
                    workers=self.parsers,
                    name="xent-parser",
                )
                self._stack.callback(parsed.close)
                self._next_block = parsed.get
            else:
                self._next_block = lambda: _untried(self._source.next_block())
                self._read_header()
        except BaseException:
            self._stack.close()
            raise

    def _parse_ahead(self, got: Block) -> tuple[bytes, int, Any]:
        parsed = self._fast_top(got.text, got.first, got.newlines)
        if parsed is None:
            return got.text, got.first, None
        # The block's chunks, prepared here; its text is not needed any more.
        return b"", got.first, self._pieces(parsed)

    def _error(self, reason: str) -> DataError:
        return DataError(self.display_name, None, None, reason)

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file or stream so far (compressed bytes)."""
        return self._source.bytes_read

    def close(self) -> None:
        """Release the file (standard input is left open)."""
        self._stack.close()

    # -- the first line ------------------------------------------------------------------

    def _read_header(self) -> None:
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
                if not is_blank(block[offset:end]):
                    found = (block, offset, end, line)
                    break
                offset, line = end, line + 1
        block, offset, end, line = found
        raw = block[offset:end].rstrip(b"\n")
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        delimiter = self.options.delimiter
        if self.path != "-":
            delimiter = delimiter or default_delimiter(self.display_name)
        layout = read_layout(raw, line, delimiter, self.options, self.display_name)
        #: what was inferred about the columns, one sentence each (the CLI says them)
        self.notes: list[str] = []
        self.class_names: list[str] | None = None
        if layout.has_header:
            layout = self._classes_from_header(layout, block[end:], line + 1)
        self.class_names_from_header = self.class_names is not None
        #: how the label column was chosen without --label-column (None: it was named)
        self.label_guess = layout.label_guess
        #: the header name of a pandas index column left out of the scores, or None
        self.index_column = (
            None if layout.index_column is None else layout.names[layout.index_column]
        )
        if layout.index_column is not None:
            self.notes.append(
                f"column {layout.index_column + 1} ({layout.names[layout.index_column]!r}, "
                "a pandas index) is left out of the scores; --logit-columns chooses them"
            )
        if layout.has_header:
            self._pending = (block[end:], line + 1, _UNTRIED)
        else:
            self._pending = (block[offset:], line, _UNTRIED)
        self._layout: Layout = layout
        self.layout = layout  #: the columns' roles (``xent compare --id-column`` reads them)
        self.has_header = layout.has_header
        self.header_line = layout.header_line
        self.logit_names = layout.logit_names
        self.label_name = layout.label_name
        self.target_names = layout.target_names
        self._wide = (
            layout.ncols >= WIDE_COLUMNS and layout.class_index is None and layout.group is None
        )
        K = len(layout.logits)
        options = self.options
        self._chunk_rows = max(1, min(options.chunk_rows, options.chunk_bytes // (8 * K)))
        rules = RowRules(
            num_scores=K,
            num_targets=0 if layout.targets is None else len(layout.targets),
            sum_tolerance=options.sum_tolerance,
            renormalize=options.renormalize,
            multilabel=options.multilabel,
        )
        self._fast_parser = FastParser(layout, self.options.ignore_index, end - offset, rules)
        skip = self._skip if self.options.on_error == "skip" else None
        self._precise_reader = PreciseReader(
            self.display_name, layout, self.options.ignore_index, skip, rules
        )
        if layout.has_header and layout.logits_inferred and line >= 1:
            # Line numbers from 1: the file's own header, not a later Dask part's copy.
            first_row, text = _text_columns(block[end:], line + 1, layout)
            self._precise_reader.first_row = first_row
            self._precise_reader.text_columns = text
            self._precise_reader.roles = options.roles
        self._rules = rules
        self.binary = layout.binary
        self.num_classes = layout.num_classes
        self._set_kind()

    def _classes_from_header(self, layout: Layout, rest: bytes, line: int) -> Layout:
        """Labels written as the score columns' names: the header names the classes."""
        if self.options.class_names is not None or layout.label is None:
            return layout
        first = next((raw for raw in rest.split(b"\n", 64)[:64] if not is_blank(raw)), None)
        if first is None:
            return layout
        try:
            fields = split_fields(
                first.rstrip(b"\r").decode("utf-8"), layout.delimiter, self.display_name, line
            )
        except (DataError, UnicodeDecodeError):
            return layout  # the row's error comes in its turn
        names = layout.logit_names
        if len(fields) != layout.ncols or len(names) < 2:
            return layout
        cell = fields[layout.label].strip(" \t")
        if not cell or is_number(cell) or cell not in names:
            return layout
        self.class_names = list(names)
        self.notes.append(
            f"labels are class names: the classes are the score columns' names "
            f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
        )
        return dataclasses.replace(
            layout, class_names=list(names), class_index={n: i for i, n in enumerate(names)}
        )

    def _set_kind(self) -> None:
        """The kind of scores: given, or detected from the first block (``auto``)."""
        option = self.options.scores
        if option != "auto":
            self._rules.set_kind(option, detected=False)
            self.scores, self.scores_detected = option, False
            return
        block, first, _ = self._pending
        parsed = self._fast_top(block, first)
        sample = parsed.logits if parsed is not None else self._precise_sample(block, first)
        kind = resolve_kind(option, sample, self.options.sum_tolerance, self.options.multilabel)
        self._rules.set_kind(kind, detected=True)
        self.scores, self.scores_detected = kind, True
        tolerance, multilabel = self.options.sum_tolerance, self.options.multilabel
        note = logits_in_unit_interval(kind, sample, tolerance, multilabel)
        if note is not None:
            self.notes.append(note)
        if parsed is not None and kind == "logits":
            # Parsed under the logits' rules, which are the detected kind's: keep it.
            self._pending = (block, first, parsed)

    def _precise_sample(self, block: bytes, first: int) -> Any:
        """The valid rows among the first lines of *block* (bad rows are left to chunks())."""
        head = block[: block.rfind(b"\n", 0, _SPLIT_MIN_BYTES) + 1] or block[:_SPLIT_MIN_BYTES]
        sample = PreciseReader(
            self.display_name, self._layout, self.options.ignore_index, _ignore, self._rules
        )
        return sample.read(head, first).logits

    # -- chunks --------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """Yield the validated rows in chunks; raise DataError at the first bad row."""
        if self._consumed:
            raise RuntimeError("chunks() can be iterated only once")
        self._consumed = True
        got: tuple[bytes, int, Any] | None = self._pending
        while got is not None:
            block, first, tried = got
            if isinstance(tried, list):  # parsed (and prepared) in a parsing thread
                pieces: Iterable[Chunk] = tried
            else:
                pieces = (
                    chunk
                    for parsed in self._parse(block, first, tried=tried)
                    for chunk in self._pieces(parsed)
                )
            for chunk in pieces:
                self.rows_read += len(chunk.lines)
                yield chunk
            got = self._next_block()
        if self.rows_read == 0 and self.rows_skipped == 0:
            raise self._error("no data rows")

    def _pieces(self, parsed: ParsedRows) -> list[Chunk]:
        """*parsed* cut into chunks (at most chunk_rows rows, chunk_bytes of logits)."""
        step = self._chunk_rows
        prepare = self.prepare
        pieces = []
        for start in range(0, len(parsed.lines), step):
            stop = start + step
            chunk = Chunk(
                self.display_name,
                parsed.logits[start:stop],
                None if parsed.labels is None else parsed.labels[start:stop],
                None if parsed.targets is None else parsed.targets[start:stop],
                parsed.lines[start:stop],
                # The block's counts go with its first chunk.
                renormalized=parsed.renormalized if start == 0 else 0,
                targets_renormalized=parsed.targets_renormalized if start == 0 else 0,
                weights=None if parsed.weights is None else parsed.weights[start:stop],
                groups=None if parsed.groups is None else parsed.groups[start:stop],
            )
            if prepare is not None:
                chunk = dataclasses.replace(chunk, prepared=prepare(chunk))
            pieces.append(chunk)
        return pieces

    def _fast_top(self, block: bytes, first: int, newlines: int | None = None) -> ParsedRows | None:
        """The fast parse of a whole block (choosing between wide and ordinary mode).

        *newlines*, the number of line breaks in *block*, saves counting them again.
        """
        if not self._wide:
            return self._fast(block, first, newlines)
        parsed = self._fast_wide(block, first)
        if parsed is None and self._layout.ncols <= _NARROW_ENOUGH:
            # Maybe a column that is not numeric (wide mode parses every column as a
            # number): if the ordinary fast path reads the block, keep to it.
            parsed = self._fast(block, first, newlines)
            self._wide = parsed is None
        return parsed

    def _parse(
        self, block: bytes, first: int, top: bool = True, tried: Any = _UNTRIED
    ) -> Iterator[ParsedRows]:
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
            yield self._precise_reader.read(block, first)
            return
        middle = block.rfind(b"\n", 0, len(block) // 2) + 1
        if middle <= 0:
            middle = block.find(b"\n", len(block) // 2) + 1
        if middle <= 0 or middle >= len(block):
            yield self._precise_reader.read(block, first)
            return
        yield from self._parse(block[:middle], first, top=False)
        yield from self._parse(block[middle:], first + block.count(b"\n", 0, middle), top=False)

    # The two fast parses are methods so that tests can disable them (precise reader only).
    def _fast(self, block: bytes, first: int, newlines: int | None = None) -> ParsedRows | None:
        return self._fast_parser.parse(block, first, newlines)

    def _fast_wide(self, block: bytes, first: int) -> ParsedRows | None:
        return self._fast_parser.parse_wide(block, first)

    def _skip(self, error: DataError) -> None:
        """Count a row the precise reader dropped (``on_error="skip"``), keep its error."""
        self.rows_skipped += 1
        if len(self.skipped) < SKIPPED_KEPT:
            self.skipped.append(error)


def is_model_output(name: str) -> bool:
    """Whether a file name has the ending of a format ``xent batch`` reads (for directories).

    >>> is_model_output("part-0001.parquet"), is_model_output("README.md")
    (True, False)
    """
    from xentcli.batch._formats import has_known_extension

    return has_known_extension(name)


def inferred_columns(table: Any) -> dict[str, object]:
    """What a table's columns were taken as, for the report's JSON (``"inferred"``).

    ``label_column`` is the label column's name (None with soft targets); ``label_guessed``
    says how it was chosen without ``--label-column`` ("by its name", "the last column",
    None when it was named); ``index_column`` is the header name of a pandas index left out
    of the scores (None: none); ``class_names_from_header`` whether the labels are the
    score columns' names. Readers of other formats may not infer these: None and False.
    """
    return {
        "label_column": getattr(table, "label_name", None),
        "label_guessed": getattr(table, "label_guess", None),
        "index_column": getattr(table, "index_column", None),
        "class_names_from_header": bool(getattr(table, "class_names_from_header", False)),
    }


def _ignore(error: DataError) -> None:
    """Drop a bad row of the detection sample: chunks() reports it in its turn."""


def _share(whole: int, readers: int) -> int:
    """One of *readers* equal shares of *whole* (at least 1)."""
    return max(1, whole // max(1, readers))


def _text_columns(block: bytes, line: int, layout: Layout) -> tuple[int | None, set[int]]:
    """The first data line of *block* (its first line is *line*) and the score columns
    holding text (not a number, not blank) on it and on the next data line: a column of
    text, not a typo in one cell (nothing without two data lines in *block*)."""
    rows: list[tuple[int, bytes]] = []
    for raw in block.split(b"\n", 64)[:64]:
        if not is_blank(raw):
            rows.append((line, raw.rstrip(b"\r")))
            if len(rows) == 2:
                break
        line += 1
    if len(rows) < 2:
        return None, set()
    try:
        cells = [
            split_fields(raw.decode("utf-8"), layout.delimiter, "", number) for number, raw in rows
        ]
    except (DataError, UnicodeDecodeError):
        return None, set()  # the row's error comes in its turn
    if any(len(fields) != layout.ncols for fields in cells):
        return None, set()
    text = {
        i
        for i in layout.logits
        if all(fields[i].strip(" \t") and not is_number(fields[i]) for fields in cells)
    }
    return rows[0][0], text


@contextlib.contextmanager
def open_table(
    path: str,
    options: ReadOptions | None = None,
    prepare: Callable[[Chunk], Any] | None = None,
    piece: Piece | None = None,
    *,
    readers: int = 1,
) -> Iterator[Table | ArrayTable]:
    """Open *path* (``"-"`` for standard input) as a table of model outputs.

    Raises :class:`~xentcli.errors.DataError` for a file that cannot be read (see the
    module docstring); the table's :meth:`Table.chunks` yields validated chunks, each
    with ``prepare(chunk)`` (see :attr:`Table.prepare`) as its ``prepared``. With
    *piece*, only that part of the file is read (see :class:`Piece`). *readers*: how
    many tables are read at the same time (``xent compare``: 2); a text file's reader
    then takes its share of the parsing threads and of the block size, so that the
    threads and the bytes in flight stay those of one reader.
    """
    options = options if options is not None else ReadOptions()
    from xentcli.batch._formats import file_format, open_array_table

    fmt = file_format(path, options.file_format)
    table: Table | ArrayTable = (
        Table(path, options, prepare, piece, readers)
        if fmt == "csv"
        else open_array_table(
            path,
            fmt,
            options,
            prepare,
            block_bytes=BLOCK_BYTES,
            max_line=MAX_LINE_BYTES,
            parsers=PARSERS if PREFETCH else 1,
            piece=piece,
        )
    )
    try:
        yield table
    finally:
        table.close()
