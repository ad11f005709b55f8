"""Confidence intervals from exact sums: normal approximation and Wilson.

- Mean loss: the mean is a ratio ``sum l / sum w`` (``w`` the class weight, 1 without
  ``--weights``); its standard error is the delta method's,
  ``sqrt(n / (n - 1) * sum (l - mean w)^2) / sum w``, where
  ``sum (l - mean w)^2 = sum l^2 - 2 mean sum l w + mean^2 sum w^2`` is computed exactly
  from exact sums (each row's product rounded once). Without weights this is ``s / sqrt(n)``.
- Brier score: ``mean +- z s / sqrt(n)``, ``s`` the sample standard deviation of the row
  terms, from their exact sum and sum of squares.
- Accuracy (and top-k accuracy): the Wilson score interval of ``hits / n``.

``z`` is the standard normal quantile of ``(1 + level) / 2``. Normal intervals are
clipped to the figure's range (the loss to [0, inf), the Brier score to [0, 2]). An
interval is None when it is undefined (fewer than 2 rows, or an infinite loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any

import numpy as np

from xentcli import core
from xentcli.batch.metrics._rows import MetricRows
from xentcli.core import ExactSum
from xentcli.errors import StateError

Interval = tuple[float, float]


def z_value(level: float) -> float:
    """The two-sided standard normal quantile for *level* (0.95 -> 1.959963984540054)."""
    return NormalDist().inv_cdf((1.0 + level) / 2.0)


def wilson(hits: int, n: int, level: float) -> Interval | None:
    """The Wilson score interval of the proportion ``hits / n``.

    >>> lo, hi = wilson(81, 100, 0.95); round(lo, 4), round(hi, 4)
    (0.7222, 0.8749)
    """
    if n == 0:
        return None
    return wilson_proportion(hits / n, n, level)


def wilson_proportion(p: float, n: float, level: float) -> Interval:
    """The Wilson score interval of a proportion *p* over *n* rows (*n* may be an
    effective sample size, not a whole number).

    >>> lo, hi = wilson_proportion(0.81, 100, 0.95); round(lo, 4), round(hi, 4)
    (0.7222, 0.8749)
    """
    z = z_value(level)
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def normal(
    mean: Fraction, variance_of_mean: Fraction, level: float, low: float, high: float
) -> Interval:
    """``mean +- z sqrt(variance_of_mean)``, clipped to the figure's range [low, high]."""
    try:
        half = z_value(level) * math.sqrt(float(variance_of_mean))
        centre = float(mean)
    except OverflowError:  # beyond the float range: no finite interval to give
        return low, high
    return max(low, centre - half), min(high, centre + half)


class LossMomentsState:
    """Exact sums of the row loss ``l``, its weight ``w``, ``l^2``, ``l w`` and ``w^2``."""

    NAMES = ("loss", "weight", "squares", "cross", "weight_squares")

    def __init__(self) -> None:
        self.sums = {name: ExactSum() for name in self.NAMES}

    def update(self, rows: MetricRows) -> None:
        """Fold one chunk's rows in (rows without a loss are skipped)."""
        if rows.loss is None or rows.loss_weight is None:
            return
        self.add(rows.loss, rows.loss_weight)

    def add(self, loss: np.ndarray, weight: np.ndarray) -> None:
        """Fold in values ``l`` (already weighted: ``w x``) and their weights ``w``."""
        with_weight = not (weight == 1.0).all()
        s = self.sums
        with np.errstate(over="ignore"):  # a square past the float range is inf: no interval
            total = ExactSum()
            total.add(loss)
            s["loss"].merge(total)
            s["squares"].add(loss * loss)
            if with_weight:
                s["weight"].add(weight)
                s["cross"].add(loss * weight)
                s["weight_squares"].add(weight * weight)
            else:  # weights of 1: counts and the loss itself (summed once), as the products
                s["weight"].add_ones(loss.size)
                s["cross"].merge(total)
                s["weight_squares"].add_ones(loss.size)

    def merge(self, other: LossMomentsState) -> None:
        """Add everything *other* holds."""
        for name in self.NAMES:
            self.sums[name].merge(other.sums[name])

    def to_state(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        return {name: self.sums[name].to_state() for name in self.NAMES}

    @classmethod
    def from_state(cls, data: Any, where: str = "loss_moments") -> LossMomentsState:
        """A state from :meth:`to_state`'s data, every field checked."""
        fields = core.need_dict(data, where, cls.NAMES)
        state = cls()
        for name in cls.NAMES:
            state.sums[name] = ExactSum.from_state(fields[name], f"{where}.{name}")
        if len({acc.count for acc in state.sums.values()}) != 1:
            raise StateError(f"{where}: the sums hold different numbers of rows")
        return state

    def effective_rows(self) -> Fraction | None:
        """Kish's effective sample size ``(sum w)^2 / sum w^2`` (None if no weight)."""
        squares = self.sums["weight_squares"].exact()
        return None if squares == 0 else self.sums["weight"].exact() ** 2 / squares

    def interval(self, level: float, high: float = math.inf) -> Interval | None:
        """The interval of the weighted mean loss in nats (None if undefined); a mean of
        other values (``--weight-column``: the Brier term) is clipped to [0, *high*]."""
        s = self.sums
        n = s["loss"].count
        values = [acc.value() for acc in s.values()]
        if n < 2 or not all(math.isfinite(v) for v in values):
            return None
        total, weight = s["loss"].exact(), s["weight"].exact()
        if weight == 0:
            return None
        mean = total / weight
        spread = s["squares"].exact() - 2 * mean * s["cross"].exact()
        spread += mean * mean * s["weight_squares"].exact()
        variance = max(spread, Fraction(0)) * n / (n - 1) / (weight * weight)
        return normal(mean, variance, level, 0.0, high)


def brier_interval(total: ExactSum, squares: ExactSum, n: int, level: float) -> Interval | None:
    """The normal interval of the mean Brier score from its exact sums."""
    if n < 2:
        return None
    mean = total.exact() / n
    variance = max(squares.exact() - n * mean * mean, Fraction(0)) / (n - 1)
    return normal(mean, variance / n, level, 0.0, 2.0)


@dataclass(frozen=True)
class Intervals:
    """The ``"ci"`` object of the JSON: each interval ``[low, high]`` or None."""

    level: float
    loss: Interval | None  #: in the run's unit
    accuracy: Interval | None
    brier: Interval | None
    top_k: dict[int, Interval | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "method": {"loss": "normal", "accuracy": "wilson", "brier": "normal"},
            "loss": _pair(self.loss),
            "accuracy": _pair(self.accuracy),
            "brier": _pair(self.brier),
            "top_k_accuracy": {str(k): _pair(v) for k, v in self.top_k.items()},
        }


def _pair(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]
