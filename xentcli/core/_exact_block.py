"""Correctly rounded softmax quantities and losses of one transposed block ``(K, b)``.

The exact path (``exact=True``): the shift ``y - m`` as before (exact, TwoSum), then
every exponential in double-double from :mod:`xentcli.core._ddmath` (no libm), the sum
``x = s - 1`` and ``log s = log1p(x)`` in double-double, each result with a proven error
bound, rounded by Ziv's test (:func:`xentcli.core._ziv.round_checked`); the rows whose
rounding is not certain are redone in :mod:`decimal` (:func:`xentcli.core._ziv.slow_row`).

Error bounds (absolute, per row; ``eps_e`` = :data:`~xentcli.core._ddmath.EXP_REL_ERR`):

- ``x``: ``x (eps_e + 746 eps_d + (2K + 8) 2**-106) + K 2**-1074`` (each exponential, the
  shift's own error ``eps_d`` = 2**-104 relative under a temperature, 0 without; the
  TwoSum tree and the sum of the low parts; results below 2**-1021 rounded once);
- ``log s``: ``log s * 2**-74 + err(x)`` (``d log1p(x) / dx <= 1``);
- ``-log q_c = log s - d_c``, ``log q_c``: ``err(log s) + eps_d |d_c| + 2**-104 |result|``;
- ``q_c = exp(d_c) / s``: relative ``eps_e + err(x) / s + 2**-100``;
- weighted and summed losses: the weights' products are exact (TwoProduct), every term is
  non-negative, so the bounds add up term by term, plus 2**-104 per term for the sums.

Pure numpy: no I/O, no printing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from xentcli.core._blocks import Arena
from xentcli.core._compensated import divide_dd, sum0
from xentcli.core._ddmath import (
    EXP_ABS_ERR,
    EXP_REL_ERR,
    LOG_REL_ERR,
    exp_parts,
    log1p_dd,
    scale,
    two_prod_small,
)
from xentcli.core._softmax_block import Shift, flat, shift
from xentcli.core._ziv import Quantity, RowDecimal, around, round_checked

if TYPE_CHECKING:
    from decimal import Decimal
    from fractions import Fraction

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_TINY_REL = 2.0**-104  # one double-double operation, relative
_SAFE = 1.0 + 2.0**-40  # rounding of the bound computations themselves


class ExactShift(NamedTuple):
    """A block's shift, exponentials and ``log s`` in double-double, with bounds."""

    sh: Shift
    lo: FloatArray  #: (K, b) the shift's low part, 0 where hi is -inf
    m_hi: FloatArray  #: (K, b) exp(d) = (m_hi + m_lo) 2**k; the argmax: 1, 0, 0
    m_lo: FloatArray
    k: IntArray
    zero: BoolArray  #: (K, b) exp(d) below 2**-1076, taken as 0
    x_hi: FloatArray  #: (b,) x = s - 1 = sum over k != argmax of exp(d_k)
    x_lo: FloatArray
    x_err: FloatArray  #: (b,) absolute bound
    ls_hi: FloatArray  #: (b,) log s
    ls_lo: FloatArray
    ls_err: FloatArray  #: (b,) absolute bound
    d_err: float  #: relative bound of the shift d = hi + lo


def exact_shift(
    xt: FloatArray,
    temperature: float,
    arena: Arena,
    check: Callable[[FloatArray], None] | None = None,
    rows: FloatArray | None = None,
) -> ExactShift:
    """:func:`~xentcli.core._softmax_block.shift`, then the double-double parts."""
    sh = shift(xt, temperature, arena, check, rows)
    kk, b = sh.hi.shape
    finite = np.isfinite(sh.hi)
    lo = np.where(finite, sh.lo, 0.0)
    parts = exp_parts(sh.hi, lo)
    at = flat(sh.argmax, b)
    for array, value in ((parts.m_hi, 1.0), (parts.m_lo, 0.0), (parts.k, 0), (parts.zero, False)):
        array.ravel()[at] = value
    e_hi, e_lo = scale(parts.m_hi, parts.m_lo, parts.k, parts.zero)
    e_hi.ravel()[at] = 0.0
    e_lo.ravel()[at] = 0.0
    x_hi, tree = sum0(e_hi, arena)
    x_lo = tree + e_lo.sum(axis=0)
    x_hi, x_lo = _fast_two_sum(x_hi, x_lo)
    d_err = 0.0 if temperature == 1.0 else _TINY_REL
    rel = EXP_REL_ERR + 746 * d_err + (2 * kk + 8) * 2.0**-106
    x_err = (x_hi * rel + kk * EXP_ABS_ERR) * _SAFE
    ls_hi, ls_lo = log1p_dd(x_hi, x_lo)
    ls_err = (ls_hi * LOG_REL_ERR + x_err) * _SAFE
    return ExactShift(
        sh, lo, parts.m_hi, parts.m_lo, parts.k, parts.zero,
        x_hi, x_lo, x_err, ls_hi, ls_lo, ls_err, d_err,
    )  # fmt: skip


def _fast_two_sum(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    s = a + b
    return s, b - (s - a)


def _two_sum(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


class Rounded(NamedTuple):
    """Results rounded once, the remainder to the double-double value, and a bound."""

    value: FloatArray  #: the float64 result (correctly rounded where ``ok``)
    rem: FloatArray  #: ``hi + lo - value`` (rounded): the value's low part
    err: FloatArray  #: absolute bound of ``|value + rem - exact|``
    ok: BoolArray  #: where the rounding is certain


def _rounded(
    hi: FloatArray,
    lo: FloatArray,
    err: FloatArray,
    lo2: FloatArray | None = None,
    push: BoolArray | None = None,
) -> Rounded:
    value, ok = round_checked(hi, lo, err, lo2=lo2, push=push)
    with np.errstate(invalid="ignore"):
        rem = (hi - value) + lo
        if lo2 is not None:
            rem = rem + lo2
        rem = np.where(np.isfinite(rem), rem, 0.0)
    return Rounded(value, rem, err * _SAFE + np.abs(rem) * 2.0**-52, ok)


def negligible_rest(es: ExactShift, scale: FloatArray | float = 1.0) -> BoolArray:
    """Rows whose ``x = s - 1`` is provably below ``2**-1076 / scale``.

    There every exponential but the max's underflowed, and the error bound of ``x``
    (``K 2**-1074``) is too coarse to round ``log s ~ x`` to 0 with certainty; an upper
    bound of each term, ``2**(floor(d log2 e) + 2)``, summed at the scale ``2**1100``,
    decides it: ``log s`` (and ``scale * log s``) then rounds to 0.
    """
    rows: BoolArray = (es.x_hi == 0) & (es.x_lo == 0)
    if not rows.any():
        return rows
    hi = es.sh.hi[:, rows]
    with np.errstate(invalid="ignore", over="ignore"):
        n = np.floor(np.clip(hi, -4000.0, 0.0) * 1.4426950408889634) + (2 + 1100)
        terms = np.where(np.isfinite(hi) & (hi < 0), np.ldexp(1.0, n.astype(np.int64)), 0.0)
    # The argmax's own term (hi = 0) is left out by hi < 0; a tie (another hi = 0) has
    # made x >= 1, so such a row is not here.
    bound = terms.sum(axis=0) * (1 + 2.0**-40)
    out: BoolArray = np.zeros_like(rows)
    out[rows] = bound * (scale if np.ndim(scale) == 0 else np.asarray(scale)[rows]) < 2.0**24
    return out


def neg_log_q3(
    es: ExactShift, hi: FloatArray, lo: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``log s - d`` as three parts (hi, lo, lo2) and a bound: the exact shift ``d`` and a
    tiny ``log s`` stay apart, so a shift that is a float64 midpoint plus a positive
    ``log s`` far below its ulp still rounds with certainty."""
    with np.errstate(invalid="ignore"):
        t, te = _two_sum(-lo, es.ls_hi)
        n_hi, e = _two_sum(-hi, t)
        n_lo, e2 = _two_sum(e, te)
        n_lo2 = e2 + es.ls_lo
        finite = np.isfinite(n_hi)
        n_lo = np.where(finite, n_lo, 0.0)
        n_lo2 = np.where(finite, n_lo2, 0.0)
        err = (es.ls_err + es.d_err * np.abs(hi) + 2.0**-52 * np.abs(n_lo2)) * _SAFE
        err = np.where(np.isfinite(err), err, 0.0)
    return n_hi, n_lo, n_lo2, err


def neg_log_q(es: ExactShift, hi: FloatArray, lo: FloatArray) -> tuple[FloatArray, ...]:
    """``log s - d`` for shifts ``d = hi + lo`` broadcast against the rows: hi, lo, err."""
    with np.errstate(invalid="ignore"):
        n_hi, n_e = _two_sum(es.ls_hi, -hi)
        n_lo = n_e + (es.ls_lo - lo)
        n_lo = np.where(np.isfinite(n_hi), n_lo, 0.0)
        err = (es.ls_err + es.d_err * np.abs(hi) + _TINY_REL * np.abs(n_hi)) * _SAFE
        err = np.where(np.isfinite(err), err, 0.0)
    return n_hi, n_lo, err


def label_loss(
    es: ExactShift, li: IntArray, w: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``w[label] * -log q_label`` as hi, lo, lo2, err; a zero weight gives exactly 0.

    Three parts (see :func:`neg_log_q3`) where the weight is 1 or another power of two
    (the product is exact); otherwise the weighted value is a double-double (lo2 = 0).
    """
    hi, lo, lo2, err, _ = label_loss_pushed(es, li, w)
    return hi, lo, lo2, err


def label_loss_pushed(
    es: ExactShift, li: IntArray, w: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    """:func:`label_loss`, and the rows whose error is one-sided (``push`` of
    :func:`~xentcli.core._ziv.round_checked`): every other term underflowed to 0 at
    T = 1, so the computed value is the exact shift and the exact loss exceeds it."""
    push = (es.x_hi == 0) & (es.x_lo == 0) & (es.d_err == 0) & (li != es.sh.argmax)
    if push.any():
        others = np.isfinite(es.sh.hi).sum(axis=0) > 1  # log s > 0: an unmasked other
        push &= others
    at = flat(li, es.sh.hi.shape[1])
    hi_i = np.take(es.sh.hi, at)
    n_hi, n_lo, n_lo2, err = neg_log_q3(es, hi_i, np.take(es.lo, at))
    wi = np.ones_like(n_hi) if w is None else w[li]
    # The max's own class with every other term underflowed: the loss is log s < 2**-1076
    # (times the weight): 0, certainly (the mean's bound counts it, see _exact_kernel).
    tiny = (li == es.sh.argmax) & negligible_rest(es, wi)
    if tiny.any():
        n_hi, n_lo, n_lo2, err = (np.where(tiny, 0.0, a) for a in (n_hi, n_lo, n_lo2, err))
    if w is None:
        return n_hi, n_lo, n_lo2, err, push
    with np.errstate(invalid="ignore", over="ignore"):
        # a power of two in a safe range: w times each part is exact
        exact = (np.frexp(wi)[0] == 0.5) & (wi >= 2.0**-500) & (wi <= 2.0**500)
        exact &= np.isfinite(wi * n_hi)
        p_hi, p_lo, p_err = _weighted(wi, n_hi, n_lo + n_lo2, err)
        return (
            np.where(exact, wi * n_hi, p_hi),
            np.where(exact, wi * n_lo, p_lo),
            np.where(exact, wi * n_lo2, 0.0),
            np.where(exact, wi * err, p_err),
            push & exact,
        )


def _weighted(
    v: FloatArray, n_hi: FloatArray, n_lo: FloatArray, err: FloatArray,
    v_lo: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:  # fmt: skip
    """``(v + v_lo) * (n_hi + n_lo)`` for ``v >= 0`` (0 where v is 0, even times inf)."""
    with np.errstate(invalid="ignore", over="ignore"):
        p, pe = _two_prod_any(v, n_hi)
        lo = pe + v * n_lo
        out_err = v * err + _TINY_REL * np.abs(p)
        if v_lo is not None:
            lo = lo + v_lo * n_hi
            out_err = out_err + np.abs(v_lo) * err
        out_err = out_err * _SAFE
    zero = v == 0
    return (
        np.where(zero, 0.0, p),
        np.where(zero | ~np.isfinite(p), 0.0, lo),
        np.where(zero | ~np.isfinite(p), 0.0, out_err),
    )


def _two_prod_any(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    from xentcli.core._compensated import two_prod

    return two_prod(a, b)


def weighted_sum(
    es: ExactShift, v: FloatArray, arena: Arena, v_lo: FloatArray | None = None
) -> tuple[FloatArray, ...]:
    """``sum_c v_c * -log q_c`` per row for ``v = v + v_lo >= 0`` of shape (K, b): hi, lo,
    err. ``0 * -log 0 = 0``; a positive ``v_c`` on a masked class gives ``inf``.
    """
    n_hi, n_lo, n_err = neg_log_q(es, es.sh.hi, es.lo)
    return weighted_terms(v, n_hi, n_lo, n_err, arena, v_lo)


def weighted_terms(
    v: FloatArray, n_hi: FloatArray, n_lo: FloatArray, n_err: FloatArray,
    arena: Arena | None = None, v_lo: FloatArray | None = None,
) -> tuple[FloatArray, ...]:  # fmt: skip
    """``sum_c (v_c + v_lo_c) * (n_hi + n_lo)_c`` over axis 0 of (K, b) arrays, for
    ``v >= 0`` and non-negative terms ``n`` within ``n_err``: hi, lo, err (the bounds add
    up term by term). ``0 * inf = 0``."""
    p_hi, p_lo, p_err = _weighted(v, n_hi, n_lo, n_err, v_lo)
    kk = v.shape[0]
    with np.errstate(invalid="ignore"):
        s_hi, tree = sum0(p_hi, arena)
        s_lo = tree + p_lo.sum(axis=0)
        err = (p_err.sum(axis=0) + (2 * kk + 8) * 2.0**-104 * np.abs(s_hi)) * _SAFE
        s_hi, s_lo = _two_sum(s_hi, s_lo)
        # The terms are >= 0: an infinite one (a positive share on a class of
        # probability 0) makes the sum +inf, not the nan of inf - inf in the TwoSums
        # (which sent such rows to the slow path: 1 in 60 rows of soft targets on
        # probabilities with exact zeros).
        infinite = np.isinf(p_hi).any(axis=0)
        s_hi = np.where(infinite, np.inf, s_hi)
        s_lo = np.where(np.isfinite(s_hi), s_lo, 0.0)
    return s_hi, s_lo, np.where(np.isfinite(err) & ~infinite, err, 0.0)


def combine(
    keep: tuple[float, float], a: tuple[FloatArray, ...], share: tuple[float, float],
    b: tuple[FloatArray, ...],
) -> tuple[FloatArray, FloatArray, FloatArray]:  # fmt: skip
    """``keep * a + share * b`` for double-double constants and terms (label smoothing)."""
    with np.errstate(invalid="ignore", over="ignore"):
        p, pe = _two_prod_any(np.full_like(a[0], keep[0]), a[0])
        q, qe = _two_prod_any(np.full_like(b[0], share[0]), b[0])
        hi, e = _two_sum(p, q)
        lo = e + (pe + qe + keep[0] * a[1] + keep[1] * a[0] + share[0] * b[1] + share[1] * b[0])
        err = (keep[0] * a[2] + share[0] * b[2] + 2.0**-100 * np.abs(hi)) * _SAFE
        bad = ~np.isfinite(hi)
    return np.where(bad, np.where(np.isnan(hi), np.inf, hi), hi), np.where(bad, 0.0, lo), err


# ------------------------------------------------------------- rows of a batch
class ExactLosses(NamedTuple):
    loss: FloatArray  #: correctly rounded row losses (nats)
    loss_lo: FloatArray  #: the double-double remainder: loss + loss_lo is within ...
    loss_err: FloatArray  #: ... this of the exact row loss
    predicted: IntArray
    label_probability: FloatArray  #: correctly rounded q of the label (nan: soft targets)


def slow_err(value: float) -> float:
    """A bound for a correctly rounded value used as its own approximation: half an ulp."""
    return 0.0 if not np.isfinite(value) else float(np.spacing(abs(value)))


def masked_inf(
    rows: FloatArray, li: IntArray, t: FloatArray | None, w: FloatArray | None, eps: float
) -> npt.NDArray[np.bool_]:
    """Rows whose infinite loss is exact: a class with a positive coefficient is masked
    (-inf). Other infinities (overflowed differences, products) go to the slow path."""
    masked = np.isneginf(rows)
    k = rows.shape[1]
    wc = np.ones(k) if w is None else w
    if eps:
        coefficient = np.broadcast_to(wc > 0, rows.shape)
    elif t is not None:
        coefficient = (t * wc) > 0
    else:
        coefficient = np.zeros(rows.shape, dtype=bool)
        coefficient[np.arange(rows.shape[0]), li] = wc[li] > 0
    return np.asarray((masked & coefficient).any(axis=1))


# --------------------------------------------------------------- softmax quantities
def sum_parts(es: ExactShift) -> tuple[FloatArray, FloatArray]:
    """``s = 1 + x`` as a double-double."""
    s_hi, s_lo = _two_sum(np.ones_like(es.x_hi), es.x_hi)
    return s_hi, s_lo + es.x_lo


def probabilities(es: ExactShift, at: IntArray | None = None) -> tuple[FloatArray, BoolArray]:
    """``q = exp(d) / s``, rounded, and where the rounding is certain: of every class, or
    (*at*, the label of each row) of one class per row."""
    s_hi, s_lo = sum_parts(es)
    m_hi, m_lo, k, zero = es.m_hi, es.m_lo, es.k, es.zero
    if at is not None:
        pos = flat(at, es.sh.hi.shape[1])
        m_hi, m_lo = np.take(m_hi, pos), np.take(m_lo, pos)
        k, zero = np.take(k, pos), np.take(zero, pos)
    q_hi = m_hi / s_hi
    p, pe = two_prod_small(q_hi, np.broadcast_to(s_hi, q_hi.shape))
    q_lo = ((((m_hi - p) - pe) + m_lo) - q_hi * s_lo) / s_hi
    rel = EXP_REL_ERR + 746 * es.d_err + es.x_err / s_hi + 2.0**-100
    q, ok = round_checked(q_hi, q_lo, np.abs(q_hi) * rel * _SAFE, k)
    q[zero] = 0.0
    return q, ok | zero


def log_probabilities(es: ExactShift) -> tuple[FloatArray, BoolArray]:
    """``log q = d - log s`` of every class, rounded, and where that is certain."""
    n_hi, n_lo, n_lo2, err = neg_log_q3(es, es.sh.hi, es.lo)
    # -log q (the loss of each class) rounded, then negated: rounding is symmetric
    push = (es.x_hi == 0) & (es.x_lo == 0) & (es.d_err == 0)
    if push.any():
        push = push & (np.isfinite(es.sh.hi).sum(axis=0) > 1)
    value, ok = round_checked(n_hi, n_lo, err, lo2=n_lo2, push=np.broadcast_to(push, n_hi.shape))
    value = -value
    tiny = negligible_rest(es)
    if tiny.any():  # log q of the max's class is -log s in (-2**-1076, 0): -0.0
        cols = np.flatnonzero(tiny)
        value[es.sh.argmax[tiny], cols] = -0.0
        ok[es.sh.argmax[tiny], cols] = True
    return value, ok


def exponentials(es: ExactShift) -> tuple[FloatArray, BoolArray]:
    """``exp(d)`` of every class, rounded, and where that is certain."""
    rel = (EXP_REL_ERR + 746 * es.d_err) * _SAFE
    e, ok = round_checked(es.m_hi, es.m_lo, es.m_hi * rel, es.k)
    e[es.zero] = 0.0
    return e, ok | es.zero


def log_sum_exp(es: ExactShift, temperature: float) -> tuple[FloatArray, BoolArray]:
    """``m / T + log s`` per row, rounded, and where that is certain."""
    m = es.sh.max
    if temperature == 1.0:
        m_hi, m_lo = m, np.zeros_like(m)
    else:
        m_hi, m_lo = divide_dd(m, np.zeros_like(m), temperature)
        m_lo = np.where(np.isfinite(m_hi), m_lo, 0.0)
    hi, e = _two_sum(m_hi, es.ls_hi)
    lo = e + (m_lo + es.ls_lo)
    err = (es.ls_err + _TINY_REL * (np.abs(m_hi) + np.abs(hi))) * _SAFE
    value, ok = round_checked(
        hi, np.where(np.isfinite(hi), lo, 0.0), np.where(np.isfinite(err), err, 0.0)
    )
    tiny = (m_hi == 0) & (m_lo == 0) & negligible_rest(es)
    value[tiny] = 0.0  # m = 0 and log s below 2**-1076
    return value, ok | tiny


# ------------------------------------------------------------ the slow path's pieces


def loss_coefficients(
    k: int, label: int, target: FloatArray | None, w: FloatArray | None, eps: float
) -> list[Fraction]:
    """PyTorch's coefficients ``a_c`` of ``-log q_c`` in a row loss, as exact rationals:
    ``w[label]`` at the label (or ``w_c t_c`` for soft targets), label smoothing making
    them ``(1 - eps) a_c + eps / K * w_c``."""
    from fractions import Fraction

    wf = [Fraction(1)] * k if w is None else [Fraction(float(x)) for x in w]
    if target is None:
        a = [wf[c] if c == label else Fraction(0) for c in range(k)]
    else:
        a = [wf[c] * Fraction(float(target[c])) for c in range(k)]
    if eps:
        keep, share = 1 - Fraction(eps), Fraction(eps) / k
        a = [keep * ac + share * wc for ac, wc in zip(a, wf, strict=True)]
    return a


def slow_loss(
    label: int, target: FloatArray | None, w: FloatArray | None, eps: float, k: int
) -> Quantity:
    """The row loss ``sum_c a_c * -log q_c``, PyTorch's coefficients exactly (rationals).

    ``a`` is ``w[label]`` at the label, or ``w_c t_c`` (soft targets); label smoothing
    makes it ``(1 - eps) a_c + eps / K * w_c``. A zero coefficient contributes nothing
    (``0 log 0 = 0``), a positive one on a masked class makes the loss ``inf``. The loss
    is ``P + Q log s`` with ``P = -sum a_c d_c`` and ``Q = sum a_c`` exact.
    """

    def quantity(rd: RowDecimal) -> float | tuple[Fraction, Fraction]:
        from fractions import Fraction

        a = loss_coefficients(k, label, target, w, eps)
        p = Fraction(0)
        q = Fraction(0)
        for c, ac in enumerate(a):
            if ac == 0:
                continue
            d = rd.d[c]
            if d is None:
                return math.inf
            p -= ac * d
            q += ac
        low, high = around(rd.log_s, rd.abs_log_s, rd.positive)
        return p + q * low, p + q * high

    return quantity


def slow_probability(c: int) -> Quantity:
    def quantity(rd: RowDecimal) -> float | tuple[Fraction, Fraction]:
        from fractions import Fraction

        d = rd.d[c]
        if d is None or d < -746:  # q < exp(d) < 2**-1076: rounds to 0
            return 0.0
        ctx = rd.ctx
        s = ctx.add(1, rd.x)
        value = ctx.divide(_exp(rd, d), s)
        rel = rd.rel_e + (rd.rel_x * rd.x + rd.abs_x) / s + 4 * rd.eps
        return around(Fraction(value), Fraction(value * rel))

    return quantity


def _exp(rd: RowDecimal, d: Fraction) -> Decimal:
    ctx = rd.ctx
    return ctx.exp(ctx.divide(d.numerator, d.denominator))


def slow_log_probability(c: int) -> Quantity:
    def quantity(rd: RowDecimal) -> float | tuple[Fraction, Fraction]:
        d = rd.d[c]
        if d is None:
            return -math.inf
        low, high = around(rd.log_s, rd.abs_log_s, rd.positive)
        return d - high, d - low

    return quantity


def slow_exponential(c: int) -> Quantity:
    def quantity(rd: RowDecimal) -> float | tuple[Fraction, Fraction]:
        from fractions import Fraction

        d = rd.d[c]
        if d is None or d < -746:
            return 0.0
        value = _exp(rd, d)
        return around(Fraction(value), Fraction(value * rd.rel_e))

    return quantity


def slow_sum(rd: RowDecimal) -> float | tuple[Fraction, Fraction]:
    from fractions import Fraction

    value = rd.ctx.add(1, rd.x)
    bound = rd.rel_x * rd.x + rd.abs_x + rd.eps * value
    low, high = around(Fraction(value) - 1, Fraction(bound), rd.positive)
    return 1 + low, 1 + high


def slow_log_sum(rd: RowDecimal) -> float | tuple[Fraction, Fraction]:
    return around(rd.log_s, rd.abs_log_s, rd.positive)


def slow_log_sum_exp(rd: RowDecimal) -> float | tuple[Fraction, Fraction]:
    mt = rd.m / rd.temperature
    low, high = around(rd.log_s, rd.abs_log_s, rd.positive)
    return mt + low, mt + high
