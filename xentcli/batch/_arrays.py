"""Tables whose values arrive as arrays (Parquet, Arrow, NumPy, JSON Lines), checked as a whole.

The delimited-text reader (:mod:`xentcli.batch.reader`) parses text and checks it cell by
cell. The other formats hand over typed arrays: a batch of rows at a time, with the
scores either as one column per class or as one list column. :class:`ArrayTable` turns
such batches into the same validated :class:`~xentcli.batch.reader.Chunk` objects, with
the same checks and the same one-line errors, located by row (``FILE:row N:COLUMN``,
rows counted from 1) or, for JSON Lines, by physical line (``FILE:LINE:COLUMN``).

A format module supplies a :class:`Batch` iterator and the column names; everything that
is the same for every format (column roles, labels as integers or class names, the
checks of logits, labels and targets, skipping bad rows, cutting chunks) lives here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from xentcli.batch._prefetch import Stage
from xentcli.batch._types import SKIPPED_KEPT
from xentcli.errors import DataError

if TYPE_CHECKING:
    from xentcli.batch._types import Chunk, ReadOptions

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Roles:
    """What the columns of an array table hold, by name."""

    score_names: list[str]  #: one per class (a list column's classes are "0".."K-1")
    label_name: str | None  #: None with soft targets
    target_names: list[str] | None
    class_index: dict[str, int] | None  #: class name -> index, when labels are names
    weight_name: str | None = None  #: the sample-weight column (``--weight-column``)
    group_name: str | None = None  #: the column that slices the rows (``--group-by``)


@dataclass
class Batch:
    """Rows of one format's batch, before the checks.

    ``scores`` is ``(n, K)`` float64 (NaN where the file has a null), ``labels`` the raw
    label column (integers, floats or strings) or None, ``targets`` ``(n, K)`` or None,
    ``places`` the 1-based row (or line) number of each row.
    """

    scores: FloatArray
    labels: npt.NDArray[Any] | None
    targets: FloatArray | None
    places: IntArray
    #: per row, True where the score (or target) cell was null in the file
    null_scores: npt.NDArray[np.bool_] | None = None
    null_labels: npt.NDArray[np.bool_] | None = None
    #: rows already found bad by the format (a list of the wrong length): row -> error
    errors: dict[int, DataError] = dataclasses.field(default_factory=dict)
    weights: FloatArray | None = None  #: sample weights (NaN where null), or None
    null_weights: npt.NDArray[np.bool_] | None = None
    groups: npt.NDArray[Any] | None = None  #: the group column's raw values, or None
    null_groups: npt.NDArray[np.bool_] | None = None


class ArrayTable:
    """A table read as typed arrays; the same interface as :class:`~xentcli.batch.reader.Table`.

    Parameters
    ----------
    display_name
        The name errors and reports use.
    roles
        What the columns hold.
    batches
        A function returning the iterator of :class:`Batch` objects (called once).
    options
        The read options (ignore index, class names, ``on_error``, chunk sizes).
    place
        ``"row"`` (errors say ``FILE:row N:COLUMN``) or ``"line"`` (``FILE:N:COLUMN``).
    size_bytes, bytes_read
        The on-disk size and a function giving the bytes consumed so far (progress).
    """

    def __init__(
        self,
        display_name: str,
        roles: Roles,
        batches: Callable[[], Iterator[Batch]],
        options: ReadOptions,
        *,
        place: str = "row",
        size_bytes: int | None = None,
        bytes_read: Callable[[], int] | None = None,
        close: Callable[[], None] | None = None,
        prepare: Callable[[Chunk], Any] | None = None,
    ) -> None:
        self.display_name = display_name
        self.path = display_name
        self.options = options
        self.logit_names = roles.score_names
        self.label_name = roles.label_name
        self.target_names = roles.target_names
        #: the class names, when the file names them (labels written as names)
        self.class_names = None if roles.class_index is None else list(roles.class_index)
        self.has_header = True
        self.header_line: int | None = None
        self.size_bytes = size_bytes
        self.rows_skipped = 0
        self.skipped: list[DataError] = []
        #: what was inferred about the file, said once rows have been read (as the text
        #: reader's notes)
        self.notes: list[str] = []
        self.rows_read = 0
        self.prepare = prepare
        #: threads that check the batches and run ``prepare`` (1: the calling thread)
        self.parsers = 1
        #: ``"row"`` or ``"line"``: what the numbers in ``Chunk.lines`` count
        self.place = place
        self._roles = roles
        self._batches = batches
        self._bytes_read = bytes_read
        self._close = close
        self._consumed = False
        K = len(roles.score_names)
        self._chunk_rows = max(1, min(options.chunk_rows, options.chunk_bytes // (8 * K)))
        # What the scores are (``--scores``), given or detected from the first batch, as
        # the text reader does; the rows are then checked by the kind's rules.
        from xentcli.batch._kinds import RowRules

        self._rules = RowRules(
            num_scores=K,
            num_targets=0 if roles.target_names is None else len(roles.target_names),
            sum_tolerance=options.sum_tolerance,
            renormalize=options.renormalize,
            multilabel=options.multilabel,
        )
        self.scores: str = "logits"
        self.scores_detected = False
        self._set_kind()

    @property
    def bytes_read(self) -> int:
        return self._bytes_read() if self._bytes_read is not None else 0

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def on_close(self, close: Callable[[], None]) -> None:
        """Also call *close* when the table is closed."""
        previous = self._close

        def both() -> None:
            try:
                close()
            finally:
                if previous is not None:
                    previous()

        self._close = both

    def error(
        self, place: int | None, column: str | None, reason: str, value: object = None
    ) -> DataError:
        """A :class:`DataError` at *place* (a row or line number) and *column* (a name)."""
        return located_error(self.display_name, self.place, place, column, reason, value)

    def _set_kind(self) -> None:
        """The kind of scores: given, or detected from the first batch (``auto``)."""
        import itertools

        from xentcli.batch._kinds import logits_in_unit_interval, resolve_kind

        option = self.options.scores
        if option != "auto":
            self._rules.set_kind(option, detected=False)
            self.scores, self.scores_detected = option, False
            return
        batches = self._batches()
        first = next(batches, None)
        self._batches = lambda: itertools.chain(() if first is None else (first,), batches)
        sample = np.zeros((0, len(self.logit_names)))
        if first is not None:
            sample = np.asarray(first.scores, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                sample = sample[~np.isnan(sample).any(axis=1)]  # nulls are errors, later
        kind = resolve_kind(option, sample, self.options.sum_tolerance, self.options.multilabel)
        self._rules.set_kind(kind, detected=True)
        self.scores, self.scores_detected = kind, True
        tolerance, multilabel = self.options.sum_tolerance, self.options.multilabel
        note = logits_in_unit_interval(kind, sample, tolerance, multilabel)
        if note is not None:
            self.notes.append(note)

    def chunks(self) -> Iterator[Chunk]:
        """Yield the validated rows in chunks; raise DataError at the first bad row.

        The batches are read in the calling order by one background thread and checked,
        cut and prepared (the kernel) in the reader's parsing threads, as for text.
        """
        if self._consumed:
            raise RuntimeError("chunks() can be iterated only once")
        self._consumed = True
        batches = self._batches()
        stage = None
        if self.parsers > 1:
            stage = Stage(
                lambda: next(batches, None), self._work, workers=self.parsers, name="xent-arrays"
            )
        try:
            while True:
                if stage is not None:
                    got = stage.get()
                else:
                    batch = next(batches, None)
                    got = None if batch is None else self._work(batch)
                if got is None:
                    break
                pieces, dropped = got
                self.rows_skipped += len(dropped)
                self.skipped.extend(dropped[: max(0, SKIPPED_KEPT - len(self.skipped))])
                for chunk in pieces:
                    self.rows_read += len(chunk.lines)
                    yield chunk
        finally:
            if stage is not None:
                stage.close()
        if self.rows_read == 0 and self.rows_skipped == 0:
            raise self.error(None, None, "no data rows")

    def _work(self, batch: Batch) -> tuple[list[Chunk], list[DataError]]:
        """Check a batch, cut it into chunks and prepare them (in a parsing thread)."""
        from xentcli.batch._types import Chunk

        logits, labels, targets, places, dropped, extra = self._checked(batch)
        weights, groups = extra
        renormalized = targets_renormalized = None
        if self._rules.renormalize:
            renormalized = self._rules.check.bad_rows(logits)[1]
            if targets is not None:
                targets_renormalized = self._rules.renormalized_target_rows(targets)
                targets = self._rules.normalized_targets(targets)
        pieces = []
        step = self._chunk_rows
        for start in range(0, len(places), step):
            stop = start + step
            chunk = Chunk(
                self.display_name,
                logits[start:stop],
                None if labels is None else labels[start:stop],
                None if targets is None else targets[start:stop],
                places[start:stop],
                unit=self.place,
                renormalized=0 if renormalized is None else _count(renormalized, start, stop),
                targets_renormalized=(
                    0 if targets_renormalized is None else _count(targets_renormalized, start, stop)
                ),
                weights=None if weights is None else weights[start:stop],
                groups=None if groups is None else groups[start:stop],
            )
            if self.prepare is not None:
                chunk = dataclasses.replace(chunk, prepared=self.prepare(chunk))
            pieces.append(chunk)
        return pieces, dropped

    # -- the checks ------------------------------------------------------------------

    def _checked(
        self, batch: Batch
    ) -> tuple[
        FloatArray,
        IntArray | None,
        FloatArray | None,
        IntArray,
        list[DataError],
        tuple[FloatArray | None, npt.NDArray[np.str_] | None],
    ]:
        """The batch's arrays and the errors of the bad rows dropped (``on_error="skip"``).

        Without ``skip``, the first bad row's error is raised.
        """
        found = _Found(self, batch.places, dict(batch.errors))
        scores = np.asarray(batch.scores, dtype=np.float64)  # in its order: no copy
        if self._rules.kind != "logits":
            self._check_kind(batch, scores, found)
        self._check_scores(batch, scores, found)
        labels = None if batch.labels is None else self._labels(batch, found)
        targets = None
        if batch.targets is not None:
            targets = np.ascontiguousarray(batch.targets, dtype=np.float64)
            self._check_targets(targets, found)
        weights = None if batch.weights is None else self._weights(batch, found)
        groups = None if batch.groups is None else self._groups(batch, found)
        bad_rows = found.rows
        if not bad_rows:
            return scores, labels, targets, batch.places, [], (weights, groups)
        if self.options.on_error != "skip":
            raise bad_rows[min(bad_rows)]
        keep = np.ones(len(batch.places), dtype=bool)
        keep[sorted(bad_rows)] = False
        return (
            scores[keep],
            None if labels is None else labels[keep],
            None if targets is None else targets[keep],
            batch.places[keep],
            [bad_rows[row] for row in sorted(bad_rows)],
            (
                None if weights is None else weights[keep],
                None if groups is None else groups[keep],
            ),
        )

    def _weights(self, batch: Batch, found: _Found) -> FloatArray:
        """The sample weights, each bad one (null, NaN, infinite, negative) an error."""
        name = self._roles.weight_name or "weight"
        weights = np.asarray(batch.weights, dtype=np.float64)
        if batch.null_weights is not None:
            for row in np.nonzero(batch.null_weights)[0].tolist():
                found.add(row, name, self._missing(name))
        with np.errstate(invalid="ignore"):
            bad = ~((weights >= 0) & (weights < np.inf))
        for row in np.nonzero(bad)[0].tolist():
            value = float(weights[row])
            if value != value:
                found.add(row, name, "weight is not finite", value)
            elif value < 0:
                found.add(row, name, "weight is negative", value)
            else:
                found.add(row, name, "weight is not finite", value)
        return np.where(bad, 0.0, weights)

    def _groups(self, batch: Batch, found: _Found) -> npt.NDArray[np.str_]:
        """The group names: each value as text, stripped; a null or empty one is an error."""
        raw = batch.groups
        assert raw is not None
        name = self._roles.group_name or "group"
        if raw.dtype.kind == "f":  # integers with nulls come as floats
            with np.errstate(invalid="ignore"):
                whole = np.isfinite(raw) & (raw == np.floor(raw)) & (np.abs(raw) < 2.0**53)
            text = [repr(int(v)) if w else repr(float(v)) for v, w in zip(raw, whole, strict=True)]
        else:
            text = [
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in raw.tolist()
            ]
        names = np.array([t.strip(" \t") for t in text] + [""], dtype=np.str_)[:-1]
        nulls = batch.null_groups
        if nulls is not None:
            for row in np.nonzero(nulls)[0].tolist():
                found.add(row, name, self._missing(name))
        for row in np.nonzero(names == "")[0].tolist():
            found.add(row, name, "empty group cell")
        return names

    def _missing(self, what: str) -> str:
        if self.place == "line":  # JSON Lines: a null is a missing field or a JSON null
            return f"no field {what!r} in the object (or it is null)"
        return f"{what} is missing (null)"

    def _check_scores(self, batch: Batch, scores: FloatArray, found: _Found) -> None:
        if scores.size == 0:
            return
        names = self.logit_names
        with np.errstate(invalid="ignore", over="ignore"):
            if np.isfinite(scores.sum()) and batch.null_scores is None:
                return
            nulls = batch.null_scores
            if nulls is not None:
                for row in np.nonzero(nulls)[0].tolist():
                    cols = np.nonzero(np.isnan(scores[row]))[0]
                    name = names[int(cols[0])] if len(cols) else "scores"
                    found.add(row, name, self._missing(name))
            rows, cols = np.nonzero(np.isnan(scores) | (scores == np.inf))
            for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
                value = "nan" if np.isnan(scores[row, col]) else "inf"
                found.add(row, names[col], f"logit is {'NaN' if value == 'nan' else '+inf'}", value)
            sigmoid_logits = self._rules.multilabel and self._rules.kind == "logits"
            if sigmoid_logits:
                rows, cols = np.nonzero(scores == -np.inf)
                for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
                    reason = "logit is -inf (the sigmoid loss needs finite logits)"
                    found.add(row, names[col], reason, "-inf")
            if not self._rules.multilabel or sigmoid_logits:  # p = 0 for every label is valid
                for row in np.nonzero(scores.max(axis=1) == -np.inf)[0].tolist():
                    found.add(row, None, "every logit is -inf (no class has a probability)")

    def _check_kind(self, batch: Batch, scores: FloatArray, found: _Found) -> None:
        """Probabilities or log-probabilities: each cell and each row's total (the kind's
        rules, shared with the text reader), with the hint when the kind was detected."""
        rules = self._rules
        bad, _ = rules.bad_score_rows(scores)
        if batch.null_scores is not None:
            bad = bad & ~batch.null_scores  # a null is reported as missing
        for row in np.nonzero(bad)[0].tolist():
            problem = rules.check.row_error(scores[row])
            if problem is None:
                continue
            at, reason = problem
            name = None if at is None else self.logit_names[at]
            value = None if at is None else float(scores[row, at])
            found.add(row, name, reason + rules.hint(), value)

    def _labels(self, batch: Batch, found: _Found) -> IntArray:
        raw = batch.labels
        assert raw is not None
        roles, K = self._roles, len(self._roles.score_names)
        name = roles.label_name or "label"
        n = len(raw)
        labels = np.zeros(n, dtype=np.int64)
        nulls = batch.null_labels
        if nulls is not None:
            for row in np.nonzero(nulls)[0].tolist():
                found.add(row, name, self._missing(name))
        if raw.dtype.kind in "OUS":  # class names
            classes = roles.class_index
            for row, value in enumerate(raw.tolist()):
                if value is None:
                    continue
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                if classes is None:
                    found.add(row, name, "label is not an integer (names need --classes)", value)
                    break
                index = classes.get(str(value).strip(" \t"))
                if index is None:
                    found.add(row, name, "unknown class name", value)
                else:
                    labels[row] = index
            return labels
        if raw.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                integral = np.isfinite(raw) & (raw == np.floor(raw)) & (np.abs(raw) < 2.0**62)
            for row in np.nonzero(~integral)[0].tolist():
                if nulls is None or not nulls[row]:
                    found.add(row, name, "label is not an integer", float(raw[row]))
            labels = np.where(integral, raw, 0).astype(np.int64)
        elif raw.dtype.kind in "iub":
            labels = raw.astype(np.int64)
        else:
            raise self.error(None, name, f"label column has the wrong type ({raw.dtype})")
        bad = (labels < 0) | (labels >= K)
        ignore = self.options.ignore_index
        if ignore is not None:
            bad &= labels != ignore
        for row in np.nonzero(bad)[0].tolist():
            found.add(row, name, f"label is out of range [0, {K})", int(labels[row]))
        return labels

    def _check_targets(self, targets: FloatArray, found: _Found) -> None:
        from xentcli.batch._rows import row_sums

        names = self.target_names or []
        if self._rules.multilabel:
            self._check_sigmoid_targets(targets, names, found)
            return
        with np.errstate(invalid="ignore"):
            cells_ok = np.isfinite(targets) & (targets >= 0)
            sums = row_sums(targets)
            if self._rules.renormalize:
                sums_ok = sums > 0
            else:
                sums_ok = np.abs(sums - 1.0) <= self._rules.target_tolerance
        rows, cols = np.nonzero(~cells_ok)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            found.add(
                row,
                names[col] if col < len(names) else "target",
                "target must be a finite number >= 0",
                float(targets[row, col]),
            )
        tolerance = self._rules.target_tolerance
        for row in np.nonzero(~sums_ok)[0].tolist():
            found.add(
                row,
                None,
                f"targets sum to {float(sums[row])!r}, not 1 (tolerance {tolerance:g}; "
                "--sum-tolerance sets it, --renormalize divides by the sum)",
            )

    @staticmethod
    def _check_sigmoid_targets(targets: FloatArray, names: list[str], found: _Found) -> None:
        """``multilabel``: each target in [0, 1] (0/1 or soft), rows summing to anything."""
        with np.errstate(invalid="ignore"):
            rows, cols = np.nonzero(~((targets >= 0) & (targets <= 1)))
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            found.add(
                row,
                names[col] if col < len(names) else "target",
                "target must be a number in [0, 1] (a sigmoid target)",
                float(targets[row, col]),
            )


def _count(mask: npt.NDArray[np.bool_], start: int, stop: int) -> int:
    return int(np.count_nonzero(mask[start:stop]))


class _Found:
    """The first error of each bad row of one batch (rows are 0-based in the batch)."""

    def __init__(self, table: ArrayTable, places: IntArray, rows: dict[int, DataError]) -> None:
        self._table = table
        self._places = places
        self.rows = rows

    def add(self, row: int, column: str | None, reason: str, value: object = None) -> None:
        if row not in self.rows:
            self.rows[row] = self._table.error(int(self._places[row]), column, reason, value)


def located_error(
    path: str, unit: str, place: int | None, column: str | None, reason: str, value: object = None
) -> DataError:
    """A DataError at a row (``FILE:row N:COLUMN``) or a line (``FILE:N:COLUMN``)."""
    return DataError(path, place, column if place is not None else None, reason, value, unit=unit)


def scores_matrix(columns: Sequence[npt.NDArray[Any]], n: int) -> FloatArray:
    """Stack 1-D score columns into an ``(n, K)`` float64 array."""
    out = np.empty((n, len(columns)), dtype=np.float64)
    for k, column in enumerate(columns):
        out[:, k] = column
    return out


@contextlib.contextmanager
def closing_on_error(close: Callable[[], None]) -> Iterator[None]:
    """Call *close* if the body raises (an opener that fails half-way leaks nothing)."""
    try:
        yield
    except BaseException:
        close()
        raise
