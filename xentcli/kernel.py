"""The numerics of xent on numpy arrays: softmax, log-softmax, log-sum-exp, cross-entropy.

Pure numpy: no I/O, no printing. Every function accepts one row of logits (shape ``(K,)``)
or a batch of rows (shape ``(N, K)``) and works along the last axis.

FIRST VERSION: stable formulas, API fixed; the accuracy work (TwoSum shifts, compensated
and exact sums) replaces the bodies without changing any signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from xentcli.errors import InvalidInputError, UndefinedMeanError

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Reduction = Literal["mean", "sum", "none"]
Base = Literal["e", "2", "10"]

UNITS = {"e": "nats", "2": "bits", "10": "bans"}


# --------------------------------------------------------------------------- validation
def as_logits(logits: ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Validate logits and return them as float64 (divided by *temperature*)."""
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise InvalidInputError(f"logits must be 1-D or 2-D, got {array.ndim}-D")
    if array.shape[-1] == 0:
        raise InvalidInputError("logits: a row is empty (no classes)")
    if array.ndim == 2 and array.shape[0] == 0:
        raise InvalidInputError("logits: the batch is empty (no rows)")
    if not (temperature > 0 and np.isfinite(temperature)):
        raise InvalidInputError("temperature must be a positive finite number", value=temperature)
    bad = np.isnan(array) | (array == np.inf)
    if bad.any():
        position = np.unravel_index(int(np.argmax(bad)), array.shape)
        value = float(array[position])
        row = int(position[0]) if array.ndim == 2 else None
        raise InvalidInputError(
            "logit is NaN" if np.isnan(value) else "logit is +inf",
            row=row, column=int(position[-1]), value=value, field="logit",
        )
    all_masked = np.all(array == -np.inf, axis=-1)
    if np.any(all_masked):
        row = int(np.argmax(all_masked)) if array.ndim == 2 else None
        raise InvalidInputError("every logit of the row is -inf", row=row, field="logit")
    if temperature != 1.0:
        array = array / temperature
    return array


class SoftmaxSteps(NamedTuple):
    """The intermediate values of the stable softmax of one row or a batch of rows."""

    max: FloatArray               #: m = max_j y_j, shape (N,) or ()
    argmax: IntArray              #: first index of the max
    shifted: FloatArray           #: y - m (<= 0)
    exp_shifted: FloatArray       #: exp(y - m)
    sum_exp_shifted: FloatArray   #: s = sum_k exp(y_k - m) >= 1
    log_sum_exp_shifted: FloatArray  #: log s = log1p(sum over k != argmax)
    log_sum_exp: FloatArray       #: m + log s
    probabilities: FloatArray     #: q = exp(y - m) / s
    log_probabilities: FloatArray  #: (y - m) - log s


def softmax_steps(logits: ArrayLike, *, temperature: float = 1.0) -> SoftmaxSteps:
    """Every intermediate value of the stable softmax, for one row or a batch."""
    y = as_logits(logits, temperature)
    m = np.max(y, axis=-1, keepdims=True)
    argmax = np.argmax(y, axis=-1)
    shifted = y - m
    exp_shifted = np.exp(shifted)
    others = exp_shifted.copy()
    np.put_along_axis(others, np.expand_dims(argmax, -1), 0.0, axis=-1)
    rest = np.sum(others, axis=-1, keepdims=True)
    s = 1.0 + rest
    log_s = np.log1p(rest)
    q = exp_shifted / s
    log_q = shifted - log_s
    squeeze = (lambda a: a[..., 0])
    return SoftmaxSteps(
        max=squeeze(m), argmax=argmax, shifted=shifted, exp_shifted=exp_shifted,
        sum_exp_shifted=squeeze(s), log_sum_exp_shifted=squeeze(log_s),
        log_sum_exp=squeeze(m + log_s), probabilities=q, log_probabilities=log_q,
    )


def softmax(logits: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """Softmax along the last axis, shifted by the max so that it never overflows.

    >>> softmax([1.2, 2.3, 0.8]).round(6)
    array([0.213927, 0.642673, 0.1434  ])
    """
    return softmax_steps(logits, temperature=temperature).probabilities


def log_softmax(logits: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """Log-softmax along the last axis: ``(y - max) - log sum exp(y - max)``.

    >>> log_softmax([0.0, -40.0])
    array([-4.24835426e-18, -4.00000000e+01])
    """
    return softmax_steps(logits, temperature=temperature).log_probabilities


def logsumexp(logits: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """``log sum_k exp(y_k)`` along the last axis, without overflow.

    >>> float(logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    return softmax_steps(logits, temperature=temperature).log_sum_exp


# ------------------------------------------------------------------------- exact sums
class ExactSum:
    """An order-independent, exact accumulator of float64 values.

    The sum is held exactly (as a rational), so the result is the same bits whatever
    order or chunking the values arrive in; :meth:`value` rounds once.

    >>> acc = ExactSum(); acc.add(np.array([1e100, 1.0, -1e100])); acc.value()
    1.0
    """

    def __init__(self) -> None:
        self._total = Fraction(0)
        self._special = 0.0  # nan / inf sum of the non-finite values
        self.count = 0

    def add(self, values: npt.NDArray[np.float64]) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        self.count += values.size
        finite = np.isfinite(values)
        if not finite.all():
            self._special = self._special + float(np.sum(values[~finite]))
            values = values[finite]
        for value in values.tolist():
            self._total += Fraction(value)

    def merge(self, other: ExactSum) -> None:
        self._total += other._total
        self._special += other._special
        self.count += other.count

    def exact(self) -> Fraction:
        return self._total

    def value(self) -> float:
        if self._special != 0.0 or np.isnan(self._special):
            return self._special
        return float(self._total)

    def ratio(self, denominator: ExactSum) -> float:
        """The correctly rounded quotient of this sum by *denominator*'s sum."""
        if denominator.value() == 0 and self._special == 0:
            raise UndefinedMeanError("the mean is undefined: no row counts (weight sum is 0)")
        if self._special != 0.0 or np.isnan(self._special):
            return self._special
        return float(self._total / denominator._total)


# ------------------------------------------------------------------------ cross-entropy
@dataclass(frozen=True)
class RowLosses:
    """Per-row results of :func:`row_losses`; arrays of shape (N,)."""

    loss: FloatArray           #: the row's (weighted) loss in nats; 0 for ignored rows
    weight: FloatArray         #: its share of the mean's denominator; 0 for ignored rows
    predicted: IntArray        #: argmax of the logits (first index on ties)
    label_probability: FloatArray  #: q of the true class (nan with soft targets)
    counted: npt.NDArray[np.bool_]  #: False for rows whose label is ignore_index


def _validate_labels(labels: ArrayLike, n: int, k: int, ignore_index: int | None) -> IntArray:
    raw = np.asarray(labels)
    if raw.ndim == 0:
        raw = raw.reshape(1)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise InvalidInputError(f"labels: expected {n} labels, got shape {raw.shape}")
    if raw.dtype.kind == "f":
        nonint = ~np.isfinite(raw) | (raw != np.round(raw))
        if nonint.any():
            row = int(np.argmax(nonint))
            raise InvalidInputError("label is not an integer", row=row, value=float(raw[row]),
                                    field="label")
    elif raw.dtype.kind not in "iub":
        raise InvalidInputError(f"labels must be integers, got dtype {raw.dtype}")
    out = raw.astype(np.int64)
    valid = (out >= 0) & (out < k)
    if ignore_index is not None:
        valid |= out == ignore_index
    if not valid.all():
        row = int(np.argmax(~valid))
        raise InvalidInputError(f"label out of range [0, {k})", row=row, value=int(out[row]),
                                field="label")
    return out


def row_losses(
    logits: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    targets: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
) -> RowLosses:
    """Per-row losses (nats) and what the mean needs, for a 2-D batch; see cross_entropy."""
    y = as_logits(logits, temperature)
    if y.ndim == 1:
        y = y[None, :]
    n, k = y.shape
    if (labels is None) == (targets is None):
        raise InvalidInputError("give exactly one of labels and targets")
    if not (0.0 <= label_smoothing < 1.0):
        raise InvalidInputError("label_smoothing must be in [0, 1)", value=label_smoothing)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (k,):
            raise InvalidInputError(f"weights: expected {k} values, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            col = int(np.argmax(~np.isfinite(w) | (w < 0)))
            raise InvalidInputError("weight must be finite and >= 0", column=col,
                                    value=float(w[col]), field="weight")
    steps = softmax_steps(y)
    log_q = steps.log_probabilities
    q = steps.probabilities
    predicted = steps.argmax
    neg_log_q = -log_q
    if targets is not None:
        t = np.asarray(targets, dtype=np.float64)
        if t.ndim == 1:
            t = t[None, :]
        if t.shape != (n, k):
            raise InvalidInputError(f"targets: expected shape {(n, k)}, got {t.shape}")
        bad = ~np.isfinite(t) | (t < 0)
        if bad.any():
            r, c = np.unravel_index(int(np.argmax(bad)), t.shape)
            raise InvalidInputError("target must be a finite probability >= 0", row=int(r),
                                    column=int(c), value=float(t[r, c]), field="target")
        sums = t.sum(axis=-1)
        off = np.abs(sums - 1.0) > 1e-6
        if off.any():
            r = int(np.argmax(off))
            raise InvalidInputError("targets do not sum to 1 (tolerance 1e-6)", row=r,
                                    value=float(sums[r]), field="target")
        if label_smoothing:
            t = (1.0 - label_smoothing) * t + label_smoothing / k
        contrib = np.where(t > 0, t * neg_log_q, 0.0)
        if w is not None:
            contrib = contrib * w
        loss = contrib.sum(axis=-1)
        return RowLosses(loss=loss, weight=np.ones(n), predicted=predicted,
                         label_probability=np.full(n, np.nan), counted=np.ones(n, bool))
    lab = _validate_labels(labels, n, k, ignore_index)  # type: ignore[arg-type]
    counted = np.ones(n, bool) if ignore_index is None else lab != ignore_index
    safe = np.where(counted, lab, 0)
    nll = np.take_along_axis(neg_log_q, safe[:, None], axis=-1)[:, 0]
    label_q = np.take_along_axis(q, safe[:, None], axis=-1)[:, 0]
    row_w = np.ones(n) if w is None else w[safe]
    loss = row_w * nll
    if label_smoothing:
        if w is None:
            smooth = neg_log_q.sum(axis=-1)
        else:
            smooth = (neg_log_q * w).sum(axis=-1)
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / k) * smooth
    loss = np.where(counted, loss, 0.0)
    row_w = np.where(counted, row_w, 0.0)
    label_q = np.where(counted, label_q, np.nan)
    return RowLosses(loss=loss, weight=row_w, predicted=predicted,
                     label_probability=label_q, counted=counted)


def to_base(loss_nats: FloatArray | float, base: Base | str = "e") -> FloatArray | float:
    """Convert nats to bits (base ``"2"``) or bans (base ``"10"``)."""
    if base == "e":
        return loss_nats
    if base == "2":
        return np.divide(loss_nats, np.log(2.0))
    if base == "10":
        return np.divide(loss_nats, np.log(10.0))
    raise InvalidInputError("base must be 'e', '2' or '10'", value=base)


def cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    targets: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    reduction: Reduction = "mean",
    base: Base | str = "e",
) -> FloatArray | float:
    """Cross-entropy loss of logits against class labels or soft targets.

    Follows ``torch.nn.functional.cross_entropy``: the weighted mean divides by the sum
    of the counted rows' weights; soft targets' mean divides by N.

    >>> cross_entropy([1.2, 2.3, 0.8], 1)
    0.4421192251430...
    >>> cross_entropy([0.0, -40.0], 0)
    4.248354255291589e-18
    """
    if reduction not in ("mean", "sum", "none"):
        raise InvalidInputError("reduction must be 'mean', 'sum' or 'none'", value=reduction)
    one_row = np.ndim(logits) == 1
    rows = row_losses(logits, labels, targets=targets, weights=weights,
                      ignore_index=ignore_index, label_smoothing=label_smoothing,
                      temperature=temperature)
    if reduction == "none":
        out = to_base(rows.loss, base)
        return out[0] if one_row else out  # type: ignore[index]
    total = ExactSum()
    total.add(rows.loss)
    if reduction == "sum":
        return float(to_base(total.value(), base))
    denominator = ExactSum()
    denominator.add(rows.weight if targets is None else np.ones(rows.loss.shape[0]))
    if denominator.value() == 0:
        raise UndefinedMeanError(
            "the mean loss is undefined: no row counts (every label is ignore_index"
            " or has weight 0)"
        )
    return float(to_base(total.ratio(denominator), base))
