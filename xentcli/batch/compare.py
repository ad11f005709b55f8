"""Two models on the same rows: each side's figures, their paired difference, what changed.

:class:`PairedComparison` takes the chunks of file A and of file B, aligned row for row
(by position, or joined on an id column by :func:`joined`), folds each side into its own
:class:`~xentcli.batch.accumulator.BatchAccumulator` (so each side's figures are the
same bits as ``xent batch`` on that file alone), and keeps the paired statistics:

- the mean difference B - A of the row losses, exact: ``(sum_B - sum_A) / W`` from the
  two exact sums, rounded once (W, the sum of the counted rows' weights, is the same on
  both sides because the labels are);
- a normal-approximation interval for it from the exact sums of the per-row differences
  and of their squares (a ratio estimator when class weights make W differ from N);
- McNemar's exact test on the rows one side classifies right and the other wrong
  (two-sided binomial test of the discordant pairs at 1/2);
- the rows whose loss rose most (regressions) and fell most (improvements), with their
  places in both files.

The labels (or soft targets) must agree row by row: the first disagreement is an error
naming both places.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.batch._types import place
from xentcli.batch.accumulator import (
    BatchAccumulator,
    BatchOptions,
    ChunkResult,
    Prepared,
    Summary,
)
from xentcli.batch.metrics import (
    MAX_REPLICATES,
    BootstrapState,
    BootstrapSummary,
    MetricRows,
    paired_difference,
    take_rows,
)
from xentcli.errors import DataError, XentError

if TYPE_CHECKING:
    from xentcli.batch._types import Chunk

FloatArray = npt.NDArray[np.float64]

#: the source that keys the paired bootstrap's weights (the same on both sides: a row's
#: weights depend only on the seed and the pair's number, not on the file names)
PAIR_SOURCE = "xent compare"


@dataclass(frozen=True)
class CompareOptions:
    """What ``xent compare`` reports beyond the two sides' figures."""

    worst: int = 5  #: regressions and improvements listed
    ci: float = 0.95  #: the interval's level; 0 for none
    margin: float = 0.0  #: the gate: B is worse when B - A > margin (and the interval says so)
    bootstrap: int = 0  #: paired Poisson bootstrap replicates (0: none)
    seed: int = 0  #: the bootstrap's seed


@dataclass(frozen=True)
class ChangedRow:
    """A row whose loss changed from A to B."""

    place_a: str
    place_b: str
    label: int | str
    predicted_a: int | str
    predicted_b: int | str
    loss_a: float
    loss_b: float

    @property
    def change(self) -> float:
        return self.loss_b - self.loss_a

    def to_json(self) -> dict[str, object]:
        return {
            "a": self.place_a,
            "b": self.place_b,
            "label": self.label,
            "predicted_a": self.predicted_a,
            "predicted_b": self.predicted_b,
            "loss_a": self.loss_a,
            "loss_b": self.loss_b,
            "change": self.change,
        }


@dataclass(frozen=True)
class Mcnemar:
    """The 2 x 2 table of right/wrong on both sides, and the exact two-sided p-value."""

    both_right: int
    only_a: int  #: rows A classifies right and B wrong
    only_b: int  #: rows B classifies right and A wrong
    both_wrong: int
    p_value: float | None  #: None without discordant rows

    def to_json(self) -> dict[str, object]:
        return {
            "both_right": self.both_right,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "both_wrong": self.both_wrong,
            "p_value": self.p_value,
        }


@dataclass(frozen=True)
class ClassChange:
    name: str
    rows: int
    loss_a: float | None
    loss_b: float | None
    accuracy_a: float | None
    accuracy_b: float | None

    def to_json(self) -> dict[str, object]:
        def minus(b: float | None, a: float | None) -> float | None:
            return None if a is None or b is None else b - a

        return {
            "class": self.name,
            "rows": self.rows,
            "loss_a": self.loss_a,
            "loss_b": self.loss_b,
            "loss_change": minus(self.loss_b, self.loss_a),
            "accuracy_a": self.accuracy_a,
            "accuracy_b": self.accuracy_b,
            "accuracy_change": minus(self.accuracy_b, self.accuracy_a),
        }


@dataclass(frozen=True)
class CompareSummary:
    """Everything ``xent compare`` reports (losses in :attr:`units`)."""

    a: Summary
    b: Summary
    units: str
    rows: int  #: pairs counted
    loss_difference: float | None  #: mean loss B - A (exact, rounded once)
    loss_ci: tuple[float, float] | None
    ci_level: float
    accuracy_difference: float | None
    accuracy_ci: tuple[float, float] | None
    mcnemar: Mcnemar
    flipped_to_wrong: int  #: rows A predicted right and B wrong (the prediction changed)
    flipped_to_right: int
    regressions: tuple[ChangedRow, ...]
    improvements: tuple[ChangedRow, ...]
    per_class: tuple[ClassChange, ...]
    margin: float
    worse: bool  #: B's mean loss exceeds A's by more than the margin, beyond the interval
    bootstrap: PairedBootstrap | None = None  #: with ``--bootstrap``
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        difference: dict[str, object] = {
            "loss": self.loss_difference,
            "loss_ci": None if self.loss_ci is None else list(self.loss_ci),
            "accuracy": self.accuracy_difference,
            "accuracy_ci": None if self.accuracy_ci is None else list(self.accuracy_ci),
            "perplexity_ratio": _ratio(self.b.perplexity, self.a.perplexity),
            "ci_level": self.ci_level,
        }
        for name, value_a, value_b in _side_metrics(self.a, self.b):
            difference[name] = None if value_a is None or value_b is None else value_b - value_a
        difference["bootstrap"] = None if self.bootstrap is None else self.bootstrap.to_json()
        difference.update(self.extra)
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "rows": self.rows,
            "units": self.units,
            "difference": difference,
            "mcnemar": self.mcnemar.to_json(),
            "flipped": {"to_wrong": self.flipped_to_wrong, "to_right": self.flipped_to_right},
            "regressions": [r.to_json() for r in self.regressions],
            "improvements": [r.to_json() for r in self.improvements],
            "per_class": [c.to_json() for c in self.per_class],
            "gate": {"margin": self.margin, "worse": self.worse},
        }


@dataclass(frozen=True)
class PairedBootstrap:
    """The paired bootstrap: percentile intervals of each side's figures and of B - A.

    Every replicate draws a row's weight from the seed and the pair's key (its number
    among the pairs, or with ``--id-column`` its id's rank among the paired ids), the same
    weight on both sides; the difference's replicate is B's figure minus A's.
    """

    a: BootstrapSummary
    b: BootstrapSummary
    difference: BootstrapSummary
    keyed_by: str  #: "position" or "id"

    def to_json(self) -> dict[str, object]:
        out = self.difference.to_json()
        out["method"] = "paired Poisson bootstrap, percentile"
        out["keyed_by"] = self.keyed_by
        out["a"] = {k: v for k, v in self.a.to_json().items() if k in self.a.intervals}
        out["b"] = {k: v for k, v in self.b.to_json().items() if k in self.b.intervals}
        return out


def _side_metrics(a: Summary, b: Summary) -> list[tuple[str, float | None, float | None]]:
    """Brier score and ECE of both sides (the report issue's definitions), when computed."""
    if a.metrics is None or b.metrics is None:
        return []
    return [
        ("brier", a.metrics.brier.mean, b.metrics.brier.mean),
        ("ece", a.metrics.calibration.ece, b.metrics.calibration.ece),
    ]


def _ratio(b: float | None, a: float | None) -> float | None:
    if a is None or b is None or a == 0 or math.isinf(a):
        return None
    return b / a


class PairedComparison:
    """Fold aligned chunks of A and B; see the module docstring.

    >>> import numpy as np
    >>> from xentcli.batch._types import Chunk
    >>> pair = PairedComparison(2)
    >>> lines = np.array([2, 3])
    >>> a = Chunk("a.csv", np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0, 1]), None, lines)
    >>> b = Chunk("b.csv", np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 1]), None, lines)
    >>> pair.add(a, b)
    >>> summary = pair.summary()
    >>> round(summary.loss_difference, 6), summary.mcnemar.only_b
    (-0.78311, 1)
    """

    def __init__(
        self,
        num_classes: int,
        options: BatchOptions | None = None,
        compare: CompareOptions | None = None,
    ) -> None:
        self.options = options if options is not None else BatchOptions()
        self.compare = compare if compare is not None else CompareOptions()
        self.a = BatchAccumulator(num_classes, self.options)
        self.b = BatchAccumulator(num_classes, self.options)
        self._sum = core.ExactSum()  # of the per-row differences d = loss_B - loss_A (nats)
        self._sum_sq = core.ExactSum()  # of d ** 2
        self._sum_dw = core.ExactSum()  # of d * w (the ratio estimator's cross term)
        self._weighted = False  # a row had a class weight (else d * w is d: not summed twice)
        self._sum_w = core.ExactSum()
        self._sum_w_sq = core.ExactSum()
        self._rows = 0
        # the paired rows' own loss sums (nats): the difference when a join left rows of
        # either file without a partner (the sides' accumulators then hold more rows)
        self._paired_a = core.ExactSum()
        self._paired_b = core.ExactSum()
        self.joined = False  #: set by a join, before add_pairs: keep the two sums above
        self.unpaired = 0  #: rows folded into a side's figures without a partner
        self._table = np.zeros((2, 2), dtype=np.int64)  # [A right?][B right?]
        self._rise: list[tuple[float, int, ChangedRow]] = []
        self._fall: list[tuple[float, int, ChangedRow]] = []
        self._order = 0
        self._weights = (
            None if self.options.weights is None else np.asarray(self.options.weights, float)
        )
        self._boot: tuple[BootstrapState, BootstrapState] | None = None
        self._pairs_seen = 0  # the bootstrap's key of the next pair is this + 1
        self.keyed_by = "position"
        replicates = self.compare.bootstrap
        if replicates:
            if not 1 <= replicates <= MAX_REPLICATES:
                raise XentError(f"--bootstrap must be between 0 and {MAX_REPLICATES}")
            if not self.compare.ci:
                raise XentError("--bootstrap needs intervals: give --ci a level above 0")
            ks, bins = self.a.metrics.top_k.ks, self.a.metrics.options.bins
            self._boot = (
                BootstrapState(replicates, self.compare.seed, ks, bins),
                BootstrapState(replicates, self.compare.seed, ks, bins),
            )

    def add(self, chunk_a: Chunk, chunk_b: Chunk) -> None:
        """Fold two chunks holding the same rows (same length, same labels or targets)."""
        n = len(chunk_a.lines)
        if len(chunk_b.lines) != n:
            raise ValueError("chunks of different lengths")
        self._check_same_labels(chunk_a, chunk_b)
        first = self._pairs_seen + 1
        self._pairs_seen += n
        result_a = self.fold(0, chunk_a, first)
        result_b = self.fold(1, chunk_b, first)
        if result_a is None or result_b is None:
            return
        soft = chunk_a.targets is not None
        self.add_pairs(result_a, result_b, chunk_a.unit, chunk_b.unit, soft=soft)

    def fold(self, side: int, chunk: Chunk, first: int) -> ChunkResult | None:
        """Fold *chunk* into side *side*'s figures (0: A, 1: B) and return its per-row
        results; *first* is the pair number of its first row (the paired bootstrap's key:
        the same bits whatever the chunking)."""
        result = (self.a, self.b)[side].add(chunk, per_row=True)
        if result is not None and self._boot is not None:
            assert result.metrics is not None
            keys = np.arange(first, first + len(chunk.lines), dtype=np.int64)
            rows = dataclasses.replace(result.metrics, lines=keys[result.counted])
            self._boot[side].update(rows, PAIR_SOURCE)
        return result

    @property
    def bootstrapping(self) -> bool:
        """Whether ``--bootstrap`` asked for the paired bootstrap."""
        return self._boot is not None

    def add_bootstrap_rows(self, rows_a: MetricRows, rows_b: MetricRows) -> None:
        """Fold paired metric rows into the bootstrap (row i of A is row i of B), keyed
        by their ``lines`` (the caller's pair keys); a join calls this once."""
        if self._boot is not None:
            self._boot[0].update(rows_a, PAIR_SOURCE)
            self._boot[1].update(rows_b, PAIR_SOURCE)

    def add_pairs(
        self,
        result_a: ChunkResult,
        result_b: ChunkResult,
        unit_a: str = "line",
        unit_b: str = "line",
        *,
        soft: bool = False,
    ) -> None:
        """Fold the paired statistics of aligned per-row results (row i of A is row i of B).

        The two sides' own figures are not touched: they were folded by their
        accumulators (:meth:`add` does both; a join folds each file as it streams, then
        pairs the kept per-row results here). *soft*: the rows have soft targets (no
        class weights per row).
        """
        counted = result_a.counted & result_b.counted
        if not counted.any():
            return
        base = self.options.base
        factor = float(core.to_base(np.float64(1.0), base))  # 1 nat in the run's unit
        # Most chunks count every row: their arrays are used as they are, not copied.
        all_counted = bool(counted.all())
        loss_a, loss_b = result_a.loss, result_b.loss
        if not all_counted:
            loss_a, loss_b = loss_a[counted], loss_b[counted]
        change = loss_b - loss_a  # in the run's unit, as the changed rows are listed
        if factor != 1.0:
            loss_a, loss_b = loss_a / factor, loss_b / factor  # back to nats
        if self.joined:
            self._paired_a.add(loss_a)
            self._paired_b.add(loss_b)
        d = change if factor == 1.0 else loss_b - loss_a
        finite = np.isfinite(d)
        if not finite.all():
            d = np.where(finite, d, 0.0)  # an infinite loss: the interval is undefined
            self._infinite = True
        self._sum.add(d)
        self._sum_sq.add(d * d)
        n_counted = len(d)
        if self._weights is None or soft:  # every weight is 1
            self._sum_w.add_ones(n_counted)
            self._sum_w_sq.add_ones(n_counted)
        else:
            weights = self._weights[result_a.labels[counted]]
            self._weighted = True
            self._sum_dw.add(d * weights)
            self._sum_w.add(weights)
            self._sum_w_sq.add(weights * weights)
        self._rows += n_counted
        right_a = result_a.predicted == result_a.labels
        right_b = result_b.predicted == result_b.labels
        if not all_counted:
            right_a, right_b = right_a[counted], right_b[counted]
        # the 2 x 2 table [A right?][B right?] from three counts of booleans
        both = np.count_nonzero(right_a & right_b)
        only_a = np.count_nonzero(right_a) - both
        only_b = np.count_nonzero(right_b) - both
        self._table += np.array(
            [[n_counted - only_a - only_b - both, only_b], [only_a, both]], dtype=np.int64
        )
        self._keep_changes(
            result_a, result_b, None if all_counted else counted, change, (unit_a, unit_b)
        )

    def _check_same_labels(self, chunk_a: Chunk, chunk_b: Chunk, joined: bool = False) -> None:
        if chunk_a.labels is not None and chunk_b.labels is not None:
            differ = chunk_a.labels != chunk_b.labels
            what = "label"
        elif chunk_a.targets is not None and chunk_b.targets is not None:
            differ = (chunk_a.targets != chunk_b.targets).any(axis=1)
            what = "targets"
        else:
            raise DataError(
                chunk_b.path,
                None,
                None,
                f"holds {'labels' if chunk_b.labels is not None else 'soft targets'}"
                f" and {chunk_a.path} {'labels' if chunk_a.labels is not None else 'soft targets'}",
            )
        if differ.any():
            i = int(np.argmax(differ))
            if what == "label":
                assert chunk_a.labels is not None
                assert chunk_b.labels is not None
                shown = (
                    f"{self._name(int(chunk_a.labels[i]))} vs {self._name(int(chunk_b.labels[i]))}"
                )
            else:
                shown = "the soft targets differ"
            raise DataError(
                _place(chunk_a, i),
                None,
                None,
                f"the {what} differs from {_place(chunk_b, i)} ({shown}): "
                + (
                    "the rows of the same id must have the same label"
                    if joined
                    else "the files must hold the same rows in the same order (or give --id-column)"
                ),
            )

    def _name(self, index: int) -> int | str:
        names = self.options.class_names
        return names[index] if names is not None and 0 <= index < len(names) else index

    def _keep_changes(
        self,
        result_a: ChunkResult,
        result_b: ChunkResult,
        counted: npt.NDArray[np.bool_] | None,
        change: FloatArray,
        units: tuple[str, str],
    ) -> None:
        """Keep the rows whose loss rose (fell) most; *change* is B - A of the *counted*
        rows (None: every row), in the run's unit; nan is never kept."""
        top = self.compare.worst
        if not top:
            return
        index = None if counted is None else np.flatnonzero(counted)
        unit_a, unit_b = units
        for heap, sign in ((self._rise, 1.0), (self._fall, -1.0)):
            # Only a rise above the smallest kept can enter a full heap: past the first
            # chunks, a comparison per row (a partition of every chunk twice was most of
            # compare's own main-thread time at 2,000,000 x 10).
            floor = heap[0][0] if len(heap) >= top else 0.0
            rises = sign * change
            with np.errstate(invalid="ignore"):
                above = np.flatnonzero(rises > floor)
            if above.size > top:
                # the top values; of equal values the earliest rows, as the heap keeps them
                values = rises[above]
                cut = np.partition(values, above.size - top)[above.size - top]
                ties = above[values == cut][: top - int((values > cut).sum())]
                above = np.sort(np.concatenate([above[values > cut], ties]))
            candidates = above[np.argsort(-rises[above], kind="stable")]
            if index is not None:
                candidates = index[candidates]
            for i in candidates.tolist():
                value = sign * float(result_b.loss[i] - result_a.loss[i])
                if not value > 0:
                    continue
                self._order += 1
                key = (value, -self._order)
                if len(heap) >= top and key <= heap[0][:2]:
                    continue
                row = ChangedRow(
                    place(result_a.path, int(result_a.lines[i]), unit_a),
                    place(result_b.path, int(result_b.lines[i]), unit_b),
                    self._name(int(result_a.labels[i])),
                    self._name(int(result_a.predicted[i])),
                    self._name(int(result_b.predicted[i])),
                    float(result_a.loss[i]),
                    float(result_b.loss[i]),
                )
                item = (value, -self._order, row)
                if len(heap) < top:
                    heapq.heappush(heap, item)
                else:
                    heapq.heapreplace(heap, item)

    def summary(self) -> CompareSummary:
        a, b = self.a.summary(), self.b.summary()
        base = self.options.base
        level = self.compare.ci
        difference = None
        interval = None
        weight = self._sum_w.exact()
        if self._rows and weight > 0 and a.loss_mean is not None and b.loss_mean is not None:
            # Both sides' exact loss sums (in nats) over the same W: (S_B - S_A) / W, once.
            exact: Fraction | None = (
                self.b.class_sums.total().exact() - self.a.class_sums.total().exact()
            )
            if self.unpaired:
                if getattr(self, "_infinite", False):
                    exact = None
                else:
                    exact = self._paired_b.exact() - self._paired_a.exact()
            if exact is not None and math.isfinite(a.loss_sum) and math.isfinite(b.loss_sum):
                difference = core.fraction_to_base(exact / weight, base)
            interval = self._loss_interval(level, base)
        table = self._table
        mcnemar = Mcnemar(
            both_right=int(table[1, 1]),
            only_a=int(table[1, 0]),
            only_b=int(table[0, 1]),
            both_wrong=int(table[0, 0]),
            p_value=mcnemar_exact(int(table[1, 0]), int(table[0, 1])),
        )
        n = self._rows
        accuracy_difference = None
        accuracy_interval = None
        if n:
            accuracy_difference = (mcnemar.only_b - mcnemar.only_a) / n
            accuracy_interval = _paired_proportion_interval(
                mcnemar.only_a, mcnemar.only_b, n, level
            )
        worse = (
            difference is not None
            and difference > self.compare.margin
            and (interval is None or interval[0] > self.compare.margin)
        )
        return CompareSummary(
            a=a,
            b=b,
            units=a.units,
            rows=n,
            loss_difference=difference,
            loss_ci=interval,
            ci_level=level,
            accuracy_difference=accuracy_difference,
            accuracy_ci=accuracy_interval,
            mcnemar=mcnemar,
            flipped_to_wrong=mcnemar.only_a,
            flipped_to_right=mcnemar.only_b,
            regressions=tuple(r for *_, r in sorted(self._rise, reverse=True)),
            improvements=tuple(r for *_, r in sorted(self._fall, reverse=True)),
            per_class=tuple(
                ClassChange(ca.name, ca.rows, ca.loss, cb.loss, ca.accuracy, cb.accuracy)
                for ca, cb in zip(a.per_class, b.per_class, strict=True)
            ),
            margin=self.compare.margin,
            worse=worse,
            bootstrap=self._bootstrap_summary(level, base),
        )

    def _bootstrap_summary(self, level: float, base: str) -> PairedBootstrap | None:
        if self._boot is None:
            return None
        boot_a, boot_b = self._boot
        sums = (boot_a.replicates_sums(), boot_b.replicates_sums())
        return PairedBootstrap(
            boot_a.summary(level, base, sums[0]),
            boot_b.summary(level, base, sums[1]),
            paired_difference(boot_a, boot_b, level, base, sums),
            self.keyed_by,
        )

    def _loss_interval(self, level: float, base: str) -> tuple[float, float] | None:
        """Normal approximation for the ratio mean sum(d) / sum(w) (d: weighted differences).

        Var = sum (d_i - r w_i)^2 / (n (n - 1) wbar^2), expanded from the exact sums of
        d^2, d w and w^2 (the usual ratio-estimator variance; with w = 1 it is the
        sample variance of d over n).
        """
        n = self._rows
        if not level or n < 2 or getattr(self, "_infinite", False):
            return None
        sum_d, sum_w = self._sum.exact(), self._sum_w.exact()
        r = sum_d / sum_w
        squares = (
            self._sum_sq.exact()
            - 2 * r * (self._sum_dw.exact() if self._weighted else sum_d)
            + r * r * self._sum_w_sq.exact()
        )
        wbar = sum_w / n
        variance = max(Fraction(0), squares) / (n * (n - 1) * wbar * wbar)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        half = z * math.sqrt(float(variance))
        centre = float(r)
        factor = float(core.to_base(np.float64(1.0), base))
        return ((centre - half) * factor, (centre + half) * factor)


def _place(chunk: Chunk, i: int) -> str:
    return place(chunk.path, int(chunk.lines[i]), chunk.unit)


def mcnemar_exact(only_a: int, only_b: int) -> float | None:
    """McNemar's exact test: the two-sided binomial p-value of the discordant pairs.

    ``min(1, 2 * P(X <= min(b, c)))`` for X ~ Binomial(b + c, 1/2), summed in log space
    (exact enough for any count: each term is within a few ulp).

    >>> mcnemar_exact(10, 2)
    0.03857421875
    >>> mcnemar_exact(0, 0) is None
    True
    """
    n = only_a + only_b
    if n == 0:
        return None
    k = min(only_a, only_b)
    if n <= 1000:
        tail = Fraction(sum(math.comb(n, j) for j in range(k + 1)), 2**n)
        return float(min(Fraction(1), 2 * tail))

    # The terms grow with j up to n / 2 >= k: the largest is j = k, and going down each is
    # at most r = j / (n - j + 1) times the one above, so once a term times 1 / (1 - r) is
    # below 2**-60 of the largest, the rest cannot change the sum. A few sqrt(n) terms,
    # not k (which can be millions).
    def log_term(j: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) - n * math.log(2)

    top = log_term(k)
    terms = []
    for j in range(k, -1, -1):
        term = math.exp(log_term(j) - top)
        terms.append(term)
        ratio = j / (n - j + 1)
        if ratio < 1 and term / (1 - ratio) < 2.0**-60:
            break
    log_tail = top + math.log(math.fsum(terms))
    return min(1.0, 2 * math.exp(log_tail))


def _paired_proportion_interval(
    only_a: int, only_b: int, n: int, level: float
) -> tuple[float, float] | None:
    """Normal interval for the paired difference of accuracies (B - A), Wald with the
    McNemar variance: ((b + c) - (c - b)^2 / n) / n^2 (Agresti, Categorical Data Analysis)."""
    if not level or n < 2:
        return None
    diff = (only_b - only_a) / n
    variance = ((only_a + only_b) - (only_b - only_a) ** 2 / n) / n**2
    half = NormalDist().inv_cdf(0.5 + level / 2) * math.sqrt(max(0.0, variance))
    return (diff - half, diff + half)


# ------------------------------------------------------------------------ the two files
def _piece(chunk: Chunk, index: slice | npt.NDArray[Any]) -> Chunk:
    """Rows *index* of *chunk*, with their share of the results prepared in the reader's
    threads (the two files' chunks rarely hold the same rows: their lines differ)."""
    prepared = chunk.prepared
    return dataclasses.replace(
        chunk,
        logits=chunk.logits[index],
        labels=None if chunk.labels is None else chunk.labels[index],
        targets=None if chunk.targets is None else chunk.targets[index],
        lines=chunk.lines[index],
        weights=None if chunk.weights is None else chunk.weights[index],
        groups=None if chunk.groups is None else chunk.groups[index],
        prepared=prepared.take(index) if isinstance(prepared, Prepared) else None,
    )


def _counting(chunks: Iterator[Chunk], tally: list[int]) -> Iterator[Chunk]:
    """*chunks* with their counts of renormalized rows (scores, targets) moved into
    *tally*: a count is the chunk's as read, and the pairing may cut a chunk into pieces
    (or leave rows unpaired), so the pieces carry none."""
    for chunk in chunks:
        if chunk.renormalized or chunk.targets_renormalized:
            tally[0] += chunk.renormalized
            tally[1] += chunk.targets_renormalized
            chunk = dataclasses.replace(chunk, renormalized=0, targets_renormalized=0)
        yield chunk


@dataclass
class _Pending:
    """A chunk of one side, folded, whose rows from *start* on wait for their partners."""

    chunk: Chunk
    result: ChunkResult
    start: int = 0

    @property
    def left(self) -> int:
        return len(self.chunk.lines) - self.start


def _fold_by_position(
    pair: PairedComparison,
    chunks: tuple[Iterator[Chunk], Iterator[Chunk]],
    names: tuple[str, str],
) -> None:
    """Pair the rows of the two files by position and fold them into *pair*.

    Each side's chunks are folded whole, as ``xent batch`` folds them (cutting them to fit
    the other side's, as the paired statistics need, doubled the accumulators' calls: at
    K = 1000 their cost per chunk was a third of compare's main thread); the pairs are
    cut from the per-row results.
    """
    pending: list[_Pending | None] = [None, None]
    last: list[tuple[Chunk, int] | None] = [None, None]  # each side's last paired row
    folded = [0, 0]  # rows folded per side: the pair number of the next is this + 1

    def pull(side: int) -> _Pending | None:
        for chunk in chunks[side]:
            chunk = dataclasses.replace(chunk, path=names[side])
            result = pair.fold(side, chunk, folded[side] + 1)
            folded[side] += len(chunk.lines)
            if result is not None:  # None: an empty chunk
                return _Pending(chunk, result)
        return None

    while True:
        for side in (0, 1):
            if pending[side] is None:
                pending[side] = pull(side)
        a, b = pending
        if a is None or b is None:
            break
        n = min(a.left, b.left)
        cut_a, cut_b = slice(a.start, a.start + n), slice(b.start, b.start + n)
        pair._check_same_labels(_rows(a.chunk, cut_a), _rows(b.chunk, cut_b))
        pair.add_pairs(
            _take(a.result, cut_a),
            _take(b.result, cut_b),
            a.chunk.unit,
            b.chunk.unit,
            soft=a.chunk.targets is not None,
        )
        for side, got in ((0, a), (1, b)):
            got.start += n
            last[side] = (got.chunk, got.start - 1)
            if not got.left:
                pending[side] = None
    longer = 0 if pending[0] is not None else 1
    rest = pending[longer]
    if rest is None:
        return
    shorter = 1 - longer
    end = last[shorter]
    ended = "has no rows" if end is None else f"ends at {_place(*end)}"
    raise DataError(
        names[shorter],
        None,
        None,
        f"has fewer rows than the other file: it {ended}, and"
        f" {_place(rest.chunk, rest.start)} has no partner",
    )


def _rows(chunk: Chunk, index: slice) -> Chunk:
    """Rows *index* of *chunk*: their labels or targets and places (for the check that
    the two sides agree), not their scores."""
    return dataclasses.replace(
        chunk,
        logits=chunk.logits[:0],
        labels=None if chunk.labels is None else chunk.labels[index],
        targets=None if chunk.targets is None else chunk.targets[index],
        lines=chunk.lines[index],
        prepared=None,
    )


def _by_line(
    chunks_a: Iterator[Chunk], chunks_b: Iterator[Chunk], counter: list[int]
) -> Iterator[tuple[Chunk, Chunk]]:
    """Pairs matched by line (or row) number: with ``--on-error skip``, a row skipped on
    one side leaves its partner alone; ``counter[0]`` counts such unpaired rows."""
    a = next(chunks_a, None)
    b = next(chunks_b, None)
    while a is not None and b is not None:
        high = min(int(a.lines[-1]), int(b.lines[-1]))
        take_a, take_b = a.lines <= high, b.lines <= high
        common, ia, ib = np.intersect1d(
            a.lines[take_a], b.lines[take_b], assume_unique=True, return_indices=True
        )
        counter[0] += int(take_a.sum()) + int(take_b.sum()) - 2 * len(common)
        if len(common):
            yield _piece(a, ia), _piece(b, ib)
        a = _piece(a, ~take_a) if not take_a.all() else next(chunks_a, None)
        b = _piece(b, ~take_b) if not take_b.all() else next(chunks_b, None)
    for rest, chunks in ((a, chunks_a), (b, chunks_b)):
        while rest is not None:
            counter[0] += len(rest.lines)
            rest = next(chunks, None)


def compare_files(
    path_a: str,
    path_b: str,
    read_options: Any,
    options: BatchOptions,
    compare: CompareOptions,
    notes: list[str] | None = None,
) -> CompareSummary:
    """Compare the model outputs in *path_a* and *path_b* row by row (see the module).

    *notes*, when given, receives what the readers inferred about each file
    (``FILE: note``), for the caller to say (as xent batch does on stderr).
    """
    import contextlib

    from xentcli.batch.reader import open_table

    with contextlib.ExitStack() as stack:
        # read side by side: each reader with half the threads and blocks of one
        table_a = stack.enter_context(open_table(path_a, read_options, readers=2))
        table_b = stack.enter_context(open_table(path_b, read_options, readers=2))
        k_a = getattr(table_a, "num_classes", len(table_a.logit_names))
        k_b = getattr(table_b, "num_classes", len(table_b.logit_names))
        if k_a != k_b:
            raise DataError(
                table_b.display_name,
                None,
                None,
                f"has {k_b} classes and {table_a.display_name} has {k_a}: compare needs the"
                " same classes",
            )
        named = getattr(table_a, "class_names", None)
        if options.class_names is None and named is not None:
            options = dataclasses.replace(options, class_names=named)
        if notes is not None:
            for table in (table_a, table_b):
                notes.extend(f"{table.display_name}: {n}" for n in getattr(table, "notes", ()))
        pair = PairedComparison(k_a, options, compare)
        # Each side's scores as its reader found them (A may hold logits, B probabilities).
        pair.a.options = _with_scores(options, table_a)
        pair.b.options = _with_scores(options, table_b)
        # the kernel and the metrics' rows, in the readers' parsing threads
        table_a.prepare = pair.a.prepare
        table_b.prepare = pair.b.prepare
        pair.a.start_file(table_a.display_name)
        pair.b.start_file(table_b.display_name)
        skipping = getattr(read_options, "on_error", "raise") == "skip"
        unpaired = [0]
        id_column = getattr(read_options, "id_column", None)
        if id_column is not None:
            unpaired[0] = _join(pair, table_a, table_b, read_options, id_column, skipping)
            summary = pair.summary()
            summary.extra["id_column"] = id_column
            if skipping:
                summary.extra["rows_unpaired"] = unpaired[0]
            return summary
        # the renormalized rows counted as read: pairing cuts chunks into pieces that
        # would each carry their chunk's count (issue 14: counted once per piece)
        tallies = ([0, 0], [0, 0])
        chunks_a = _counting(iter(table_a.chunks()), tallies[0])
        chunks_b = _counting(iter(table_b.chunks()), tallies[1])
        names = (table_a.display_name, table_b.display_name)
        if skipping:
            for chunk_a, chunk_b in _by_line(chunks_a, chunks_b, unpaired):
                pair.add(
                    dataclasses.replace(chunk_a, path=names[0]),
                    dataclasses.replace(chunk_b, path=names[1]),
                )
        else:
            _fold_by_position(pair, (chunks_a, chunks_b), names)
        for accumulator, (rows, targets) in zip((pair.a, pair.b), tallies, strict=True):
            accumulator.rows_renormalized += rows
            accumulator.targets_renormalized += targets
        pair.a.add_skipped(table_a.display_name, table_a.rows_skipped, table_a.skipped)
        pair.b.add_skipped(table_b.display_name, table_b.rows_skipped, table_b.skipped)
        summary = pair.summary()
    if skipping:
        summary.extra["rows_unpaired"] = unpaired[0]
    return summary


def _with_scores(options: BatchOptions, table: Any) -> BatchOptions:
    """*options* with the kind of scores *table* holds (logits for readers that do not
    detect it), and the binary case of one score column."""

    return dataclasses.replace(
        options,
        scores=getattr(table, "scores", "logits"),
        scores_detected=getattr(table, "scores_detected", False),
        binary=getattr(table, "binary", False),
    )


def _join(
    pair: PairedComparison,
    table_a: Any,
    table_b: Any,
    read_options: Any,
    id_column: str,
    skipping: bool,
) -> int:
    """Pair the rows of the two open tables on *id_column* (see :mod:`.idjoin`); return
    the number of rows without a partner (with *skipping*)."""
    from xentcli.batch import idjoin
    from xentcli.batch._formats import file_format
    from xentcli.batch._types import Chunk

    fmt = getattr(read_options, "file_format", None)
    ids = [
        idjoin.read_ids(table, file_format(table.path, fmt), id_column)
        for table in (table_a, table_b)
    ]
    sides = []
    for table, accumulator in ((table_a, pair.a), (table_b, pair.b)):
        side = idjoin.SideRows(table.display_name, "line", keep_metrics=pair.bootstrapping)
        idjoin.fold_side(table, accumulator, side)
        accumulator.add_skipped(table.display_name, table.rows_skipped, table.skipped)
        sides.append(side)
    skipped = tuple(
        [e.line for e in table.skipped if e.line is not None] for table in (table_a, table_b)
    )
    rows_a, rows_b, index_a, index_b, unpaired, paired_ids = idjoin.align(
        ids[0], ids[1], sides[0], sides[1], (skipped[0], skipped[1]), skipping=skipping
    )

    def rows_of(side: idjoin.SideRows, rows: ChunkResult, index: Any) -> Chunk:
        labels = np.concatenate(side.label_values)[index] if side.label_values else None
        targets = np.concatenate(side.targets)[index] if side.targets else None
        return Chunk(
            side.path,
            np.empty((len(index), 0)),
            labels,
            targets,
            rows.lines[index],
            unit=side.unit,
        )

    pair.unpaired = unpaired
    pair.joined = True
    chunk_a, chunk_b = rows_of(sides[0], rows_a, index_a), rows_of(sides[1], rows_b, index_b)
    pair._check_same_labels(chunk_a, chunk_b, joined=True)
    pair.add_pairs(
        _take(rows_a, index_a),
        _take(rows_b, index_b),
        sides[0].unit,
        sides[1].unit,
        soft=chunk_a.targets is not None,
    )
    if pair.bootstrapping:
        _bootstrap_by_id(pair, sides, (rows_a, rows_b), (index_a, index_b), paired_ids)
    return unpaired


def _bootstrap_by_id(
    pair: PairedComparison,
    sides: list[Any],
    rows: tuple[ChunkResult, ChunkResult],
    index: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]],
    paired_ids: Any,
) -> None:
    """Fold the joined pairs into the paired bootstrap, keyed by their id's rank among the
    paired ids (so neither file's row order changes a bit)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    counted = rows[0].counted[index[0]] & rows[1].counted[index[1]]
    counted_ids = paired_ids.filter(pa.array(counted))
    by_id = np.asarray(pc.sort_indices(counted_ids).to_numpy(), dtype=np.intp)
    keys = np.arange(1, len(by_id) + 1, dtype=np.int64)
    paired = []
    for side, result, at in zip(sides, rows, index, strict=True):
        # a counted row's place among the side's metric rows (which hold counted rows only)
        metric_index = np.cumsum(result.counted) - 1
        paired.append(take_rows(side.metric_rows(), metric_index[at[counted]][by_id], keys))
    pair.keyed_by = "id"
    pair.add_bootstrap_rows(paired[0], paired[1])


def _take(rows: ChunkResult, index: Any) -> ChunkResult:

    return dataclasses.replace(
        rows,
        lines=rows.lines[index],
        labels=rows.labels[index],
        predicted=rows.predicted[index],
        probability=rows.probability[index],
        loss=rows.loss[index],
        counted=rows.counted[index],
    )
