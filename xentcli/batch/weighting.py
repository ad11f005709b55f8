"""Sample weights (``xent batch --weight-column NAME``): how a row's weight enters the sums.

A row of sample weight ``s`` (finite, >= 0) counts ``s`` times: its loss and the mean's
denominator are multiplied by ``s`` (with class weights ``w``, by the product ``s w[i]``),
and every other mean (accuracy, Brier, top-k, calibration, per-class figures) divides a
sum of ``s`` times the row's value by the sum of ``s``. A row of weight 0 adds nothing
(not even an infinite loss). The products are rounded once per row and the sums are exact
(:class:`~xentcli.core.ExactSum`), so the figures are the same bits whatever the chunking.
Quantiles, the histogram and the worst rows describe rows, unweighted.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.core import ExactSum, GroupedExactSum
from xentcli.errors import StateError

FloatArray = npt.NDArray[np.float64]


def weigh(values: FloatArray, weights: FloatArray) -> FloatArray:
    """``values * weights``, with 0 where the weight is 0 (an infinite loss of a row of
    weight 0 adds nothing, rather than a NaN).

    >>> weigh(np.array([1.5, np.inf, 2.0]), np.array([2.0, 0.0, 0.5])).tolist()
    [3.0, 0.0, 1.0]
    """
    with np.errstate(invalid="ignore"):
        return np.where(weights == 0, 0.0, values * weights)


class SampleSums:
    """Per class: the exact weight of the counted rows and of those predicted right.

    Unused (:attr:`weighted` False) without ``--weight-column``: its saved state is then
    null and the accuracies are counts of rows.
    """

    def __init__(self, num_classes: int, weighted: bool = False) -> None:
        self.k = int(num_classes)
        self.weighted = weighted
        self.mass = GroupedExactSum(self.k)
        self.hits = GroupedExactSum(self.k)

    def add(self, weights: FloatArray, classes: npt.NDArray[np.int64], correct: Any) -> None:
        """Add the counted rows' *weights* to their classes (and to the hits if *correct*)."""
        self.mass.add(weights, classes)
        self.hits.add(weights[correct], classes[correct])

    def merge(self, other: SampleSums) -> None:
        if self.weighted != other.weighted:
            raise StateError("one state has sample weights, the other not")
        self.mass.merge(other.mass)
        self.hits.merge(other.hits)

    def to_state(self) -> dict[str, object] | None:
        if not self.weighted:
            return None
        return {"mass": self.mass.to_state(), "hits": self.hits.to_state()}

    @classmethod
    def from_state(cls, data: object, num_classes: int, where: str = "sample") -> SampleSums:
        """The sums *data* (from :meth:`to_state`) describes; StateError names a bad field."""
        if data is None:
            return cls(num_classes)
        fields = core.need_dict(data, where, ("mass", "hits"))
        sums = cls(num_classes, weighted=True)
        sums.mass = GroupedExactSum.from_state(fields["mass"], num_classes, f"{where}.mass")
        sums.hits = GroupedExactSum.from_state(fields["hits"], num_classes, f"{where}.hits")
        for c in range(num_classes):
            if not 0 <= sums.hits.exact(c) <= sums.mass.exact(c):
                raise StateError(f"{where}.hits: more weight than the class's rows have")
        return sums

    def total(self) -> ExactSum:
        """The weight of every counted row."""
        return self.mass.total()

    def accuracy(self, c: int | None = None) -> float | None:
        """The weighted accuracy of class *c* (None: of every class); None without weight."""
        if c is None:
            return ratio(self.hits.total().exact(), self.mass.total().exact())
        return ratio(self.hits.exact(c), self.mass.exact(c))


def ratio(numerator: Fraction, denominator: Fraction) -> float | None:
    """``numerator / denominator`` rounded once; None for a zero denominator."""
    return float(numerator / denominator) if denominator else None


def effective_rows(weight: Fraction, squares: Fraction) -> float | None:
    """Kish's effective sample size ``(sum s)^2 / sum s^2`` (None without weight).

    >>> effective_rows(Fraction(4), Fraction(8))
    2.0
    """
    return float(weight * weight / squares) if squares else None
