"""exp and log1p in double-double, from IEEE basic operations only, with error bounds.

numpy's ``np.exp`` and ``np.log`` differ in the last bit between builds (AVX-512, AVX2,
ARM); +, -, *, /, ``np.rint``, ``np.frexp`` and ``np.ldexp`` do not (IEEE 754 specifies
them exactly). Everything here is built from those, so the results are the same bits on
every machine, and they carry about 80 bits: enough for a rounding test to decide the
correctly rounded float64 result almost always (:mod:`xentcli.core._ziv`).

A value is an unevaluated sum ``hi + lo`` of two float64 arrays (a double-double).

exp(x), ``x = hi + lo`` with ``|lo| <= ulp(hi)``
    ``n = rint(hi * 256 / ln 2)``, ``n = 256 k + j``; ``r = x - n ln2 / 256`` with
    ``ln2 / 256 = C1 + C2 + C3`` (C1, C2 of 34 bits, so ``n C1`` and ``n C2`` are exact
    for ``|n| < 2**19``, and ``hi - n C1`` is exact by Sterbenz's lemma); ``r = r_hi + r_lo``
    with ``|r_hi| <= 2**-9.52``. Then ``exp(x) = 2**k * T_j * (1 + p)`` with
    ``T_j = 2**(j/256)`` from a table (double-double, correctly rounded from ``decimal``)
    and ``p = expm1(r_hi) (1 + r_lo) + r_lo``. The error budget, relative to ``exp(x)``:

    ==============================================  ===========
    Taylor series of expm1 cut after r**7            2**-91.4
    r**2/2 as A + B (A exact, B one rounding)        2**-100
    the tail r**3 (1/6 + ... + r**4/5040) in double  2**-82.2
    the sums forming p (four roundings of <=2**-30)  2**-83.5
    r_lo's terms (r_lo <= 2**-43.9; r_lo**2/2 left)  2**-88.8
    T_j's own error, T_lo*p_lo left out              2**-96
    the sum of the low parts of T_j (1 + p)          2**-92
    ==============================================  ===========

    total below 2**-81.3; :data:`EXP_REL_ERR` states 2**-78 (8x margin). Results with
    ``k < -1022`` (below 2**-1021) are rounded once to the float grid there (absolute error
    at most 2**-1075 beyond the relative one; :data:`EXP_ABS_ERR` states 2**-1074);
    ``x < -746`` gives 0 (true value below 2**-1076). :func:`exp_parts` returns the
    mantissa ``m`` (in [0.99, 2)) and the exponent ``k`` apart, for callers that divide
    first and scale once.

log1p(x), ``x = hi + lo >= 0``
    For ``x < 2**-11``: ``U = x``. Otherwise ``s = 1 + x`` (TwoSum), ``s_hi = 2**E M`` with
    M in [1, 2) (frexp), ``c_j = 1 + j/1024`` nearest M, ``r_j = fl(1/c_j)`` from a table;
    ``U = M r_j (1 + s_lo/s_hi) - 1`` (Dekker's product, exact; ``M r_j - 1`` is exact by
    Sterbenz) and ``log s = E ln2 - log r_j + log1p(U)``, with ``-log r_j`` a double-double
    table. In both cases ``|U| <= 2**-10.9`` and ``log1p(U) = 2 atanh(z)``,
    ``z = U / (2 + U)`` (a double-double division, 2**-100), ``|z| <= 2**-11.9``:
    ``2z + z**3 (2/3 + z**2 (2/5 + z**2 2/7))``, whose next term is ``2 z**9 / 9``
    (2**-99 relative). The tail is about 2**-25.6 of the result and is evaluated in
    double (5 roundings), with z_lo's share ``2 z**2 z_lo`` added: 2**-76.3 relative. The other terms add below 2**-95. Total below
    2**-76.2; :data:`LOG_REL_ERR` states 2**-74 (4x margin). When ``x >= 2**-11`` the
    result is at least 2**-11.1 and the absolute errors of the table terms (2**-106) stay
    far below the bound.

The bounds are checked against mpmath in tests/test_ddmath.py, over wide random and hard
arguments (measured worst cases: 2**-82.3 for exp, 2**-76.8 for log1p, at x near 2**-11).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EXP_REL_ERR = 2.0**-78  #: relative error bound of :func:`exp_dd` and :func:`exp_parts`
EXP_ABS_ERR = 2.0**-1074  #: absolute error bound of :func:`exp_dd` beyond the relative one
LOG_REL_ERR = 2.0**-74  #: relative error bound of :func:`log1p_dd`
EXP_ZERO_BELOW = -746.0  #: exp(x) for x below this is returned as 0 (it is < 2**-1076)

_SPLITTER = 134217729.0  # 2**27 + 1
_EXP_BITS = 8
_LOG_BITS = 10


class _Tables(NamedTuple):
    c1: float
    c2: float
    c3: float
    t_hi: FloatArray  # 2**(j/256), rounded
    t_lo: FloatArray  # its remainder, rounded
    t_hh: FloatArray  # Veltkamp halves of t_hi
    t_hl: FloatArray
    r: FloatArray  # fl(1 / (1 + j/1024))
    r_h: FloatArray  # Veltkamp halves of r
    r_l: FloatArray
    lr_hi: FloatArray  # -log(r), double-double
    lr_lo: FloatArray
    ln2_hi: float  # ln 2 with 46 bits: E * ln2_hi is exact for |E| < 2**7
    ln2_lo: float


_lock = threading.Lock()
_tables: _Tables | None = None


def _split(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    c = _SPLITTER * x
    h = c - (c - x)
    return h, x - h


def _build() -> _Tables:
    """The constants and tables, correctly rounded from 60-digit ``decimal`` values."""
    from decimal import Context, Decimal
    from fractions import Fraction

    ctx = Context(prec=60)
    ln2 = ctx.ln(Decimal(2))

    def dd(value: Decimal) -> tuple[float, float]:
        hi = float(value)
        return hi, float(ctx.subtract(value, Decimal(hi)))

    def bits(value: Fraction, n: int) -> float:
        """*value* rounded to *n* significant bits (exact in float64)."""
        _, e = np.frexp(float(value))
        scale = Fraction(2) ** (n - int(e))
        return float(Fraction(round(value * scale)) / scale)

    step = Fraction(ctx.divide(ln2, Decimal(2**_EXP_BITS)))
    c1 = bits(step, 34)
    c2 = bits(step - Fraction(c1), 34)
    c3 = float(step - Fraction(c1) - Fraction(c2))
    t = [
        dd(ctx.power(Decimal(2), ctx.divide(Decimal(j), Decimal(2**_EXP_BITS))))
        for j in range(2**_EXP_BITS)
    ]
    t_hi = np.array([a for a, _ in t])
    t_lo = np.array([b for _, b in t])
    t_hh, t_hl = _split(t_hi)
    size = 2**_LOG_BITS
    r = np.array([float(Fraction(size, size + j)) for j in range(size + 1)])
    r_h, r_l = _split(r)
    lr = [dd(-ctx.ln(Decimal(float(x)))) for x in r]
    ln2_hi = bits(Fraction(ln2), 46)
    ln2_lo = float(Fraction(ln2) - Fraction(ln2_hi))
    return _Tables(
        c1, c2, c3, t_hi, t_lo, t_hh, t_hl, r, r_h, r_l,
        np.array([a for a, _ in lr]), np.array([b for _, b in lr]), ln2_hi, ln2_lo,
    )  # fmt: skip


def tables() -> _Tables:
    """The tables, built on first use (about 20 ms) and kept."""
    global _tables
    if _tables is None:
        with _lock:
            if _tables is None:
                _tables = _build()
    return _tables


class ExpParts(NamedTuple):
    """``exp(x) = (m_hi + m_lo) * 2**k``; ``m`` in [0.99, 2), or 0 where ``zero``."""

    m_hi: FloatArray
    m_lo: FloatArray
    k: IntArray
    zero: npt.NDArray[np.bool_]  #: x < -746 (or -inf): exp(x) taken as 0


def exp_parts(hi: FloatArray, lo: FloatArray) -> ExpParts:
    """``exp(hi + lo)`` as a double-double mantissa and a power of two (see the module).

    *hi* must be ``<= 709.7`` or ``-inf``; ``|lo| <= ulp(hi)`` (lo is ignored where hi is
    -inf). Relative error of the mantissa at most :data:`EXP_REL_ERR`.
    """
    tb = tables()
    with np.errstate(invalid="ignore", over="ignore"):
        zero = ~(hi >= EXP_ZERO_BELOW)
        x = np.where(zero, 0.0, hi)
        xlo = np.where(zero, 0.0, lo)
        nf = np.rint(x * (2**_EXP_BITS / 0.6931471805599453))
        t1 = x - nf * tb.c1  # exact (Sterbenz)
        t2 = nf * -tb.c2  # exact: 34-bit constant, |n| < 2**19
        r = t1 + t2  # TwoSum(t1, t2)
        bb = r - t1
        r_lo = (t1 - (r - bb)) + (t2 - bb)
        r_lo += xlo - nf * tb.c3
        # expm1(r) = r + r**2/2 + r**3 (1/6 + r (1/24 + ...)); r**2/2 = a + b exactly.
        rh, rl = _split(r)
        a = (0.5 * rh) * rh
        b = rh * rl + (0.5 * rl) * rl
        r2 = r * r
        tail = r2 * r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040)))))
        p_hi = r + a  # Fast2Sum: |r| >= |a|
        p_lo = (a - (p_hi - r)) + (b + tail)
        # exp(r_hi + r_lo) = exp(r_hi) (1 + r_lo + ...); p_lo holds the tail (2**-31):
        # its product with r_lo counts too.
        p_lo += r_lo + (p_hi + p_lo) * r_lo
        n = nf.astype(np.int64)
        j = n & (2**_EXP_BITS - 1)
        k = n >> _EXP_BITS
        t_hi = tb.t_hi[j]
        t_lo = tb.t_lo[j]
        # Dekker's product t_hi * p_hi with t_hi's halves from the table.
        prod = t_hi * p_hi
        ph, pl = _split(p_hi)
        th, tl = tb.t_hh[j], tb.t_hl[j]
        err = (((th * ph - prod) + th * pl) + tl * ph) + tl * pl
        s = t_hi + prod  # Fast2Sum: t_hi >= 1 > |prod|
        low = (prod - (s - t_hi)) + (err + (t_hi * p_lo + (t_lo + t_lo * p_hi)))
        m_hi = s + low
        m_lo = low - (m_hi - s)
    return ExpParts(m_hi, m_lo, k, zero)


def exp_dd(hi: FloatArray, lo: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``exp(hi + lo)`` as ``(e_hi, e_lo)``: relative error :data:`EXP_REL_ERR` plus an
    absolute :data:`EXP_ABS_ERR` (the low part is subnormal below 2**-969, and the whole
    result rounded once below 2**-1021)."""
    parts = exp_parts(hi, lo)
    return scale(parts.m_hi, parts.m_lo, parts.k, parts.zero)


def scale(
    m_hi: FloatArray, m_lo: FloatArray, k: IntArray, zero: npt.NDArray[np.bool_] | None = None
) -> tuple[FloatArray, FloatArray]:
    """``(m_hi + m_lo) * 2**k``: exact for normal results; below 2**-1022 rounded once
    (the low part is then 0); beyond the float range ``inf``."""
    with np.errstate(over="ignore"):
        normal = (k >= -1022) & (k <= 1023)
        factor = ((np.clip(k, -1022, 1023) + 1023) << 52).view(np.float64)
        e_hi = m_hi * factor
        e_lo = m_lo * factor
        if not normal.all():
            out = ~normal
            e_hi[out] = np.ldexp(m_hi[out] + m_lo[out], k[out].clip(-2000, 2000))
            e_lo[out] = 0.0
        if zero is not None and zero.any():
            e_hi[zero] = 0.0
            e_lo[zero] = 0.0
    return e_hi, e_lo


def _two_sum(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def two_prod_small(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Dekker's product; both operands below 2**995 in magnitude."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, (((ah * bh - p) + ah * bl) + al * bh) + al * bl


def log1p_dd(x_hi: FloatArray, x_lo: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``log(1 + x_hi + x_lo)`` for ``x >= 0`` (``x < 2**900``, ``|x_lo| <= ulp(x_hi)``),
    relative error at most :data:`LOG_REL_ERR` (see the module)."""
    tb = tables()
    one = np.ones_like(x_hi)
    s_hi, s_lo = _two_sum(one, x_hi)
    s_lo = s_lo + x_lo
    frac, ex = np.frexp(s_hi)
    m = 2.0 * frac  # [1, 2)
    e = (ex - 1).astype(np.float64)
    j = np.rint((m - 1.0) * 2**_LOG_BITS).astype(np.int64)
    r = tb.r[j]
    p = m * r
    mh, ml = _split(m)
    rh, rl = tb.r_h[j], tb.r_l[j]
    pe = (((mh * rh - p) + mh * rl) + ml * rh) + ml * rl
    u_hi = p - 1.0  # exact (Sterbenz)
    v = s_lo / s_hi
    u_hi, u_lo = _two_sum(u_hi, pe + (v + u_hi * v))
    small = x_hi < 2.0**-11
    if small.any():
        u_hi = np.where(small, x_hi, u_hi)
        u_lo = np.where(small, x_lo, u_lo)
        e = np.where(small, 0.0, e)
    # log1p(U) = 2 atanh(z), z = U / (2 + U), as a double-double.
    d_hi, d_lo = _two_sum(2.0 * one, u_hi)
    d_lo = d_lo + u_lo
    z_hi = u_hi / d_hi
    q, qe = two_prod_small(z_hi, d_hi)
    z_lo = ((((u_hi - q) - qe) + u_lo) - z_hi * d_lo) / d_hi
    zz = z_hi * z_hi
    # The tail, and z_lo's share of it (2 z**2 z_lo, 2**-77 relative: not negligible).
    tail = zz * (z_hi * (2 / 3 + zz * (2 / 5 + zz * (2 / 7))) + 2.0 * z_lo)
    # E ln2 + (-log r_j) + 2 z + tail; small x: E = 0 and the table term is dropped.
    a_hi = e * tb.ln2_hi  # exact
    lr_hi = np.where(small, 0.0, tb.lr_hi[j])
    lr_lo = np.where(small, 0.0, tb.lr_lo[j])
    h, h_lo = _two_sum(a_hi, lr_hi)
    h, h2 = _two_sum(h, 2.0 * z_hi)
    low = (h_lo + h2) + ((e * tb.ln2_lo + lr_lo) + (2.0 * z_lo + tail))
    out_hi = h + low
    out_lo = low - (out_hi - h)
    # Below 2**-500, log1p(x) = x within 2**-500 relative (and the division above would
    # lose bits to underflow for subnormal x).
    tiny = x_hi < 2.0**-500
    if tiny.any():
        out_hi = np.where(tiny, x_hi, out_hi)
        out_lo = np.where(tiny, x_lo, out_lo)
    return out_hi, out_lo


_SQRT2 = 1.4142135623730951


def div_dd(
    a_hi: FloatArray, a_lo: FloatArray, b_hi: FloatArray, b_lo: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``(a_hi + a_lo) / (b_hi + b_lo)`` as a double-double, relative error below
    2**-102 (the quotient of the high parts, then the exact remainder
    ``a - q b`` divided once more: two roundings of a term below 2**-52 of the result and
    ``b_lo``'s share, each below 2**-104). Operands within [2**-960, 2**960]."""
    q = a_hi / b_hi
    p, pe = two_prod_small(q, b_hi)
    r = (((a_hi - p) - pe) + a_lo) - q * b_lo
    q_lo = r / b_hi
    hi = q + q_lo
    return hi, q_lo - (hi - q)


def log_dd(
    hi: FloatArray, lo: FloatArray, e: IntArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``log((hi + lo) * 2**e)`` for a positive double-double (``hi`` finite, normal or
    subnormal; ``|lo| <= ulp(hi)``) and an integer exponent *e* (``|log2| < 4000`` in
    all): ``(out_hi, out_lo, err)``, ``err`` an absolute bound of the error.

    ``hi = 2**E M`` exactly (frexp), with ``M`` folded into ``[sqrt(2)/2, sqrt(2))``, so
    that ``log x = E ln2 + log M`` never cancels by more than a factor of 2. ``log M`` is
    :func:`log1p_dd` of ``M - 1`` (exact by Sterbenz's lemma) when ``M + lo >= 1``, else
    ``-log1p((1 - M) / M)`` (a positive argument; :func:`div_dd`): relative error
    2**-74, and 2**-101 of the argument from the division. ``E ln2``: ``E ln2_hi`` is an
    exact Dekker product (``ln2_hi`` has 46 bits), ``E ln2_lo`` is rounded once and
    ``ln2_hi + ln2_lo`` is within 2**-100 of ln 2: below ``|E| 2**-98`` together. The
    final sums add below 2**-102 of the result. An exactly 1 (``lo = 0``, ``e = 0``)
    gives exactly 0 with a bound of 0.
    """
    tb = tables()
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        frac, ex = np.frexp(hi)
        m = 2.0 * frac  # [1, 2): exact
        big = m > _SQRT2
        m = np.where(big, 0.5 * m, m)
        ex = ex.astype(np.int64) - 1 + big
        m_lo = np.ldexp(lo, -ex)  # exact unless it becomes subnormal (below 2**-1022)
        scaled_err = np.where(lo != 0, 2.0**-1070, 0.0)
        x_hi, x_lo = _two_sum(m - 1.0, m_lo)
        up = x_hi >= 0
        # M + lo below 1: log M = -log1p(y), y = (1 - M) / M > 0.
        y_hi, y_lo = div_dd(-x_hi, -x_lo, m, m_lo)
        a_hi = np.where(up, x_hi, y_hi)
        a_lo = np.where(up, x_lo, y_lo)
        l_hi, l_lo = log1p_dd(np.maximum(a_hi, 0.0), np.where(a_hi > 0, a_lo, 0.0))
        l_hi = np.where(up, l_hi, -l_hi)
        l_lo = np.where(up, l_lo, -l_lo)
        l_err = np.abs(l_hi) * LOG_REL_ERR + np.where(up, 0.0, np.abs(a_hi) * 2.0**-101)
        big_e = ex if e is None else ex + e
        ef = big_e.astype(np.float64)
        p, pe = two_prod_small(ef, np.full_like(ef, tb.ln2_hi))
        s, se = _two_sum(p, l_hi)
        low = se + (pe + (ef * tb.ln2_lo + l_lo))
        out_hi = s + low
        out_lo = low - (out_hi - s)
        err = (l_err + np.abs(ef) * 2.0**-98 + np.abs(out_hi) * 2.0**-102 + scaled_err) * (
            1 + 2.0**-40
        )
    return out_hi, out_lo, err
