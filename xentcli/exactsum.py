"""Exact, order-independent sums of float64 values, rounded once.

:class:`ExactSum` holds the sum of the finite values added as an integer multiple of
2**-1126 (every float64 is one), so the sum, the mean (:meth:`ExactSum.ratio`) and their
conversion to bits or bans are the same bits whatever the order or chunking of the
values; :func:`fraction_to_base` rounds an exact rational number of nats the same way.

Pure numpy and Python integers: no I/O, no printing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from xentcli.errors import UndefinedMeanError
from xentcli.units import LOG_E_IN_BASE, Base, check_base, to_base

if TYPE_CHECKING:
    from fractions import Fraction

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

_SCALE_BITS = 1126  # values are held as an integer times 2**-1126 (53 bits below 2**-1074)
_EXACT_CHUNK = 1 << 16  # values per pass: temporaries stay in cache
_BINS = 2098  # frexp exponents -1073 .. 1024


def _exact_int(values: FloatArray) -> int:
    """The exact sum of finite float64 *values*, as an integer multiple of 2**-1126.

    Each value is split by its binary exponent into an integer mantissa (53 bits) cut in
    two halves (26 and 27 bits); per exponent, the halves are summed by ``np.bincount``,
    exactly (a chunk's sums stay below 2**53), then accumulated in int64 (exact below
    2**36 values per call, far beyond any array) and finally in a Python int.
    """
    acc_high = np.zeros(_BINS, dtype=np.int64)
    acc_low = np.zeros(_BINS, dtype=np.int64)
    for start in range(0, values.size, _EXACT_CHUNK):
        v = values[start : start + _EXACT_CHUNK]
        mant, expo = np.frexp(v)  # v = mant * 2**expo, 0.5 <= |mant| < 1 (or 0)
        whole = mant * 2.0**53  # an integer, |whole| < 2**53
        high = np.trunc(whole * 2.0**-27)  # |high| < 2**26
        whole -= high * 2.0**27  # the low half: |low| < 2**27, same sign
        expo += 1073  # 2**-1074 = 0.5 * 2**-1073 -> bin 0
        acc_high += np.bincount(expo, weights=high, minlength=_BINS).astype(np.int64)
        acc_low += np.bincount(expo, weights=whole, minlength=_BINS).astype(np.int64)
    total = 0
    present = np.flatnonzero((acc_high != 0) | (acc_low != 0))
    for i, h, lo in zip(present.tolist(), acc_high[present].tolist(),
                        acc_low[present].tolist(), strict=True):
        # value = (h * 2**27 + lo) * 2**(expo - 53) = (...) * 2**(i - 1126)
        total += ((h << 27) + lo) << i
    return total


def _to_float(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` correctly rounded (Python's int division is)."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if (numerator > 0) == (denominator > 0) else -math.inf


class ExactSum:
    """An exact, order-independent accumulator of float64 values.

    The sum is held exactly (an integer multiple of 2**-1126), so the result is the same
    bits whatever order or chunking the values arrive in; :meth:`value` rounds once.
    Infinities are summed apart: inf stays inf, inf + -inf is nan.

    Examples
    --------
    >>> acc = ExactSum(); acc.add(np.array([1e100, 1.0, -1e100])); acc.value()
    1.0
    >>> a, b = ExactSum(), ExactSum()
    >>> a.add([0.1] * 10); b.add([3.0]); a.ratio(b)
    0.33333333333333337
    >>> a.merge(b); a.value(), a.count
    (4.0, 11)
    """

    def __init__(self) -> None:
        self._total = 0  # exact sum of the finite values, times 2**1126
        self._special = 0.0  # sum of the non-finite values (0, inf, -inf or nan)
        self.count = 0

    def add(self, values: ArrayLike) -> None:
        """Add every value of *values* (any shape; flattened)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        self.count += v.size
        finite = np.isfinite(v)
        if not finite.all():
            for x in v[~finite].tolist():
                self._special += x
            v = v[finite]
        if v.size:
            self._total += _exact_int(v)

    def merge(self, other: ExactSum) -> None:
        """Add everything *other* holds."""
        self._total += other._total
        self._special += other._special
        self.count += other.count

    def exact(self) -> Fraction:
        """The exact sum of the finite values added."""
        from fractions import Fraction  # lazy: fractions imports decimal (slow)

        return Fraction(self._total, 1 << _SCALE_BITS)

    def _nonfinite(self) -> bool:
        return self._special != 0.0 or math.isnan(self._special)

    def value(self, base: Base | str = "e") -> float:
        """The sum, rounded once (inf/nan if infinities were added).

        *base* ``"2"`` or ``"10"`` converts nats to bits or bans before the one rounding.
        """
        if self._nonfinite():
            return float(to_base(self._special, base))
        return _in_base(self._total, 1 << _SCALE_BITS, base)

    def ratio(self, denominator: ExactSum, base: Base | str = "e") -> float:
        """The correctly rounded quotient of this sum by *denominator*'s sum.

        *base* ``"2"`` or ``"10"`` converts nats to bits or bans before the one rounding.
        Raises :class:`~xentcli.errors.UndefinedMeanError` when *denominator* is 0.
        """
        if denominator._total == 0 and not denominator._nonfinite():
            raise UndefinedMeanError(
                "the mean loss is undefined: no row counts (every label is ignore_index"
                " or has weight 0)"
            )
        if self._nonfinite() or denominator._nonfinite():
            return float(to_base(self.value() / denominator.value(), base))
        return _in_base(self._total, denominator._total, base)

    def __repr__(self) -> str:
        return f"ExactSum(value={self.value()!r}, count={self.count})"


def fraction_to_base(value: Fraction, base: Base | str = "e") -> float:
    """An exact rational number of nats, in *base* units, rounded once.

    For callers that hold an exact mean as a :class:`~fractions.Fraction`: this gives the
    same bits as :meth:`ExactSum.ratio` (and :func:`cross_entropy`) in bits or bans.

    >>> from fractions import Fraction
    >>> fraction_to_base(Fraction(1, 3), "2")
    0.4808983469629878
    """
    return _in_base(value.numerator, value.denominator, base)


def _in_base(numerator: int, denominator: int, base: str) -> float:
    """``numerator / denominator`` nats in *base* units, rounded once."""
    if base != "e":
        check_base(base)
        factor_numerator, factor_denominator = _factor(base)
        numerator *= factor_numerator
        denominator *= factor_denominator
    return _to_float(numerator, denominator)


def _factor(base: str) -> tuple[int, int]:
    """``hi + lo`` of :data:`~xentcli.units.LOG_E_IN_BASE` as a reduced integer ratio.

    >>> from fractions import Fraction
    >>> all(Fraction(*_factor(b)) == Fraction(hi) + Fraction(lo)
    ...     for b, (hi, lo) in LOG_E_IN_BASE.items())
    True
    """
    if base not in _FACTORS:
        hi, lo = (c.as_integer_ratio() for c in LOG_E_IN_BASE[base])
        numerator = hi[0] * lo[1] + lo[0] * hi[1]
        denominator = hi[1] * lo[1]
        gcd = math.gcd(numerator, denominator)
        _FACTORS[base] = numerator // gcd, denominator // gcd
    return _FACTORS[base]


_FACTORS: dict[str, tuple[int, int]] = {}
