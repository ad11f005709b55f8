"""The stable softmax of one block of rows, carried to about one rounding.

The kernel works on blocks transposed to ``(K, b)`` (classes by rows), so that every
reduction over the classes is contiguous. For such a block :func:`shift` computes the
first argmax and max m, the shift ``(y - m) / T`` as ``hi + lo`` (TwoSum, then an exact
division by the temperature), ``exp(hi)``, ``s = sum_k exp(y_k - m)`` as ``s_hi + s_lo``
(``s - 1`` summed with a TwoSum tree) and ``log s``; :func:`probabilities` turns them into
``q``. Callers read whatever they need from the :class:`Shift`.

Pure numpy: no I/O, no printing.

>>> sh = shift(np.array([[1.2], [2.3], [0.8]]), 1.0)
>>> int(sh.argmax[0]), float(sh.log_s[0])
(1, 0.442119225143...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from xentcli.core._blocks import Arena
from xentcli.core._compensated import divide_dd, sum0, two_sum

FloatArray = npt.NDArray[np.float64]


class Shift(NamedTuple):
    """The stable softmax of a transposed block ``(K, b)`` of logits."""

    argmax: npt.NDArray[np.intp]  #: (b,) first index of the max
    max: FloatArray  #: (b,) the max of the raw logits
    hi: FloatArray  #: (K, b) (y - m) / T rounded
    lo: FloatArray  #: (K, b) its exact remainder (0 where hi is -inf)
    exp: FloatArray  #: (K, b) exp(hi); 0 at the argmax (its true value is exactly 1)
    s_hi: FloatArray  #: (b,) s = 1 + sum over k != argmax of exp(hi + lo) ...
    s_lo: FloatArray  #: (b,) ... as s_hi + s_lo (s_hi rounded, s_lo its remainder)
    log_s: FloatArray  #: (b,) log s


_COLUMN_INDEX = np.arange(127, dtype=np.int8)[:, None]
_SCAN_CLASSES = 4  # up to this K, argmax0 scans the classes one by one
ROW_ARGMAX_CLASSES = 16  # from this K, argmax0 uses the untransposed rows when given


def argmax0(
    x: FloatArray,
    rows: FloatArray | None = None,
) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """First index of the max along axis 0 of a contiguous ``(K, b)`` block, and the max.

    numpy's argmax along a non-contiguous axis copies and loops per row, slow for small K;
    measured on this kind of block, the variants below are 2-4x faster where used. *rows*,
    when given, is the untransposed ``(b, K)`` block: from 16 classes up, numpy's argmax
    along its contiguous rows is the fastest (0.2 ns per element, 4-10x the others).
    """
    k, b = x.shape
    if k == 1:
        return np.zeros(b, dtype=np.intp), x[0].copy()
    if rows is not None and k >= ROW_ARGMAX_CLASSES and rows.strides[1] == rows.itemsize:
        am = np.argmax(rows, axis=1)
        return am, np.take(x, am * b + np.arange(b))
    if b == 1 or k > _COLUMN_INDEX.shape[0]:
        am = np.argmax(x, axis=0)
        return am, np.take(x, am * b + np.arange(b))
    if k == 2:
        am = (x[1] > x[0]).astype(np.intp)
        return am, np.maximum(x[0], x[1])
    if k <= _SCAN_CLASSES:
        # A running max over the few rows: 3 light passes per class beat the max, the
        # masked index and the min below (measured 2x faster at K = 3).
        m = np.maximum(x[0], x[1])
        first = (x[1] > x[0]).view(np.int8).copy()  # strict: ties keep the first index
        above = np.empty(b, dtype=bool)
        for c in range(2, k):
            np.greater(x[c], m, out=above)
            np.maximum(m, x[c], out=m)
            np.copyto(first, np.int8(c), where=above)
        return first.astype(np.intp), m
    m = x.max(axis=0)
    # The smallest index where the max is reached; int8 keeps the passes light.
    first = np.where(x == m, _COLUMN_INDEX[:k], np.int8(k)).min(axis=0)
    return first.astype(np.intp), m


def flat(index: npt.NDArray[np.integer], b: int) -> npt.NDArray[np.intp]:
    """Flat positions of ``(index[j], j)`` in a C-contiguous ``(K, b)`` block."""
    return index * b + np.arange(b)


def transposed(rows: FloatArray, arena: Arena) -> FloatArray:
    """A contiguous ``(K, b)`` copy of the ``(b, K)`` rows, in the arena."""
    out = arena.take(rows.shape[::-1])
    np.copyto(out, rows.T)
    return out


def sums_of_squares(e: FloatArray, arena: Arena) -> FloatArray:
    """``sum_k e_k**2`` per row of a transposed ``(K, b)`` block, in class order.

    numpy sums over axis 0 by adding the class rows one after another when b >= 2, but
    sums a lone column (b = 1) pairwise; that column is summed as one of two, so a row's
    bits do not depend on the block it falls in.
    """
    b = e.shape[1]
    if b == 1:
        e = np.repeat(e, 2, axis=1)
    squares = arena.take(e.shape)
    np.multiply(e, e, out=squares)
    total: FloatArray = squares.sum(axis=0)[:b]
    return total


def label_ranks(xt: FloatArray, labels: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """Per row of a transposed ``(K, b)`` block: the classes ranked above the row's label.

    The rank of label ``i`` is ``#{k : y_k > y_i} + #{k < i : y_k == y_i}``: ties go to
    the lower class index, as the argmax does, so rank 0 is a correct top-1 prediction.
    Counting here, while the block is in cache, costs half of counting on the ``(n, K)``
    rows afterwards (14 ms against 30 per 8192 rows of 1000 classes).
    """
    k, b = xt.shape
    mine = np.take(xt, flat(labels, b))
    # Counted as bytes into int16 when K allows: 2.4x faster than numpy's int64 sum of
    # booleans over 131 x 1000 blocks (0.037 ms against 0.089).
    count = np.int16 if k < 2**15 else np.int64
    reached = np.empty(xt.shape, dtype=np.bool_)
    np.greater(xt, mine, out=reached)
    above: npt.NDArray[np.int64]
    above = np.add.reduce(reached.view(np.uint8), axis=0, dtype=count).astype(np.int64)
    np.equal(xt, mine, out=reached)
    equal = np.add.reduce(reached.view(np.uint8), axis=0, dtype=count)
    tied = np.flatnonzero(equal > 1)  # the label ties another class: those before it rank above
    if tied.size:
        before = np.arange(k)[:, None] < labels[tied][None, :]
        above[tied] += np.count_nonzero((xt[:, tied] == mine[tied]) & before, axis=0)
    return above


def shift(
    xt: FloatArray,
    temperature: float,
    arena: Arena | None = None,
    check: Callable[[FloatArray], None] | None = None,
    rows: FloatArray | None = None,
) -> Shift:
    """The shift, exponentials and ``log s`` of a transposed block (rows are columns).

    *xt* is overwritten (it becomes the ``lo`` part of the shift). *check*, when given,
    is called with *xt* before that, but only if a row's max is not finite: NaN
    propagates through the max and +inf makes it +inf, so a finite max vouches for its
    whole row, and the check's pass over the block is needed only to find the bad cell.
    *rows*, the untransposed block *xt* was copied from, speeds up the argmax.
    """
    if arena is None:
        arena = Arena()
    am, m = argmax0(xt, rows)
    if check is not None and not np.isfinite(m).all():
        check(xt)
    hi, bb, e = (arena.take(xt.shape) for _ in "hbe")
    # TwoSum(y, -m): lo = (y - (hi - bb)) + (-m - bb), with bb = hi - y; e is scratch.
    np.subtract(xt, m, out=hi)
    halved = None
    if temperature != 1.0 and np.isinf(hi).any():
        # y - m beyond the float range, yet (y - m) / T may be within it: take it as
        # (y/2 - m/2) / (T/2), exact (both are >= 2**970 in magnitude when this happens).
        where = np.isinf(hi) & (xt > -np.inf)
        if where.any():
            pos = np.nonzero(where)
            halved = pos, two_sum(xt[pos] * 0.5, -0.5 * m[pos[1]])
    np.subtract(hi, xt, out=bb)
    rounded_past = None
    if np.abs(m).max() >= 2.0**1023:
        # With the max in the top binade, bb = hi - y (about -m) can round past the float
        # range although y - m did not; the same TwoSum at half the scale is exact there.
        where = np.isinf(bb) & np.isfinite(hi)
        if where.any():
            pos = np.nonzero(where)
            rounded_past = pos, two_sum(xt[pos] * 0.5, -0.5 * m[pos[1]])[1]
    np.subtract(hi, bb, out=e)
    lo = np.subtract(xt, e, out=xt)
    np.add(bb, m, out=bb)
    np.subtract(lo, bb, out=lo)
    if rounded_past is not None:
        pos, half_lo = rounded_past
        lo[pos] = 2.0 * half_lo
    if temperature != 1.0:
        hi, lo = divide_dd(hi, lo, temperature)
        if halved is not None:
            pos, (h2, l2) = halved
            hi[pos], lo[pos] = divide_dd(h2, l2, temperature * 0.5)
    np.exp(hi, out=e)
    e.ravel()[flat(am, e.shape[1])] = 0.0
    correction = np.einsum("kb,kb->b", e, lo)
    if np.isnan(correction).any():
        # A masked class (-inf) or a difference beyond the float range: exp is exactly 0
        # and its remainder is meaningless.
        np.copyto(lo, 0.0, where=np.isinf(hi))
        correction = np.einsum("kb,kb->b", e, lo)
    if e.shape[0] == 2:  # one term besides the max: nothing to round
        rest_hi, rest_lo = e[0] + e[1], correction
    else:
        rest_hi, rest_lo = sum0(e, arena)
        rest_lo += correction
    s_hi, s_lo = two_sum(np.ones_like(rest_hi), rest_hi)
    s_lo += rest_lo
    return Shift(am, m, hi, lo, e, s_hi, s_lo, log_of_sum(s_hi, s_lo))


def probabilities(e: FloatArray, lo: FloatArray, s_hi: FloatArray, s_lo: FloatArray) -> FloatArray:
    """``exp(hi + lo) / (s_hi + s_lo)`` from ``e = exp(hi)``, rounded about once."""
    q = e / s_hi
    q += q * (lo - s_lo / s_hi)
    return q


def log_of_sum(s_hi: FloatArray, s_lo: FloatArray) -> FloatArray:
    """``log(s_hi + s_lo)`` for ``s_hi >= 1`` and ``|s_lo| <= ulp(s_hi) / 2``.

    ``log s = log(s_hi) + log1p(z)`` with ``z = s_lo / s_hi``, ``|z| <= 2**-53``: np.log is
    within 0.51 ulp here (log1p measured 0.75 ulp, and is 2x slower); when ``s_hi == 1``,
    z is all of ``s - 1`` and its second-order term keeps tiny losses exact.
    """
    z = s_lo / s_hi
    return np.log(s_hi) + (z - 0.5 * z * z)
