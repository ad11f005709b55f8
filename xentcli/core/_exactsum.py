"""Exact, order-independent sums of float64 values, rounded once.

:class:`ExactSum` holds the sum of the finite values added as an integer multiple of
2**-1126 (every float64 is one), so the sum, the mean (:meth:`ExactSum.ratio`) and their
conversion to bits or bans are the same bits whatever the order or chunking of the
values; :func:`fraction_to_base` rounds an exact rational number of nats the same way.
:class:`GroupedExactSum` holds one such sum per group (for example per class), filled by
one vectorised pass per chunk instead of one :class:`ExactSum` call per group.

Pure numpy and Python integers: no I/O, no printing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from xentcli.core._state import (
    hex_float,
    hex_int,
    need_dict,
    need_hex_float,
    need_hex_int,
    need_int,
    need_list,
)
from xentcli.core._units import LOG_E_IN_BASE, Base, check_base, to_base
from xentcli.errors import StateError, UndefinedMeanError

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
    for i, h, lo in zip(
        present.tolist(), acc_high[present].tolist(), acc_low[present].tolist(), strict=True
    ):
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

    def add_ones(self, count: int) -> None:
        """Add *count* values equal to 1.0 (exactly what ``add(np.ones(count))`` does)."""
        self._total += count << _SCALE_BITS
        self.count += count

    def merge(self, other: ExactSum) -> None:
        """Add everything *other* holds."""
        self._total += other._total
        self._special += other._special
        self.count += other.count

    def to_state(self) -> dict[str, object]:
        """The exact state as JSON-able data (see :meth:`from_state`).

        >>> acc = ExactSum(); acc.add([0.1, 0.2]); acc.to_state()["count"]
        2
        >>> ExactSum.from_state(acc.to_state()).value() == acc.value()
        True
        """
        return {
            "sum": hex_int(self._total),
            "special": hex_float(self._special),
            "count": self.count,
        }

    @classmethod
    def from_state(cls, data: object, where: str = "sum") -> ExactSum:
        """An ExactSum holding exactly what *data* (from :meth:`to_state`) describes.

        Raises :class:`~xentcli.errors.StateError` naming the bad field.
        """
        fields = need_dict(data, where, ("sum", "special", "count"))
        acc = cls()
        acc._total = need_hex_int(fields["sum"], f"{where}.sum")
        acc._special = _special(fields["special"], f"{where}.special")
        acc.count = need_int(fields["count"], f"{where}.count")
        return acc

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


_GROUP_FOLD = 1 << 36  # values held in the int64 store before folding into Python ints


class GroupedExactSum:
    """One :class:`ExactSum` per group, filled a whole chunk at a time.

    ``add(values, group_index)`` adds each value to its group's sum. The values' mantissa
    halves are summed per (group, exponent) by one ``np.bincount`` per half, exactly
    (a pass holds at most 2**16 values, so every bin stays below 2**53), and kept in int64
    in a sparse store of the (group, exponent) pairs seen (sorted keys
    ``group * 2098 + exponent``): memory follows the exponents actually present, not
    ``groups * 2098``. Python integers are made only when a sum is read, or every 2**36
    values to keep the int64 store exact. So each group's sum is exactly what an
    :class:`ExactSum` fed the same values would hold, whatever the order or chunking, and
    :meth:`value`, :meth:`ratio` and :meth:`exact_sum` give the same bits.

    Examples
    --------
    >>> acc = GroupedExactSum(3)
    >>> acc.add(np.array([0.1, 5.0, 0.2, 1e100, -1e100]), np.array([0, 2, 0, 1, 1]))
    >>> acc.value(0), acc.value(1), acc.value(2), acc.counts.tolist()
    (0.30000000000000004, 0.0, 5.0, [2, 2, 1])
    >>> rows = GroupedExactSum(3); rows.add_ones(np.array([2, 0, 1]))
    >>> acc.ratio(0, rows), acc.total().value()
    (0.15000000000000002, 5.3)
    """

    def __init__(self, groups: int) -> None:
        self.groups = int(groups)
        self.counts = np.zeros(self.groups, dtype=np.int64)  #: values added per group
        self._special = np.zeros(self.groups, dtype=np.float64)  # inf/nan sums per group
        self._ones = np.zeros(self.groups, dtype=np.int64)  # add_ones counts
        self._keys = np.empty(0, dtype=np.int64)  # sorted group * _BINS + exponent bin
        self._high = np.empty(0, dtype=np.int64)  # per key: sum of the high halves
        self._low = np.empty(0, dtype=np.int64)  # per key: sum of the low halves
        self._pending = 0  # values summed into the int64 store since the last fold
        self._folded: list[int] | None = None  # per group, times 2**1126 (Python ints)
        self._totals: list[int] | None = None  # cache of the exact totals

    # ---------------------------------------------------------------- adding
    def add(self, values: ArrayLike, group_index: ArrayLike) -> None:
        """Add ``values[i]`` to group ``group_index[i]`` (same size; flattened).

        Raises ValueError if the sizes differ or an index is outside ``[0, groups)``.
        """
        v = np.asarray(values, dtype=np.float64).ravel()
        g = np.asarray(group_index).ravel().astype(np.int64, copy=False)
        if v.shape != g.shape:
            raise ValueError(f"{v.size} values but {g.size} group indices")
        if v.size == 0:
            return
        if int(g.min()) < 0 or int(g.max()) >= self.groups:
            raise ValueError(f"group indices must be in [0, {self.groups})")
        self._totals = None
        self.counts += np.bincount(g, minlength=self.groups)
        finite = np.isfinite(v)
        if not finite.all():
            # Sums of infinities and NaNs do not depend on the order: inf, -inf or nan.
            with np.errstate(invalid="ignore"):  # inf + -inf is nan, as ExactSum has it
                np.add.at(self._special, g[~finite], v[~finite])
            v, g = v[finite], g[finite]
        for start in range(0, v.size, _EXACT_CHUNK):
            stop = start + _EXACT_CHUNK
            if self._pending + min(stop, v.size) - start > _GROUP_FOLD:
                self._fold()
            self._add_pass(v[start:stop], g[start:stop])
            self._pending += min(stop, v.size) - start

    def add_ones(self, counts: ArrayLike) -> None:
        """Add ``counts[g]`` values equal to 1.0 to each group ``g`` (integers; exact)."""
        c = np.asarray(counts, dtype=np.int64)
        if c.shape != (self.groups,):
            raise ValueError(f"counts must have shape ({self.groups},)")
        self._totals = None
        self._ones += c
        self.counts += c

    def _add_pass(self, v: FloatArray, g: npt.NDArray[np.int64]) -> None:
        mant, expo = np.frexp(v)  # as in _exact_int
        whole = mant * 2.0**53
        high = np.trunc(whole * 2.0**-27)
        whole -= high * 2.0**27
        expo += 1073
        low_bin = int(expo.min())
        width = int(expo.max()) - low_bin + 1
        size = self.groups * width
        if size <= max(4 * v.size, 1 << 12):
            # Few (group, exponent) cells: bin them densely, no sort.
            cell = g * width + (expo - low_bin)
            high_sums = np.bincount(cell, weights=high, minlength=size)
            low_sums = np.bincount(cell, weights=whole, minlength=size)
            present = np.flatnonzero((high_sums != 0) | (low_sums != 0))
            group, bin_ = np.divmod(present, width)
            keys = group * _BINS + (bin_ + low_bin)  # still sorted
            high_sums, low_sums = high_sums[present], low_sums[present]
        else:
            keys, inverse = np.unique(g * _BINS + expo, return_inverse=True)
            high_sums = np.bincount(inverse, weights=high, minlength=keys.size)
            low_sums = np.bincount(inverse, weights=whole, minlength=keys.size)
        self._merge_store(
            keys.astype(np.int64, copy=False), high_sums.astype(np.int64), low_sums.astype(np.int64)
        )

    def _merge_store(
        self, keys: npt.NDArray[np.int64], high: npt.NDArray[np.int64], low: npt.NDArray[np.int64]
    ) -> None:
        """Add per-key sums (*keys* sorted and unique) into the store."""
        at = np.searchsorted(self._keys, keys)
        found = at < self._keys.size
        found[found] = self._keys[at[found]] == keys[found]
        if found.all():  # the steady state: every (group, exponent) seen before
            self._high[at] += high
            self._low[at] += low
            return
        self._high[at[found]] += high[found]
        self._low[at[found]] += low[found]
        new = ~found
        # np.insert before each (sorted) position keeps the keys sorted.
        self._keys = np.insert(self._keys, at[new], keys[new])
        self._high = np.insert(self._high, at[new], high[new])
        self._low = np.insert(self._low, at[new], low[new])

    def _fold(self) -> None:
        """Move the int64 store into Python integers (keeps it far from overflow)."""
        self._fold_into(self._exact_totals(include_ones=False))

    def _fold_into(self, totals: list[int]) -> None:
        self._folded = totals
        self._keys = np.empty(0, dtype=np.int64)
        self._high = np.empty(0, dtype=np.int64)
        self._low = np.empty(0, dtype=np.int64)
        self._pending = 0

    def merge(self, other: GroupedExactSum) -> None:
        """Add everything *other* (with the same number of groups) holds."""
        if other.groups != self.groups:
            raise ValueError(f"cannot merge {other.groups} groups into {self.groups}")
        if other._folded is None:
            # Only an int64 store (a chunk's sums, made in a reader's thread): add it in
            # as add() would, without making Python integers for every group.
            if self._pending + other._pending > _GROUP_FOLD:
                self._fold()
            if other._keys.size:
                self._merge_store(other._keys, other._high, other._low)
            self._pending += other._pending
            self._ones += other._ones
            self._special += other._special
            self.counts += other.counts
            self._totals = None
            return
        mine = self._exact_totals(include_ones=False)
        theirs = other._exact_totals(include_ones=False)
        self._fold_into([a + b for a, b in zip(mine, theirs, strict=True)])
        self._ones += other._ones
        self._special += other._special
        self.counts += other.counts
        self._totals = None

    # ---------------------------------------------------------------- state
    def to_state(self) -> dict[str, object]:
        """The exact per-group sums as JSON-able data (see :meth:`from_state`).

        >>> acc = GroupedExactSum(2); acc.add([0.5, 0.25, 1.0], [0, 0, 1])
        >>> acc.to_state()["counts"]
        [2, 1]
        >>> GroupedExactSum.from_state(acc.to_state(), 2).value(0)
        0.75
        """
        return {
            "groups": self.groups,
            "sums": [hex_int(t) for t in self._exact_totals()],
            "special": [hex_float(x) for x in self._special.tolist()],
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_state(cls, data: object, groups: int, where: str = "sums") -> GroupedExactSum:
        """A GroupedExactSum of *groups* groups from *data* (from :meth:`to_state`).

        Every field is checked (sizes against *groups*, before anything is allocated);
        raises :class:`~xentcli.errors.StateError` naming the bad field.
        """
        fields = need_dict(data, where, ("groups", "sums", "special", "counts"))
        if need_int(fields["groups"], f"{where}.groups") != groups:
            raise StateError(f"{where}.groups: {fields['groups']} groups, expected {groups}")
        sums = need_list(fields["sums"], f"{where}.sums", groups)
        special = need_list(fields["special"], f"{where}.special", groups)
        counts = need_list(fields["counts"], f"{where}.counts", groups)
        acc = cls(groups)
        totals = [need_hex_int(t, f"{where}.sums[{i}]") for i, t in enumerate(sums)]
        acc._special = np.array(
            [_special(x, f"{where}.special[{i}]") for i, x in enumerate(special)], dtype=np.float64
        )
        acc.counts = np.array(
            [need_int(c, f"{where}.counts[{i}]") for i, c in enumerate(counts)], dtype=np.int64
        )
        acc._fold_into(totals)
        return acc

    # ---------------------------------------------------------------- reading
    def _exact_totals(self, include_ones: bool = True) -> list[int]:
        """Each group's exact sum of finite values, times 2**1126."""
        if include_ones and self._totals is not None:
            return self._totals
        totals = list(self._folded) if self._folded is not None else [0] * self.groups
        group, bin_ = np.divmod(self._keys, _BINS)
        for gi, i, h, lo in zip(
            group.tolist(), bin_.tolist(), self._high.tolist(), self._low.tolist(), strict=True
        ):
            if h or lo:
                totals[gi] += ((h << 27) + lo) << i
        if include_ones:
            for gi in np.flatnonzero(self._ones).tolist():
                totals[gi] += int(self._ones[gi]) << _SCALE_BITS
            self._totals = totals
        return totals

    def spread(self, where: ArrayLike, groups: int) -> GroupedExactSum:
        """A GroupedExactSum of *groups* groups whose group ``where[j]`` holds this one's
        group ``j`` (the others empty): sparse sums read back into a dense grid.

        >>> small = GroupedExactSum(2); small.add([0.5, 2.0], [0, 1])
        >>> small.spread([3, 1], 4).value(3), small.spread([3, 1], 4).counts.tolist()
        (0.5, [0, 1, 0, 1])
        """
        index = np.asarray(where, dtype=np.int64).ravel()
        if index.shape != (self.groups,) or (
            index.size and not 0 <= index.min() <= index.max() < groups
        ):
            raise ValueError(f"where must give {self.groups} groups in [0, {groups})")
        out = GroupedExactSum(groups)
        totals = [0] * groups
        for j, total in zip(index.tolist(), self._exact_totals(), strict=True):
            totals[j] = total
        out._fold_into(totals)
        out._special[index] = self._special
        out.counts[index] = self.counts
        return out

    def exact_sum(self, group: int) -> ExactSum:
        """Group *group*'s sum as an :class:`ExactSum` (the same state, a copy)."""
        acc = ExactSum()
        acc._total = self._exact_totals()[group]
        acc._special = float(self._special[group])
        acc.count = int(self.counts[group])
        return acc

    def total(self) -> ExactSum:
        """The sum of every group, as an :class:`ExactSum`."""
        acc = ExactSum()
        acc._total = sum(self._exact_totals())
        for x in self._special.tolist():
            acc._special += x
        acc.count = int(self.counts.sum())
        return acc

    def exact(self, group: int) -> Fraction:
        """The exact sum of group *group*'s finite values."""
        return self.exact_sum(group).exact()

    def value(self, group: int, base: Base | str = "e") -> float:
        """Group *group*'s sum, rounded once (as :meth:`ExactSum.value`)."""
        return self.exact_sum(group).value(base)

    def ratio(self, group: int, denominator: GroupedExactSum, base: Base | str = "e") -> float:
        """Group *group*'s sum over *denominator*'s (as :meth:`ExactSum.ratio`)."""
        return self.exact_sum(group).ratio(denominator.exact_sum(group), base)

    def __repr__(self) -> str:
        return f"GroupedExactSum(groups={self.groups}, count={int(self.counts.sum())})"


def _special(data: object, where: str) -> float:
    """A sum of non-finite values: 0, inf, -inf or nan (nothing else can arise)."""
    value = need_hex_float(data, where)
    if value != 0.0 and math.isfinite(value):
        raise StateError(f"{where}: must be 0, inf, -inf or nan, got {data}")
    return value


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
    """``hi + lo`` of :data:`~xentcli.core._units.LOG_E_IN_BASE` as a reduced integer ratio.

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
