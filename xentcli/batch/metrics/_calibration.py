"""Calibration's streaming state: ECE (equal-width and equal-mass bins), MCE, reliability.

The top-label confidence ``c = max_k q_k`` of each row goes to

- an equal-width bin ``min(floor(c * B), B - 1)``: bin ``b`` holds ``b/B <= c < (b+1)/B``
  and a confidence of exactly 1.0 belongs to the last bin;
- a fine bin of a fixed grid (:func:`fine_bin`) from which the equal-mass bins are built
  at the end: this is how their quantiles are found in one pass. The grid cuts the
  distance of ``c`` to the nearer of 0 and 1 into bins of 2**-8 relative width (distances
  below 2**-40 share one bin), so it is fine near a confidence of 1, where a good
  classifier's rows crowd.

Each bin holds a row count and a correct count (integers) and the exact sum of its
confidences (:class:`~xentcli.core.GroupedExactSum`), so every figure is a correctly
rounded exact rational: the same bits whatever the chunking, thread count or order.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.batch.metrics._rows import MetricRows
from xentcli.batch.metrics._state import counts_from_state, counts_to_state
from xentcli.core import GroupedExactSum
from xentcli.errors import StateError

IntArray = npt.NDArray[np.int64]

DEFAULT_BINS = 15
MAX_BINS = 10_000  #: more bins than this is a usage error (each bin is a table line)
_FINE_BITS = 8  # mantissa bits of the distance kept by the fine grid
_FINE_EXPONENTS = 40  # distances 2**-40 .. 1/2 get their own bins
_FINE_SIDE = _FINE_EXPONENTS * (1 << _FINE_BITS) + 1  # bins on one side of 1/2
FINE_BINS = 2 * _FINE_SIDE


def fine_bin(confidence: npt.NDArray[np.float64]) -> IntArray:
    """The fine bin of each confidence in (0, 1]: increasing with the confidence.

    The distance ``d = min(c, 1 - c)`` (exact in float64) keeps its binary exponent and
    its first 8 mantissa bits; ``d < 2**-40`` is one bin.

    >>> fine_bin(np.array([1e-13, 0.1, 0.5, 0.9, 1.0])).tolist()
    [0, 9370, 10496, 11111, 20481]
    """
    c = np.asarray(confidence, dtype=np.float64)
    upper = c >= 0.5
    d = np.where(upper, 1.0 - c, c)
    bits = d.view(np.uint64)
    exponent = (bits >> np.uint64(52)).astype(np.int64) - 1023
    mantissa = ((bits >> np.uint64(52 - _FINE_BITS)) & np.uint64((1 << _FINE_BITS) - 1)).astype(
        np.int64
    )
    key = (exponent + _FINE_EXPONENTS) * (1 << _FINE_BITS) + mantissa + 1
    key = np.where(exponent < -_FINE_EXPONENTS, 0, key)
    return np.where(upper, FINE_BINS - 1 - key, key)


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width bin of the reliability table."""

    low: float
    high: float
    rows: int
    confidence: float | None  #: mean confidence of its rows (None if empty)
    accuracy: float | None  #: fraction of its rows predicted right (None if empty)
    weight: float | None = None  #: with sample weights: the bin's weight (else None)

    @property
    def gap(self) -> float | None:
        """Accuracy minus confidence (negative: over-confident)."""
        if self.confidence is None or self.accuracy is None:
            return None
        return self.accuracy - self.confidence


@dataclass(frozen=True)
class CalibrationSummary:
    """ECE (equal-width and equal-mass), MCE and the reliability table."""

    rows: int
    n_bins: int
    ece: float | None
    ece_equal_mass: float | None
    ece_equal_mass_bound: float | None  #: |reported - exact equal-mass ECE| <= this
    mce: float | None
    bins: tuple[ReliabilityBin, ...]
    equal_mass_rows: tuple[int, ...]  #: rows in each equal-mass bin as built

    def to_json(self) -> dict[str, object]:
        """The ``"calibration"`` object of ``xent batch --format json``."""
        return {
            "ece": self.ece,
            "ece_equal_mass": self.ece_equal_mass,
            "ece_equal_mass_bound": self.ece_equal_mass_bound,
            "mce": self.mce,
            "n_bins": self.n_bins,
            "bins": [
                {
                    "low": b.low,
                    "high": b.high,
                    "rows": b.rows,
                    "confidence": b.confidence,
                    "accuracy": b.accuracy,
                    "gap": b.gap,
                    **({} if b.weight is None else {"weight": b.weight}),
                }
                for b in self.bins
            ],
            "equal_mass_rows": list(self.equal_mass_rows),
        }


class _Binned:
    """Rows, correct rows (integers) and exact confidence sums per bin."""

    def __init__(self, bins: int, weighted: bool = False) -> None:
        self.rows = np.zeros(bins, dtype=np.int64)
        self.correct = np.zeros(bins, dtype=np.int64)
        #: the sum of the confidences (with sample weights: of weight * confidence)
        self.confidence = GroupedExactSum(bins)
        #: with sample weights: per bin the weight of the rows, and of the right rows
        self.weight = GroupedExactSum(bins) if weighted else None
        self.right = GroupedExactSum(bins) if weighted else None

    def update(self, index: IntArray, rows: MetricRows) -> None:
        n = self.rows.size
        self.rows += np.bincount(index, minlength=n)
        correct = rows.correct
        self.correct += np.bincount(index[correct], minlength=n)
        if self.weight is None or self.right is None:
            self.confidence.add(rows.confidence, index)
            return
        assert rows.weight is not None
        self.confidence.add(rows.confidence * rows.weight, index)
        self.weight.add(rows.weight, index)
        self.right.add(rows.weight[correct], index[correct])

    def merge(self, other: _Binned) -> None:
        self.rows += other.rows
        self.correct += other.correct
        self.confidence.merge(other.confidence)
        if self.weight is not None and self.right is not None:
            if other.weight is None or other.right is None:
                raise ValueError("cannot merge weighted calibration bins with unweighted ones")
            self.weight.merge(other.weight)
            self.right.merge(other.right)
        elif other.weight is not None:
            raise ValueError("cannot merge weighted calibration bins with unweighted ones")

    def masses(self, present: list[int]) -> tuple[list[Fraction], list[Fraction], list[Fraction]]:
        """Per bin of *present*: its weight, its right rows' weight, its confidence sum
        (row counts and plain sums without sample weights), exactly."""
        if self.weight is None or self.right is None:
            return (
                [Fraction(int(self.rows[b])) for b in present],
                [Fraction(int(self.correct[b])) for b in present],
                [self.confidence.exact(b) for b in present],
            )
        return (
            [self.weight.exact(b) for b in present],
            [self.right.exact(b) for b in present],
            [self.confidence.exact(b) for b in present],
        )

    def to_state(self) -> dict[str, Any]:
        """The non-empty bins only (the fine grid has 20 482 bins, mostly empty)."""
        present = np.flatnonzero(self.rows)
        dense = self.confidence.to_state()
        keep = present.tolist()
        out = {
            "bins": keep,
            "rows": counts_to_state(self.rows[present]),
            "correct": counts_to_state(self.correct[present]),
            "sums": [dense["sums"][i] for i in keep],  # type: ignore[index]
            "special": [dense["special"][i] for i in keep],  # type: ignore[index]
        }
        for name in ("weight", "right"):
            sums = getattr(self, name)
            if sums is not None:
                dense = sums.to_state()
                out[name] = {
                    "sums": [dense["sums"][i] for i in keep],
                    "special": [dense["special"][i] for i in keep],
                }
        return out

    @classmethod
    def from_state(cls, data: Any, bins: int, where: str) -> _Binned:
        weighted = isinstance(data, dict) and "weight" in data
        keys = ("bins", "rows", "correct", "sums", "special")
        fields = core.need_dict(data, where, keys + (("weight", "right") if weighted else ()))
        index = core.need_list(fields["bins"], f"{where}.bins", max_size=bins)
        n = len(index)
        present = [core.need_int(i, f"{where}.bins[{j}]", 0, bins - 1) for j, i in enumerate(index)]
        if any(b <= a for a, b in itertools.pairwise(present)):
            raise StateError(f"{where}.bins: not increasing")
        rows = counts_from_state(fields["rows"], f"{where}.rows", n)
        correct = counts_from_state(fields["correct"], f"{where}.correct", n)
        sums = core.need_list(fields["sums"], f"{where}.sums", n)
        special = core.need_list(fields["special"], f"{where}.special", n)
        if (rows == 0).any() or (correct > rows).any():
            raise StateError(f"{where}: a bin's counts do not agree")
        state = cls(bins, weighted)
        state.rows[present] = rows
        state.correct[present] = correct
        state.confidence = _dense(sums, special, present, state.rows, f"{where}.confidence")
        if any(not math.isfinite(state.confidence.value(i)) for i in present):
            raise StateError(f"{where}.special: a confidence sum is not finite")
        if weighted:
            for name, counts in (("weight", state.rows), ("right", state.correct)):
                part = core.need_dict(fields[name], f"{where}.{name}", ("sums", "special"))
                sums_of = core.need_list(part["sums"], f"{where}.{name}.sums", n)
                special_of = core.need_list(part["special"], f"{where}.{name}.special", n)
                dense = _dense(sums_of, special_of, present, counts, f"{where}.{name}")
                if any(not math.isfinite(dense.value(i)) or dense.exact(i) < 0 for i in present):
                    raise StateError(f"{where}.{name}: a weight sum is negative or not finite")
                setattr(state, name, dense)
        masses, right, confidence = state.masses(present)
        for m, r, c in zip(masses, right, confidence, strict=True):
            if not (0 < c <= m or (m == c == 0)) or r > m:
                raise StateError(f"{where}.sums: a mean confidence outside (0, 1]")
        return state

    def gaps(self, present: IntArray) -> list[Fraction]:
        """``|sum of confidences - correct|`` of each bin in *present*, exactly."""
        return [abs(self.confidence.exact(b) - int(self.correct[b])) for b in present.tolist()]


def _dense(
    sums: list[Any], special: list[Any], present: list[int], counts: IntArray, where: str
) -> GroupedExactSum:
    """A GroupedExactSum of ``counts.size`` groups from the sums of the *present* ones."""
    # Only the present bins are parsed (the fine grid has 20 482 bins, mostly empty).
    small = GroupedExactSum.from_state(
        {
            "groups": len(present),
            "sums": sums,
            "special": special,
            "counts": counts_to_state(counts[present]),
        },
        len(present),
        where,
    )
    return small.spread(present, counts.size)


class CalibrationState:
    """ECE, MCE and the reliability table from one pass (see the module docstring)."""

    def __init__(self, bins: int = DEFAULT_BINS, weighted: bool = False) -> None:
        if not 1 <= bins <= MAX_BINS:
            raise ValueError(f"calibration needs 1 to {MAX_BINS} bins")
        self.n_bins = int(bins)
        self.weighted = weighted
        self.width = _Binned(self.n_bins, weighted)
        self.fine = _Binned(FINE_BINS, weighted)

    def update(self, rows: MetricRows) -> None:
        """Fold one chunk's rows in."""
        if not len(rows):
            return
        index = np.minimum((rows.confidence * self.n_bins).astype(np.int64), self.n_bins - 1)
        self.width.update(index, rows)
        self.fine.update(fine_bin(rows.confidence), rows)

    def merge(self, other: CalibrationState) -> None:
        """Add everything *other* (with the same number of bins) holds."""
        if other.n_bins != self.n_bins:
            raise ValueError(f"cannot merge {other.n_bins} bins into {self.n_bins}")
        self.width.merge(other.width)
        self.fine.merge(other.fine)

    def to_state(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        return {"bins": self.n_bins, "width": self.width.to_state(), "fine": self.fine.to_state()}

    @classmethod
    def from_state(cls, data: Any, where: str = "calibration") -> CalibrationState:
        """A state from :meth:`to_state`'s data, every field checked."""
        fields = core.need_dict(data, where, ("bins", "width", "fine"))
        state = cls(core.need_int(fields["bins"], f"{where}.bins", 1, MAX_BINS))
        state.width = _Binned.from_state(fields["width"], state.n_bins, f"{where}.width")
        state.fine = _Binned.from_state(fields["fine"], FINE_BINS, f"{where}.fine")
        if int(state.width.rows.sum()) != int(state.fine.rows.sum()):
            raise StateError(f"{where}: the two binnings hold different rows")
        if (state.width.weight is None) != (state.fine.weight is None):
            raise StateError(f"{where}: one binning is weighted, the other not")
        state.weighted = state.width.weight is not None
        return state

    def summary(self) -> CalibrationSummary:
        """Every calibration figure (None where there is no row)."""
        if self.weighted:
            return self._weighted_summary()
        total = int(self.width.rows.sum())
        bins = []
        for b in range(self.n_bins):
            n = int(self.width.rows[b])
            bins.append(
                ReliabilityBin(
                    low=b / self.n_bins,
                    high=(b + 1) / self.n_bins,
                    rows=n,
                    confidence=(float(self.width.confidence.exact(b) / n) if n else None),
                    accuracy=int(self.width.correct[b]) / n if n else None,
                )
            )
        if not total:
            return CalibrationSummary(0, self.n_bins, None, None, None, None, tuple(bins), ())
        present = np.flatnonzero(self.width.rows)
        gaps = self.width.gaps(present)
        ece = float(sum(gaps, Fraction(0)) / total)
        mce = float(
            max(g / int(self.width.rows[b]) for g, b in zip(gaps, present.tolist(), strict=True))
        )
        ece_mass, bound, mass_rows = self._equal_mass(total)
        return CalibrationSummary(
            total, self.n_bins, ece, ece_mass, bound, mce, tuple(bins), mass_rows
        )

    def _equal_mass(self, total: int) -> tuple[float, float, tuple[int, ...]]:
        """ECE over B bins of equal row counts, built from the fine grid.

        The exact rule puts the row of 0-based rank ``t`` (by confidence) in bin
        ``floor(t * B / N)``. A fine bin goes whole to the bin of its first row, so only
        rows of a fine bin that straddles an edge can be misplaced. Moving rows ``R``
        between two bins changes the ECE by at most ``2 |sum_R (c - a)| / N`` (``a`` is 1
        for a right prediction), and ``|c - a|`` is at most the fine bin's largest
        distance ``d`` to 1 for a right row above 1/2 (to 0 for a wrong row below 1/2),
        else at most 1: summed over the straddling fine bins, that is the bound.
        """
        fine = self.fine
        present = np.flatnonzero(fine.rows)
        counts = fine.rows[present]
        first = np.cumsum(counts) - counts
        last = first + counts - 1
        b = self.n_bins
        target = first * b // total
        straddles = np.flatnonzero((last * b // total) != target)
        bound = 0.0
        for i in straddles.tolist():
            fb = int(present[i])
            right = int(fine.correct[fb])
            wrong = int(fine.rows[fb]) - right
            near = float(_FINE_DISTANCE[fb])
            bound += right * near + wrong if fb >= _FINE_SIDE else right + wrong * near
        bound = 2.0 * bound / total
        gaps_by_bin = [Fraction(0)] * b
        rows_by_bin = [0] * b
        for j, fb in zip(target.tolist(), present.tolist(), strict=True):
            gaps_by_bin[j] += fine.confidence.exact(fb) - int(fine.correct[fb])
            rows_by_bin[j] += int(fine.rows[fb])
        ece = float(sum((abs(g) for g in gaps_by_bin), Fraction(0)) / total)
        return ece, bound, tuple(rows_by_bin)

    def _weighted_summary(self) -> CalibrationSummary:
        """The figures with sample weights: every count is a weight sum (exact).

        A bin's confidence and accuracy are its rows' weighted means; ECE is
        ``sum_b |sum_b s c - sum_b s a| / sum s``; MCE the largest gap of a bin with
        weight; the equal-mass bins hold equal weight (see :meth:`_weighted_equal_mass`).
        """
        b_count = self.n_bins
        every = list(range(b_count))
        mass, right, confidence = self.width.masses(every)
        bins = []
        for b in every:
            m = mass[b]
            bins.append(
                ReliabilityBin(
                    low=b / b_count,
                    high=(b + 1) / b_count,
                    rows=int(self.width.rows[b]),
                    confidence=float(confidence[b] / m) if m else None,
                    accuracy=float(right[b] / m) if m else None,
                    weight=float(m),
                )
            )
        total = sum(mass, Fraction(0))
        rows = int(self.width.rows.sum())
        if not total:
            return CalibrationSummary(rows, b_count, None, None, None, None, tuple(bins), ())
        gaps = [abs(c - r) for c, r in zip(confidence, right, strict=True)]
        ece = float(sum(gaps, Fraction(0)) / total)
        mce = float(max(g / m for g, m in zip(gaps, mass, strict=True) if m))
        ece_mass, bound, mass_rows = self._weighted_equal_mass(total)
        return CalibrationSummary(rows, b_count, ece, ece_mass, bound, mce, tuple(bins), mass_rows)

    def _weighted_equal_mass(self, total: Fraction) -> tuple[float, float, tuple[int, ...]]:
        """ECE over B bins of equal weight, from the fine grid (as :meth:`_equal_mass`).

        A fine bin whose weight begins at ``F`` (the weight of the lower fine bins) goes
        whole to bin ``floor(F B / W)``; it straddles an edge when its weight reaches past
        ``(bin + 1) W / B``. The bound is :meth:`_equal_mass`'s with weights for counts.
        """
        fine = self.fine
        present = np.flatnonzero(fine.rows).tolist()
        mass, right, confidence = fine.masses(present)
        b_count = self.n_bins
        gaps_by_bin = [Fraction(0)] * b_count
        rows_by_bin = [0] * b_count
        bound = Fraction(0)
        before = Fraction(0)
        for fb, m, r, c in zip(present, mass, right, confidence, strict=True):
            target = min(int(before * b_count // total), b_count - 1)
            if (before + m) * b_count > (target + 1) * total:
                near = Fraction(float(_FINE_DISTANCE[fb]))
                wrong = m - r
                bound += r * near + wrong if fb >= _FINE_SIDE else r + wrong * near
            gaps_by_bin[target] += c - r
            rows_by_bin[target] += int(fine.rows[fb])
            before += m
        ece = float(sum((abs(g) for g in gaps_by_bin), Fraction(0)) / total)
        return ece, float(2 * bound / total), tuple(rows_by_bin)


def _fine_distances() -> npt.NDArray[np.float64]:
    """Per fine bin, the largest distance to 0 (below 1/2) or 1 (above) of its values."""
    key = np.arange(_FINE_SIDE)
    exponent = (key - 1) // (1 << _FINE_BITS) - _FINE_EXPONENTS
    mantissa = (key - 1) % (1 << _FINE_BITS)
    upper = np.ldexp(1.0 + (mantissa + 1) / (1 << _FINE_BITS), exponent)
    upper[0] = 2.0**-_FINE_EXPONENTS
    return np.concatenate([upper, upper[::-1]])


_FINE_DISTANCE = _fine_distances()
