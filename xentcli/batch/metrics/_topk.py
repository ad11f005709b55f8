"""Top-k accuracy's streaming state: integer counts of the true class's rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from xentcli import core
from xentcli.batch.metrics._rows import MetricRows
from xentcli.batch.metrics._state import counts_from_state, counts_to_state
from xentcli.core import GroupedExactSum
from xentcli.errors import StateError


def default_top_k(num_classes: int) -> tuple[int, ...]:
    """1, and 5 when there are more than 5 classes.

    >>> default_top_k(3), default_top_k(10)
    ((1,), (1, 5))
    """
    return (1, 5) if num_classes > 5 else (1,)


@dataclass(frozen=True)
class TopKSummary:
    """Hits (rows whose true class ranks among the top k) per requested k."""

    rows: int
    hits: dict[int, int]
    #: with sample weights: the exact weight of the hits per k, and of every row
    weighted_hits: dict[int, Fraction] | None = None
    weight: Fraction | None = None

    def accuracy(self, k: int) -> float | None:
        """The (weighted) fraction of rows that are top-*k* hits; None without rows (or
        without weight)."""
        if self.weighted_hits is not None:
            if not self.weight:
                return None
            return float(self.weighted_hits[k] / self.weight)
        return self.hits[k] / self.rows if self.rows else None


class TopKState:
    """Counts of ``min(rank, max k)`` over rows, so every requested k is one sum.

    A row is a top-``k`` hit when fewer than ``k`` classes rank above its true class;
    ties between logits go to the lower class index (see
    :func:`~xentcli.batch.metrics._rows.metric_rows`). Integer counts: merging is exact.
    """

    def __init__(self, ks: Sequence[int], weighted: bool = False) -> None:
        if not ks or min(ks) < 1:
            raise ValueError("top-k needs k >= 1")
        self.ks = tuple(sorted(set(ks)))
        self.rank_counts = np.zeros(self.ks[-1] + 1, dtype=np.int64)
        #: with sample weights: the exact weight of the rows per capped rank
        self.rank_weights = GroupedExactSum(self.rank_counts.size) if weighted else None

    def update(self, rows: MetricRows) -> None:
        """Fold one chunk's rows in."""
        capped = np.minimum(rows.rank, self.ks[-1])
        self.rank_counts += np.bincount(capped, minlength=self.rank_counts.size)
        if self.rank_weights is not None:
            assert rows.weight is not None
            self.rank_weights.add(rows.weight, capped)

    def merge(self, other: TopKState) -> None:
        """Add everything *other* (with the same k values) holds."""
        if other.ks != self.ks:
            raise ValueError(f"cannot merge top-k {other.ks} into {self.ks}")
        self.rank_counts += other.rank_counts
        if self.rank_weights is not None and other.rank_weights is not None:
            self.rank_weights.merge(other.rank_weights)
        elif self.rank_weights is not None or other.rank_weights is not None:
            raise ValueError("cannot merge a weighted top-k state with an unweighted one")

    def to_state(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        out: dict[str, Any] = {
            "k": list(self.ks),
            "rank_counts": counts_to_state(self.rank_counts),
        }
        if self.rank_weights is not None:
            out["rank_weights"] = self.rank_weights.to_state()
        return out

    @classmethod
    def from_state(cls, data: Any, num_classes: int, where: str = "top_k") -> TopKState:
        """A state from :meth:`to_state`'s data, every field checked."""
        weighted = isinstance(data, dict) and "rank_weights" in data
        keys = ("k", "rank_counts") + (("rank_weights",) if weighted else ())
        fields = core.need_dict(data, where, keys)
        items = core.need_list(fields["k"], f"{where}.k", max_size=num_classes)
        ks = [core.need_int(k, f"{where}.k[{i}]", 1, num_classes) for i, k in enumerate(items)]
        state = cls(ks, weighted)
        state.rank_counts = counts_from_state(
            fields["rank_counts"], f"{where}.rank_counts", state.rank_counts.size
        )
        if weighted:
            state.rank_weights = GroupedExactSum.from_state(
                fields["rank_weights"], state.rank_counts.size, f"{where}.rank_weights"
            )
            if state.rank_weights.counts.tolist() != state.rank_counts.tolist():
                raise StateError(f"{where}.rank_weights: not one weight per row")
        return state

    def summary(self) -> TopKSummary:
        """Hits per k (and their weights, with sample weights)."""
        cumulative = np.cumsum(self.rank_counts)
        hits = {k: int(cumulative[k - 1]) for k in self.ks}
        if self.rank_weights is None:
            return TopKSummary(int(cumulative[-1]), hits)
        per_rank = [self.rank_weights.exact(r) for r in range(self.rank_counts.size)]
        running, weighted = Fraction(0), {}
        for rank, value in enumerate(per_rank):
            running += value
            if rank + 1 in self.ks:
                weighted[rank + 1] = running
        return TopKSummary(int(cumulative[-1]), hits, weighted, running)
