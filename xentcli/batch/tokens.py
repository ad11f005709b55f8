"""Language-model evaluation files: one row per token, the log-probability of the true token.

An LM evaluation (vLLM ``prompt_logprobs``, lm-eval-harness samples, OpenAI-style
``logprobs``) writes, per token, the log-probability the model gave the true next token,
not the whole distribution. :class:`TokenAccumulator` turns such rows into the figures
people report: the mean negative log-likelihood (NLL) per token, the token-level
perplexity ``exp(sum NLL / tokens)``, the mean of the per-sequence perplexities (a
different number, often confused with the first), bits per byte
``sum NLL / (ln 2 * sum bytes)`` when the files give each token's byte count, and the
worst sequences.

Every sum is exact (:class:`~xentcli.core.ExactSum`, and exact rationals per sequence),
so the figures are the same bits however the files are cut into chunks.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.batch._columns import unknown_column
from xentcli.errors import DataError

FloatArray = npt.NDArray[np.float64]

#: a log-probability may exceed 0 by this much (rounding in the writer), read as 0
LOGPROB_TOLERANCE = 1e-6
#: how many sequences are kept at most (memory grows with their number)
MAX_SEQUENCES = 10_000_000


@dataclass(frozen=True)
class TokenOptions:
    """Which columns hold what in a token file, and the unit of the report."""

    logprob_column: str
    sequence_column: str | None = None
    bytes_column: str | None = None
    base: str = "e"
    worst: int = 5
    file_format: str | None = None


@dataclass
class _Sequence:
    nll: Fraction = Fraction(0)
    tokens: int = 0
    infinite: bool = False
    file: str = ""
    place: int = 0
    unit: str = "line"


@dataclass(frozen=True)
class WorstSequence:
    """A sequence among the highest mean NLL per token."""

    sequence: str
    tokens: int
    loss: float  #: mean NLL per token, in the report's unit
    nll: float  #: the sequence's total NLL, in the report's unit
    file: str
    line: int  #: where its first token is
    unit: str = "line"

    @property
    def place(self) -> str:
        from xentcli.batch._types import place

        return place(self.file, self.line, self.unit)


@dataclass(frozen=True)
class TokenSummary:
    """Everything ``xent batch --scores token-logprobs`` reports."""

    files: tuple[tuple[str, int], ...]
    tokens: int
    sequences: int
    sequences_from: str  #: the sequence column, or "files" (each file one sequence)
    loss: float | None  #: mean NLL per token, in ``units``
    loss_sum: float
    perplexity: float | None
    sequence_perplexity_mean: float | None
    bits_per_byte: float | None
    bytes: int | None
    units: str
    histogram: tuple[tuple[float, float, int], ...]  #: (low, high, sequences) of mean NLL
    worst: tuple[WorstSequence, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "scores": "token-logprobs",
            "files": [{"path": p, "tokens": n} for p, n in self.files],
            "tokens": self.tokens,
            "sequences": self.sequences,
            "sequences_from": self.sequences_from,
            "loss": self.loss,
            "loss_sum": self.loss_sum,
            "perplexity": self.perplexity,
            "sequence_perplexity_mean": self.sequence_perplexity_mean,
            "bits_per_byte": self.bits_per_byte,
            "bytes": self.bytes,
            "units": self.units,
            "histogram": [{"low": lo, "high": hi, "sequences": n} for lo, hi, n in self.histogram],
            "worst": [
                {
                    "sequence": w.sequence,
                    "tokens": w.tokens,
                    "loss": w.loss,
                    "nll": w.nll,
                    "file": w.file,
                    "line": w.line,
                    "unit": w.unit,
                }
                for w in self.worst
            ],
        }


class TokenAccumulator:
    """Streaming sums over token rows; see the module docstring.

    >>> acc = TokenAccumulator(TokenOptions("logprob"))
    >>> acc.start_file("a.csv")
    >>> acc.add(np.array([-1.0, -2.0, -3.0]), None, None, np.array([2, 3, 4]))
    >>> summary = acc.summary()
    >>> summary.loss, summary.tokens
    (2.0, 3)
    """

    def __init__(self, options: TokenOptions) -> None:
        self.options = options
        self._nll = core.ExactSum()
        self._tokens = 0
        self._bytes = 0
        self._has_bytes = options.bytes_column is not None
        self._sequences: dict[tuple[str, object], _Sequence] = {}
        self._files: list[list[Any]] = []
        self._file = ""

    def start_file(self, path: str) -> None:
        self._file = path
        self._files.append([path, 0])

    def add(
        self,
        logprobs: FloatArray,
        sequences: npt.NDArray[Any] | None,
        byte_counts: npt.NDArray[np.int64] | None,
        places: npt.NDArray[np.int64],
        unit: str = "line",
    ) -> None:
        """Add checked rows: log-probabilities (<= 0 or -inf), sequence ids, byte counts.

        *places* are the rows' line numbers (or row numbers when *unit* is ``"row"``).
        """
        nll = -np.minimum(logprobs, 0.0)
        finite = np.isfinite(nll)
        self._nll.add(nll)  # an infinite NLL makes the sum infinite, as it must
        n = len(nll)
        self._tokens += n
        self._files[-1][1] += n
        if byte_counts is not None:
            self._bytes += int(byte_counts.sum(dtype=np.int64))
        if sequences is None:
            keys: list[object] = [None]
            inverse = np.zeros(n, dtype=np.intp)
        else:
            unique, first, inverse = np.unique(sequences, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")  # sequences in order of appearance
            remap = np.empty_like(order)
            remap[order] = np.arange(len(order))
            inverse = remap[inverse]
            keys = [unique[i].item() if hasattr(unique[i], "item") else unique[i] for i in order]
        groups = core.GroupedExactSum(len(keys))
        groups.add(np.where(finite, nll, 0.0), inverse)
        counts = np.bincount(inverse, minlength=len(keys))
        infinite = np.bincount(inverse, weights=~finite, minlength=len(keys)) > 0
        first_rows = np.full(len(keys), n, dtype=np.intp)
        np.minimum.at(first_rows, inverse, np.arange(n))
        for g, key in enumerate(keys):
            name = (self._file, None) if key is None else ("", key)
            seq = self._sequences.get(name)
            if seq is None:
                if len(self._sequences) >= MAX_SEQUENCES:
                    raise DataError(self._file, None, None, f"more than {MAX_SEQUENCES} sequences")
                seq = _Sequence(file=self._file, place=int(places[first_rows[g]]), unit=unit)
                self._sequences[name] = seq
            seq.nll += groups.exact(g)
            seq.tokens += int(counts[g])
            seq.infinite |= bool(infinite[g])

    def _in_base(self, nats: float) -> float:
        return float(core.to_base(np.float64(nats), self.options.base))

    def summary(self) -> TokenSummary:
        from xentcli.core import UNITS

        base = self.options.base
        tokens = self._tokens
        total = self._nll
        loss_sum = total.value(base)
        loss = None
        perplexity = None
        if tokens:
            ones = core.ExactSum()
            ones.add_ones(tokens)
            loss = total.ratio(ones, base)
            mean_nats = total.ratio(ones, "e")
            perplexity = _exp(mean_nats)
        per_sequence = []
        for (file_key, key), seq in self._sequences.items():
            if seq.tokens == 0:
                continue
            mean = math.inf if seq.infinite else float(seq.nll / seq.tokens)
            per_sequence.append((mean, key if key is not None else file_key, seq))
        seq_ppl = None
        if per_sequence:
            exps = [_exp(mean) for mean, _, _ in per_sequence]
            seq_ppl = math.inf if any(math.isinf(e) for e in exps) else math.fsum(exps) / len(exps)
        bits_per_byte = None
        if self._has_bytes and self._bytes > 0:
            bits_per_byte = (
                math.inf
                if not math.isfinite(total.value("e"))
                else float(total.exact() / self._bytes) / math.log(2)
            )
        worst = sorted(per_sequence, key=lambda item: -item[0])[: self.options.worst]
        return TokenSummary(
            files=tuple((p, n) for p, n in self._files),
            tokens=tokens,
            sequences=len(per_sequence),
            sequences_from=self.options.sequence_column or "files",
            loss=loss,
            loss_sum=loss_sum,
            perplexity=perplexity,
            sequence_perplexity_mean=seq_ppl,
            bits_per_byte=bits_per_byte,
            bytes=self._bytes if self._has_bytes else None,
            units=UNITS[base],
            histogram=_histogram([self._in_base(m) for m, _, _ in per_sequence]),
            worst=tuple(
                WorstSequence(
                    str(key),
                    seq.tokens,
                    self._in_base(mean),
                    math.inf if seq.infinite else self._in_base(float(seq.nll)),
                    seq.file,
                    seq.place,
                    seq.unit,
                )
                for mean, key, seq in worst
            ),
        )


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _histogram(values: list[float], bins: int = 10) -> tuple[tuple[float, float, int], ...]:
    finite = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return ()
    low, high = float(finite.min()), float(finite.max())
    if high == low:
        return ((low, high, int(finite.size)),)
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    return tuple((float(edges[i]), float(edges[i + 1]), int(counts[i])) for i in range(bins))


# -- reading ---------------------------------------------------------------------------


def token_rows(
    path: str, options: TokenOptions
) -> Iterator[
    tuple[
        FloatArray,
        npt.NDArray[Any] | None,
        npt.NDArray[np.int64] | None,
        npt.NDArray[np.int64],
        str,
    ]
]:
    """The checked token rows of *path*: (logprobs, sequences, bytes, places, unit)."""
    from xentcli.batch._formats import file_format

    fmt = file_format(path, options.file_format)
    wanted = [options.logprob_column]
    wanted += [c for c in (options.sequence_column, options.bytes_column) if c is not None]
    if fmt == "csv":
        records: Iterator[tuple[Any, npt.NDArray[np.int64]]] = _csv_records(path, wanted)
        unit = "line"
    elif fmt == "jsonl":
        records = _jsonl_records(path, wanted, options.sequence_column)
        unit = "line"
    elif fmt in ("parquet", "arrow"):
        records = _arrow_records(path, fmt, wanted)
        unit = "row"
    else:
        raise DataError(
            path, None, None, f"token log-probabilities cannot be read from .{fmt} files"
        )
    display = "<stdin>" if path == "-" else path
    for record, places in records:
        yield (*_checked(display, record, places, options, unit), places, unit)


def _checked(
    path: str, record: Any, places: npt.NDArray[np.int64], options: TokenOptions, unit: str
) -> tuple[FloatArray, npt.NDArray[Any] | None, npt.NDArray[np.int64] | None]:
    from xentcli.batch._formats import _label_values, _null_mask, _to_float

    def error(row: int, column: str, reason: str, value: object = None) -> DataError:
        return DataError(path, int(places[row]), column, reason, value, unit=unit)

    name = options.logprob_column
    column = record.column(name)
    nulls = _null_mask(column)
    if nulls.any():
        raise error(int(np.argmax(nulls)), name, "log-probability is missing")
    try:
        logprobs = _to_float(column)
    except (ValueError, TypeError):
        for row, value in enumerate(column.to_pylist()):
            try:
                float(value)
            except (ValueError, TypeError):
                raise error(row, name, "not a number", value) from None
        raise DataError(path, None, name, f"column holds {column.type}, not numbers") from None
    with np.errstate(invalid="ignore"):
        bad = np.isnan(logprobs) | (logprobs > LOGPROB_TOLERANCE)
    if bad.any():
        row = int(np.argmax(bad))
        value = float(logprobs[row])
        reason = (
            "log-probability is NaN"
            if math.isnan(value)
            else "a log-probability must be <= 0 (is this the right column?)"
        )
        raise error(row, name, reason, value)
    sequences = None
    if options.sequence_column is not None:
        sequence_column = record.column(options.sequence_column)
        nulls = _null_mask(sequence_column)
        if nulls.any():
            raise error(int(np.argmax(nulls)), options.sequence_column, "sequence id is missing")
        sequences = _label_values(sequence_column)
    byte_counts = None
    if options.bytes_column is not None:
        name = options.bytes_column
        values = _to_float(record.column(name))
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(values) & (values >= 0) & (values == np.floor(values)))
        if bad.any():
            row = int(np.argmax(bad))
            raise error(row, name, "a byte count must be a whole number >= 0", float(values[row]))
        byte_counts = values.astype(np.int64)
    return logprobs, sequences, byte_counts


def _missing_columns(path: str, names: list[str], wanted: list[str]) -> None:
    for column in wanted:
        if column not in names:
            raise unknown_column(path, "", column, list(names))


def _arrow_records(
    path: str, fmt: str, wanted: list[str]
) -> Iterator[tuple[Any, npt.NDArray[np.int64]]]:
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    from xentcli.batch._formats import BATCH_ROWS, _arrow_errors, _check_file

    _check_file(path)
    first = 1
    with _arrow_errors(path, "Parquet" if fmt == "parquet" else "Arrow"):
        if fmt == "parquet":
            handle: Any = pq.ParquetFile(path, buffer_size=1 << 16, pre_buffer=False)
            _missing_columns(path, handle.schema_arrow.names, wanted)
            batches: Any = handle.iter_batches(batch_size=BATCH_ROWS, columns=wanted)
        else:
            source = pa.OSFile(path)
            reader = ipc.open_file(source)
            _missing_columns(path, reader.schema.names, wanted)
            batches = (reader.get_batch(i).select(wanted) for i in range(reader.num_record_batches))
        for record in batches:
            n = record.num_rows
            yield record, np.arange(first, first + n, dtype=np.int64)
            first += n


def _jsonl_records(
    path: str, wanted: list[str], sequence: str | None
) -> Iterator[tuple[Any, npt.NDArray[np.int64]]]:
    """JSON Lines token rows: pyarrow's JSON reader per block, line by line on a refusal."""
    import pyarrow as pa
    import pyarrow.json as pj

    from xentcli.batch._formats import _json_schema, _lines_of, _parse_json_line

    schema = None
    for block, first in _text_blocks(path):
        numbered = list(_lines_of(block, first))
        if not numbered:
            continue
        if schema is None:
            head = _parse_json_line(path, numbered[0][0], numbered[0][1])
            _missing_columns(path, list(head), wanted)
            inferred = _json_schema(path, {name: head[name] for name in wanted})
            # numbers are read as float64; a sequence id keeps the type of the first row
            schema = pa.schema(
                [
                    field if field.name == sequence else pa.field(field.name, pa.float64())
                    for field in inferred
                ]
            )
        places = np.fromiter((n for n, _ in numbered), dtype=np.int64, count=len(numbered))
        try:
            table = pj.read_json(
                io.BytesIO(b"\n".join(line for _, line in numbered)),
                parse_options=pj.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="ignore"
                ),
                read_options=pj.ReadOptions(block_size=max(1 << 20, len(block) + 1)),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
        if (
            table is None
            or table.num_rows != len(numbered)
            or any(table.column(name).null_count for name in wanted)
        ):
            _json_error(path, numbered, wanted, schema)
            raise DataError(path, first, None, "cannot read these JSON lines")
        yield table, places


def _json_error(
    path: str, numbered: list[tuple[int, bytes]], wanted: list[str], schema: Any
) -> None:
    """Raise the error of the first line that is not JSON or lacks a field, with its place."""
    import pyarrow as pa

    for number, line in numbered:
        record = _parse_json_line_here(path, number, line)
        for name in wanted:
            if name not in record or record[name] is None:
                raise DataError(path, number, name, f"the object has no field {name!r}")
            value = record[name]
            kind = schema.field(name).type
            if pa.types.is_floating(kind) and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise DataError(path, number, name, "not a number", value)


def _parse_json_line_here(path: str, number: int, line: bytes) -> dict[str, Any]:
    from xentcli.batch._formats import _parse_json_line

    return _parse_json_line(path, number, line)


def _text_blocks(path: str) -> Iterator[tuple[bytes, int]]:
    from xentcli.batch import reader as reader_module
    from xentcli.batch._sources import Source

    display = "<stdin>" if path == "-" else path
    with contextlib.ExitStack() as stack:
        source = Source(
            path,
            display,
            stack,
            block_bytes=reader_module.BLOCK_BYTES,
            max_line=reader_module.MAX_LINE_BYTES,
            opener=open,
        )
        block = source.next_block()
        if block is None:
            raise DataError(display, None, None, "file is empty")
        while block is not None:
            yield block.text, block.first
            block = source.next_block()


def _csv_records(path: str, wanted: list[str]) -> Iterator[tuple[Any, npt.NDArray[np.int64]]]:
    """CSV token rows, block by block, with physical line numbers (blank lines skipped)."""
    import csv

    import pyarrow as pa
    import pyarrow.csv as pcsv

    from xentcli.batch._formats import _lines_of
    from xentcli.batch._sources import BOM, default_delimiter

    display = "<stdin>" if path == "-" else path
    header: bytes | None = None
    delimiter = default_delimiter(display) or ","
    for block, first in _text_blocks(path):
        numbered = list(_lines_of(block, first))
        if header is None:
            if not numbered:
                continue
            header = numbered[0][1].removeprefix(BOM)
            names = [
                n.strip()
                for n in next(csv.reader([header.decode("utf-8", "replace")], delimiter=delimiter))
            ]
            _missing_columns(display, names, wanted)
            numbered = numbered[1:]
            if not numbered:
                continue
        text = header + b"\n" + b"\n".join(line for _, line in numbered)
        places = np.fromiter((n for n, _ in numbered), dtype=np.int64, count=len(numbered))
        try:
            table = pcsv.read_csv(
                io.BytesIO(text),
                parse_options=pcsv.ParseOptions(delimiter=delimiter),
                convert_options=pcsv.ConvertOptions(include_columns=wanted, null_values=[""]),
                read_options=pcsv.ReadOptions(use_threads=False),
            )
        except pa.ArrowInvalid as error:
            raise DataError(display, first, None, f"cannot read the rows ({error})") from None
        if table.num_rows != len(numbered):
            raise DataError(display, first, None, "a row spans several lines")
        yield table, places
