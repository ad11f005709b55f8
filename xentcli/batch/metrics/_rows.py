"""Per-row inputs of the evaluation metrics, computed from one chunk's arrays.

:func:`metric_rows` turns a chunk's logits and labels into the few per-row numbers every
metric state needs (the top-label confidence, the Brier term, the rank of the true class,
whether the prediction is right). It reads only arrays and options, so the reader can run
it in its parsing threads beside the kernel; the states then fold these rows in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from xentcli.core import RowLosses

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MetricRows:
    """The counted rows of one chunk, as the metric states read them (shape (n,) each).

    Only counted rows are here (rows whose label is the ignore index are left out).
    """

    label: IntArray  #: the true class (argmax of the target for soft targets)
    predicted: IntArray  #: argmax of the logits, first index on ties
    confidence: FloatArray  #: top-label confidence max_k q_k (= 1 / sum_k exp(y_k - m))
    brier: FloatArray  #: sum_k (q_k - p_k)**2, p the one-hot label or the soft target
    rank: IntArray  #: classes ranked above the true class (ties: lower index first)
    lines: IntArray  #: the rows' line numbers in their file
    weight: FloatArray | None = None  #: sample weights (None: every row weighs 1)
    loss: FloatArray | None = None  #: the kernel's row loss (nats), for its interval
    loss_weight: FloatArray | None = None  #: the row's share of the mean loss's denominator
    #: the bootstrap's sums of exactly these rows, made ahead in a reader's thread
    #: (:meth:`MetricSet.prepare`); rows taken or joined from these do not carry them
    bootstrap: object | None = None
    #: likewise the exact sums of the Brier, calibration and loss-moment states of
    #: exactly these rows, which :meth:`MetricSet.update` merges instead of making them
    sums: object | None = None

    @property
    def correct(self) -> BoolArray:
        """Whether the top-1 prediction is the true class (``rank == 0``)."""
        return self.rank == 0

    def __len__(self) -> int:
        return int(self.label.shape[0])


def metric_rows(
    logits: FloatArray,
    labels: IntArray,
    predicted: IntArray,
    lines: IntArray,
    *,
    targets: FloatArray | None = None,
    temperature: float = 1.0,
    counted: BoolArray | None = None,
    weight: FloatArray | None = None,
    loss: FloatArray | None = None,
    loss_weight: FloatArray | None = None,
    kernel: RowLosses | None = None,
) -> MetricRows:
    """The per-row metric inputs of a chunk (see :class:`MetricRows`).

    With labels, the rank, the top probability ``1 / s``, ``sum_k q_k**2`` and ``q`` of
    the label come from the kernel (:func:`xentcli.core.row_losses` with
    ``metric_inputs=True``), so a row has the same bits whichever way its metric rows
    are made. *kernel* is that result when the caller has it (the accumulator computes
    it for the loss anyway): the logits are then not read again. Two classes (the
    kernel's binary path) and soft targets are computed here from the logits.

    The rank of the true class ``i`` is ``#{k : y_k > y_i} + #{k < i : y_k == y_i}``,
    counted on the logits: a row is a top-``k`` hit when its rank is below ``k``. Ties go to
    the lower class index, as the argmax does, so top-1 accuracy is the accuracy.

    >>> r = metric_rows(np.array([[1.0, 3.0, 3.0]]), np.array([2]), np.array([1]),
    ...                 np.array([2]))
    >>> int(r.rank[0]), bool(r.correct[0]), round(float(r.confidence[0]), 6)
    (1, False, 0.468311)
    """
    given = None if kernel is None or targets is not None else _kernel_facts(kernel)
    if counted is not None and not counted.all():
        if given is not None:
            given = _KernelFacts(
                given.rank[counted],
                given.max_probability[counted],
                given.sum_squares[counted],
                given.label_probability[counted],
            )
        logits, labels, predicted, lines = (
            logits[counted],
            labels[counted],
            predicted[counted],
            lines[counted],
        )
        if targets is not None:
            targets = targets[counted]
        if weight is not None:
            weight = weight[counted]
        if loss is not None and loss_weight is not None:
            loss, loss_weight = loss[counted], loss_weight[counted]
    labels = np.asarray(labels, dtype=np.int64)
    if given is None and targets is None and len(labels):
        from xentcli import core

        given = _kernel_facts(
            core.row_losses(
                logits, labels, temperature=temperature, check=False, metric_inputs=True
            )
        )
    if given is not None:
        return MetricRows(
            label=labels,
            predicted=np.asarray(predicted, dtype=np.int64),
            confidence=given.max_probability,
            brier=np.maximum(_brier(given.sum_squares, given.label_probability), 0.0),
            rank=given.rank,
            lines=np.asarray(lines, dtype=np.int64),
            weight=weight,
            loss=loss,
            loss_weight=loss_weight,
        )
    # Soft targets or two classes: computed here.
    y = np.asarray(logits, dtype=np.float64)
    n, k = y.shape
    rows = np.arange(n)
    label_logit = y[rows, labels][:, None]
    above, equal, top = _ranks_and_max(y, label_logit)
    tied = equal > 1
    if tied.any():  # a tie with the true class: the classes before it rank above it
        before = np.arange(k)[None, :] < labels[tied][:, None]
        above[tied] += np.count_nonzero((y[tied] == label_logit[tied]) & before, axis=1)
    # y - m <= 0; past the float range (or with a tiny temperature) it is -inf: q = 0,
    # which is q to the last bit (the true value is below the smallest float).
    # Row-major (order="C"), whatever the input's order: numpy sums a row-major row
    # pairwise and a column-major block column by column, so a row's last bit would
    # depend on its chunk (the reader's blocks are column-major; a chunk cut down to its
    # counted rows is a row-major copy). In place of the subtraction's own output: no copy.
    with np.errstate(over="ignore"):
        shifted = np.subtract(y, top, order="C")
        if temperature != 1.0:
            shifted /= temperature
    np.exp(shifted, out=shifted)  # exp((y - m) / T): the max class gives exactly 1
    s = shifted.sum(axis=1)
    confidence = 1.0 / s
    if targets is None:
        q_label = shifted[rows, labels] / s
        brier = _brier(np.einsum("ij,ij->i", shifted, shifted) / (s * s), q_label)
    else:
        shifted /= s[:, None]
        shifted -= targets
        brier = np.einsum("ij,ij->i", shifted, shifted)
    return MetricRows(
        label=labels,
        predicted=np.asarray(predicted, dtype=np.int64),
        confidence=confidence,
        brier=np.maximum(brier, 0.0),
        rank=above.astype(np.int64),
        lines=np.asarray(lines, dtype=np.int64),
        weight=weight,
        loss=loss,
        loss_weight=loss_weight,
    )


class _KernelFacts(NamedTuple):
    """What the kernel computed for the metric rows (:class:`~xentcli.core.RowLosses`)."""

    rank: IntArray
    max_probability: FloatArray
    sum_squares: FloatArray
    label_probability: FloatArray


def _kernel_facts(rows: RowLosses) -> _KernelFacts | None:
    """The metric inputs of the kernel's *rows*; None if its path left them out."""
    if rows.label_rank is None:
        return None
    assert rows.max_probability is not None
    assert rows.sum_squared_probabilities is not None
    return _KernelFacts(
        rows.label_rank,
        rows.max_probability,
        rows.sum_squared_probabilities,
        rows.label_probability,
    )


def _brier(squares: FloatArray, q_label: FloatArray) -> FloatArray:
    """The Brier term of one-hot labels from ``sum_k q_k**2`` and the label's ``q``:
    ``sum_k q_k**2 - q_i**2 + (1 - q_i)**2``, the true class's term without cancellation."""
    return squares - q_label * q_label + (1.0 - q_label) ** 2


#: up to this many classes, the per-row counts and maximum go class by class over the
#: transposed logits: numpy's reductions along short rows pay a loop per row (39,000
#: rows of 10 classes: the two counts 2.9 ms, 0.8 this way)
_BY_CLASS = 32


def _ranks_and_max(y: FloatArray, label_logit: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
    """Per row: the classes whose logit is above the true class's, those equal to it
    (the true class included), and the maximum logit, shape (n, 1) (exact either way:
    counts and a maximum do not round)."""
    if y.shape[1] > _BY_CLASS:
        return (
            np.count_nonzero(y > label_logit, axis=1),
            np.count_nonzero(y == label_logit, axis=1),
            y.max(axis=1, keepdims=True),
        )
    by_class = np.ascontiguousarray(y.T)
    mine = label_logit[:, 0]
    above = np.zeros(y.shape[0], dtype=np.uint8)
    equal = np.zeros(y.shape[0], dtype=np.uint8)
    top = by_class[0].copy()
    reached = np.empty(y.shape[0], dtype=np.bool_)
    for column in by_class:
        above += np.greater(column, mine, out=reached).view(np.uint8)
        equal += np.equal(column, mine, out=reached).view(np.uint8)
        np.maximum(top, column, out=top)
    return above.astype(np.int64), equal.astype(np.int64), top[:, None]


_FIELDS = ("label", "predicted", "confidence", "brier", "rank", "lines")
_OPTIONAL = ("weight", "loss", "loss_weight")


def take_rows(
    rows: MetricRows, index: IntArray | slice, lines: IntArray | None = None
) -> MetricRows:
    """Rows *index* of *rows* (numbered *lines* if given: the bootstrap's row keys)."""
    taken: dict[str, npt.NDArray[np.generic] | None]
    taken = {name: getattr(rows, name)[index] for name in _FIELDS}
    for name in _OPTIONAL:
        value = getattr(rows, name)
        taken[name] = None if value is None else value[index]
    if lines is not None:
        taken["lines"] = np.asarray(lines, dtype=np.int64)
    return MetricRows(**taken)  # type: ignore[arg-type]


def concat_rows(parts: list[MetricRows]) -> MetricRows:
    """The rows of *parts*, one after the other (at least one part)."""
    joined: dict[str, npt.NDArray[np.generic] | None]
    joined = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS}
    for name in _OPTIONAL:
        values = [getattr(p, name) for p in parts]
        joined[name] = None if any(v is None for v in values) else np.concatenate(values)
    return MetricRows(**joined)  # type: ignore[arg-type]
