"""Binary and multi-label cross-entropy of sigmoid outputs: from the logits, or from the
probabilities or log-probabilities a model wrote.

For a logit x and a target z in [0, 1] (PyTorch's ``BCEWithLogitsLoss``, with its
``pos_weight`` p, 1 without it):

    L = -(p z log sigma(x) + (1 - z) log(1 - sigma(x)))
      = p z softplus(-x) + (1 - z) softplus(x),      softplus(x) = log(1 + e^x),

since ``log sigma(x) = -softplus(-x)`` and ``log(1 - sigma(x)) = -softplus(x)``. This is
PyTorch's ``(1 - z) x + (1 + (p - 1) z) (log1p(e^-|x|) + max(-x, 0))`` rearranged as a sum
of two non-negative terms, so nothing cancels (``max(x, 0) - x z`` would, for soft z).
``softplus(-|x|) = log1p(e^-|x|)`` is computed from a double-double exponential
(:mod:`xentcli.core._doubledouble`), so that neither the rounding of ``e^-|x|`` nor the
size of |x| costs digits; the products and the sum are carried as double-doubles and
rounded once. Each loss is within 2 ulp of the exact value (tests against mpmath).

From a probability p (or its log) the loss is ``-(w z log p + (1 - z) log(1 - p))``,
PyTorch's ``BCELoss`` without its clamp of each log to -100: p = 0 with z > 0, or p = 1
with z < 1, is an infinite loss, and 0 log 0 = 0 (:func:`bce_with_probs`,
:func:`bce_with_logprobs`). ``log(1 - p)`` is ``log1p(-p)`` (no rounding of 1 - p), and
from a log-probability l it is ``log(1 - e^l)`` by the log1mexp rule (Maechler 2012):
``log(-expm1(l))`` for ``l > -ln 2``, ``log1p(-exp(l))`` below, each without cancellation.

Pure numpy: no I/O, no printing.

>>> float(bce_with_logits([2.0], [1.0]).loss[0])
0.1269280110429725
>>> float(bce_with_probs([0.25], [0.0]).loss[0])  # -log(0.75)
0.2876820724517809
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from xentcli.core import _doubledouble as dd
from xentcli.core._compensated import two_prod
from xentcli.core._scores import ScoreCheck
from xentcli.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]


def _softplus_neg_abs(a: FloatArray) -> dd.DD:
    """``log1p(e^-a)`` for ``a >= 0`` as a double-double (its low part small)."""
    e_hi, e_lo = dd.exp_dd(-a, np.zeros_like(a))
    hi = np.log1p(e_hi)
    # log1p(e_hi + e_lo) = log1p(e_hi) + e_lo / (1 + e_hi) to first order.
    return hi, e_lo / (1.0 + e_hi)


def softplus_dd(x: FloatArray) -> dd.DD:
    """``log(1 + e^x) = max(x, 0) + log1p(e^-|x|)`` as a double-double."""
    tail = _softplus_neg_abs(np.abs(x))
    return dd.add((np.maximum(x, 0.0), np.zeros_like(x)), tail)


@dataclass(frozen=True)
class SigmoidLosses:
    """Per-element results of :func:`bce_with_logits` (arrays of the input's shape)."""

    sigmoid: FloatArray  #: sigma(x)
    log_sigmoid: FloatArray  #: log sigma(x) = -softplus(-x)
    log_one_minus: FloatArray  #: log(1 - sigma(x)) = -softplus(x)
    loss: FloatArray  #: p z softplus(-x) + (1 - z) softplus(x)
    gradient: FloatArray  #: dL/dx = (1 - z) sigma(x) - p z sigma(-x)


def _check(x: FloatArray, z: FloatArray) -> None:
    if x.shape != z.shape:
        raise InvalidInputError(
            f"expected {x.size} targets (one per logit), got {z.size}", field="target"
        )
    if not np.isfinite(x).all():
        raise InvalidInputError("logits must be finite for the sigmoid loss", field="logit")
    if not ((z >= 0) & (z <= 1)).all():
        raise InvalidInputError("targets must be in [0, 1]", field="target")


def _pos_weights(pos_weight: npt.ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
    """*pos_weight* broadcast to *shape* (ones without it), each finite and >= 0 as the
    commands' ``--pos-weight`` requires (a negative one makes a negative loss)."""
    if pos_weight is None:
        return np.ones(shape)
    p = np.asarray(pos_weight, dtype=np.float64)
    if not (np.isfinite(p) & (p >= 0)).all():
        raise InvalidInputError("pos_weight must be finite numbers >= 0", field="pos_weight")
    try:
        return np.broadcast_to(p, shape)
    except ValueError:
        raise InvalidInputError(
            f"pos_weight: {p.size} values for {shape[-1] if shape else 1} labels",
            field="pos_weight",
        ) from None


def bce_with_logits(
    logits: npt.ArrayLike, targets: npt.ArrayLike, pos_weight: npt.ArrayLike | None = None
) -> SigmoidLosses:
    """The binary cross-entropy of each logit against its target, PyTorch's semantics.

    Parameters
    ----------
    logits : array_like
        Finite logits, any shape (labels along the last axis).
    targets : array_like
        Targets in [0, 1] (0/1 or soft), same shape.
    pos_weight : array_like, optional
        PyTorch's ``pos_weight``: the weight of the positive term, one per label.

    Returns
    -------
    SigmoidLosses
        ``loss`` is ``reduction="none"``; PyTorch's mean is ``loss.mean()`` over all
        elements.
    """
    x = np.asarray(logits, dtype=np.float64)
    z = np.asarray(targets, dtype=np.float64)
    _check(x, z)
    p = _pos_weights(pos_weight, x.shape)
    # softplus(x) = -log(1 - sigma(x)) and softplus(-x) = -log sigma(x) share their
    # tail log1p(e^-|x|), the double-double exponential that is nearly all their cost:
    # computed once (5.5-6.9 -> 3.0 s of CPU for 1.6 million logits), the same bits as
    # softplus_dd(x) and softplus_dd(-x).
    tail = _softplus_neg_abs(np.abs(x))
    sp_pos = dd.add((np.maximum(x, 0.0), np.zeros_like(x)), tail)
    sp_neg = dd.add((np.maximum(-x, 0.0), np.zeros_like(x)), tail)
    weight_pos_hi, weight_pos_lo = two_prod(p, z)  # p z, exactly
    one_minus_z = 1.0 - z  # exact for z >= 1/2; otherwise one rounding of a value >= 1/2
    first = dd.mul((weight_pos_hi, weight_pos_lo), sp_neg)
    second = dd.mul((one_minus_z, np.zeros_like(z)), sp_pos)
    total = dd.add(first, second)
    loss = total[0] + total[1]
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(-np.abs(x))
        sig = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        sig_neg = np.where(x >= 0, e / (1.0 + e), 1.0 / (1.0 + e))  # sigma(-x) = 1 - sigma(x)
    gradient = one_minus_z * sig - p * z * sig_neg
    return SigmoidLosses(
        sigmoid=sig,
        log_sigmoid=-(sp_neg[0] + sp_neg[1]),
        log_one_minus=-(sp_pos[0] + sp_pos[1]),
        loss=loss + 0.0,
        gradient=gradient,
    )


# -- probabilities and log-probabilities ---------------------------------------------------

SigmoidKind = Literal["logits", "probs", "logprobs"]

#: the float nearest -ln 2 is above it (ln 2 = 0.693147180559945309..., the float
#: 0.693147180559945286...), so e^l > 1/2 exactly for l >= this float and e^l < 1/2 for
#: the float below it: ``l >= LOG_HALF`` is "p > 0.5" for a log-probability, to the bit
LOG_HALF = -math.log(2.0)


@dataclass(frozen=True)
class ProbabilityLosses:
    """Per-element results of :func:`bce_with_probs` / :func:`bce_with_logprobs`."""

    log_p: FloatArray  #: log p (-inf where p = 0)
    log_one_minus: FloatArray  #: log(1 - p) (-inf where p = 1)
    loss: FloatArray  #: -(w z log p + (1 - z) log(1 - p)); inf where a term is


def log1mexp(logprobs: npt.ArrayLike) -> FloatArray:
    """``log(1 - e^l)`` for log-probabilities ``l <= 0`` (``-inf`` at 0, 0 at ``-inf``).

    Maechler's rule: ``log(-expm1(l))`` for ``l > -ln 2`` (where ``1 - e^l`` would
    cancel), ``log1p(-exp(l))`` below (where ``e^l <= 1/2`` and log1p keeps it).

    >>> log1mexp([-math.log(4.0)])  # log(3/4)
    array([-0.28768207])
    """
    lp = np.asarray(logprobs, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(lp > LOG_HALF, np.log(-np.expm1(lp)), np.log1p(-np.exp(lp)))


def _from_logs(
    log_p: FloatArray, log_q: FloatArray, z: FloatArray, pos_weight: npt.ArrayLike | None
) -> ProbabilityLosses:
    """The loss from ``log p`` and ``log(1 - p)`` (each <= 0, maybe -inf), PyTorch's
    weighting: ``w z (-log p) + (1 - z) (-log(1 - p))``, each product and the sum in
    double-double and rounded once, a term with a zero weight 0 (0 log 0 = 0)."""
    w = _pos_weights(pos_weight, z.shape)
    positive = two_prod(w, z)  # w z, exactly
    negative = 1.0 - z  # exact for z >= 1/2; otherwise one rounding of a value >= 1/2
    zeros = np.zeros_like(z)
    neg_log_p = np.where(log_p > -np.inf, -log_p, 0.0)
    neg_log_q = np.where(log_q > -np.inf, -log_q, 0.0)
    total = dd.add(
        dd.mul(positive, (neg_log_p, zeros)), dd.mul((negative, zeros), (neg_log_q, zeros))
    )
    infinite = ((positive[0] > 0) & (log_p == -np.inf)) | ((negative > 0) & (log_q == -np.inf))
    loss = np.where(infinite, np.inf, total[0] + total[1]) + 0.0
    return ProbabilityLosses(log_p=log_p, log_one_minus=log_q, loss=loss)


def _targets(scores: FloatArray, targets: npt.ArrayLike, what: str) -> FloatArray:
    z = np.asarray(targets, dtype=np.float64)
    if scores.shape != z.shape:
        raise InvalidInputError(
            f"expected {scores.size} targets (one per {what}), got {z.size}", field="target"
        )
    if not ((z >= 0) & (z <= 1)).all():
        raise InvalidInputError("targets must be in [0, 1]", field="target")
    return z


def bce_with_probs(
    probs: npt.ArrayLike, targets: npt.ArrayLike, pos_weight: npt.ArrayLike | None = None
) -> ProbabilityLosses:
    """The binary cross-entropy of each probability against its target.

    PyTorch's ``binary_cross_entropy`` (``BCELoss``) with ``pos_weight`` as
    ``BCEWithLogitsLoss`` has it, but unclamped: ``p = 0`` with a target > 0 (``p = 1``
    with a target < 1) is an infinite loss, where PyTorch's clamp of the log to -100
    gives 100.

    Parameters
    ----------
    probs : array_like
        Probabilities in [0, 1], any shape (labels along the last axis).
    targets : array_like
        Targets in [0, 1], same shape.
    pos_weight : array_like, optional
        The weight of the positive term, one per label.
    """
    p = np.asarray(probs, dtype=np.float64)
    z = _targets(p, targets, "probability")
    if not ((p >= 0) & (p <= 1)).all():
        raise InvalidInputError("probabilities must be in [0, 1]", field="probability")
    with np.errstate(divide="ignore"):
        return _from_logs(np.log(p), np.log1p(-p), z, pos_weight)


def bce_with_logprobs(
    logprobs: npt.ArrayLike, targets: npt.ArrayLike, pos_weight: npt.ArrayLike | None = None
) -> ProbabilityLosses:
    """:func:`bce_with_probs` from log-probabilities ``l = log p <= 0`` (``-inf`` is
    p = 0); ``log(1 - p)`` by :func:`log1mexp`."""
    lp = np.asarray(logprobs, dtype=np.float64)
    z = _targets(lp, targets, "log-probability")
    if not (lp <= 0).all():
        raise InvalidInputError("log-probabilities must be <= 0", field="log-probability")
    return _from_logs(lp + 0.0, log1mexp(lp), z, pos_weight)


def sigmoid_predicted(scores: npt.ArrayLike, kind: SigmoidKind) -> npt.NDArray[np.bool_]:
    """Where each label is predicted 1: its probability above 1/2, whatever the kind
    (a logit x > 0, a probability p > 0.5, a log-probability l > -ln 2, exactly)."""
    s = np.asarray(scores, dtype=np.float64)
    if kind == "logits":
        return s > 0
    if kind == "probs":
        return s > 0.5
    return s >= LOG_HALF


def detect_sigmoid_kind(scores: FloatArray) -> SigmoidKind:
    """The kind of a block of sigmoid scores ``(n, L)``, by the rule of ``xent batch
    --sigmoid --scores auto``: every value in [0, 1], probabilities; anything else (and an
    empty block), logits. Log-probabilities are never detected: the logits of rare
    labels are often all negative too.

    >>> detect_sigmoid_kind(np.array([[0.1, 0.9], [0.0, 1.0]])), detect_sigmoid_kind(np.array([[-2.0, 0.5]]))
    ('probs', 'logits')
    """
    if scores.size == 0:
        return "logits"
    with np.errstate(invalid="ignore"):
        return "probs" if bool(((scores >= 0) & (scores <= 1)).all()) else "logits"


_CELL = {"logits": "logit", "probs": "probability", "logprobs": "log-probability"}


@dataclass(frozen=True)
class SigmoidScoreCheck(ScoreCheck):
    """The check of sigmoid scores: each cell is a label's own probability (in [0, 1]) or
    log-probability (<= 0, ``-inf`` allowed: p = 0), with no row total. Logits are
    checked by the readers (finite)."""

    binary: bool = True

    def bad_rows(self, scores: FloatArray) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        none = np.zeros(scores.shape[0], dtype=bool)
        if self.kind == "logits":
            return none, none
        with np.errstate(invalid="ignore"):
            if self.kind == "probs":
                ok = ((scores >= 0) & (scores <= 1)).all(axis=1)
            else:
                ok = (scores <= 0).all(axis=1)
        return np.asarray(~ok, dtype=bool), none

    def row_error(self, row: FloatArray) -> tuple[int | None, str] | None:
        if self.kind == "logits":
            return None
        cell = _CELL[self.kind]
        for c, value in enumerate(row.tolist()):
            if value != value:
                return c, f"{cell} is NaN"
            if self.kind == "probs" and value < 0:
                return c, "probability is negative"
            if self.kind == "probs" and value > 1:
                return c, "probability is above 1"
            if self.kind == "logprobs" and value > 0:
                return c, "log-probability is positive (a probability above 1)"
        return None
