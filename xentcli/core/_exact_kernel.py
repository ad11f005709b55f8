"""The correctly rounded kernel (``exact=True``): blocks, the slow rows, the mean.

Runs :mod:`xentcli.core._exact_block` over a batch in blocks (as the default kernel
does), sends each row whose rounding Ziv's test could not decide to the :mod:`decimal`
slow path, and rounds means and sums once from the exact sum of the double-double row
losses, with a last rounding test on the mean itself (if it fails, every row is redone
in decimal; the chance is about 2**-20 per mean).

Pure numpy and :mod:`decimal`: no I/O, no printing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli.core import _blocks as blockrunner
from xentcli.core import _exact_block as xb
from xentcli.core._compensated import two_prod
from xentcli.core._exact_block import ExactLosses, masked_inf, slow_err
from xentcli.core._exact_mean import certain_ratio
from xentcli.core._exact_mean import factor_interval as _factor
from xentcli.core._exactsum import ExactSum
from xentcli.core._softmax_block import transposed
from xentcli.core._units import LOG_E_IN_BASE
from xentcli.core._validation import check_logit_values, check_masked_rows, check_targets
from xentcli.core._ziv import (
    Quantity,
    RowDecimal,
    decide,
    round_checked,
    round_interval,
    slow_row,
    to_float,
)

#: :class:`xentcli.core._kernel.RowLosses` (not imported: _kernel imports this module)
RowLosses = Any

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def softmax_parts(
    y: FloatArray, temperature: float, parts: frozenset[str], one_row: bool
) -> dict[str, FloatArray]:
    """The requested correctly rounded parts of a 2-D batch *y* (already validated shape).

    Parts: ``q`` (probabilities), ``lq`` (log-probabilities), ``e`` (``exp(y - m)``),
    ``lse`` (log-sum-exp), ``s`` (sum of exponentials), ``log_s``, and ``hi``/``lo``/``m``
    /``argmax`` as the default kernel has them (exact or rounded once already).
    """
    n, k = y.shape
    per_class = {"q", "lq", "e", "hi", "lo"}
    out: dict[str, FloatArray] = {
        name: np.empty((n, k)) if name in per_class else np.empty(n) for name in parts
    }
    if "argmax" in parts:
        out["argmax"] = np.empty(n, dtype=np.int64)
    unsure: dict[int, set[str]] = {}
    found_unsure: list[tuple[int, str]] = []  # from every thread (list.append is atomic)

    def work(start: int, stop: int) -> None:
        arena = blockrunner.arena(blockrunner.ARENA_BLOCKS * 3 * (stop - start) * k)
        xt = transposed(y[start:stop], arena)
        es = xb.exact_shift(
            xt,
            temperature,
            arena,
            lambda block: check_logit_values(block, start, transposed=True),
            y[start:stop],
        )
        check_masked_rows(es.sh.max, start, one_row)
        rows = slice(start, stop)
        found: dict[str, tuple[FloatArray, npt.NDArray[np.bool_]]] = {}
        if "q" in parts:
            found["q"] = xb.probabilities(es)
        if "lq" in parts:
            found["lq"] = xb.log_probabilities(es)
        if "e" in parts:
            found["e"] = xb.exponentials(es)
        if "lse" in parts:
            found["lse"] = xb.log_sum_exp(es, temperature)
        if "s" in parts:
            s_hi, s_lo = xb.sum_parts(es)
            found["s"] = round_checked(s_hi, s_lo, es.x_err)
        if "log_s" in parts:
            found["log_s"] = round_checked(es.ls_hi, es.ls_lo, es.ls_err)
        for name, (value, ok) in found.items():
            out[name][rows] = value.T
            bad = ~ok if ok.ndim == 1 else ~ok.all(axis=0)
            for i in np.flatnonzero(bad).tolist():
                found_unsure.append((start + i, name))
        if "hi" in parts:
            out["hi"][rows] = es.sh.hi.T
            out["lo"][rows] = es.lo.T
        if "m" in parts:
            out["m"][rows] = es.sh.max
        if "argmax" in parts:
            out["argmax"][rows] = es.sh.argmax

    blockrunner.run(blockrunner.plan(n, k), work, k)
    for row, name in found_unsure:
        unsure.setdefault(row, set()).add(name)
    for row, names in sorted(unsure.items()):
        _redo_softmax_row(y[row], temperature, names, out, row)
    return out


def _redo_softmax_row(
    row: FloatArray, temperature: float, names: set[str], out: dict[str, FloatArray], i: int
) -> None:
    """Every requested quantity of one row, from the decimal slow path."""
    k = row.size
    quantities: list[Quantity] = []
    where: list[tuple[str, int]] = []  # class -1: a per-row quantity
    for name in sorted(names):
        if name in ("q", "lq", "e"):
            make = {
                "q": xb.slow_probability,
                "lq": xb.slow_log_probability,
                "e": xb.slow_exponential,
            }[name]
            for c in range(k):
                quantities.append(make(c))
                where.append((name, c))
        else:
            quantities.append(
                {"lse": xb.slow_log_sum_exp, "s": xb.slow_sum, "log_s": xb.slow_log_sum}[name]
            )
            where.append((name, -1))
    values = slow_row(row.tolist(), temperature, quantities)
    for (name, c), value in zip(where, values, strict=True):
        if c < 0:
            out[name][i] = value
        else:
            out[name][i, c] = value


def row_losses(
    y: FloatArray,
    lab: IntArray,
    t: FloatArray | None,
    w: FloatArray | None,
    eps: float,
    keep: tuple[float, float],
    share: tuple[float, float],
    temperature: float,
    check: bool,
    one_row: bool,
) -> ExactLosses:
    """Correctly rounded per-row losses (see :func:`xentcli.core.row_losses`)."""
    n, k = y.shape
    loss = np.empty(n)
    loss_lo = np.empty(n)
    loss_err = np.empty(n)
    label_q = np.full(n, np.nan)
    predicted = np.empty(n, dtype=np.int64)
    unsure: list[int] = []
    unsure_q: list[int] = []

    def work(start: int, stop: int) -> None:
        arena = blockrunner.arena(blockrunner.ARENA_BLOCKS * 3 * (stop - start) * k)
        xt = transposed(y[start:stop], arena)

        def check_values(block: FloatArray) -> None:
            check_logit_values(block, start, transposed=True)

        es = xb.exact_shift(xt, temperature, arena, check_values if check else None, y[start:stop])
        if check:
            check_masked_rows(es.sh.max, start, one_row)
        predicted[start:stop] = es.sh.argmax
        b = stop - start
        li = lab[start:stop]
        lo2: FloatArray | None = None
        push: npt.NDArray[np.bool_] | None = None
        if t is not None:
            tt = transposed(t[start:stop], arena)
            if check:
                check_targets(tt, start)
            if w is None:
                main = xb.weighted_sum(es, tt, arena)
            else:
                # w_c t_c exactly, as a double-double (TwoProduct).
                v, v_lo = two_prod(np.broadcast_to(w[:, None], tt.shape), tt)
                main = xb.weighted_sum(es, v, arena, v_lo)
        else:
            hi, lo, lo2, err, push = xb.label_loss_pushed(es, li, w)
            main = (hi, lo, err)
            q, ok_q = xb.probabilities(es, li)
            label_q[start:stop] = q
            unsure_q.extend((start + np.flatnonzero(~ok_q)).tolist())
        if eps:
            v = np.ones((k, b)) if w is None else np.broadcast_to(w[:, None], (k, b))
            uniform = xb.weighted_sum(es, np.ascontiguousarray(v), arena)
            if t is None and lo2 is not None:
                main = (main[0], main[1] + lo2, main[2])
            main = xb.combine(keep, main, share, uniform)
        plain = t is None and not eps
        r = xb._rounded(
            main[0],
            main[1],
            main[2],
            lo2=lo2 if plain else None,
            push=push if plain else None,
        )
        ok = r.ok
        infinite = ~np.isfinite(r.value)
        if infinite.any():
            ok &= ~infinite | masked_inf(
                y[start:stop], li, None if t is None else t[start:stop], w, eps
            )
        loss[start:stop] = r.value
        loss_lo[start:stop] = r.rem
        loss_err[start:stop] = r.err
        unsure.extend((start + np.flatnonzero(~ok)).tolist())

    blockrunner.run(blockrunner.plan(n, k), work, k)
    for i in sorted(unsure):
        quantity = xb.slow_loss(int(lab[i]), None if t is None else t[i], w, eps, k)
        (value,) = slow_row(y[i].tolist(), temperature, [quantity])
        loss[i], loss_lo[i], loss_err[i] = value, 0.0, slow_err(value)
    for i in sorted(unsure_q):
        (label_q[i],) = slow_row(y[i].tolist(), temperature, [xb.slow_probability(int(lab[i]))])
    return ExactLosses(loss, loss_lo, loss_err, predicted, label_q)


# ------------------------------------------------------------------- the mean
def mean(
    loss: FloatArray,
    loss_lo: FloatArray,
    loss_err: FloatArray,
    denominator: ExactSum | None,
    base: str,
    slow: Callable[[int], RowDecimal | None] | None = None,
) -> float | None:
    """The correctly rounded ``sum(exact losses) / denominator`` (sum when None).

    None when the rounding is not certain (the caller then redoes every row slowly).
    """
    total = ExactSum()
    total.add(loss)
    if not np.isfinite(loss).all():
        return total.value(base) if denominator is None else total.ratio(denominator, base)
    total.add(loss_lo)
    s = total.exact()
    e = Fraction(float(np.sum(loss_err))) * Fraction(1 + 2**-40) + Fraction(len(loss), 2**1074)
    w = None if denominator is None else denominator.exact()
    if w == 0:
        return denominator.ratio(denominator, base) if denominator is not None else 0.0
    # Rows given 0 although their loss may be a positive amount below 2**-1076 (the
    # max's class with every other term underflowed): added to the bound.
    zeros = Fraction(int(np.count_nonzero(loss == 0)), 2**1076)
    return certain_ratio(s, e + zeros, w, base)


def slow_mean(
    intervals: Sequence[RowInterval],
    denominator: ExactSum | None,
    base: str,
) -> float:
    """The mean redone from the slow path's intervals (each row's exact loss at a number
    of digits), every row, with more digits until it is certain."""
    from fractions import Fraction

    digits = 60
    w = Fraction(1) if denominator is None else denominator.exact()
    while True:
        low = Fraction(0)
        high = Fraction(0)
        for at in intervals:
            got = at(digits)
            if isinstance(got, float):
                if np.isinf(got):
                    return got
                low += Fraction(got)
                high += Fraction(got)
            else:
                low += got[0]
                high += got[1]
        f_low, f_high = _factor(base, digits)
        if low == high and f_low == f_high:
            return to_float(low / w) + 0.0
        got_mean = round_interval(low / w * f_low, high / w * f_high)
        if got_mean is not None:
            return got_mean
        digits *= 2


#: A row's exact loss at a number of decimal digits: a float when exact, else an open
#: interval of rationals.
RowInterval = Callable[[int], "float | tuple[Fraction, Fraction]"]


def logit_intervals(
    y: FloatArray,
    labels: object,
    targets: object,
    weights: object,
    eps: float,
    temperature: float,
) -> Callable[[int], RowInterval]:
    """Row *i*'s exact loss from its logits (the decimal slow path), at any digits."""
    y2 = y[None, :] if y.ndim == 1 else y
    n, k = y2.shape
    t = None if targets is None else np.asarray(targets, dtype=np.float64).reshape(n, k)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    lab = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels).reshape(n)

    def row(i: int) -> RowInterval:
        quantity = xb.slow_loss(int(lab[i]), None if t is None else t[i], w, eps, k)
        values = y2[i].tolist()
        return lambda digits: quantity(RowDecimal(values, temperature, digits))

    return row


def reduce(
    rows: RowLosses,
    reduction: str,
    base: str,
    one_row: bool,
    intervals: Callable[[int], RowInterval],
) -> FloatArray | float:
    """:func:`xentcli.core.cross_entropy`'s reduction of exact row losses, rounded once.

    ``"none"`` in bits or bans: each row ``(loss + loss_lo) / ln b`` with its rounding
    tested (rows that fail are redone from ``intervals(i)``); ``"mean"``/``"sum"``:
    :func:`mean`, and when its rounding test fails, :func:`slow_mean` over every counted
    row.
    """
    assert rows.loss_lo is not None
    assert rows.loss_err is not None
    if reduction == "none":
        out = rows.loss
        if base != "e":
            out = _rows_in_base(rows, base, intervals)
        result: FloatArray | float = out[0] if one_row else out
        return result
    denominator = None
    if reduction == "mean":
        denominator = ExactSum()
        if not (rows.weight[rows.counted] != 1.0).any():
            denominator.add_ones(int(np.count_nonzero(rows.counted)))
        else:
            denominator.add(rows.weight)
    got = mean(rows.loss, rows.loss_lo, rows.loss_err, denominator, base)
    if got is not None:
        return got
    counted = np.flatnonzero(rows.counted).tolist()
    return slow_mean([intervals(i) for i in counted], denominator, base)


def _rows_in_base(
    rows: RowLosses, base: str, intervals: Callable[[int], RowInterval]
) -> FloatArray:
    """Each row loss in bits or bans, correctly rounded."""
    assert rows.loss_lo is not None
    assert rows.loss_err is not None
    f_hi, f_lo = LOG_E_IN_BASE[base]
    with np.errstate(invalid="ignore", over="ignore"):
        p, pe = two_prod(rows.loss, np.float64(f_hi))
        lo = pe + (rows.loss * f_lo + rows.loss_lo * f_hi)
        err = (rows.loss_err * f_hi + 2.0**-100 * np.abs(p)) * (1 + 2.0**-40)
    value, ok = round_checked(p, np.where(np.isfinite(p), lo, 0.0), err)
    for i in np.flatnonzero(~ok).tolist():
        value[i] = _slow_in_base(intervals(i), base)
    return value


def _slow_in_base(at: RowInterval, base: str) -> float:
    """One row's loss in *base* units from the slow path, the digits doubling from 40."""

    def scaled(digits: int) -> float | tuple[Fraction, Fraction]:
        got = at(digits)
        if isinstance(got, float):
            return got
        f_low, f_high = _factor(base, digits)
        return got[0] * f_low, got[1] * f_high

    return decide(scaled)
