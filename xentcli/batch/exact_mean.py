"""``--exact`` in a stream: means and sums certain to be correctly rounded, and the
second pass that decides the rare ones the stream cannot.

The accumulator keeps, per class and per file, the exact sum ``S`` of the double-double
row losses and the exact sum of their bounds; the exact sum of the exact losses is within
``E = sum(bounds) + rows * 2**-1073`` of ``S`` (:mod:`xentcli.core._exact_mean`). A
figure (a mean or a sum, of all rows, a file or a class) is printed only when every real
in ``(S ± E) / W`` rounds to the same float: then it is the float nearest the exact mean
of the exact losses. Otherwise (about ``2 E / ulp`` of the time: near ``2**-20`` per
figure on typical data) :func:`second_pass` reads the inputs again and computes every
counted row in decimal (:func:`xentcli.core.exact_loss_intervals`), summing the rows'
open intervals per class and per file, with more digits until each figure is certain.
Memory stays constant: two rationals per class and per file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from xentcli import core
from xentcli.errors import DataError, XentError

if TYPE_CHECKING:
    from fractions import Fraction

    from xentcli.batch.reader import Chunk, ReadOptions

#: decimal digits of the second pass's first try (doubled until every figure is certain)
FIRST_DIGITS = 60
#: the second pass gives up beyond this (the exact mean of transcendental losses is not a
#: midpoint, so it is never reached; a guard against a loop)
MAX_DIGITS = 4000
#: second passes run since start-up (a counter, for tests and measurement)
SECOND_PASSES = [0]


class UndecidedRoundingError(XentError):
    """A figure of ``--exact`` is too near a rounding boundary to be decided from the
    streamed sums: the inputs must be read a second time (:func:`second_pass`)."""


@dataclass
class Interval:
    """An open interval of rationals holding an exact sum of losses (nats)."""

    low: Fraction
    high: Fraction
    infinite: bool = False  #: a row's loss is +inf: so is the sum

    def add(self, other: tuple[Fraction, Fraction] | None) -> None:
        if other is None:
            self.infinite = True
        else:
            self.low += other[0]
            self.high += other[1]


def _zero() -> Interval:
    from fractions import Fraction

    return Interval(Fraction(0), Fraction(0))


@dataclass
class SlowSums:
    """What a second pass found: per class and per file, the interval of the exact sum."""

    digits: int
    classes: list[Interval] = field(default_factory=list)
    files: list[Interval] = field(default_factory=list)

    @classmethod
    def empty(cls, digits: int, num_classes: int, files: int) -> SlowSums:
        return cls(digits, [_zero() for _ in range(num_classes)], [_zero() for _ in range(files)])

    def pooled(self) -> Interval:
        """The interval of the sum over every row."""
        total = _zero()
        for interval in self.classes:
            total.add(None if interval.infinite else (interval.low, interval.high))
        return total


def certain(
    total: core.ExactSum,
    denominator: core.ExactSum | None,
    base: str,
    error: core.ExactSum | None = None,
    rows: int = 0,
    slow: Interval | None = None,
    digits: int = FIRST_DIGITS,
) -> float:
    """``total / denominator`` (or ``total`` when *denominator* is None) in *base* units.

    Without *error* (the default kernel): the exact quotient of the sums, rounded once.
    With it (``--exact``): the float nearest the exact value of the exact losses, decided
    from the bound, else from *slow*; :class:`UndecidedRoundingError` if neither decides.
    An infinite sum is exactly that; a zero denominator raises
    :class:`~xentcli.errors.UndefinedMeanError`.
    """
    plain = total.value(base) if denominator is None else total.ratio(denominator, base)
    if error is None or not math.isfinite(total.value()):  # an infinite sum is exact
        return plain
    got = None
    if math.isfinite(error.value()):
        got = core.certain_quotient(total, error, rows, denominator, base)
    if got is None and slow is not None:
        if slow.infinite:
            return math.inf
        w = None if denominator is None else denominator.exact()
        got = core.interval_ratio(slow.low, slow.high, w, base, digits)
    if got is None:
        raise UndecidedRoundingError(
            "a figure of --exact is within its error bound of a rounding boundary"
        )
    return got


def second_pass(
    acc: Any,  # a BatchAccumulator (not imported: it imports this module)
    paths: Sequence[str],
    read_options: ReadOptions,
    opener: Callable[[str, ReadOptions], ContextManager[Any]] | None = None,
) -> int:
    """Decide every figure of *acc* (a run of ``--exact`` over *paths*, in order): while
    one is undecided, read the inputs again and sum their rows' decimal intervals.

    *opener* opens an input as a table (default :func:`xentcli.batch.reader.open_table`).
    Returns how many passes were made (0 almost always). Raises
    :class:`~xentcli.errors.DataError` when an input cannot be read twice (standard
    input) and as the reader does.
    """
    from xentcli.batch.reader import open_table

    opener = opener or open_table
    passes = 0
    digits = FIRST_DIGITS
    while acc.undecided():
        if "-" in paths:
            raise DataError(
                "-",
                None,
                None,
                "--exact: a figure is too near a rounding boundary to be decided in one pass"
                " (rare: about 3 figures in 10 million), and standard input cannot be read again:"
                " give the input as a file",
            )
        if digits > MAX_DIGITS or len(paths) != len(acc.files):  # pragma: no cover - guards
            raise XentError("--exact: the rounding of a figure could not be decided")
        SECOND_PASSES[0] += 1
        passes += 1
        slow = SlowSums.empty(digits, acc.k, len(acc.files))
        for index, path in enumerate(paths):
            with opener(path, read_options) as table:
                add_rows(acc, slow, index, table.chunks())
        acc.slow = slow
        digits *= 2
    return passes


def add_rows(acc: Any, slow: SlowSums, index: int, chunks: Iterable[Chunk]) -> None:
    """Add the exact losses of *chunks* (file *index* of *acc*) to *slow*'s intervals."""
    opts = acc.options
    for chunk in chunks:
        if chunk.logits.shape[0] == 0:
            continue
        scores, kind = acc._scores(chunk.logits)
        if chunk.targets is not None:
            classes = np.argmax(chunk.targets, axis=-1)
            counted = np.ones(classes.size, dtype=bool)
        else:
            assert chunk.labels is not None
            classes = chunk.labels.astype(np.int64, copy=False)
            counted = (
                np.ones(classes.size, dtype=bool)
                if opts.ignore_index is None
                else classes != opts.ignore_index
            )
        rows = np.flatnonzero(counted)
        intervals = core.exact_loss_intervals(
            scores[rows],
            None if chunk.targets is not None else classes[rows].tolist(),
            None if chunk.targets is None else chunk.targets[rows],
            acc.weights,
            opts.label_smoothing,
            opts.temperature,
            slow.digits,
            scores=kind,
            clip=opts.clip,
            renormalize=opts.renormalize and not opts.binary,
        )
        for c, interval in zip(classes[rows].tolist(), intervals, strict=True):
            slow.classes[c].add(interval)
            slow.files[index].add(interval)


def slow_part(slow: SlowSums | None, kind: str, index: int) -> Interval | None:
    """The interval of class or file *index* (None without a second pass)."""
    if slow is None:
        return None
    return slow.classes[index] if kind == "class" else slow.files[index]
