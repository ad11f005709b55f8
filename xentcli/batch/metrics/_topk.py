"""Top-k accuracy's streaming state: integer counts of the true class's rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xentcli import core
from xentcli.batch.metrics._rows import MetricRows
from xentcli.batch.metrics._state import counts_from_state, counts_to_state


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

    def accuracy(self, k: int) -> float | None:
        """The fraction of rows that are top-*k* hits; None without rows."""
        return self.hits[k] / self.rows if self.rows else None


class TopKState:
    """Counts of ``min(rank, max k)`` over rows, so every requested k is one sum.

    A row is a top-``k`` hit when fewer than ``k`` classes rank above its true class;
    ties between logits go to the lower class index (see
    :func:`~xentcli.batch.metrics._rows.metric_rows`). Integer counts: merging is exact.
    """

    def __init__(self, ks: Sequence[int]) -> None:
        if not ks or min(ks) < 1:
            raise ValueError("top-k needs k >= 1")
        self.ks = tuple(sorted(set(ks)))
        self.rank_counts = np.zeros(self.ks[-1] + 1, dtype=np.int64)

    def update(self, rows: MetricRows) -> None:
        """Fold one chunk's rows in."""
        capped = np.minimum(rows.rank, self.ks[-1])
        self.rank_counts += np.bincount(capped, minlength=self.rank_counts.size)

    def merge(self, other: TopKState) -> None:
        """Add everything *other* (with the same k values) holds."""
        if other.ks != self.ks:
            raise ValueError(f"cannot merge top-k {other.ks} into {self.ks}")
        self.rank_counts += other.rank_counts

    def to_state(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        return {"k": list(self.ks), "rank_counts": counts_to_state(self.rank_counts)}

    @classmethod
    def from_state(cls, data: Any, num_classes: int, where: str = "top_k") -> TopKState:
        """A state from :meth:`to_state`'s data, every field checked."""
        fields = core.need_dict(data, where, ("k", "rank_counts"))
        items = core.need_list(fields["k"], f"{where}.k", max_size=num_classes)
        ks = [core.need_int(k, f"{where}.k[{i}]", 1, num_classes) for i, k in enumerate(items)]
        state = cls(ks)
        state.rank_counts = counts_from_state(
            fields["rank_counts"], f"{where}.rank_counts", state.rank_counts.size
        )
        return state

    def summary(self) -> TopKSummary:
        """Hits per k."""
        cumulative = np.cumsum(self.rank_counts)
        return TopKSummary(int(cumulative[-1]), {k: int(cumulative[k - 1]) for k in self.ks})
