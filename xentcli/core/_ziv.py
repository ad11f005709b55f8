"""Ziv's rounding test, and the slow exact path for the rows that fail it.

The fast path (:mod:`xentcli.core._exact_block`) computes each result as a double-double
``hi + lo`` with a proven bound ``err`` on its distance to the exact real value.
:func:`round_checked` rounds ``hi + lo`` to float64 and says whether the rounding is
certain: the whole interval ``[hi + lo - err, hi + lo + err]`` lies strictly inside the
rounding cell of that float (between the midpoints to its two neighbours). Where it is,
the float is the correctly rounded exact value, whatever the last bits of any
computation. Where it is not (rare: about ``err / ulp``), the row is recomputed by
:func:`slow_row` with Python's :mod:`decimal` (whose ``exp``, ``ln`` and arithmetic are
correctly rounded at the context precision), raising the precision until the rounding is
certain. The exact value of a result here is never a float64 midpoint (it is
transcendental, by the Lindemann-Weierstrass theorem, except where it is rational and
computed exactly), so the loop ends.

Pure numpy and :mod:`decimal`: no I/O, no printing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from decimal import Decimal
    from fractions import Fraction

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Safety factor on ``|remainder| + err`` against the roundings of the test itself.
_SLACK = 1.0 + 2.0**-40
SLOW_ROWS = [0]  #: rows sent to the slow path since start-up (a counter, for measurement)


def round_checked(
    hi: FloatArray,
    lo: FloatArray,
    err: FloatArray,
    k: npt.NDArray[np.int64] | None = None,
    lo2: FloatArray | None = None,
    push: BoolArray | None = None,
) -> tuple[FloatArray, BoolArray]:
    """``(hi + lo + lo2) * 2**k`` rounded to float64, and where that rounding is certain.

    *err* bounds ``|hi + lo + lo2 - exact|`` (in the units of *hi*, before the scaling
    by ``2**k``). *lo2*, a third, smaller part, keeps a value just off a midpoint (an
    exact shift that is a midpoint, plus a tiny ``log s``) decidable: the distance to
    the midpoints is then computed as a double-double. Infinite *hi* gives ``±inf``,
    reported certain (callers send the rows where an infinity is not the exact answer
    elsewhere). *push* (with *lo2*) marks values whose whole error is one-sided:
    the exact value lies in ``(v, v + err]`` (a positive ``log s`` that underflowed);
    there a computed value exactly on a midpoint rounds up with certainty.
    """
    with np.errstate(all="ignore"):
        if lo2 is not None:  # renormalize: the rounding is of the whole hi + lo + lo2
            lo, lo2 = _two_sum(lo, lo2)
            hi, carry = _two_sum(hi, lo)
            lo, lo2b = _two_sum(carry, lo2)
            lo2 = np.where(np.isfinite(hi), lo2b, 0.0)
            lo = np.where(np.isfinite(hi), lo, 0.0)
        if k is None:
            r = hi + lo
            bb = r - hi
            rem = (hi - (r - bb)) + (lo - bb)  # TwoSum: hi + lo = r + rem exactly
            up = np.nextafter(r, np.inf) - r
            down = r - np.nextafter(r, -np.inf)
            if lo2 is not None:
                rem_lo = (lo - bb) - (rem - (hi - (r - bb))) + lo2  # rem's own remainder
                # margins to the two midpoints, each a double-double difference (exact
                # by Sterbenz's lemma where it matters: rem near a midpoint)
                # (twice the margins: half of the smallest subnormal gap is not a float)
                to_up = (up - 2.0 * rem) - 2.0 * rem_lo
                to_down = (down + 2.0 * rem) + 2.0 * rem_lo
                # hi + lo was a tie that rounded to even, but lo2 pushes past it: the
                # nearest float is the other neighbour.
                past_up = to_up < 0
                past_down = to_down < 0
                if past_up.any() or past_down.any():
                    move = np.where(past_up, up, np.where(past_down, -down, 0.0))
                    r = r + move  # the neighbour (exact)
                    rem = rem - move  # exact: |rem| was about half a gap
                    up = np.nextafter(r, np.inf) - r
                    down = r - np.nextafter(r, -np.inf)
                    to_up = (up - 2.0 * rem) - 2.0 * rem_lo
                    to_down = (down + 2.0 * rem) + 2.0 * rem_lo
                ok = np.minimum(to_up, to_down) * (1 - 2.0**-50) > 2.0 * err * _SLACK
                if push is not None and push.any():
                    # exact in (v, v + err]: on the upper midpoint, the upper neighbour
                    at_mid = push & (to_up == 0)
                    r = np.where(at_mid, np.nextafter(r, np.inf), r)
                    gap = np.nextafter(r, np.inf) - r
                    to_up = np.where(at_mid, gap, to_up)
                    to_down = np.where(at_mid, 0.0, to_down)
                    one_sided = (
                        push & (to_down >= 0) & (to_up * (1 - 2.0**-50) > 2.0 * err * _SLACK)
                    )
                    ok |= one_sided
                ok |= np.isinf(hi)
                return r, ok
        else:
            r = np.ldexp(hi + lo, k)
            back = np.ldexp(r, -k)  # exact: r is a float, scaled back up
            d = hi - back
            bb = d - hi
            rem = ((hi - (d - bb)) + (-back - bb)) + (d + lo)
            err = err + np.abs(rem) * 2.0**-52
            up = np.ldexp(np.nextafter(r, np.inf) - r, -k)
            down = np.ldexp(r - np.nextafter(r, -np.inf), -k)
        ok = 2.0 * (np.abs(rem) + err) * _SLACK < np.minimum(up, down)
        ok |= np.isinf(hi)
    return r, ok


def _two_sum(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


# ----------------------------------------------------------------- the slow path
class RowDecimal:
    """One row's softmax quantities at *digits* decimal digits, with bounds.

    The shifts ``d[c] = (y_c - m) / T`` are exact rationals (:class:`~fractions.Fraction`;
    None for -inf); ``e[c] = exp(d[c])`` and ``log_s = log1p(x)``, ``x`` the sum of ``e``
    over the classes other than the first argmax, come from :mod:`decimal`, whose every
    operation is correctly rounded (relative error at most ``eps = 10**(1 - digits)``).
    ``log_s`` is a Fraction with an absolute bound ``abs_log_s``; ``positive`` says whether
    the exact ``log s`` is > 0 (some other class is not masked), so that a lower bound
    clamped at 0 stays strict.
    """

    def __init__(self, row: Sequence[float], temperature: float, digits: int) -> None:
        from decimal import Context, Decimal, localcontext
        from fractions import Fraction

        ctx = Context(prec=digits, Emin=-9_999_999, Emax=9_999_999)
        self.ctx = ctx
        self.eps = Decimal(10) ** (1 - digits)
        finite = [y for y in row if y != -math.inf]
        top = max(finite)
        self.argmax = list(row).index(top)
        self.m = Fraction(top)
        self.temperature = Fraction(temperature)
        self.d: list[Fraction | None] = [
            None if y == -math.inf else (Fraction(y) - self.m) / self.temperature for y in row
        ]
        # exp of anything below -cut is below 10**-(4 digits + 340): it only enters as an
        # absolute error bound (and q = exp(d) / s below it rounds to 0).
        self.cut = 10 * digits + 800
        self.e: list[Decimal] = []
        with localcontext(ctx):
            for d in self.d:
                if d is None or d < -self.cut:
                    self.e.append(Decimal(0))
                else:
                    self.e.append(ctx.exp(ctx.divide(Decimal(d.numerator), d.denominator)))
            x = Decimal(0)
            for c, e in enumerate(self.e):
                if c != self.argmax:
                    x = ctx.add(x, e)
            self.x = x
        self.positive = any(d is not None for c, d in enumerate(self.d) if c != self.argmax)
        k = len(row)
        # exp(d): relative (|d| eps + eps) from the rounded d and the exp; the sum: one
        # rounding per term. Terms dropped below exp(-cut): absolute.
        worst_d = max((abs(d) for d in self.d if d is not None and d >= -self.cut), default=0)
        self.rel_e = self.eps * (2 + Decimal(int(worst_d) + 1))
        self.rel_x = self.rel_e + self.eps * (k + 1)
        self.abs_x = Decimal(k) * ctx.exp(-self.cut)
        value, bound = self._log1p()
        self.log_s = Fraction(value) if self.positive else Fraction(0)
        self.abs_log_s = Fraction(bound) if self.positive else Fraction(0)

    def _log1p(self) -> tuple[Decimal, Decimal]:
        """``log(1 + x)`` and an absolute bound (x's own error included)."""
        from decimal import Context, Decimal

        ctx, x, eps = self.ctx, self.x, self.eps
        digits = ctx.prec
        if x < Decimal(10) ** (-(digits // 4) - 2):
            # x - x**2/2 + x**3/3 - x**4/4; the rest is below x**5 < 10**-digits x.
            value = x - x * x / 2 + x * x * x / 3 - x * x * x * x / 4
            rounding = 8 * eps * x
        else:
            wide = Context(prec=2 * digits + 10, Emin=-9_999_999, Emax=9_999_999)
            value = wide.ln(wide.add(1, x))
            rounding = 10 * eps * value + Decimal(10) ** (-2 * digits)
        # d log1p(x) = dx / (1 + x) <= dx
        return value, rounding + self.rel_x * x + self.abs_x

    def neg_log_q(self, c: int) -> tuple[Fraction, Fraction] | None:
        """``-log q_c = log s - d_c`` and its bound; None for a masked class (+inf)."""
        d = self.d[c]
        if d is None:
            return None
        return self.log_s - d, self.abs_log_s


#: A quantity of a row: a float when exact, else an open interval ``(low, high)`` of
#: rationals that holds the exact value.
Quantity = Callable[[RowDecimal], "float | tuple[Fraction, Fraction]"]


def around(value: Fraction, bound: Fraction, positive: bool = False) -> tuple[Fraction, Fraction]:
    """The interval ``value ± bound``; with *positive*, its low end at least 0 (exclusive)."""
    low = value - bound
    return (max(low, value * 0) if positive else low), value + bound


def to_float(x: Fraction) -> float:
    """*x* correctly rounded (integer division; ties to even), ``±inf`` beyond the range."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _just_inside(x: Fraction, upward: bool) -> float:
    """The rounding of the reals just above (*upward*) or just below *x*."""
    from fractions import Fraction

    r = to_float(x)
    if math.isinf(r):
        return r
    other = math.nextafter(r, math.inf if x > r else -math.inf)
    # Beyond the largest float the next "float" is 2**1024: the half-way point to it is
    # where rounding overflows to inf.
    beyond = Fraction(2**1024) if math.isinf(other) else Fraction(other)
    if math.isinf(other) and other < 0:
        beyond = -beyond
    if x != r and 2 * x == Fraction(r) + beyond:  # a midpoint: the side decides
        return max(r, other) if upward else min(r, other)
    return r


def round_interval(low: Fraction, high: Fraction) -> float | None:
    """The float every real in ``(low, high)`` rounds to, or None if they do not agree."""
    a, b = _just_inside(low, True), _just_inside(high, False)
    return a + 0.0 if a == b else None  # + 0.0: -0.0 becomes 0.0


def slow_row(
    row: Sequence[float], temperature: float, quantities: Sequence[Quantity]
) -> list[float]:
    """The correctly rounded float64 of each quantity of one row (see :class:`RowDecimal`).

    The precision doubles (from 40 digits) until every interval rounds to one float.
    """
    SLOW_ROWS[0] += 1
    digits = 40
    out: list[float | None] = [None] * len(quantities)
    while True:
        rd = RowDecimal(row, temperature, digits)
        for i, quantity in enumerate(quantities):
            if out[i] is None:
                got = quantity(rd)
                if isinstance(got, float):
                    out[i] = got
                elif got[0] == got[1]:  # exact
                    out[i] = to_float(got[0]) + 0.0
                else:
                    out[i] = round_interval(*got)
        if all(v is not None for v in out):
            return [float(v) for v in out]  # type: ignore[arg-type]
        digits *= 2
        if digits > 5000:  # pragma: no cover - an exact midpoint: cannot happen
            raise ArithmeticError("the rounding of a row could not be decided")


def decide(at: Callable[[int], float | tuple[Fraction, Fraction]]) -> float:
    """The float every real of ``at(digits)`` rounds to, the digits doubling from 40."""
    SLOW_ROWS[0] += 1
    digits = 40
    while True:
        got = at(digits)
        if isinstance(got, float):
            return got
        if got[0] == got[1]:
            return to_float(got[0]) + 0.0
        value = round_interval(*got)
        if value is not None:
            return value
        digits *= 2
        if digits > 5000:  # pragma: no cover - an exact midpoint: cannot happen
            raise ArithmeticError("the rounding of a row could not be decided")
