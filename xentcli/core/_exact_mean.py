"""Correctly rounded means and sums of exact row losses, for callers that stream.

A streaming caller (``xent batch --exact``, ``xent merge``, the Dask engine) cannot keep
the rows, so it keeps three exact sums per set of rows (all rows, a file, a class): the
sum ``S`` of the double-double row losses ``loss + loss_lo`` (exactly, with
:class:`~xentcli.core.ExactSum`), the sum of their error bounds ``loss_err`` and the
row count ``n``. The exact sum of the exact losses then lies within
``E = sum(loss_err) + n 2**-1073`` of ``S`` (the ``n 2**-1073`` covers each row's
subnormal floor and the one-sided ``log s`` below ``2**-1076`` of a loss given as 0).

:func:`certain_ratio` rounds ``(S ± E) / W`` (W the exact denominator) and says None
when the interval straddles a rounding boundary: about ``2 E / ulp`` of the time, near
``2**-20`` for a mean of typical losses. Then the caller reads its rows again and
computes each with the decimal slow path (:func:`loss_intervals`), whose open intervals
are summed per set and rounded by :func:`interval_ratio`, with more digits until the
rounding is certain (the exact mean of transcendental losses is not a midpoint).

Pure Python on numbers: no I/O, no printing. :mod:`fractions` is imported lazily
(it imports :mod:`decimal`, which slows start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from fractions import Fraction

    from xentcli.core._exactsum import ExactSum

FloatArray = npt.NDArray[np.float64]

#: Bound per row added to the rows' own error bounds (see the module's docstring).
ROW_FLOOR_EXPONENT = -1073


def certain_ratio(
    total: Fraction, error: Fraction, denominator: Fraction | None, base: str = "e"
) -> float | None:
    """The float every real in ``((total ± error) / denominator)`` rounds to, in *base*
    units (nats divided by ``ln b``), or None when they do not all round alike.

    *denominator* None: the sum itself. A zero *denominator* is the caller's (an
    undefined mean).

    >>> from fractions import Fraction
    >>> certain_ratio(Fraction(1, 3), Fraction(1, 2**80), None)
    0.3333333333333333
    >>> certain_ratio(Fraction(1) + Fraction(1, 2**53), Fraction(1, 2**80), None) is None
    True
    """
    from fractions import Fraction

    from xentcli.core._units import LOG_E_IN_BASE
    from xentcli.core._ziv import round_interval

    w = Fraction(1) if denominator is None else denominator
    f_low = f_high = Fraction(1)
    if base != "e":
        hi, lo = LOG_E_IN_BASE[base]  # within 2**-100 relative of 1 / ln b
        f = Fraction(hi) + Fraction(lo)
        f_low, f_high = f * (1 - Fraction(1, 2**100)), f * (1 + Fraction(1, 2**100))
    low, high = (total - error) / w, (total + error) / w
    # The factor is positive: the ends move apart whatever their sign.
    low = low * (f_low if low >= 0 else f_high)
    high = high * (f_high if high >= 0 else f_low)
    return round_interval(low, high)


def certain_quotient(
    total: ExactSum,
    error: ExactSum,
    rows: int,
    denominator: ExactSum | None,
    base: str = "e",
) -> float | None:
    """:func:`certain_ratio` of exact sums: *total* within ``error + rows 2**-1073`` of the
    exact sum, divided by *denominator* (None: the sum itself), or None if undecided.

    In nats the usual case is decided in integers: the rounded quotient's two half-way
    points, as integer ratios, against ``total ± bound`` scaled by the denominator
    (a few multiplications instead of rational arithmetic: a run with 10 000 classes
    decides its 20 000 figures in milliseconds).
    """
    import math

    from xentcli.core._exactsum import _SCALE_BITS, _to_float

    s = total._total
    e = error._total + (rows << (_SCALE_BITS + ROW_FLOOR_EXPONENT))
    w = (1 << _SCALE_BITS) if denominator is None else denominator._total
    if base == "e" and w > 0 and e >= 0:
        value = _to_float(s, w)
        if math.isfinite(value) and abs(value) < 1.7e308:  # finite neighbours
            p, q = value.as_integer_ratio()
            inside = True
            for toward, sign in ((-math.inf, -1), (math.inf, 1)):
                pn, qn = math.nextafter(value, toward).as_integer_ratio()
                num, den = p * qn + pn * q, 2 * q * qn  # the half-way point num / den
                end = (s + sign * e) * den - num * w  # (total ± bound) / w against it
                inside = inside and (end * sign < 0)
            if inside:
                return value + 0.0
    return certain_ratio(
        total.exact(),
        error.exact() + row_floor(rows),
        None if denominator is None else denominator.exact(),
        base,
    )


def row_floor(rows: int) -> Fraction:
    """``rows * 2**-1073``: the bound every streamed row adds to its ``loss_err``."""
    from fractions import Fraction

    return Fraction(rows, 2**-ROW_FLOOR_EXPONENT)


def loss_intervals(
    y: FloatArray,
    labels: Sequence[int] | None,
    targets: FloatArray | None,
    weights: FloatArray | None,
    label_smoothing: float,
    temperature: float,
    digits: int,
    *,
    scores: str = "logits",
    clip: float | None = None,
    renormalize: bool = False,
) -> list[tuple[Fraction, Fraction] | None]:
    """Each row's exact loss (nats) as an open interval of rationals from the decimal
    slow path at *digits* digits; None for a row whose loss is ``+inf`` exactly.

    *y* holds logits (N, K), already checked, or the probabilities or log-probabilities
    that *scores* says (read with *clip* and *renormalize*); *labels* (N,) or *targets*
    (N, K).
    """
    from fractions import Fraction

    from xentcli.core import _exact_block as xb
    from xentcli.core import _exact_given
    from xentcli.core._ziv import RowDecimal

    n, k = y.shape
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    out: list[tuple[Fraction, Fraction] | None] = []
    if scores != "logits" and not _exact_given.as_logits(scores, temperature, renormalize, clip):
        rows = _exact_given.row_intervals(
            y,
            _exact_given.Given(scores, clip, renormalize),
            None if labels is None else np.asarray(labels, dtype=np.int64),
            targets,
            w,
            label_smoothing,
        )
        for i in range(n):
            got = rows(i)(digits)
            if isinstance(got, float):
                out.append(None if got == np.inf else (Fraction(got), Fraction(got)))
            else:
                out.append(got)
        return out
    for i in range(n):
        quantity = xb.slow_loss(
            0 if labels is None else int(labels[i]),
            None if targets is None else targets[i],
            w,
            label_smoothing,
            k,
        )
        got = quantity(RowDecimal(y[i].tolist(), temperature, digits))
        if isinstance(got, float):
            out.append(None if got == np.inf else (Fraction(got), Fraction(got)))
        else:
            out.append(got)
    return out


def interval_ratio(
    low: Fraction, high: Fraction, denominator: Fraction | None, base: str, digits: int
) -> float | None:
    """The float every real in ``(low, high) / denominator`` rounds to in *base* units
    (``1 / ln b`` bracketed at about *digits* digits), or None if they do not agree."""
    from fractions import Fraction

    from xentcli.core._ziv import round_interval, to_float

    w = Fraction(1) if denominator is None else denominator
    f_low, f_high = factor_interval(base, digits)
    if low == high and f_low == f_high:
        return to_float(low / w) + 0.0
    a, b = low / w, high / w
    return round_interval(a * (f_low if a >= 0 else f_high), b * (f_high if b >= 0 else f_low))


def factor_interval(base: str, digits: int) -> tuple[Fraction, Fraction]:
    """An interval holding ``1 / ln(base)`` (exactly 1 for nats), about *digits* digits wide."""
    from decimal import Context
    from fractions import Fraction

    if base == "e":
        return Fraction(1), Fraction(1)
    ctx = Context(prec=digits + 20)
    f = Fraction(ctx.divide(1, ctx.ln(int(base))))
    return f * (1 - Fraction(1, 10 ** (digits + 15))), f * (1 + Fraction(1, 10 ** (digits + 15)))
