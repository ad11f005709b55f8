"""Double-double arithmetic on float64 arrays: a value as ``hi + lo``, about 100 bits.

What the entropy and the KL divergence need to keep their digits where two logarithms
nearly cancel (``log p_k - log q_k`` for a target close to the softmax): an exponential
and a logarithm whose results are carried to about ``2**-100`` relative, independent of
the last bit of numpy's own ``exp`` and ``log`` (which differ between CPUs).

- :func:`exp_dd`: ``x = n ln 2 + r`` with ``ln 2`` as a double-double, ``r / 2**5`` into
  a Taylor series of 14 terms in double-double, squared back five times, times ``2**n``;
- :func:`log_dd`: one Newton step on :func:`exp_dd` from numpy's ``log``, which doubles
  its 53 correct bits.

Pure numpy: no I/O, no printing.

>>> hi, lo = exp_dd(np.array([1.0]), np.array([0.0]))
>>> float(hi[0]), abs(float(lo[0]) - 1.4456468917292502e-16) < 1e-29
(2.718281828459045, True)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from xentcli.core._compensated import two_prod, two_sum

FloatArray = npt.NDArray[np.float64]
DD = tuple[FloatArray, FloatArray]

LN2_HI = 0.6931471805599453
LN2_LO = 2.3190468138462996e-17
LN2_LO2 = 5.707708438416212e-34  # ln 2 = LN2_HI + LN2_LO + LN2_LO2 to 160 bits
_HALVINGS = 5
_TERMS = 14


def fast_two_sum(a: FloatArray, b: FloatArray) -> DD:
    """``a + b = s + e`` exactly for ``|a| >= |b|`` (or a = 0); inf/nan pass through."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        e = b - (s - a)
    return s, np.where(np.isfinite(s), e, 0.0)


def add(a: DD, b: DD) -> DD:
    """``a + b`` in double-double."""
    with np.errstate(invalid="ignore", over="ignore"):
        s, e = two_sum(a[0], b[0])
        e = e + (a[1] + b[1])
    return fast_two_sum(s, np.where(np.isfinite(s), e, 0.0))


def neg(a: DD) -> DD:
    return -a[0], -a[1]


def mul(a: DD, b: DD) -> DD:
    """``a * b`` in double-double."""
    p, e = two_prod(a[0], b[0])
    with np.errstate(invalid="ignore", over="ignore"):
        e = e + (a[0] * b[1] + a[1] * b[0])
    return fast_two_sum(p, np.where(np.isfinite(p), e, 0.0))


def exp_dd(hi: FloatArray, lo: FloatArray) -> DD:
    """``exp(hi + lo)`` as a double-double, about ``2**-100`` relative.

    ``-inf`` gives 0, results below the float range 0, above it ``inf``.
    """
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    _ensure_factorials()
    shape = hi.shape
    finite = np.isfinite(hi) & (hi > -760.0) & (hi < 720.0)  # beyond: 0 or inf
    x_hi = np.where(finite, hi, 0.0)
    x_lo = np.where(finite, lo, 0.0)
    n = np.clip(np.round(x_hi / LN2_HI), -1100, 1100)
    # r = x - n ln 2 to about 2**-106 of x: n * LN2_HI and n * LN2_LO by TwoProduct.
    # x_hi - p_hi is exact (Sterbenz: the two are within a factor 2, or n = 0), so the
    # sum is formed from small parts only.
    p_hi, p_lo = two_prod(n, LN2_HI)
    q_hi, q_lo = two_prod(n, LN2_LO)
    r = fast_two_sum(x_hi - p_hi, x_lo)
    r = add(r, (-p_lo, -q_lo - n * LN2_LO2))
    r = add(r, (-q_hi, np.zeros(shape)))
    scale = 2.0**-_HALVINGS
    r = (r[0] * scale, r[1] * scale)
    # Taylor: 1 + r + r^2/2 + ... by Horner, coefficients 1/j! as double-doubles.
    total = (np.full(shape, _FACTORIAL[_TERMS][0]), np.full(shape, _FACTORIAL[_TERMS][1]))
    for j in range(_TERMS - 1, -1, -1):
        coefficient = (np.full(shape, _FACTORIAL[j][0]), np.full(shape, _FACTORIAL[j][1]))
        total = add(mul(total, r), coefficient)
    for _ in range(_HALVINGS):
        total = mul(total, total)
    # 2**n in two steps: ldexp of a value near 1 by n in [-1100, 1100] may pass through
    # the float range's ends only at its last step.
    half = (n // 2).astype(np.int64)
    out_hi = np.ldexp(np.ldexp(total[0], half), (n - half).astype(np.int64))
    out_lo = np.ldexp(np.ldexp(total[1], half), (n - half).astype(np.int64))
    out_lo = np.where(np.isfinite(out_hi), out_lo, 0.0)
    out_hi = np.where(finite, out_hi, np.where(hi > 0, np.inf, 0.0))
    out_lo = np.where(finite, out_lo, 0.0)
    return out_hi.reshape(shape), out_lo.reshape(shape)


def _inverse_factorials(count: int) -> list[tuple[float, float]]:
    from fractions import Fraction  # lazy: fractions imports decimal

    out = []
    value = Fraction(1)
    for j in range(count + 1):
        if j:
            value /= j
        hi = float(value)
        out.append((hi, float(value - Fraction(hi))))
    return out


_FACTORIAL: list[tuple[float, float]] = []


def _ensure_factorials() -> None:
    if not _FACTORIAL:
        _FACTORIAL.extend(_inverse_factorials(_TERMS))


def expm1_dd(hi: FloatArray, lo: FloatArray) -> DD:
    """``exp(x) - 1`` for ``|x| <= 0.35`` as a double-double, relative to the result.

    The Taylor series ``x (1 + x/2 (1 + x/3 (...)))`` in double-double, 26 terms.
    """
    x = (np.asarray(hi, dtype=np.float64), np.asarray(lo, dtype=np.float64))
    shape = x[0].shape
    one = (np.ones(shape), np.zeros(shape))
    total = one
    for j in range(_EXPM1_TERMS, 1, -1):
        inverse = _inverse(j)
        step = mul(x, (np.full(shape, inverse[0]), np.full(shape, inverse[1])))
        total = add(one, mul(step, total))
    return mul(x, total)


_EXPM1_TERMS = 26
_EXPM1_RANGE = 0.35


def _inverse(j: int) -> tuple[float, float]:
    hi = 1.0 / j
    # 1 - j * hi exactly (TwoProduct), divided by j: the remainder of 1/j.
    p, e = two_prod(np.array([hi]), float(j))
    return hi, float(((1.0 - p[0]) - e[0]) / j)


def log_dd(x_hi: FloatArray, x_lo: FloatArray | None = None) -> DD:
    """``log(x_hi + x_lo)`` for positive values as a double-double (``-inf`` at 0).

    One Newton step on the exponential: ``l = l0 + (x - e^l0) / e^l0``, where ``l0`` is
    numpy's ``log`` (a few ulp): the step's error is the square of ``l0``'s, and the
    quotient needs only a float's precision.
    """
    x_hi = np.asarray(x_hi, dtype=np.float64)
    x_lo = np.zeros_like(x_hi) if x_lo is None else np.asarray(x_lo, dtype=np.float64)
    positive = x_hi > 0
    # Tiny values (subnormal ones have few bits) are scaled by 2**200 first, exactly,
    # so that e^l0 below is a normal float: log x = log(x 2**200) - 200 ln 2.
    tiny = positive & (x_hi < 2.0**-800)
    factor = np.where(tiny, 2.0**200, 1.0)
    safe = np.where(positive, x_hi * factor, 1.0)
    x_lo = np.where(positive, x_lo * factor, 0.0)
    with np.errstate(divide="ignore"):
        l0 = np.log(safe)
    # Near x = 1, log x is small and must be right relative to itself: the step is
    # taken on x - 1 (exact for x in [0.5, 2]) against e^l0 - 1 from the series.
    near = np.abs(l0) <= _EXPM1_RANGE
    zeros = np.zeros_like(l0)
    if near.any():
        l0 = np.where(near, np.log1p(np.where(near, fast_two_sum(safe - 1.0, x_lo)[0], 0.0)), l0)
    e = exp_dd(l0, zeros)
    diff = add((safe, x_lo), neg(e))
    if near.any():
        m = expm1_dd(np.where(near, l0, 0.0), zeros)
        d = fast_two_sum(safe - 1.0, x_lo)
        near_diff = add(d, neg(m))
        diff = (np.where(near, near_diff[0], diff[0]), np.where(near, near_diff[1], diff[1]))
    correction = (diff[0] + diff[1]) / e[0]
    out = fast_two_sum(l0, correction)
    if tiny.any():
        count = np.where(tiny, -200.0, 0.0)
        out = add(out, two_prod(count, LN2_HI))
        out = add(out, two_prod(count, LN2_LO))
    return np.where(positive, out[0], -np.inf), np.where(positive, out[1], 0.0)


def sum_last(a: DD) -> DD:
    """The sum along the last axis as a double-double: a pairwise tree of :func:`add`."""
    hi, lo = a
    while hi.shape[-1] > 1:
        half = hi.shape[-1] // 2
        pair = add(
            (hi[..., :half], lo[..., :half]), (hi[..., half : 2 * half], lo[..., half : 2 * half])
        )
        if hi.shape[-1] % 2:
            pair = (
                np.concatenate([pair[0], hi[..., -1:]], axis=-1),
                np.concatenate([pair[1], lo[..., -1:]], axis=-1),
            )
        hi, lo = pair
    return hi[..., 0], lo[..., 0]
