"""Error-free transformations on float64 arrays, and compensated sums built from them.

Each function returns a result and its exact (or nearly exact) rounding error, so the
kernel can carry a value as an unevaluated sum ``hi + lo`` and round it once at the end:
TwoSum (Knuth), TwoProduct (Dekker, with Veltkamp's splitting), the exact remainder of a
division, and a pairwise TwoSum tree summing along the first axis.

Pure numpy: no I/O, no printing.

>>> two_sum(np.array([1.0]), 1e-17)
(array([1.]), array([1.e-17]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from xentcli.core._blocks import Arena

FloatArray = npt.NDArray[np.float64]

SPLITTER = 134217729.0  # 2**27 + 1, Veltkamp's splitting constant
SPLIT_SAFE = 2.0**995  # above this, a * SPLITTER may overflow


def two_sum(a: FloatArray, b: FloatArray | float) -> tuple[FloatArray, FloatArray]:
    """``a + b = s + e`` exactly (Knuth's TwoSum, no ordering assumption)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def split_scalar(x: float) -> tuple[float, float]:
    """Veltkamp's split of *x* into two halves of at most 26 significant bits each."""
    c = SPLITTER * x
    hi = c - (c - x)
    return hi, x - hi


def two_prod(a: FloatArray, b: FloatArray | float) -> tuple[FloatArray, FloatArray]:
    """``a * b = p + e`` exactly (Dekker), e = 0 where p is not finite.

    Operands too large to split are scaled by a power of two first (exact).
    """
    with np.errstate(all="ignore"):
        return _two_prod_raw(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def _two_prod_raw(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    p = a * b
    fa = np.where(np.abs(a) > SPLIT_SAFE, 2.0**-200, 1.0)
    fb = np.where(np.abs(b) > SPLIT_SAFE, 2.0**-200, 1.0)
    sa, sb = a * fa, b * fb
    ps = sa * sb
    ca = SPLITTER * sa
    ah = ca - (ca - sa)
    al = sa - ah
    cb = SPLITTER * sb
    bh = cb - (cb - sb)
    bl = sb - bh
    e = (((ah * bh - ps) + ah * bl) + al * bh) + al * bl
    e = e / (fa * fb)
    e = np.where(np.isfinite(p) & np.isfinite(e), e, 0.0)
    return p, e


def divide_dd(hi: FloatArray, lo: FloatArray, t: float) -> tuple[FloatArray, FloatArray]:
    """``(hi + lo) / t`` as a new ``(hi, lo)`` pair, the remainder computed exactly.

    A quotient beyond the float range is ``±inf`` (its correct rounding) with a low part
    of 0: its remainder would be ``inf - inf``.

    >>> divide_dd(np.array([-1.0, 3.0]), np.zeros(2), 1e-320)
    (array([-inf,  inf]), array([0., 0.]))
    >>> q, r = divide_dd(np.array([-1.7976931348623157e308]), np.zeros(1), 3.0)
    >>> bool(np.isfinite(r).all())
    True
    """
    with np.errstate(invalid="ignore", over="ignore"):
        q = hi / t
        if not 2.0**-900 < t < 2.0**900:
            p, e = two_prod(q, t)
        else:
            # Dekker's product with the split of t done once; values too large to split
            # (or -inf), and those whose split halves' product overflows (q just below
            # 2**995 can split into a high half of 2**995), are redone apart.
            t_hi, t_lo = split_scalar(t)
            p = q * t
            c = SPLITTER * q
            q_hi = c - (c - q)
            q_lo = q - q_hi
            e = ((q_hi * t_hi - p) + q_hi * t_lo + q_lo * t_hi) + q_lo * t_lo
            big = (np.abs(q) > SPLIT_SAFE) | ~np.isfinite(e)
            if big.any():
                p[big], e[big] = two_prod(q[big], t)
        rem = ((hi - p) - e) + lo  # hi - q*t is exact; lo is added to a number of its size
        # q * t can round past the float range though q and hi are finite (hi near the
        # largest float): redo those at a quarter of the scale, exact for such values.
        beyond = np.isinf(p) & np.isfinite(q)
        if beyond.any():
            p4, e4 = two_prod(q[beyond] * 0.25, t)
            rem[beyond] = ((hi[beyond] * 0.25 - p4) - e4) * 4.0 + lo[beyond]
        low = rem / t
    overflowed = np.isinf(q)
    if overflowed.any():
        low[overflowed] = 0.0
    return q, low


def sum0(x: FloatArray, arena: Arena | None = None) -> tuple[FloatArray, FloatArray]:
    """Sum along axis 0 as ``(hi, lo)``: a pairwise tree of TwoSums, errors collected.

    The result ``hi + lo`` is within about ``K * 2**-106`` (relative to the sum of
    magnitudes) of the exact sum; ``hi`` alone is within about an ulp. The tree's
    temporaries come from *arena* when given.

    >>> sum0(np.array([[1e16], [1.0], [-1e16]]))
    (array([0.]), array([1.]))
    """
    k = x.shape[0]
    err = np.zeros(x.shape[1:])
    if k == 0:
        return err.copy(), err
    cur = x
    while k > 1:
        h = k // 2
        a = cur[:h]
        b = cur[h : 2 * h]
        shape = (h, *x.shape[1:])
        s, bb, t = (np.empty(shape) if arena is None else arena.take(shape) for _ in "sbt")
        np.add(a, b, out=s)
        np.subtract(s, a, out=bb)
        np.subtract(s, bb, out=t)
        np.subtract(a, t, out=t)
        np.subtract(b, bb, out=bb)
        t += bb
        err += t[0] if h == 1 else t.sum(axis=0)
        if k % 2:
            s0, e0 = two_sum(s[0], cur[2 * h])
            s[0] = s0
            err += e0
        cur = s
        k = h
    return np.array(cur[0], dtype=np.float64), err
