"""The confusion matrix and per-class precision, recall and F1: integer counts.

Rows of the matrix are the true class, columns the predicted class (scikit-learn's
``confusion_matrix`` convention). The matrix is kept for up to :data:`MAX_MATRIX_CLASSES`
classes; precision, recall and F1 need only three counts per class and are there for any
number of classes.

Conventions (scikit-learn's ``precision_recall_fscore_support`` with
``zero_division=0``): precision ``tp / predicted``, recall ``tp / support``,
F1 ``2 tp / (support + predicted)``; a per-class value with a zero denominator is
undefined (None in the report) and counts as 0 in the averages. The macro average is the
plain mean over the classes that occur as a label or a prediction; the weighted average
weighs each class by its support. Each figure is an exact rational rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from xentcli import core
from xentcli.batch.metrics._rows import MetricRows
from xentcli.batch.metrics._state import counts_from_state, counts_to_state
from xentcli.core import GroupedExactSum
from xentcli.errors import StateError

MAX_MATRIX_CLASSES = 1000  #: the matrix is kept (and in the JSON) up to this many classes
#: with sample weights, the matrix of weight sums is kept up to this many classes (each
#: cell an exact sum, written out whole in a saved state)
MAX_WEIGHTED_MATRIX_CLASSES = 100


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one class (None: a zero denominator)."""

    support: int | float  #: rows whose true class this is (with sample weights: their weight)
    predicted: int | float  #: rows predicted as this class (or their weight)
    true_positives: int | float
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class Averages:
    """An average of the per-class precision, recall and F1."""

    precision: float | None
    recall: float | None
    f1: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclass(frozen=True)
class ConfusionSummary:
    """The matrix (None past the class limit), per-class scores and their averages."""

    matrix: np.ndarray | None
    classes: tuple[ClassScores, ...]
    macro: Averages
    weighted: Averages


def _ratio(numerator: int | Fraction, denominator: int | Fraction) -> Fraction | None:
    return Fraction(numerator) / denominator if denominator else None


def _mean(values: list[Fraction | None], weights: list[Any]) -> float | None:
    total = sum(weights, Fraction(0))
    if not total:
        return None
    acc = sum((w * (v or 0) for v, w in zip(values, weights, strict=True)), Fraction(0))
    return float(acc / total)


def _float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


class ConfusionState:
    """Counts per (true, predicted) class, and per class: support, predictions, hits."""

    def __init__(
        self, num_classes: int, keep_matrix: bool | None = None, weighted: bool = False
    ) -> None:
        self.k = int(num_classes)
        if keep_matrix is None:
            keep_matrix = self.k <= MAX_MATRIX_CLASSES
        self.support = np.zeros(self.k, dtype=np.int64)
        self.predicted = np.zeros(self.k, dtype=np.int64)
        self.true_positives = np.zeros(self.k, dtype=np.int64)
        self.matrix = np.zeros((self.k, self.k), dtype=np.int64) if keep_matrix else None
        #: with sample weights: exact weight sums of the three counts and of the matrix
        self.weights: dict[str, GroupedExactSum] | None = None
        if weighted:
            self.weights = {name: GroupedExactSum(self.k) for name in self._COUNTS}
            if keep_matrix and self.k <= MAX_WEIGHTED_MATRIX_CLASSES:
                self.weights["matrix"] = GroupedExactSum(self.k * self.k)

    def update(self, rows: MetricRows) -> None:
        """Fold one chunk's rows in."""
        k = self.k
        if self.weights is not None:
            assert rows.weight is not None
            w, right = rows.weight, rows.correct
            self.weights["support"].add(w, rows.label)
            self.weights["predicted"].add(w, rows.predicted)
            self.weights["true_positives"].add(w[right], rows.label[right])
            if "matrix" in self.weights:
                self.weights["matrix"].add(w, rows.label * k + rows.predicted)
        self.support += np.bincount(rows.label, minlength=k)
        self.predicted += np.bincount(rows.predicted, minlength=k)
        self.true_positives += np.bincount(rows.label[rows.correct], minlength=k)
        if self.matrix is not None and len(rows):
            cell = rows.label * k + rows.predicted
            if cell.size * 8 < k * k:  # few rows: count the cells they touch
                cells, counts = np.unique(cell, return_counts=True)
                self.matrix.reshape(-1)[cells] += counts
            else:
                self.matrix += np.bincount(cell, minlength=k * k).reshape(k, k)

    def merge(self, other: ConfusionState) -> None:
        """Add everything *other* (same classes) holds; the matrix is kept if both have it."""
        if other.k != self.k:
            raise ValueError(f"cannot merge {other.k} classes into {self.k}")
        self.support += other.support
        self.predicted += other.predicted
        self.true_positives += other.true_positives
        if self.matrix is not None and other.matrix is not None:
            self.matrix += other.matrix
        else:
            self.matrix = None
        if self.weights is not None and other.weights is not None:
            for name in list(self.weights):
                if name in other.weights:
                    self.weights[name].merge(other.weights[name])
                else:
                    del self.weights[name]
        elif self.weights is not None or other.weights is not None:
            raise ValueError("cannot merge a weighted confusion state with an unweighted one")

    _COUNTS = ("support", "predicted", "true_positives")

    def to_state(self) -> dict[str, Any]:
        """The state as JSON-able data (the matrix row by row, or null)."""
        out: dict[str, Any] = {name: counts_to_state(getattr(self, name)) for name in self._COUNTS}
        out["matrix"] = None if self.matrix is None else counts_to_state(self.matrix)
        if self.weights is not None:
            out["weights"] = {name: sums.to_state() for name, sums in self.weights.items()}
        return out

    @classmethod
    def from_state(cls, data: Any, num_classes: int, where: str = "confusion") -> ConfusionState:
        """A state from :meth:`to_state`'s data, every field checked."""
        weighted = isinstance(data, dict) and "weights" in data
        keys = (*cls._COUNTS, "matrix") + (("weights",) if weighted else ())
        fields = core.need_dict(data, where, keys)
        keep = fields["matrix"] is not None and num_classes <= MAX_MATRIX_CLASSES
        state = cls(num_classes, keep_matrix=keep, weighted=weighted)
        for name in cls._COUNTS:
            setattr(state, name, counts_from_state(fields[name], f"{where}.{name}", num_classes))
        if state.matrix is not None:
            flat = counts_from_state(fields["matrix"], f"{where}.matrix", num_classes**2)
            state.matrix = flat.reshape(num_classes, num_classes)
            if (state.matrix.sum(axis=1) != state.support).any():
                raise StateError(f"{where}.matrix: its rows do not add up to the support")
        if (state.true_positives > np.minimum(state.support, state.predicted)).any():
            raise StateError(f"{where}.true_positives: more than the support or predictions")
        if state.weights is not None:
            names = tuple(state.weights)
            given = core.need_dict(fields["weights"], f"{where}.weights", names)
            for name in names:
                groups = state.weights[name].groups
                sums = GroupedExactSum.from_state(given[name], groups, f"{where}.weights.{name}")
                counts = state.matrix if name == "matrix" else getattr(state, name)
                if counts is None or sums.counts.tolist() != counts.reshape(-1).tolist():
                    raise StateError(f"{where}.weights.{name}: not one weight per row")
                state.weights[name] = sums
        return state

    def summary(self) -> ConfusionSummary:
        """Per-class scores and their macro and support-weighted averages."""
        precision, recall, f1 = [], [], []
        classes = []
        counts: dict[str, list[Any]] = {
            name: [int(v) for v in getattr(self, name)] for name in self._COUNTS
        }
        if self.weights is not None:
            counts = {
                name: [self.weights[name].exact(c) for c in range(self.k)] for name in self._COUNTS
            }
        for tp, sup, pred in zip(
            counts["true_positives"], counts["support"], counts["predicted"], strict=True
        ):
            p, r, f = _ratio(tp, pred), _ratio(tp, sup), _ratio(2 * tp, sup + pred)
            precision.append(p)
            recall.append(r)
            f1.append(f)
            if self.weights is not None:
                sup, pred, tp = float(sup), float(pred), float(tp)
            classes.append(ClassScores(sup, pred, tp, _float(p), _float(r), _float(f)))
        occurs = [int(s > 0 or p > 0) for s, p in zip(self.support, self.predicted, strict=True)]
        support = counts["support"]
        matrix = None if self.matrix is None else self.matrix.copy()
        if self.weights is not None:
            matrix = None
            if "matrix" in self.weights:
                cells = self.weights["matrix"]
                matrix = np.array([cells.value(i) for i in range(self.k * self.k)]).reshape(
                    self.k, self.k
                )
        return ConfusionSummary(
            matrix=matrix,
            classes=tuple(classes),
            macro=Averages(_mean(precision, occurs), _mean(recall, occurs), _mean(f1, occurs)),
            weighted=Averages(
                _mean(precision, support), _mean(recall, support), _mean(f1, support)
            ),
        )
