"""The Brier score's streaming state: exact sums of the row terms and of their squares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xentcli import core
from xentcli.batch.metrics._intervals import Interval, LossMomentsState, brier_interval
from xentcli.batch.metrics._rows import MetricRows
from xentcli.core import ExactSum
from xentcli.errors import StateError


@dataclass(frozen=True)
class BrierSummary:
    """The mean Brier score over the counted rows, and what an interval needs."""

    rows: int
    mean: float | None  #: sum_rows sum_k (q_k - p_k)^2 / rows; None without rows
    total: ExactSum  #: exact sum of the row terms
    squares: ExactSum  #: exact sum of their squares (each square rounded once, per row)


class BrierState:
    """Exact sum of ``sum_k (q_k - p_k)**2`` over rows (range [0, 2] per row).

    The sums are :class:`~xentcli.core.ExactSum`, so :meth:`merge` is exact, associative
    and commutative: the mean is the same bits whatever the chunking or order.

    >>> import numpy as np
    >>> from xentcli.batch.metrics._rows import metric_rows
    >>> state = BrierState()
    >>> state.update(metric_rows(np.array([[0.0, 0.0]]), np.array([0]), np.array([0]),
    ...                          np.array([2])))
    >>> state.summary().mean
    0.5

    With sample weights (*weighted*), :attr:`moments` also holds the exact sums of
    ``s b``, ``s``, ``(s b)^2``, ``s^2 b`` and ``s^2`` (``s`` the row's weight): the mean
    is ``sum s b / sum s`` and its interval the ratio estimator's (delta method).
    """

    def __init__(self, weighted: bool = False) -> None:
        self.total = ExactSum()
        self.squares = ExactSum()
        self.rows = 0
        self.moments = LossMomentsState() if weighted else None

    def update(self, rows: MetricRows) -> None:
        """Fold one chunk's rows in."""
        self.total.add(rows.brier)
        self.squares.add(rows.brier * rows.brier)
        self.rows += len(rows)
        if self.moments is not None:
            assert rows.weight is not None
            self.moments.add(rows.brier * rows.weight, rows.weight)

    def merge(self, other: BrierState) -> None:
        """Add everything *other* holds."""
        self.total.merge(other.total)
        self.squares.merge(other.squares)
        self.rows += other.rows
        if self.moments is not None and other.moments is not None:
            self.moments.merge(other.moments)
        elif self.moments is not None or other.moments is not None:
            raise ValueError("cannot merge a weighted Brier state with an unweighted one")

    def to_state(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        out = {"rows": self.rows, "sum": self.total.to_state(), "squares": self.squares.to_state()}
        if self.moments is not None:
            out["moments"] = self.moments.to_state()
        return out

    def interval(self, level: float) -> Interval | None:
        """The normal interval of the (weighted) mean at *level*."""
        if self.moments is not None:
            return self.moments.interval(level, high=2.0)
        return brier_interval(self.total, self.squares, self.rows, level)

    @classmethod
    def from_state(cls, data: Any, where: str = "brier") -> BrierState:
        """A state from :meth:`to_state`'s data, every field checked."""
        weighted = isinstance(data, dict) and "moments" in data
        keys = ("rows", "sum", "squares") + (("moments",) if weighted else ())
        fields = core.need_dict(data, where, keys)
        state = cls()
        if weighted:
            state.moments = LossMomentsState.from_state(fields["moments"], f"{where}.moments")
        state.rows = core.need_int(fields["rows"], f"{where}.rows")
        state.total = ExactSum.from_state(fields["sum"], f"{where}.sum")
        state.squares = ExactSum.from_state(fields["squares"], f"{where}.squares")
        if state.total.count != state.rows or state.squares.count != state.rows:
            raise StateError(f"{where}: the sums do not hold one value per row")
        return state

    def summary(self) -> BrierSummary:
        """The mean (correctly rounded quotient of the exact sum by the row count)."""
        mean = None
        if self.moments is not None:
            sums = self.moments.sums
            if sums["weight"].exact() > 0:
                mean = sums["loss"].ratio(sums["weight"])
        elif self.rows:
            count = ExactSum()
            count.add_ones(self.rows)
            mean = self.total.ratio(count)
        return BrierSummary(self.rows, mean, self.total, self.squares)
