"""Streaming aggregation of chunks of model outputs into a :class:`Summary`.

Memory is constant in the number of rows: every statistic is a fixed-size accumulator.

- The loss sum is exact (:class:`xentcli.core._kernel.ExactSum`) and the mean is the correctly
  rounded quotient of two exact sums, so the batch mean is bit-for-bit
  ``cross_entropy(all rows, reduction="mean")`` whatever the chunking.
- Per-class sums are exact too (a :class:`~xentcli.core._exactsum.GroupedExactSum` over the
  classes, filled once per chunk; the file and pooled totals are merges of these, so no
  value is added twice). Without class weights every counted row weighs 1, so the
  weight sums are row counts, added as integers.
- Quantiles come from :class:`QuantileSketch`: exact (``numpy.quantile``'s default
  linear interpolation) while the values fit in the sketch's own memory, then from
  log-spaced buckets, each quantile reported within 1 % relative error; min and max are
  always exact.
- The worst rows are the top ``N`` by loss, ties broken by input order (earlier first).

>>> import numpy as np
>>> from xentcli.batch.reader import Chunk
>>> chunk = Chunk("a.csv", np.array([[1.2, 2.3, 0.8], [0.0, 1.0, 0.0]]),
...               np.array([1, 0]), None, np.array([2, 3]))
>>> acc = BatchAccumulator(num_classes=3)
>>> _ = acc.add(chunk)
>>> summary = acc.summary()
>>> summary.loss, summary.accuracy
(0.9967819695375741, 0.5)
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.batch._kinds import RowRules
from xentcli.batch._records import STATE_COMPONENTS, BatchOptions, FileRecord, WorstRow
from xentcli.batch._types import SKIPPED_KEPT
from xentcli.batch.exact_mean import Interval, SlowSums, UndecidedRoundingError, certain, slow_part
from xentcli.batch.groups import GroupSet, GroupSummary
from xentcli.batch.metrics import (
    MetricRows,
    MetricSet,
    MetricsSummary,
    metric_rows,
    take_rows,
)
from xentcli.batch.reader import Chunk
from xentcli.batch.weighting import SampleSums, effective_rows, ratio, weigh
from xentcli.core import GroupedExactSum
from xentcli.errors import CountError, DataError, StateError, UndefinedMeanError, XentError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ------------------------------------------------------------------------ the sketch
class QuantileSketch:
    """A fixed-size, mergeable sketch of non-negative values for quantiles and histograms.

    Positive finite values fall in log-spaced buckets ``(g**(i-1), g**i]`` with
    ``g = (1 + a) / (1 - a)``; a bucket is reported by ``2 g**i / (g + 1)``, which is within
    relative error ``a`` of every value in it, and rounded to 5 significant digits. With
    ``a = 0.0099`` the stated bound is 1 % (the slack covers that rounding and the
    rounding of the logarithm). Zeros and ``+inf`` are counted apart,
    so they are reported exactly. The whole float64 range needs about 73 000 buckets
    (0.6 MB), whatever the number of values.

    Up to :attr:`EXACT_CAPACITY` values (as many as the buckets take memory) the values
    themselves are kept too, and quantile ``q`` is exactly ``numpy.quantile(values, q)``
    (linear interpolation between order statistics): a small file's p90 is not a bucket's
    estimate. Beyond that, quantile ``q`` is the order statistic of 0-based rank
    ``floor(q * (n - 1))`` (numpy's ``method="lower"``), within 1 %; it is clamped to the
    exact smallest and largest positive finite values, so a sketch of equal values
    reports them exactly.

    >>> sketch = QuantileSketch()
    >>> sketch.add(np.array([0.0, 1.0, 2.0, 3.0, 100.0]))
    >>> sketch.exact, sketch.quantile(0.5), sketch.quantile(0.9), sketch.quantile(1.0)
    (True, 2.0, 61.2..., 100.0)
    """

    RELATIVE_ERROR = 0.01  #: the stated bound
    _ALPHA = 0.0099
    _GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
    _LOG_GAMMA = math.log(_GAMMA)
    _MIN_INDEX = math.floor(math.log(5e-324) / _LOG_GAMMA) - 2
    _MAX_INDEX = math.ceil(math.log(1.7976931348623157e308) / _LOG_GAMMA) + 2
    SIZE = _MAX_INDEX - _MIN_INDEX + 1
    #: values kept exactly: as many float64 as the int64 buckets, so no extra memory order
    EXACT_CAPACITY = SIZE

    def __init__(self, exact: bool = True) -> None:
        #: the values, while they fit (never with *exact* False: the buckets only)
        self._values: list[FloatArray] | None = [] if exact else None
        self.counts = np.zeros(self.SIZE, dtype=np.int64)
        self.zeros = 0
        self.infinities = 0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf
        self.min_positive = math.inf  #: smallest finite value > 0 (histogram range)
        self.max_finite = -math.inf  #: largest finite value (histogram range)

    def add(self, values: FloatArray) -> None:
        """Add non-negative values (``+inf`` allowed; NaN and negatives are rejected)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0:
            return
        if np.isnan(values).any() or (values < 0).any():
            raise ValueError("QuantileSketch takes values >= 0 (or +inf)")
        self.count += values.size
        self._keep([values])
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        zero = values == 0
        inf = values == np.inf
        self.zeros += int(zero.sum())
        self.infinities += int(inf.sum())
        positive = values[~(zero | inf)]
        if positive.size:
            self.min_positive = min(self.min_positive, float(positive.min()))
            self.max_finite = max(self.max_finite, float(positive.max()))
            index = np.ceil(np.log(positive) / self._LOG_GAMMA).astype(np.int64)
            self.counts += np.bincount(index - self._MIN_INDEX, minlength=self.SIZE)

    @property
    def exact(self) -> bool:
        """Whether the values are all kept, so that quantiles are exact."""
        return self._values is not None

    def _keep(self, values: list[FloatArray] | None) -> None:
        # Called after self.count has grown: past the capacity, only the buckets remain.
        if self._values is None or values is None or self.count > self.EXACT_CAPACITY:
            self._values = None
        else:
            self._values += [v.copy() for v in values]

    def merge(self, other: QuantileSketch) -> None:
        """Add every value of *other* to this sketch."""
        self.count += other.count
        self._keep(other._values)
        self.counts += other.counts
        self.zeros += other.zeros
        self.infinities += other.infinities
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.min_positive = min(self.min_positive, other.min_positive)
        self.max_finite = max(self.max_finite, other.max_finite)

    def to_state(self) -> dict[str, Any]:
        """The sketch as JSON-able data: the non-empty buckets and the exact extremes."""
        present = np.flatnonzero(self.counts)
        return {
            "buckets": [
                [i, c]
                for i, c in zip(present.tolist(), self.counts[present].tolist(), strict=False)
            ],
            "zeros": self.zeros,
            "infinities": self.infinities,
            "count": self.count,
            **{name: core.hex_float(getattr(self, name)) for name in self._EXTREMES},
            # The values themselves while they fit (exact quantiles survive a merge).
            "values": (
                None
                if self._values is None
                else [core.hex_float(v) for v in np.concatenate([[], *self._values]).tolist()]
            ),
        }

    _EXTREMES = ("min", "max", "min_positive", "max_finite")

    @classmethod
    def from_state(
        cls, data: object, num_classes: int = 0, where: str = "sketch"
    ) -> QuantileSketch:
        """A sketch from *data* (from :meth:`to_state`), every field checked first."""
        keys: tuple[str, ...] = ("buckets", "zeros", "infinities", "count", *cls._EXTREMES)
        if isinstance(data, dict) and "values" in data:  # optional: exact values
            keys += ("values",)
        fields = core.need_dict(data, where, keys)
        buckets = core.need_list(fields["buckets"], f"{where}.buckets", max_size=cls.SIZE)
        sketch = cls()
        previous = -1
        for n, item in enumerate(buckets):
            pair = core.need_list(item, f"{where}.buckets[{n}]", 2)
            index = core.need_int(pair[0], f"{where}.buckets[{n}][0]", previous + 1, cls.SIZE - 1)
            sketch.counts[index] = core.need_int(pair[1], f"{where}.buckets[{n}][1]", 1)
            previous = index
        sketch.zeros = core.need_int(fields["zeros"], f"{where}.zeros")
        sketch.infinities = core.need_int(fields["infinities"], f"{where}.infinities")
        sketch.count = core.need_int(fields["count"], f"{where}.count")
        if sketch.count != sketch.zeros + sketch.infinities + int(sketch.counts.sum()):
            raise StateError(f"{where}.count: not the number of values in the buckets")
        for name in cls._EXTREMES:
            value = core.need_hex_float(fields[name], f"{where}.{name}")
            if math.isnan(value):
                raise StateError(f"{where}.{name}: must not be nan")
            setattr(sketch, name, value)
        sketch._values = cls._values_from_state(fields.get("values"), sketch, where)
        return sketch

    @classmethod
    def _values_from_state(
        cls, data: object, sketch: QuantileSketch, where: str
    ) -> list[FloatArray] | None:
        """The exact values of a state (None when it has none), checked against the
        buckets' counts and the extremes."""
        if data is None:
            return None
        items = core.need_list(data, f"{where}.values", sketch.count, cls.EXACT_CAPACITY)
        values = np.array(
            [core.need_hex_float(v, f"{where}.values[{n}]", low=0.0) for n, v in enumerate(items)],
            dtype=np.float64,
        )
        if int((values == 0).sum()) != sketch.zeros or int(np.isinf(values).sum()) != (
            sketch.infinities
        ):
            raise StateError(f"{where}.values: not the values counted in the buckets")
        if values.size and (float(values.min()), float(values.max())) != (sketch.min, sketch.max):
            raise StateError(f"{where}.values: not the values of min and max")
        return [values]

    _LOG_OFFSET = math.log(2.0 / (_GAMMA + 1.0))

    def _log_value(self, bucket: npt.NDArray[np.int64] | int) -> FloatArray | float:
        """The log of the value reporting *bucket* (no overflow at the top of the range)."""
        return (np.asarray(bucket) + self._MIN_INDEX) * self._LOG_GAMMA + self._LOG_OFFSET

    def _value(self, bucket: int) -> float:
        try:
            return _approximate(math.exp(float(self._log_value(bucket))))
        except OverflowError:
            return math.inf

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0 <= q <= 1), exact or within 1 % (:attr:`exact`), or None
        when the sketch is empty."""
        if self.count == 0:
            return None
        if self._values is not None:
            return _exact_quantile(np.concatenate(self._values), q)
        rank = math.floor(q * (self.count - 1))
        if rank == 0:
            return self.min
        if rank == self.count - 1:
            return self.max
        if rank < self.zeros:
            return 0.0
        if rank >= self.count - self.infinities:
            return math.inf
        cumulative = np.cumsum(self.counts)
        bucket = int(np.searchsorted(cumulative, rank - self.zeros, side="right"))
        # The exact extremes of the positive finite values tighten the bucket's estimate.
        return min(max(self._value(bucket), self.min_positive), self.max_finite)

    def histogram(self, bins: int = 10) -> list[HistogramBin]:
        """Counts in up to *bins* log-spaced bins from the smallest positive to the largest
        finite value (edges within 1 %), plus a bin for zeros and one for ``+inf``."""
        out: list[HistogramBin] = []
        if self.zeros:
            out.append(HistogramBin(0.0, 0.0, self.zeros))
        positive = self.count - self.zeros - self.infinities
        if positive:
            lo, hi = self.min_positive, self.max_finite
            nonzero = np.flatnonzero(self.counts)
            if hi <= lo * self._GAMMA**2 or nonzero.size == 1:
                out.append(HistogramBin(lo, hi, positive))
            else:
                log_lo, log_hi = math.log(lo), math.log(hi)
                width = (log_hi - log_lo) / bins
                centres = np.asarray(self._log_value(nonzero))
                which = np.clip(((centres - log_lo) / width).astype(np.int64), 0, bins - 1)
                counts = np.bincount(which, weights=self.counts[nonzero], minlength=bins)
                for i in range(bins):
                    left = lo if i == 0 else _approximate(math.exp(log_lo + i * width))
                    right = (
                        hi if i == bins - 1 else _approximate(math.exp(log_lo + (i + 1) * width))
                    )
                    out.append(HistogramBin(left, right, int(counts[i])))
        if self.infinities:
            out.append(HistogramBin(math.inf, math.inf, self.infinities))
        return out


def _exact_quantile(values: FloatArray, q: float) -> float:
    """``numpy.quantile(values, q)``, with an infinite loss kept infinite.

    numpy's interpolation turns an infinite order statistic into nan (``inf * 0``,
    ``inf - inf``); the limit it stands for is the lower statistic where the position
    falls on it exactly, and ``inf`` (the higher one) between a value and ``inf``.

    >>> _exact_quantile(np.array([1.0, 1.0, np.inf]), 0.5)
    1.0
    >>> _exact_quantile(np.array([1.0, 1.0, np.inf]), 0.9)
    inf
    """
    with np.errstate(invalid="ignore"):
        value = float(np.quantile(values, q))
    if math.isnan(value):
        position = q * (values.size - 1)
        on_a_value = position == math.floor(position)
        value = float(np.quantile(values, q, method="lower" if on_a_value else "higher"))
    return value


def _approximate(value: float) -> float:
    """Round an estimate to 5 significant digits (adds < 0.005 % to its error).

    Estimates are not exact, so their last digits would be noise that also varies with
    the platform's ``exp``; rounded, the report is stable and honest.

    >>> _approximate(0.054976812209136805)
    0.054977
    """
    return float(f"{value:.5g}")


@dataclass(frozen=True)
class HistogramBin:
    """Rows whose loss is in ``[low, high]`` (``low == high`` for the zero and inf bins)."""

    low: float
    high: float
    rows: int


# ----------------------------------------------------------------------- the summary
@dataclass(frozen=True)
class FileSummary:
    """One input file: its rows and its loss (by the run's reduction, in the run's unit)."""

    path: str
    rows: int  #: data rows read: counted + ignored + skipped
    rows_counted: int
    rows_ignored: int
    rows_skipped: int
    loss: float | None  #: None when the mean is undefined (no row counts)
    skipped_lines: tuple[int, ...] = ()  #: the first few skipped rows' line numbers
    #: exp of the file's mean loss in nats (None when no row counts)
    perplexity: float | None = None
    accuracy: float | None = None  #: None when no row counts (or unknown: old states)
    correct: int | None = None  #: counted rows whose prediction is the label
    sample_weight: float | None = None  #: with --weight-column: the counted rows' weight


@dataclass(frozen=True)
class ClassSummary:
    """One class: counted rows whose label (or argmax of the target) is the class."""

    index: int
    name: str
    rows: int
    loss: float | None  #: mean loss (sum / weight sum, exact); None if it has no weight
    loss_sum: float  #: sum of the class's row losses, in the run's unit
    accuracy: float | None  #: top-1 accuracy on the class's rows
    share: float | None  #: fraction of the total loss sum
    sample_weight: float | None = None  #: with --weight-column: the class's rows' weight


@dataclass(frozen=True)
class Summary:
    """Everything ``xent batch`` reports (losses in :attr:`units`)."""

    files: tuple[FileSummary, ...]
    rows: int
    rows_counted: int
    rows_ignored: int
    rows_skipped: int
    reduction: str
    loss: float | None  #: the mean (or sum with reduction "sum"); None if undefined
    loss_mean: float | None  #: the mean whatever the reduction; None if undefined
    loss_sum: float
    weight_sum: float  #: the mean's denominator (sum of counted rows' weights, or N)
    perplexity: float | None  #: exp of the mean in nats
    accuracy: float | None
    correct: int
    units: str
    soft_targets: bool
    quantiles: dict[str, float | None]
    quantile_relative_error: float  #: 0.0 when the quantiles are exact
    histogram: tuple[HistogramBin, ...]
    per_class: tuple[ClassSummary, ...]
    worst: tuple[WorstRow, ...]
    skipped: tuple[DataError, ...] = ()  #: the first few skipped rows' errors
    entropy: float | None = None  #: mean H(p) of soft targets (None with labels)
    kl_divergence: float | None = None  #: mean KL(p || q) of soft targets (None with labels)
    scores: str = "logits"  #: what the score columns held
    scores_detected: bool = False
    binary: bool = False
    renormalize: bool = False
    clip: float | None = None
    rows_renormalized: int = 0  #: rows of scores whose total was off, renormalized
    targets_renormalized: int = 0  #: rows of targets whose sum was off, renormalized
    rows_infinite: int = 0  #: counted rows whose loss is +inf
    label_smoothing: float = 0.0  #: the targets' smoothing (why a loss can be inf)
    infinite_rows: tuple[tuple[str, int], ...] = ()  #: the first few of them (file, line)
    columns: dict[str, object] | None = None  #: what the first file's columns were taken as
    metrics: MetricsSummary | None = None  #: Brier, top-k, calibration, confusion
    #: with --weight-column: {"column", "sum", "effective_rows", "divides_by"} (else None)
    sample_weights: dict[str, object] | None = None
    #: with --group-by: every figure per value of the column, by name (else None)
    groups: tuple[GroupSummary, ...] | None = None
    group_by: str | None = None  #: the --group-by column

    def to_json(self) -> dict[str, object]:
        """The ``xent batch --format json`` object (the documented shape, plus extra keys)."""
        out = self._to_json()
        if self.metrics is not None:
            out.update(self.metrics.to_json())
            scores = self.metrics.confusion.classes
            for entry, score in zip(out["per_class"], scores, strict=True):
                entry.update(
                    precision=score.precision,
                    recall=score.recall,
                    f1=score.f1,
                    predicted=score.predicted,
                )
        return out

    def _to_json(self) -> dict[str, Any]:
        return {
            "files": [
                {
                    "path": f.path,
                    "rows": f.rows,
                    "loss": f.loss,
                    "rows_counted": f.rows_counted,
                    "rows_ignored": f.rows_ignored,
                    "rows_skipped": f.rows_skipped,
                    "skipped_lines": list(f.skipped_lines),
                    "perplexity": f.perplexity,
                    "accuracy": f.accuracy,
                    "correct": f.correct,
                    **({} if f.sample_weight is None else {"sample_weight": f.sample_weight}),
                }
                for f in self.files
            ],
            "rows": self.rows,
            "rows_counted": self.rows_counted,
            "rows_ignored": self.rows_ignored,
            "rows_skipped": self.rows_skipped,
            "reduction": self.reduction,
            "loss": self.loss,
            "loss_sum": self.loss_sum,
            "weight_sum": self.weight_sum,
            "loss_mean": self.loss_mean,
            "perplexity": self.perplexity,
            "accuracy": self.accuracy,
            "correct": self.correct,
            "units": self.units,
            "soft_targets": self.soft_targets,
            "entropy": self.entropy,
            "kl_divergence": self.kl_divergence,
            "loss_quantiles": dict(self.quantiles),
            "loss_quantiles_relative_error": self.quantile_relative_error,
            "loss_quantiles_exact": self.quantile_relative_error == 0.0,
            "histogram": [{"low": b.low, "high": b.high, "rows": b.rows} for b in self.histogram],
            "per_class": [
                {
                    "class": c.name,
                    "index": c.index,
                    "rows": c.rows,
                    "loss": c.loss,
                    "loss_sum": c.loss_sum,
                    "accuracy": c.accuracy,
                    "share": c.share,
                    **({} if c.sample_weight is None else {"sample_weight": c.sample_weight}),
                }
                for c in self.per_class
            ],
            "worst": [
                {
                    "file": w.file,
                    "line": w.line,
                    "label": w.label,
                    "predicted": w.predicted,
                    "probability": w.probability,
                    "loss": w.loss,
                    "unit": w.unit,
                }
                for w in self.worst
            ],
            "skipped": [
                {"file": e.path, "line": e.line, "column": e.column, "error": str(e)}
                for e in self.skipped
            ],
            "scores": self.scores,
            "scores_detected": self.scores_detected,
            "binary": self.binary,
            "renormalize": self.renormalize,
            "rows_renormalized": self.rows_renormalized,
            "targets_renormalized": self.targets_renormalized,
            "clip": self.clip,
            "rows_infinite": self.rows_infinite,
            "infinite_rows": [{"file": f, "line": line} for f, line in self.infinite_rows],
            "sample_weights": self.sample_weights,
            # What the first file's columns were taken as (also said on stderr).
            "inferred": self.columns,
            "group_by": self.group_by,
            "groups": None if self.groups is None else [g.to_json() for g in self.groups],
        }


@dataclass(frozen=True)
class ChunkResult:
    """Per-row results of one chunk, for ``--per-row`` (losses in the run's unit)."""

    path: str
    lines: IntArray
    labels: IntArray  #: the label (argmax of the target for soft targets)
    predicted: IntArray
    probability: FloatArray  #: probability of the label; nan for ignored rows
    loss: FloatArray  #: row loss; nan for ignored rows
    counted: npt.NDArray[np.bool_]
    metrics: MetricRows | None = None  #: the counted rows as the metric states read them


# ---------------------------------------------------------------------- accumulation
@dataclass
class _FileState:
    path: str
    class_sums: GroupedExactSum
    class_weights: GroupedExactSum
    rows: int = 0
    counted: int = 0
    ignored: int = 0
    skipped: int = 0
    errors: list[DataError] = field(default_factory=list)
    class_rows: IntArray | None = None
    correct: int = 0
    #: with sample weights: the weight of the counted rows and of the right ones
    mass: core.ExactSum = field(default_factory=core.ExactSum)
    hits: core.ExactSum = field(default_factory=core.ExactSum)
    #: exact only: the sum of the counted rows' loss bounds (docs/accuracy.md)
    loss_error: core.ExactSum | None = None


@dataclass(frozen=True)
class _Figures:
    """The headline figures of a set of rows, in the run's unit (see :class:`Summary`)."""

    loss: float | None
    loss_mean: float | None
    loss_sum: float
    perplexity: float | None
    accuracy: float | None


class DivergenceSums:
    """The exact sums of the rows' entropy H(p) and KL(p || q) (soft targets), in nats."""

    def __init__(self) -> None:
        self.entropy = core.ExactSum()
        self.kl = core.ExactSum()

    def merge(self, other: DivergenceSums) -> None:
        self.entropy.merge(other.entropy)
        self.kl.merge(other.kl)

    def to_state(self) -> dict[str, object]:
        return {"entropy": self.entropy.to_state(), "kl_divergence": self.kl.to_state()}

    @classmethod
    def from_state(cls, data: object, num_classes: int, where: str) -> DivergenceSums:
        """The sums *data* (from :meth:`to_state`) describes; StateError names a bad field."""
        fields = core.need_dict(data, where, ("entropy", "kl_divergence"))
        sums = cls()
        sums.entropy = core.ExactSum.from_state(fields["entropy"], f"{where}.entropy")
        sums.kl = core.ExactSum.from_state(fields["kl_divergence"], f"{where}.kl_divergence")
        return sums


class BatchAccumulator:
    """Fold chunks of one or more files into a :class:`Summary`, in constant memory.

    Call :meth:`add` for each chunk (files one after the other, in order), optionally
    :meth:`add_skipped` for rows the reader skipped, then :meth:`summary`.
    """

    INFINITE_KEPT = 5  #: how many rows of infinite loss are named in the report

    def __init__(self, num_classes: int, options: BatchOptions | None = None) -> None:
        self.options = options if options is not None else BatchOptions()
        self.k = num_classes
        opts = self.options
        if opts.reduction not in ("mean", "sum"):
            raise XentError(f"reduction must be 'mean' or 'sum', got {opts.reduction!r}")
        if opts.base not in core.UNITS:
            raise XentError(f"base must be 'e', '2' or '10', got {opts.base!r}")
        if opts.worst < 0:
            raise XentError("worst must be >= 0")
        if opts.exact and (opts.sample_weight_column is not None or opts.group_by is not None):
            raise XentError("exact is not available with sample weights or groups yet")
        if opts.exact and opts.scores != "logits" and opts.binary:
            # One score column: 1 - p (or log(1 - e**l)) is not taken exactly yet.
            raise XentError(
                f"exact: one column of {core.KIND_NAMES[opts.scores]} is not correctly"
                " rounded yet (give two columns, or logits)"
            )
        self.weights: FloatArray | None = None
        if opts.weights is not None:
            self.weights = np.asarray(opts.weights, dtype=np.float64)
            if self.weights.shape != (num_classes,):
                raise CountError("weights", self.weights.size, "value", num_classes)
        if opts.class_names is not None and len(opts.class_names) != num_classes:
            raise CountError("class_names", len(opts.class_names), "name", num_classes)
        self.class_names = (
            list(opts.class_names)
            if opts.class_names is not None
            else [str(c) for c in range(num_classes)]
        )
        self.soft_targets: bool | None = None
        self.class_sums = GroupedExactSum(num_classes)
        self.class_weights = GroupedExactSum(num_classes)
        self.class_rows = np.zeros(num_classes, dtype=np.int64)
        self.class_correct = np.zeros(num_classes, dtype=np.int64)
        #: exact only: per class, the sum of the counted rows' loss bounds; and the second
        #: pass's intervals once a figure needed it (:mod:`xentcli.batch.exact_mean`)
        self.class_errors = GroupedExactSum(num_classes) if opts.exact else None
        self.slow: SlowSums | None = None
        self.sketch = QuantileSketch()
        # Soft targets: the exact sums of the rows' H(p) and KL(p || q), in nats.
        self.divergence = DivergenceSums()
        self.metrics = MetricSet(num_classes, opts.metric_options)
        #: per class, the sample weight of the counted rows and of the right ones
        self.sample = SampleSums(num_classes, weighted=opts.sample_weight_column is not None)
        #: with --group-by: an accumulator per value of the column
        self.groups = GroupSet(num_classes, opts, opts.group_by, make=_group_accumulator)
        self.files: list[FileRecord] = []
        self.rows_renormalized = 0
        self.targets_renormalized = 0
        self.rows_infinite = 0
        self.infinite_rows: list[tuple[str, int]] = []
        #: what the first file's columns were taken as (set by the CLI, for the JSON)
        self.columns: dict[str, object] | None = None
        self._file: _FileState | None = None
        self._part: tuple[int, int] | None = None
        self._file_index = -1
        # heap of (loss, -file_index, -line, row) so the smallest is the first to drop
        self._worst: list[tuple[float, int, int, WorstRow]] = []

    # -------------------------------------------------------------------- files
    def _start_file(self, path: str, part: tuple[int, int] | None = None) -> _FileState:
        self._finish_file()
        self._part = part
        self._file_index += 1
        self._file = _FileState(
            path,
            GroupedExactSum(self.k),
            GroupedExactSum(self.k),
            class_rows=np.zeros(self.k, dtype=np.int64),
            loss_error=core.ExactSum() if self.options.exact else None,
        )
        return self._file

    def start_file(self, path: str, *, part: tuple[int, int] | None = None) -> None:
        """Begin a new input file (a file with no valid rows still gets its line).

        *part* ``(start, end)``: the chunks that follow are the byte range
        ``[start, end)`` of *path*, their line numbers counted from the range's first
        line; call :meth:`end_part` with the range's line breaks once it is read.
        """
        self._start_file(path, part)

    def end_part(self, newlines: int) -> None:
        """Finish a part begun with ``start_file(path, part=...)``: its line breaks."""
        self._finish_file()
        record = self.files[-1]
        if record.part is None:
            raise XentError("end_part: the current file is not a part")
        record.newlines = newlines

    def _finish_file(self) -> None:
        state = self._file
        if state is None:
            return
        self._file = None
        self.class_sums.merge(state.class_sums)
        self.class_weights.merge(state.class_weights)
        self.files.append(
            FileRecord(
                path=state.path,
                total=state.class_sums.total(),
                weight=state.class_weights.total(),
                rows=state.rows,
                counted=state.counted,
                ignored=state.ignored,
                skipped=state.skipped,
                errors=state.errors,
                part=self._part,
                correct=state.correct,
                mass=state.mass if self.sample.weighted else None,
                hits=state.hits if self.sample.weighted else None,
                loss_error=state.loss_error,
            )
        )
        self._part = None

    def add_skipped(self, path: str, count: int, errors: Sequence[DataError] = ()) -> None:
        """Count *count* rows of *path* that the reader skipped (``--on-error skip``)."""
        state = self._file if self._file is not None and self._file.path == path else None
        if state is None:
            state = self._start_file(path)
        state.skipped += count
        state.errors.extend(errors[: SKIPPED_KEPT - len(state.errors)])

    # ------------------------------------------------------------------- chunks
    def add(self, chunk: Chunk, *, per_row: bool = False) -> ChunkResult | None:
        """Fold one chunk in; with *per_row*, return its per-row results."""
        opts = self.options
        if self._file is None or self._file.path != chunk.path:
            self._start_file(chunk.path)
        state = self._file
        assert state is not None
        assert state.class_rows is not None
        n, k = chunk.logits.shape
        if k != self._columns:
            raise DataError(
                chunk.path,
                None,
                None,
                f"{k} logit columns, but the first file has {self._columns}",
            )
        soft = chunk.targets is not None
        if self.soft_targets is None:
            self.soft_targets = soft
        elif self.soft_targets != soft:
            raise DataError(
                chunk.path, None, None, "mixes soft targets and labels with the other files"
            )
        if n == 0:
            return None
        prepared = chunk.prepared
        if not isinstance(prepared, Prepared):
            kernel = prepared if isinstance(prepared, core.RowLosses) else self.losses(chunk)
            assert kernel is not None
            prepared = Prepared(kernel, self._metric_rows(chunk, kernel))
        rows, stats = prepared.rows, prepared.metrics
        if self.groups.active:
            self.groups.add(chunk, prepared)
        sample = self._sample_weights(chunk)
        self.metrics.update(stats, chunk.path)
        counted = rows.counted
        if soft:
            assert chunk.targets is not None
            labels = np.argmax(chunk.targets, axis=-1).astype(np.int64)
        else:
            assert chunk.labels is not None
            labels = chunk.labels.astype(np.int64, copy=False)
        n_counted = int(counted.sum())
        state.rows += n
        state.counted += n_counted
        state.ignored += n - n_counted
        all_counted = n_counted == n
        cls = labels if all_counted else labels[counted]
        loss = rows.loss if all_counted else rows.loss[counted]
        weight = rows.weight if all_counted else rows.weight[counted]
        correct = (rows.predicted == labels) if all_counted else (rows.predicted[counted] == cls)
        class_rows = np.bincount(cls, minlength=self.k)
        state.class_rows += class_rows
        self.class_rows += class_rows
        self.class_correct += np.bincount(cls, weights=correct, minlength=self.k).astype(np.int64)
        state.correct += int(np.count_nonzero(correct))
        loss_lo = rows.loss_lo
        if loss_lo is not None and not all_counted:
            loss_lo = loss_lo[counted]
        if sample is not None:  # each row's loss and its share of the denominator times s
            s = sample if all_counted else sample[counted]
            weighted_loss = weigh(loss, s)
            weight = weigh(weight, s)
            if loss_lo is not None:
                loss_lo = weigh(loss_lo, s)
            self.sample.add(s, cls, correct)
            state.mass.add(s)
            state.hits.add(s[correct])
        else:
            weighted_loss = loss
        state.class_sums.add(weighted_loss, cls)
        if loss_lo is not None:  # exact: the remainders join the exact sums
            state.class_sums.add(loss_lo, cls)
        if self.class_errors is not None:
            self._add_errors(state, rows, counted, all_counted, cls)
        self.rows_renormalized += chunk.renormalized
        self.targets_renormalized += chunk.targets_renormalized
        infinite = np.flatnonzero(loss == np.inf)
        if infinite.size:
            self.rows_infinite += int(infinite.size)
            lines = chunk.lines if all_counted else chunk.lines[counted]
            for i in infinite[: self.INFINITE_KEPT - len(self.infinite_rows)].tolist():
                self.infinite_rows.append((chunk.path, int(lines[i])))
        if sample is None and (weight == 1.0).all():  # no weights (or soft targets): a count
            state.class_weights.add_ones(class_rows)
        else:
            state.class_weights.add(weight, cls)
        self.sketch.add(loss)
        if soft:
            self._add_divergence(chunk, sample)
        if opts.worst and n_counted:
            self._add_worst(chunk, rows, labels, counted)
        if not per_row:
            return None
        if soft:
            probability = self._label_probability(chunk.logits, labels)
        else:
            probability = rows.label_probability
        if opts.exact and opts.base != "e":  # each row rounded once from its exact loss
            base_loss = np.asarray(
                core.cross_entropy(
                    chunk.logits, None if soft else labels, targets=chunk.targets,
                    weights=self.weights, ignore_index=opts.ignore_index,
                    label_smoothing=opts.label_smoothing, temperature=opts.temperature,
                    reduction="none", base=opts.base, check=False, exact=True,
                    scores=opts.scores, clip=opts.clip, renormalize=opts.renormalize,
                ),
                dtype=np.float64,
            )  # fmt: skip
        else:
            base_loss = np.asarray(core.to_base(rows.loss, opts.base), dtype=np.float64)
        if not all_counted:
            base_loss = np.where(counted, base_loss, np.nan)
            probability = np.where(counted, probability, np.nan)
        return ChunkResult(
            chunk.path, chunk.lines, labels, rows.predicted, probability, base_loss, counted, stats
        )

    def update(
        self,
        logits: npt.ArrayLike,
        labels: npt.ArrayLike | None = None,
        *,
        targets: npt.ArrayLike | None = None,
        source: str = "<arrays>",
        sample_weights: npt.ArrayLike | None = None,
        sum_tolerance: float | None = None,
    ) -> None:
        """Fold in arrays of logits (N, K) with labels (N,) or soft targets (N, K).

        *sample_weights* (N,), finite and >= 0, are the rows' weights when the options
        name a ``sample_weight_column``. *sum_tolerance* is how far a row of
        probabilities (or of soft targets) may sum from 1, as ``--sum-tolerance`` (None:
        :func:`~xentcli.core.default_sum_tolerance`).

        The arrays are checked as :func:`~xentcli.core.cross_entropy` checks them
        (a ValueError subclass names the row); the worst rows are named
        ``source:row N``, N counting the rows fed under *source* from 1. With the
        options' ``renormalize``, rows of scores and of soft targets whose total is off
        (beyond the tolerance) are divided by it and counted, as a reader does.
        """
        y = np.ascontiguousarray(logits, dtype=np.float64)
        if y.ndim != 2:
            raise XentError(f"logits must be 2-D (rows, classes), got shape {y.shape}")
        if y.shape[0] == 0:
            return
        opts = self.options
        # The readers' row rules (the tolerance, renormalize): the rows renormalized are
        # counted by the same code as from a file, so the counts agree with xent batch.
        rules = RowRules(
            self._columns, self.k, sum_tolerance, renormalize=opts.renormalize, kind=opts.scores
        )
        t = None if targets is None else np.asarray(targets, dtype=np.float64)
        renormalized = targets_renormalized = 0
        if rules.renormalize and y.shape[1] == self._columns:
            renormalized = rules.bad_score_rows(y)[1]
        if t is not None and rules.renormalize and t.shape == (y.shape[0], self.k):
            t, targets_renormalized = _renormalized_targets(t, rules)
        # The scores as the options say they are (probabilities, log-probabilities, one
        # column for the binary case), checked as cross_entropy checks them.
        scores, kind = self._scores(y) if y.shape[1] == self._columns else (y, opts.scores)
        rows = core.row_losses(
            scores,
            labels,
            targets=t,
            weights=self.weights,
            ignore_index=opts.ignore_index,
            label_smoothing=opts.label_smoothing,
            temperature=opts.temperature,
            exact=opts.exact,
            scores=kind,
            sum_tolerance=sum_tolerance,
            renormalize=opts.renormalize and not opts.binary,
            clip=opts.clip,
            target_tolerance=sum_tolerance,
            metric_inputs=True,
        )
        if self._file is None or self._file.path != source:
            self._start_file(source)
        assert self._file is not None
        first = self._file.rows + 1
        chunk = Chunk(
            source,
            y,
            None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1),
            t,
            np.arange(first, first + y.shape[0], dtype=np.int64),
            unit="row",
            renormalized=renormalized,
            targets_renormalized=targets_renormalized,
            weights=None
            if sample_weights is None
            else np.asarray(sample_weights, dtype=np.float64).reshape(-1),
        )
        if chunk.weights is not None and not (
            chunk.weights.shape == (y.shape[0],)
            and bool(np.all(chunk.weights >= 0))
            and bool(np.all(np.isfinite(chunk.weights)))
        ):
            raise XentError("sample_weights must be N finite numbers >= 0")
        self.add(dataclasses.replace(chunk, prepared=self.prepare_rows(chunk, rows)))

    def _add_errors(
        self,
        state: _FileState,
        rows: core.RowLosses,
        counted: npt.NDArray[np.bool_],
        all_counted: bool,
        cls: IntArray,
    ) -> None:
        """Exact: add the counted rows' loss bounds to their class's and file's sums."""
        assert self.class_errors is not None
        assert state.loss_error is not None
        if rows.loss_err is None:
            raise XentError("exact: the kernel gave no error bounds (scores are not logits)")
        err = rows.loss_err if all_counted else rows.loss_err[counted]
        loss = rows.loss if all_counted else rows.loss[counted]
        err = np.where(np.isfinite(loss), err, 0.0)  # an infinite loss is exact
        self.class_errors.add(err, cls)
        state.loss_error.add(err)

    def _add_divergence(self, chunk: Chunk, sample: FloatArray | None = None) -> None:
        """Add the rows' entropy and KL divergence (of the smoothed target, if smoothed),
        each times its sample weight when there are any."""
        assert chunk.targets is not None
        p = chunk.targets
        eps = self.options.label_smoothing
        if eps:
            p = (1.0 - eps) * p + eps / self.k
        entropy = core.entropy(p)
        scores, kind = self._scores(chunk.logits)
        if kind != "logits":  # log q are logits of q (up to a constant per row)
            scores = core.log_of_scores(scores, kind, self.options.clip)
        kl = core.kl_divergence(scores, p, temperature=self.options.temperature)
        if sample is not None:
            entropy, kl = weigh(entropy, sample), weigh(kl, sample)
        self.divergence.entropy.add(entropy)
        self.divergence.kl.add(kl)

    def _sample_weights(self, chunk: Chunk) -> FloatArray | None:
        """The chunk's sample weights (None without --weight-column)."""
        if not self.sample.weighted:
            return None
        if chunk.weights is None:
            raise DataError(chunk.path, None, None, "no sample weights (--weight-column)")
        return chunk.weights

    def losses(self, chunk: Chunk) -> core.RowLosses | None:
        """The kernel's per-row results for *chunk*, or None if it does not fit the batch.

        It only reads the options, so the reader can run it in its parsing threads
        (``table.prepare = accumulator.losses``); :meth:`add` then uses the result and
        reports a chunk that does not fit.
        """
        n, k = chunk.logits.shape
        if k != self._columns or n == 0:
            return None
        opts = self.options
        scores, kind = self._scores(chunk.logits)
        return core.row_losses(
            scores,
            chunk.labels,
            targets=chunk.targets,
            weights=self.weights,
            ignore_index=opts.ignore_index,
            label_smoothing=opts.label_smoothing,
            temperature=opts.temperature,
            check=False,
            exact=opts.exact,
            scores=kind,
            renormalize=opts.renormalize and not opts.binary,
            clip=opts.clip,
            metric_inputs=True,
        )

    @property
    def _columns(self) -> int:
        """Score columns per row: K, or 1 in the binary case."""
        return 1 if self.options.binary else self.k

    def _scores(self, scores: FloatArray) -> tuple[FloatArray, core.ScoreKind]:
        """The scores as K columns, and their kind (the binary case gets two columns)."""
        if self.options.binary:
            return core.binary_log_scores(scores[:, 0], self.options.scores)
        return scores, self.options.scores

    def logit_chunk(self, chunk: Chunk) -> Chunk:
        """*chunk* with logits in place of its scores: the logits that probabilities or
        log-probabilities imply (log q), two columns for the binary case."""
        scores, kind = self._scores(chunk.logits)
        if kind == "logits" and scores is chunk.logits:
            return chunk
        if kind != "logits":
            scores = core.log_of_scores(scores, kind, self.options.clip, self.options.renormalize)
        return dataclasses.replace(chunk, logits=scores, prepared=None)

    def _label_probability(self, scores: FloatArray, labels: IntArray) -> FloatArray:
        """q of each row's label (with soft targets: of the target's argmax)."""
        opts = self.options
        scores, kind = self._scores(scores)
        if opts.exact and kind != "logits":  # correctly rounded, as the labels' are
            return core.row_losses(
                scores, labels, temperature=opts.temperature, check=False, exact=True,
                scores=kind, clip=opts.clip, renormalize=opts.renormalize,
            ).label_probability  # fmt: skip
        if kind == "logits" or opts.temperature != 1.0:
            if kind != "logits":
                scores = core.log_of_scores(scores, kind)
            return _label_probability(scores, labels, opts.temperature, opts.exact)
        if kind == "probs" and not opts.renormalize and opts.clip is None:
            return np.take_along_axis(scores, labels[:, None], axis=-1)[:, 0]
        log_q = core.log_of_scores(scores, kind, opts.clip, opts.renormalize)
        return np.exp(np.take_along_axis(log_q, labels[:, None], axis=-1)[:, 0])

    def prepare(self, chunk: Chunk) -> Prepared | None:
        """The kernel's rows and the metrics' rows for *chunk* (None if it does not fit).

        Like :meth:`losses`, it only reads the options: the reader runs it in its
        parsing threads (``table.prepare = accumulator.prepare``).
        """
        rows = self.losses(chunk)
        if rows is None:
            return None
        return Prepared(rows, self._metric_rows(chunk, rows))

    def prepare_rows(self, chunk: Chunk, rows: core.RowLosses) -> Prepared:
        """:meth:`prepare` for a chunk whose kernel rows are known."""
        return Prepared(rows, self._metric_rows(chunk, rows))

    def _metric_rows(self, chunk: Chunk, rows: core.RowLosses) -> MetricRows:
        chunk = self.logit_chunk(chunk)  # probabilities and log-probabilities: log q
        if chunk.targets is not None:
            labels = np.argmax(chunk.targets, axis=-1).astype(np.int64)
        else:
            assert chunk.labels is not None
            labels = chunk.labels.astype(np.int64, copy=False)
        loss, loss_weight, sample = rows.loss, rows.weight, None
        if self.options.sample_weight_column is not None:
            sample = self._sample_weights(chunk)
            assert sample is not None
            loss, loss_weight = weigh(loss, sample), weigh(loss_weight, sample)
        stats = metric_rows(
            chunk.logits,
            labels,
            rows.predicted,
            chunk.lines,
            targets=chunk.targets,
            temperature=self.options.temperature,
            counted=rows.counted,
            weight=sample,
            loss=loss,
            loss_weight=loss_weight,
            kernel=rows,
        )
        return self.metrics.prepare(stats, chunk.path)

    def _add_worst(
        self, chunk: Chunk, rows: core.RowLosses, labels: IntArray, counted: npt.NDArray[np.bool_]
    ) -> None:
        top = self.options.worst
        loss = np.where(counted, rows.loss, -np.inf)
        # Only rows that can beat the current N-th worst matter.
        floor = self._worst[0][0] if len(self._worst) >= top else -np.inf
        n = loss.shape[0]
        if n > top:
            part = np.argpartition(-loss, top - 1)[:top]
            threshold = float(loss[part].min())
            greater = np.flatnonzero(loss > threshold)
            equal = np.flatnonzero(loss == threshold)[: top - greater.size]
            candidates = np.sort(np.concatenate([greater, equal]))
        else:
            candidates = np.arange(n)
        candidates = candidates[counted[candidates] & (loss[candidates] >= floor)]
        if candidates.size == 0:
            return
        if chunk.targets is not None:
            probability = self._label_probability(chunk.logits[candidates], labels[candidates])
        else:
            probability = rows.label_probability[candidates]
        for j, i in enumerate(candidates.tolist()):
            key = (float(rows.loss[i]), -self._file_index, -int(chunk.lines[i]))
            if len(self._worst) >= top and key <= self._worst[0][:3]:
                continue
            row = WorstRow(
                chunk.path,
                int(chunk.lines[i]),
                self._name(int(labels[i])),
                self._name(int(rows.predicted[i])),
                float(probability[j]),
                float(rows.loss[i]),
                chunk.unit,
            )
            item = (*key, row)
            if len(self._worst) < top:
                heapq.heappush(self._worst, item)
            else:
                heapq.heapreplace(self._worst, item)

    def _name(self, index: int) -> int | str:
        if self.options.class_names is not None and 0 <= index < self.k:
            return self.class_names[index]
        return index

    # ------------------------------------------------------------------ results
    def _file_summary(self, index: int, record: FileRecord) -> FileSummary:
        """A file's figures, by the code that makes the pooled ones (:meth:`_figures`)."""
        lines = [e.line for e in record.errors if e.line is not None]
        figures = self._figures(
            record.total,
            record.weight,
            record.counted,
            record.correct,
            record.loss_error,
            slow_part(self.slow, "file", index),
        )
        accuracy = figures.accuracy
        if record.mass is not None and record.hits is not None:
            accuracy = ratio(record.hits.exact(), record.mass.exact())
        return FileSummary(
            path=record.path,
            rows=record.rows + record.skipped,
            rows_counted=record.counted,
            rows_ignored=record.ignored,
            rows_skipped=record.skipped,
            loss=figures.loss,
            skipped_lines=tuple(lines[:SKIPPED_KEPT]),
            perplexity=figures.perplexity,
            accuracy=accuracy,
            correct=record.correct,
            sample_weight=None if record.mass is None else record.mass.value(),
        )

    def _figures(
        self,
        total: core.ExactSum,
        weight: core.ExactSum,
        counted: int,
        correct: int | None,
        error: core.ExactSum | None = None,
        slow: Interval | None = None,
    ) -> _Figures:
        """The figures of a set of rows (a file, or all of them) from their exact sums;
        with --exact, *error* bounds the distance of *total* to the exact losses' sum
        (and *slow* is the second pass's interval, if one was made)."""
        base = self.options.base
        mean = self._mean(total, weight, counted, error, slow)
        loss_sum = self._certain(total, None, counted, error, slow)
        # perplexity = exp(mean) is not correctly rounded: from the mean in nats as is
        mean_nats = mean if base == "e" else _mean(total, weight)
        return _Figures(
            loss=loss_sum if self.options.reduction == "sum" else mean,
            loss_mean=mean,
            loss_sum=loss_sum,
            perplexity=None if mean_nats is None else _exp(mean_nats),
            accuracy=correct / counted if counted and correct is not None else None,
        )

    def _certain(
        self,
        total: core.ExactSum,
        denominator: core.ExactSum | None,
        rows: int,
        error: core.ExactSum | None,
        slow: Interval | None,
    ) -> float:
        """``total / denominator`` (or the sum) in the run's unit, certain under --exact."""
        digits = self.slow.digits if self.slow is not None else 0
        return certain(total, denominator, self.options.base, error, rows, slow, digits)

    def _mean(
        self,
        total: core.ExactSum,
        weight: core.ExactSum,
        rows: int,
        error: core.ExactSum | None,
        slow: Interval | None,
    ) -> float | None:
        """:meth:`_certain`'s mean, None when no row counts."""
        try:
            return self._certain(total, weight, rows, error, slow)
        except UndefinedMeanError:
            return None

    def undecided(self) -> bool:
        """Whether a figure of --exact (a mean or a sum, of all rows, a file or a class)
        is too near a rounding boundary to be decided without reading the rows again
        (:func:`xentcli.batch.exact_mean.second_pass`)."""
        if self.class_errors is None:
            return False
        self._finish_file()
        try:
            self._figures(
                self.class_sums.total(),
                self.class_weights.total(),
                int(self.class_rows.sum()),
                None,
                self.class_errors.total(),
                None if self.slow is None else self.slow.pooled(),
            )
            for index, record in enumerate(self.files):
                self._file_summary(index, record)
            for c in range(self.k):
                self._class_figures(c)
        except UndecidedRoundingError:
            return True
        return False

    def _class_figures(self, c: int) -> tuple[float | None, float]:
        """Class *c*'s mean (None when it has no weight) and sum, in the run's unit."""
        class_sum = self.class_sums.exact_sum(c)
        error = None if self.class_errors is None else self.class_errors.exact_sum(c)
        rows = int(self.class_rows[c])
        slow = slow_part(self.slow, "class", c)
        weight = self.class_weights.exact_sum(c)
        return (
            self._mean(class_sum, weight, rows, error, slow),
            self._certain(class_sum, None, rows, error, slow),
        )

    def _reduce(self, total: core.ExactSum, weight: core.ExactSum) -> float | None:
        """The reduced loss in the run's unit (None for an undefined mean)."""
        if self.options.reduction == "sum":
            return total.value(self.options.base)
        return _mean(total, weight, self.options.base)

    def _unit(self, nats: float) -> float:
        return float(core.to_base(nats, self.options.base))

    # -------------------------------------------------------------------- merging
    def merge(self, other: BatchAccumulator) -> None:
        """Add everything *other* holds, as if its files had been read after this one's.

        The figures are the same bits as one accumulator fed both inputs, whatever the
        grouping (merging is associative) and order (commutative, but for the order in
        which files are listed and ties among the worst rows). Two parts of one file
        whose byte ranges touch are joined into one file line, their line numbers made
        continuous. Raises :class:`~xentcli.errors.StateError` naming the first option
        that differs (the two must have been made with the same options).
        """
        from xentcli.batch.state import check_compatible

        self._finish_file()
        other._finish_file()
        check_compatible(self, other)
        if self.soft_targets is None:
            self.soft_targets = other.soft_targets
        self.class_rows += other.class_rows
        self.class_correct += other.class_correct
        self.rows_renormalized += other.rows_renormalized
        self.targets_renormalized += other.targets_renormalized
        self.rows_infinite += other.rows_infinite
        if self.columns is None:  # the first file's, as one run over both
            self.columns = other.columns
        for attribute in STATE_COMPONENTS.values():
            getattr(self, attribute).merge(getattr(other, attribute))
        if self.class_errors is not None and other.class_errors is not None:
            self.class_errors.merge(other.class_errors)
        self.slow = None  # a second pass's sums are of the rows before the merge
        # Files, and the worst rows, which point at them by position.
        mine = self._worst_items()
        theirs = other._worst_items()
        offset = len(self.files)
        files = list(other.files)
        if self.files and files and _touching(self.files[-1], files[0]):
            last, first = self.files[-1], files[0]
            assert last.part is not None
            assert first.part is not None
            if last.part[1] == first.part[0]:  # other's part follows this one's
                theirs = [_shift(item, last.newlines) if item[1] == 0 else item for item in theirs]
                self.files[-1] = _joined(last, first)
                infinite = _infinite_joined(self.infinite_rows, other.infinite_rows, last)
            else:  # other's part comes first in the file
                here = offset - 1
                mine = [_shift(item, first.newlines) if item[1] == here else item for item in mine]
                self.files[-1] = _joined(first, last)
                infinite = _infinite_joined(other.infinite_rows, self.infinite_rows, first, True)
            files = files[1:]
            offset -= 1
        else:
            infinite = self.infinite_rows + other.infinite_rows
        self.infinite_rows = infinite[: self.INFINITE_KEPT]
        self.files.extend(files)
        self._file_index = len(self.files) - 1
        items = [(loss, -index, -line, row) for loss, index, line, row in mine] + [
            (loss, -(index + offset), -line, row) for loss, index, line, row in theirs
        ]
        self._worst = heapq.nlargest(self.options.worst, items, key=lambda item: item[:3])
        heapq.heapify(self._worst)

    def _worst_items(self) -> list[_WorstItem]:
        """The worst rows as (loss, file position, line, row)."""
        return [(loss, -index, -line, row) for loss, index, line, row in self._worst]

    def to_state(self) -> dict[str, Any]:
        """Everything the summary is made from, as JSON-able data (docs/state-format.md)."""
        from xentcli.batch.state import accumulator_to_state

        self._finish_file()
        return accumulator_to_state(self)

    @classmethod
    def from_state(cls, data: object) -> BatchAccumulator:
        """An accumulator from :meth:`to_state`'s data; every field is checked first.

        Raises :class:`~xentcli.errors.StateError` naming the first bad field.
        """
        from xentcli.batch.state import accumulator_from_state

        return accumulator_from_state(data, cls)

    def summary(self) -> Summary:
        """The summary of everything added so far (finishes the current file)."""
        self._finish_file()
        opts = self.options
        total = self.class_sums.total()
        weight = self.class_weights.total()
        loss_sum_nats = total.value()
        counted = int(self.class_rows.sum())
        correct = int(self.class_correct.sum())
        pooled = self._figures(
            total,
            weight,
            counted,
            correct,
            None if self.class_errors is None else self.class_errors.total(),
            None if self.slow is None else self.slow.pooled(),
        )
        files = [self._file_summary(index, record) for index, record in enumerate(self.files)]
        rows = sum(f.rows for f in files)
        skipped = sum(f.rows_skipped for f in files)
        ignored = sum(f.rows_ignored for f in files)
        errors = [e for record in self.files for e in record.errors][:SKIPPED_KEPT]
        per_class = []
        total_exact = total.exact()
        for c in range(self.k):
            class_sum = self.class_sums.exact_sum(c)
            class_mean, class_loss_sum = self._class_figures(c)
            share = None
            if loss_sum_nats > 0 and math.isfinite(loss_sum_nats):
                share = float(class_sum.exact() / total_exact)
            accuracy = (
                int(self.class_correct[c]) / int(self.class_rows[c]) if self.class_rows[c] else None
            )
            per_class.append(
                ClassSummary(
                    index=c,
                    name=self.class_names[c],
                    rows=int(self.class_rows[c]),
                    loss=class_mean,
                    loss_sum=class_loss_sum,
                    accuracy=self.sample.accuracy(c) if self.sample.weighted else accuracy,
                    share=share,
                    sample_weight=self.sample.mass.value(c) if self.sample.weighted else None,
                )
            )
        quantiles = {
            name: self.sketch.quantile(q)
            for name, q in (("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        }
        worst = [item[3] for item in sorted(self._worst, key=lambda it: it[:3], reverse=True)]
        return Summary(
            files=tuple(files),
            rows=rows,
            rows_counted=counted,
            rows_ignored=ignored,
            rows_skipped=skipped,
            reduction=opts.reduction,
            loss=pooled.loss,
            loss_mean=pooled.loss_mean,
            loss_sum=pooled.loss_sum,
            weight_sum=weight.value(),
            perplexity=pooled.perplexity,
            accuracy=self.sample.accuracy() if self.sample.weighted else pooled.accuracy,
            correct=correct,
            units=core.UNITS[opts.base],
            soft_targets=bool(self.soft_targets),
            quantiles={name: None if v is None else self._unit(v) for name, v in quantiles.items()},
            quantile_relative_error=0.0 if self.sketch.exact else QuantileSketch.RELATIVE_ERROR,
            histogram=tuple(
                HistogramBin(self._unit(b.low), self._unit(b.high), b.rows)
                for b in self.sketch.histogram()
            ),
            per_class=tuple(per_class),
            worst=tuple(
                WorstRow(
                    w.file, w.line, w.label, w.predicted, w.probability, self._unit(w.loss), w.unit
                )
                for w in worst
            ),
            skipped=tuple(errors),
            entropy=self._soft_mean(self.divergence.entropy, counted),
            kl_divergence=self._soft_mean(self.divergence.kl, counted),
            scores=opts.scores,
            scores_detected=opts.scores_detected,
            binary=opts.binary,
            renormalize=opts.renormalize,
            clip=opts.clip,
            rows_renormalized=self.rows_renormalized,
            targets_renormalized=self.targets_renormalized,
            rows_infinite=self.rows_infinite,
            label_smoothing=opts.label_smoothing,
            infinite_rows=tuple(self.infinite_rows),
            columns=self.columns,
            metrics=self.metrics.summary(opts.base, opts.ci),
            sample_weights=self._sample_weight_summary(),
            groups=self.groups.summary(),
            group_by=opts.group_by,
        )

    def _sample_weight_summary(self) -> dict[str, object] | None:
        """What the weighted means divide by (None without --weight-column)."""
        if not self.sample.weighted:
            return None
        moments = self.metrics.brier.moments
        assert moments is not None
        sums = moments.sums
        return {
            "column": self.options.sample_weight_column,
            "sum": self.sample.total().value(),
            "effective_rows": effective_rows(
                sums["weight"].exact(), sums["weight_squares"].exact()
            ),
            "divides_by": "the sum of the counted rows' sample weights (the loss: of the "
            "products of sample and class weights, 'weight_sum')",
        }

    def _soft_mean(self, total: core.ExactSum, rows: int) -> float | None:
        """The mean over the rows (soft targets: every row counts; with sample weights,
        over their weight), in the run's unit."""
        if not self.soft_targets or not rows:
            return None
        if self.sample.weighted:
            try:
                return total.ratio(self.sample.total(), self.options.base)
            except UndefinedMeanError:
                return None
        count = core.ExactSum()
        count.add_ones(rows)
        return total.ratio(count, self.options.base)


@dataclass(frozen=True)
class Prepared:
    """What :meth:`BatchAccumulator.prepare` computes for a chunk ahead of :meth:`add`."""

    rows: core.RowLosses
    metrics: MetricRows

    def take(self, index: slice | npt.NDArray[Any]) -> Prepared:
        """The results of rows *index* of the chunk (a slice, or positions or a mask)."""
        rows = self.rows
        kept = dataclasses.replace(
            rows,
            loss=rows.loss[index],
            weight=rows.weight[index],
            predicted=rows.predicted[index],
            label_probability=rows.label_probability[index],
            counted=rows.counted[index],
            loss_lo=None if rows.loss_lo is None else rows.loss_lo[index],
            loss_err=None if rows.loss_err is None else rows.loss_err[index],
        )
        # the metric rows hold the counted rows only: the place of row i among them
        positions: Any = index
        if not rows.counted.all():
            positions = np.arange(len(rows.counted))[index]
            before = np.cumsum(rows.counted) - 1
            positions = before[positions[rows.counted[positions]]]
        return Prepared(kept, take_rows(self.metrics, positions))


def _group_accumulator(num_classes: int, options: BatchOptions) -> BatchAccumulator:
    """A group's accumulator (``--group-by``): its loss quantiles from the buckets only, so
    that a group keeps no values (its memory is bounded whatever its rows)."""
    accumulator = BatchAccumulator(num_classes, options)
    accumulator.sketch = QuantileSketch(exact=False)
    return accumulator


def _touching(before: FileRecord, after: FileRecord) -> bool:
    """Whether two records are parts of one file whose byte ranges touch."""
    return (
        before.path == after.path
        and before.part is not None
        and after.part is not None
        and (before.part[1] == after.part[0] or after.part[1] == before.part[0])
    )


_WorstItem = tuple[float, int, int, WorstRow]


def _shift(item: _WorstItem, shift: int) -> _WorstItem:
    """A worst row (loss, file position, line, row) *shift* lines further down its file."""
    loss, index, line, row = item
    return loss, index, line + shift, dataclasses.replace(row, line=line + shift)


def _infinite_joined(
    before: list[tuple[str, int]],
    after: list[tuple[str, int]],
    part: FileRecord,
    swapped: bool = False,
) -> list[tuple[str, int]]:
    """The rows of infinite loss (file, line) of two accumulators, in file order, when the
    last file of one and the first of the other are touching parts of one file joined.

    *part* is the earlier of the two parts; the later part's lines count from its own
    first line and are shifted by ``part.newlines``. Without *swapped*, *before* is the
    accumulator merged into (its last file is *part*) and *after* the one merged in (its
    leading rows of that file are the later part's). With *swapped*, the part merged in
    comes first in the file: *before* is the accumulator merged in (its leading rows are
    *part*'s) and *after* the one merged into (its trailing rows are the later part's).
    """
    path = part.path
    if swapped:
        # before = other (its first file is the touching part), after = self (its last).
        n = next((i for i, (p, _) in enumerate(before) if p != path), len(before))
        m = next((i for i, (p, _) in enumerate(reversed(after)) if p != path), len(after))
        cut = len(after) - m
        shifted = [(p, line + part.newlines) for p, line in after[cut:]]
        return after[:cut] + before[:n] + shifted + before[n:]
    n = next((i for i, (p, _) in enumerate(after) if p != path), len(after))
    shifted = [(p, line + part.newlines) for p, line in after[:n]]
    return before + shifted + after[n:]


def _joined(first: FileRecord, second: FileRecord) -> FileRecord:
    """One record of two consecutive parts of a file (*second*'s lines shifted)."""
    assert first.part is not None
    assert second.part is not None
    total, weight = core.ExactSum(), core.ExactSum()
    error = None if first.loss_error is None else core.ExactSum()
    for acc, parts in (
        (total, (first.total, second.total)),
        (weight, (first.weight, second.weight)),
        (error, (first.loss_error, second.loss_error)),
    ):
        for part in parts:
            if acc is not None and part is not None:
                acc.merge(part)
    shift = first.newlines
    errors = first.errors + [
        DataError(
            e.path,
            None if e.line is None else e.line + shift,
            e.column,
            e.reason,
            e.value,
            unit=e.unit,
        )
        for e in second.errors
    ]
    return FileRecord(
        path=first.path,
        total=total,
        weight=weight,
        rows=first.rows + second.rows,
        counted=first.counted + second.counted,
        correct=(
            None
            if first.correct is None or second.correct is None
            else first.correct + second.correct
        ),
        ignored=first.ignored + second.ignored,
        skipped=first.skipped + second.skipped,
        errors=errors[:SKIPPED_KEPT],
        part=(first.part[0], second.part[1]),
        newlines=first.newlines + second.newlines,
        mass=_joined_sum(first.mass, second.mass),
        hits=_joined_sum(first.hits, second.hits),
        loss_error=error,
    )


def _joined_sum(first: core.ExactSum | None, second: core.ExactSum | None) -> core.ExactSum | None:
    """The sum of two parts' optional sums (None if either has none)."""
    if first is None or second is None:
        return None
    total = core.ExactSum()
    total.merge(first)
    total.merge(second)
    return total


def _mean(total: core.ExactSum, weight: core.ExactSum, base: str = "e") -> float | None:
    """The correctly rounded ``total / weight`` in *base*, None when no row counts."""
    try:
        return total.ratio(weight, base)
    except UndefinedMeanError:
        return None


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _label_probability(
    logits: FloatArray, labels: IntArray, temperature: float, exact: bool = False
) -> FloatArray:
    q = core.softmax(logits, temperature=temperature, exact=exact)
    return np.take_along_axis(q, labels[:, None], axis=-1)[:, 0]


def summarize(
    chunks: Iterable[Chunk], num_classes: int, options: BatchOptions | None = None
) -> Summary:
    """Aggregate *chunks* (as :func:`xentcli.batch.reader` yields them) into a :class:`Summary`."""
    acc = BatchAccumulator(num_classes, options)
    for chunk in chunks:
        acc.add(chunk)
    return acc.summary()


def _renormalized_targets(targets: FloatArray, rules: RowRules) -> tuple[FloatArray, int]:
    """*targets* (N, K) with each row divided by its sum, as a reader divides them, and
    how many rows summed to 1 only after that.

    A row the readers refuse (a bad cell, every target 0) is left as given: the
    kernel's check then names its row (and cell).
    """
    bad = rules.bad_target_rows(targets)
    with np.errstate(invalid="ignore", divide="ignore"):
        divided = rules.normalized_targets(targets)
    return np.where(bad[:, None], targets, divided), rules.renormalized_targets(targets)
