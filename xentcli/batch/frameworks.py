"""``xent batch --frameworks``: the file's mean loss as each library would return it.

Each chunk's rows go through :func:`xentcli.core.framework_rows` (the emulations); the
values and each library's denominators (the sum of the rows' class weights for PyTorch
and scikit-learn, N for Keras and the others) are summed exactly, so the result is each
library's mean formula applied to the values it computes per row. (The library's own
float32 sum over a large file may differ from that in its last bits.) Rows whose label
is the ignore index are left out, as PyTorch leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xentcli import core
from xentcli.batch.reader import Chunk


@dataclass
class _Sums:
    function: str
    note: str
    dtype: str
    mean_note: str
    loss: core.ExactSum = field(default_factory=core.ExactSum)
    weight: core.ExactSum = field(default_factory=core.ExactSum)
    exact: core.ExactSum = field(default_factory=core.ExactSum)


@dataclass(frozen=True)
class FrameworkMean:
    """One library's mean over the batch, beside xent's exact mean of its convention."""

    name: str
    function: str
    value: float
    exact: float
    note: str
    dtype: str
    mean_note: str


class FrameworkMeans:
    """Fold chunks in; :meth:`means` gives each library's mean (nats)."""

    def __init__(
        self,
        *,
        weights: list[float] | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        temperature: float = 1.0,
    ) -> None:
        self.weights = weights
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.temperature = temperature
        self._sums: dict[str, _Sums] = {}

    def add(self, chunk: Chunk) -> None:
        logits, labels, targets = chunk.logits, chunk.labels, chunk.targets
        if labels is not None and self.ignore_index is not None:
            keep = labels != self.ignore_index
            logits, labels = logits[keep], labels[keep]
        if logits.shape[0] == 0:
            return
        rows = core.framework_rows(
            logits,
            None if labels is None else np.asarray(labels, dtype=np.int64),
            targets=targets,
            weights=self.weights,
            label_smoothing=self.label_smoothing,
            temperature=self.temperature,
        )
        for r in rows:
            sums = self._sums.setdefault(r.name, _Sums(r.function, r.note, r.dtype, r.mean_note))
            sums.loss.add(r.loss)
            sums.weight.add(r.weight)
            sums.exact.add(r.exact)

    def means(self) -> list[FrameworkMean]:
        out = []
        for name, s in self._sums.items():
            out.append(
                FrameworkMean(
                    name,
                    s.function,
                    _ratio(s.loss, s.weight),
                    _ratio(s.exact, s.weight),
                    s.note,
                    s.dtype,
                    s.mean_note,
                )
            )
        return out


def _ratio(total: core.ExactSum, weight: core.ExactSum) -> float:
    try:
        return total.ratio(weight)
    except ValueError:
        return float("nan")
