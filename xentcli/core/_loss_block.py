"""The cross-entropy terms of one transposed block ``(K, b)``, from its :class:`Shift`.

The loss of the true class (weighted with an exact product), of soft targets and of the
label-smoothing share, each summed with compensation and rounded about once; a fast path
for binary rows; and the exact rational loss of one row, for rows whose float
computation overflowed.

Pure numpy (and Python rationals): no I/O, no printing.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from xentcli.core._blocks import Arena
from xentcli.core._compensated import divide_dd, sum0, two_prod
from xentcli.core._softmax_block import Shift, log_of_sum, probabilities

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def exact_row_loss(
    row: FloatArray,
    log_sum: float,
    label: int,
    target: FloatArray | None,
    w: FloatArray | None,
    eps: float,
    temperature: float,
) -> float:
    """One row's loss, from its logits and *log_sum* (its ``log s``), in exact rationals.

    For rows whose float computation overflowed (see ``row_losses``); slow, one row.
    """
    from fractions import Fraction  # lazy: fractions imports decimal (slow)

    k = row.size
    log_s = Fraction(log_sum)
    top = Fraction(float(row.max()))
    temp = Fraction(temperature)

    def nll(c: int) -> Fraction | None:  # None: +inf (a masked class)
        return None if row[c] == -np.inf else (top - Fraction(float(row[c]))) / temp + log_s

    def weighted(coefficients: list[Fraction]) -> Fraction | None:
        total = Fraction(0)
        for c, a in enumerate(coefficients):
            if a == 0:
                continue  # 0 * log 0 = 0
            value = nll(c)
            if value is None:
                return None
            total += a * value
        return total

    wf = [Fraction(1)] * k if w is None else [Fraction(float(x)) for x in w]
    if target is None:
        main = weighted([wf[c] if c == label else Fraction(0) for c in range(k)])
    else:
        main = weighted([wf[c] * Fraction(float(target[c])) for c in range(k)])
    if main is not None and eps:
        uniform = weighted(wf)
        e = Fraction(eps)
        main = None if uniform is None else (1 - e) * main + e / k * uniform
    if main is None:
        return math.inf
    try:
        return float(main)
    except OverflowError:
        return math.inf


def label_loss(a_hi: FloatArray, b: FloatArray, li: IntArray, w: FloatArray | None) -> FloatArray:
    """``w[label] * (a_hi + b)``, the product exact before its one rounding (TwoProduct).

    A zero weight gives 0 even when the loss is infinite (the row does not count).
    """
    if w is None:
        return a_hi + b
    wi = w[li]
    p, pe = two_prod(wi, a_hi)
    return np.where(wi == 0, 0.0, p + (pe + wi * b))


def binary_rows(
    xt: FloatArray,
    li: IntArray,
    w: FloatArray | None,
    temperature: float,
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray] | None:
    """Argmax, max, loss and q of the label for a ``(2, b)`` block; same bits as ``shift``.

    None when a difference overflows with a temperature, or when the TwoSum's
    intermediate rounds past the float range (the general path handles both).
    """
    y0, y1 = xt[0], xt[1]
    am = (y1 > y0).astype(np.int64)  # ties: the first index
    m = np.maximum(y0, y1)
    other = np.minimum(y0, y1)
    hi = other - m
    bb = hi - other
    lo = (other - (hi - bb)) - (m + bb)  # TwoSum(other, -m)
    if temperature != 1.0 and np.isinf(hi).any():
        return None
    if np.abs(m).max() >= 2.0**1023 and (np.isinf(bb) & np.isfinite(hi)).any():
        return None  # bb rounded past the float range; the general path redoes it exactly
    if temperature != 1.0:
        hi, lo = divide_dd(hi, lo, temperature)
    e = np.exp(hi)
    if np.isnan(lo).any():  # the other class is masked or beyond the float range
        lo[np.isinf(hi)] = 0.0
    s_hi = 1.0 + e
    s_lo = ((1.0 - s_hi) + e) + e * lo  # Fast2Sum(1, e): 1 >= e
    log_s = log_of_sum(s_hi, s_lo)
    is_max = li == am
    np.copyto(hi, 0.0, where=is_max)
    np.copyto(lo, 0.0, where=is_max)
    np.copyto(e, 1.0, where=is_max)
    loss = label_loss(-hi, log_s - lo, li, w)
    return am, m, loss, probabilities(e, lo, s_hi, s_lo)


def _weighted_neg_shift(sh: Shift, v: FloatArray, arena: Arena) -> tuple[FloatArray, FloatArray]:
    """``sum_c v_c * -(hi_c + lo_c)`` per row as (hi, lo); 0 where v_c = 0 (0 log 0 = 0)."""
    products = np.multiply(v, sh.hi, out=arena.take(sh.hi.shape))  # all <= 0
    g_hi, g_lo = sum0(products, arena)
    if np.isnan(g_hi).any():  # 0 * -inf: a masked class without weight; 0 log 0 = 0
        np.copyto(products, 0.0, where=~(v > 0))
        g_hi, g_lo = sum0(products, arena)
    g_lo += np.einsum("kb,kb->b", v, sh.lo)
    return -g_hi, -g_lo


def soft_loss(sh: Shift, v: FloatArray, arena: Arena) -> FloatArray:
    """``-sum_c v_c log q_c = log s * sum_c v_c + sum_c v_c * -(y_c - m)`` (no cancellation)."""
    v_hi, v_lo = sum0(v, arena)
    g_hi, g_lo = _weighted_neg_shift(sh, v, arena)
    with np.errstate(invalid="ignore"):
        p, pe = two_prod(sh.log_s, v_hi)
        # This association makes a one-hot target give the same bits as its label.
        out = g_hi + (p + (pe + sh.log_s * v_lo + g_lo))
    return np.where(np.isnan(out), np.inf, out)


def uniform_loss(sh: Shift, w: FloatArray | None, w_total: float, arena: Arena) -> FloatArray:
    """``sum_c w_c * -log q_c`` (the label-smoothing term before its eps / K)."""
    if w is None:
        g_hi, g_lo = sum0(sh.hi, arena)
        g_hi, g_lo = -g_hi, -(g_lo + sh.lo.sum(axis=0))
    else:
        g_hi, g_lo = _weighted_neg_shift(sh, np.broadcast_to(w[:, None], sh.hi.shape), arena)
    with np.errstate(invalid="ignore"):
        p, pe = two_prod(sh.log_s, np.float64(w_total))
        out = p + (g_hi + (pe + g_lo))
    return np.where(np.isnan(out), np.inf, out)
