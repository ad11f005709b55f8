"""Correctly rounded losses from given probabilities or log-probabilities (``exact=True``).

When the scores are probabilities ``p`` or log-probabilities ``l``, ``-log q_c`` is
``-log p_c`` of the given float, or ``-l_c`` itself, and the row loss is
``sum_c a_c (-log q_c)`` with PyTorch's coefficients ``a_c`` (the label's weight, the
weighted soft targets, label smoothing's shares), taken as exact real numbers as in the
logits kernel. Here each ``-log q_c`` is a double-double with a proven bound and the row
loss is rounded by Ziv's test (:func:`xentcli.core._ziv.round_checked`); the rows it
cannot decide are redone with :mod:`decimal` and rationals, with more digits until the
rounding is certain (:func:`decide`).

- probabilities: ``-log p`` is :func:`~xentcli.core._ddmath.log_dd` (no libm; relative
  error about 2**-74); ``p = 0`` gives ``+inf`` exactly, ``p = 1`` gives 0 exactly.
  With *renormalize* the row is ``p / S``, ``S`` the exact sum of the row: ``-log q_c =
  log(S / p_c)``, the ratio a double-double (``S`` summed by a TwoSum tree, relative
  error ``(2K + 8) 2**-104``) with the powers of two taken apart so that subnormal
  probabilities do not overflow it; for the largest probability, when the others sum to
  less than it, ``log1p(R / p)`` with ``R`` the exact-ish sum of the others (the loss of
  a confident row keeps its relative precision). With *clip* the probabilities are
  first clipped to ``[clip, 1 - clip]``, ``1 - clip`` rounded to float64 as
  scikit-learn's ``log_loss`` does: a definition with a rounding step; the loss is
  ``-log`` of the clipped float, correctly rounded.
- log-probabilities: ``-l`` is exact, so a loss with a label is exact before its one
  rounding (times a weight: one correctly rounded product); sums (smoothing, soft
  targets) are double-doubles with their bounds, and ties are decided in rationals.
  With *clip*, ``l`` is clipped to ``[log(clip), log(1 - clip)]`` (both exact reals,
  ``1 - clip`` not rounded); with *renormalize* or a temperature the log-probabilities
  are logits of :func:`xentcli.core._exact_kernel.row_losses` (``softmax(l / T)``), so
  that kernel decides them (:func:`as_logits`).

Pure numpy, :mod:`decimal` and :mod:`fractions`: no I/O, no printing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from xentcli.core import _exact_block as xb
from xentcli.core._compensated import sum0, two_prod
from xentcli.core._ddmath import EXP_REL_ERR, LOG_REL_ERR, div_dd, exp_parts, log1p_dd, log_dd
from xentcli.core._ziv import decide, round_checked, to_float

if TYPE_CHECKING:
    from decimal import Context
    from fractions import Fraction

    from xentcli.core._exact_block import ExactLosses

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: A row's exact value: a float when exact, else an open interval of rationals.
Interval = "float | tuple[Fraction, Fraction]"
#: The row's value at a number of decimal digits (more digits, a narrower interval).
RowInterval = Callable[[int], "float | tuple[Fraction, Fraction]"]

_SAFE = 1.0 + 2.0**-40
_DIV_REL = 2.0**-101  # div_dd's 2**-102, with room


def as_logits(kind: str, temperature: float, renormalize: bool, clip: float | None) -> bool:
    """Whether the given scores go to the logits kernel: log-probabilities with a
    temperature or renormalized (``softmax(l / T)`` of the exact given values)."""
    return kind == "logprobs" and clip is None and (temperature != 1.0 or renormalize)


def refusal(kind: str, temperature: float, renormalize: bool, clip: float | None) -> str | None:
    """Why ``exact=True`` cannot be kept for these options (None if it can).

    Probabilities with a temperature are ``softmax(log p / T)``: the logits are the real
    ``log p``, not floats, and the exact kernel takes float logits. Clip and renormalize
    together are defined by the default path with two rounding steps (the row divided by
    its rounded sum, then clipped) that have no exact reading.
    """
    if kind == "probs" and temperature != 1.0:
        return (
            "correct rounding (exact) is not available for probabilities with a temperature"
            " (softmax of the real log p / T); give log-probabilities or logits"
        )
    if clip is not None and renormalize:
        return "correct rounding (exact) is not available for clip with renormalize"
    return None  # (clip with a temperature is refused on every path: core._given)


# --------------------------------------------------------------- the clip bounds
@dataclass(frozen=True)
class _LogClip:
    """``[log(clip), log(1 - clip)]`` for log-probabilities: the floats at and beyond
    which a given ``l`` is clipped, and each bound as a double-double with a bound."""

    low_at: float  #: l <= low_at  <=>  l < log(clip) (the float below the real)
    high_at: float  #: l >= high_at  <=>  l > log(1 - clip)
    low: tuple[float, float, float]  #: -log(clip): hi, lo, err
    high: tuple[float, float, float]  #: -log(1 - clip): hi, lo, err
    clip: float

    @classmethod
    def of(cls, clip: float) -> _LogClip:
        from fractions import Fraction

        c = Fraction(clip)
        digits = 60
        while True:
            # -log(clip) = log1p((1 - c) / c), -log(1 - c) = log1p(c / (1 - c))
            lows = _log1p_interval((1 - c) / c, digits)
            highs = _log1p_interval(c / (1 - c), digits)
            below = _float_beyond(-lows[1], -lows[0], down=True)
            above = _float_beyond(-highs[1], -highs[0], down=False)
            if below is not None and above is not None:
                return cls(below, above, _dd(lows), _dd(highs), clip)
            digits *= 2  # pragma: no cover - a float within 1e-55 of log(clip)


def _float_beyond(low: Fraction, high: Fraction, down: bool) -> float | None:
    """The largest float below (*down*) or the smallest above every real in
    ``(low, high)``, or None when a float lies inside."""
    from fractions import Fraction

    r = to_float((low + high) / 2)
    if low < Fraction(r) < high:
        return None
    if down:
        return r if Fraction(r) <= low else math.nextafter(r, -math.inf)
    return r if Fraction(r) >= high else math.nextafter(r, math.inf)


def _dd(interval: tuple[Fraction, Fraction]) -> tuple[float, float, float]:
    from fractions import Fraction

    mid = (interval[0] + interval[1]) / 2
    hi = float(mid)
    lo = float(mid - Fraction(hi))
    return hi, lo, float(interval[1] - interval[0]) + abs(hi) * 2.0**-104


# ------------------------------------------------------------------ the fast path
@dataclass
class _Nlq:
    """``-log q`` of some classes (r, n) as hi, lo, err; ``masked``: ``q`` is 0."""

    hi: FloatArray
    lo: FloatArray
    err: FloatArray
    masked: BoolArray


def _probs_nlq(p: FloatArray) -> _Nlq:
    """``-log p`` (``p`` of shape (r, n), floats in [0, 1])."""
    zero = p == 0
    h, lo, err = log_dd(np.where(zero, 1.0, p), np.zeros_like(p))
    return _Nlq(
        np.where(zero, np.inf, -h), np.where(zero, 0.0, -lo), np.where(zero, 0.0, err), zero
    )


@dataclass
class _Sums:
    """A renormalized row's sums: ``S`` (all) and ``R`` (all but the largest), as
    double-doubles with the relative bound ``rel``; ``star`` the largest's class."""

    s_hi: FloatArray
    s_lo: FloatArray
    r_hi: FloatArray
    r_lo: FloatArray
    star: IntArray
    rel: float


def _sums(p: FloatArray) -> _Sums:
    k, n = p.shape
    star = np.argmax(p, axis=0)
    s_hi, s_lo = _normal(*sum0(p))
    others = p.copy()
    others[star, np.arange(n)] = 0.0
    r_hi, r_lo = _normal(*sum0(others))
    # the terms are >= 0: the tree and its low parts are within (2K + 8) 2**-106 relative
    return _Sums(s_hi, s_lo, r_hi, r_lo, star, (2 * k + 8) * 2.0**-104)


def _normal(hi: FloatArray, lo: FloatArray) -> tuple[FloatArray, FloatArray]:
    s = hi + lo
    return s, lo - (s - hi)


def _scaled(x: FloatArray) -> tuple[FloatArray, IntArray]:
    """``x = m 2**e`` with ``m`` in [0.5, 1) (0 stays 0): exact, also for subnormals."""
    frac, e = np.frexp(x)
    return frac, e.astype(np.int64)


def _renormalized_nlq(p: FloatArray, sums: _Sums, classes: IntArray | None) -> _Nlq:
    """``-log(p_c / S) = log(S / p_c)`` of the classes (all, or *classes* of each row)."""
    n = p.shape[1]
    if classes is not None:
        p = p[classes, np.arange(n)][None, :]
        is_star = (classes == sums.star)[None, :]
    else:
        is_star = np.arange(p.shape[0])[:, None] == sums.star[None, :]
    zero = p == 0
    safe = np.where(zero, 1.0, p)
    pm, pe = _scaled(safe)
    sm, se = _scaled(sums.s_hi)
    s_lo = np.ldexp(sums.s_lo, -se)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        # log(S / p) with the powers of two apart: the ratio of the mantissas is in (0.5, 2)
        q_hi, q_lo = div_dd(
            np.broadcast_to(sm, pm.shape), np.broadcast_to(s_lo, pm.shape), pm, np.zeros_like(pm)
        )
        h, lo, err = log_dd(q_hi, q_lo, se[None, :] - pe)
        err = (err + 2.0 * (sums.rel + _DIV_REL)) * _SAFE  # |log(r (1 + d))- log r| <= 2 d
        # the largest, when the others sum to less: log1p(R / p), no cancellation
        near = is_star & (sums.r_hi < safe)
        if near.any():
            r_hi = np.ldexp(np.broadcast_to(sums.r_hi, pm.shape), -pe)  # exact: R < p
            r_lo = np.ldexp(np.broadcast_to(sums.r_lo, pm.shape), -pe)
            x_hi, x_lo = div_dd(r_hi, r_lo, pm, np.zeros_like(pm))
            x_hi = np.where(near, x_hi, 0.0)
            x_lo = np.where(near, x_lo, 0.0)
            l_hi, l_lo = log1p_dd(x_hi, x_lo)
            l_err = (l_hi * LOG_REL_ERR + x_hi * (sums.rel + _DIV_REL)) * _SAFE
            h = np.where(near, l_hi, h)
            lo = np.where(near, l_lo, lo)
            err = np.where(near, l_err, err)
    return _Nlq(np.where(zero, np.inf, h), np.where(zero, 0.0, lo), np.where(zero, 0.0, err), zero)


def _logprobs_nlq(lp: FloatArray, clip: _LogClip | None) -> _Nlq:
    """``-l``, exact; clipped entries ``-log(clip)`` or ``-log(1 - clip)``."""
    hi = -lp
    lo = np.zeros_like(lp)
    err = np.zeros_like(lp)
    if clip is not None:
        for where, (b_hi, b_lo, b_err) in (
            (lp <= clip.low_at, clip.low),
            (lp >= clip.high_at, clip.high),
        ):
            hi = np.where(where, b_hi, hi)
            lo = np.where(where, b_lo, lo)
            err = np.where(where, b_err, err)
    return _Nlq(hi, lo, err, lp == -np.inf if clip is None else np.zeros_like(lp, dtype=bool))


@dataclass(frozen=True)
class Given:
    """What the scores hold and how they are read (see the module)."""

    kind: str  #: "probs" or "logprobs"
    clip: float | None = None
    renormalize: bool = False


@np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore")
def row_losses(
    y: FloatArray,
    given: Given,
    lab: IntArray,
    t: FloatArray | None,
    w: FloatArray | None,
    eps: float,
    keep: tuple[float, float],
    share: tuple[float, float],
) -> ExactLosses:
    """Correctly rounded row losses (nats) of validated scores *y* (n, K), with their
    double-double remainders and bounds, and the label's probability correctly rounded
    (nan with soft targets)."""
    n, k = y.shape
    yt = np.ascontiguousarray(y.T)  # (K, n): the class axis first, as the kernel's blocks
    every = t is not None or bool(eps)
    cols = np.arange(n)
    log_clip = (
        _LogClip.of(given.clip) if given.clip is not None and given.kind == "logprobs" else None
    )
    sums: _Sums | None = None
    if given.kind == "probs":
        p = yt if given.clip is None else np.clip(yt, given.clip, 1.0 - given.clip)
        if given.renormalize:
            sums = _sums(p)
            nlq = _renormalized_nlq(p, sums, None if every else lab)
        else:
            nlq = _probs_nlq(p if every else p[lab, cols][None, :])
    else:
        p = yt
        nlq = _logprobs_nlq(yt if every else yt[lab, cols][None, :], log_clip)
    if t is not None:
        tt = np.ascontiguousarray(t.T)
        if w is None:
            main = xb.weighted_terms(tt, nlq.hi, nlq.lo, nlq.err)
        else:
            v, v_lo = two_prod(np.broadcast_to(w[:, None], tt.shape), tt)
            main = xb.weighted_terms(v, nlq.hi, nlq.lo, nlq.err, None, v_lo)
    else:
        if every:
            picked = tuple(a[lab, cols] for a in (nlq.hi, nlq.lo, nlq.err))
        else:
            picked = (nlq.hi[0], nlq.lo[0], nlq.err[0])
        main = picked if w is None else xb._weighted(w[lab], *picked)
    if eps:
        v = np.broadcast_to((np.ones(k) if w is None else w)[:, None], (k, n))
        uniform = xb.weighted_terms(np.ascontiguousarray(v), nlq.hi, nlq.lo, nlq.err)
        main = xb.combine(keep, main, share, uniform)
    r = xb._rounded(main[0], main[1], main[2])
    ok = r.ok.copy()
    loss, loss_lo, loss_err = r.value, r.rem, r.err
    infinite = ~np.isfinite(loss)
    if infinite.any():
        if given.kind == "probs":
            masked_cells = p.T == 0
        else:
            masked_cells = np.isneginf(yt.T) if log_clip is None else np.zeros((n, k), dtype=bool)
        ok &= ~infinite | xb.masked_inf(np.where(masked_cells, -np.inf, 0.0), lab, t, w, eps)
    label_q = np.full(n, np.nan)
    unsure_q: list[int] = []
    if t is None:
        label_q, ok_q = _label_probability(yt, given, lab, sums, log_clip)
        unsure_q = np.flatnonzero(~ok_q).tolist()
    intervals = row_intervals(y, given, lab, t, w, eps)
    for i in np.flatnonzero(~ok).tolist():
        loss[i] = decide(intervals(i))
        loss_lo[i], loss_err[i] = 0.0, xb.slow_err(loss[i])
    for i in unsure_q:
        label_q[i] = decide(_probability_interval(y[i].tolist(), given, int(lab[i])))
    predicted = np.argmax(y, axis=1).astype(np.int64)
    return xb.ExactLosses(loss, loss_lo, loss_err, predicted, label_q)


def _label_probability(
    yt: FloatArray, given: Given, lab: IntArray, sums: _Sums | None, log_clip: _LogClip | None
) -> tuple[FloatArray, BoolArray]:
    """``q`` of each row's label, rounded, and where the rounding is certain."""
    n = yt.shape[1]
    v = yt[lab, np.arange(n)]
    if given.kind == "probs":
        if given.clip is not None:
            v = np.clip(v, given.clip, 1.0 - given.clip)
        if sums is None:
            return v.copy(), np.ones(n, dtype=bool)  # the given (clipped) float itself
        # p / S, the powers of two apart (round_checked scales back, subnormals included)
        pm, pe = _scaled(v)
        sm, se = _scaled(sums.s_hi)
        with np.errstate(invalid="ignore", under="ignore"):
            q_hi, q_lo = div_dd(pm, np.zeros_like(pm), sm, np.ldexp(sums.s_lo, -se))
            err = np.abs(q_hi) * (sums.rel + _DIV_REL) * _SAFE
        zero = v == 0
        q, ok = round_checked(np.where(zero, 0.0, q_hi), np.where(zero, 0.0, q_lo), err, pe - se)
        return np.where(zero, 0.0, q), ok | zero
    # exp(l), from IEEE basic operations (no libm); clipped: the clip bounds themselves
    parts = exp_parts(v, np.zeros_like(v))
    q, ok = round_checked(parts.m_hi, parts.m_lo, parts.m_hi * EXP_REL_ERR * _SAFE, parts.k)
    q = np.where(parts.zero, 0.0, q)
    ok = ok | parts.zero
    if log_clip is not None:
        low, high = v <= log_clip.low_at, v >= log_clip.high_at
        q = np.where(low, log_clip.clip, np.where(high, 1.0 - log_clip.clip, q))
        ok = ok | low | high
    return q, ok


# ------------------------------------------------------------------ the slow path
def _context(digits: int) -> Context:
    from decimal import Context

    return Context(prec=digits, Emin=-9_999_999, Emax=9_999_999)


def _log1p_interval(x: Fraction, digits: int) -> tuple[Fraction, Fraction]:
    """An open interval of rationals holding ``log(1 + x)`` for a rational ``x >= 0``."""
    from decimal import Decimal
    from fractions import Fraction

    if x == 0:
        return Fraction(0), Fraction(0)
    ctx = _context(digits)
    eps = Decimal(10) ** (1 - digits)
    xd = ctx.divide(Decimal(x.numerator), Decimal(x.denominator))  # relative error <= eps
    if xd < Decimal(10) ** (-(digits // 4) - 2):
        # x - x**2/2 + x**3/3 - x**4/4: the rest is below x**5 < 10**-digits x
        x2 = ctx.multiply(xd, xd)
        terms = [xd, -ctx.divide(x2, 2), ctx.divide(ctx.multiply(x2, xd), 3)]
        terms.append(-ctx.divide(ctx.multiply(x2, x2), 4))
        value = Decimal(0)
        for term in terms:
            value = ctx.add(value, term)
        bound = 12 * eps * xd
    else:
        wide = _context(2 * digits + 10)
        value = wide.ln(wide.add(1, xd))  # 1 + xd exact at this width
        # d log1p(x) = dx / (1 + x) <= eps min(x, 1); ln's rounding; the sum's
        bound = 2 * eps * min(xd, Decimal(1)) + 10 * eps * value + Decimal(10) ** (-2 * digits)
    low = Fraction(value) - Fraction(bound)
    return max(low, Fraction(0)), Fraction(value) + Fraction(bound)


def _nlq_interval(
    row: list[float], given: Given, c: int, log_clip: _LogClip | None, digits: int,
    total: Fraction | None,
) -> tuple[Fraction, Fraction] | None:  # fmt: skip
    """``-log q_c`` as an interval, None when it is ``+inf``."""
    from fractions import Fraction

    v = row[c]
    if given.kind == "logprobs":
        if v == -math.inf:
            return None
        if log_clip is not None:
            c_ = Fraction(log_clip.clip)
            if v <= log_clip.low_at:
                return _log1p_interval((1 - c_) / c_, digits)
            if v >= log_clip.high_at:
                return _log1p_interval(c_ / (1 - c_), digits)
        return -Fraction(v), -Fraction(v)
    if given.clip is not None:
        v = min(max(v, given.clip), 1.0 - given.clip)
    if v == 0:
        return None
    pv = Fraction(v)
    s = Fraction(1) if total is None else total
    return _log1p_interval((s - pv) / pv, digits)  # -log(p / S) = log1p((S - p) / p)


def row_intervals(
    y: FloatArray,
    given: Given,
    lab: IntArray | None,
    t: FloatArray | None,
    w: FloatArray | None,
    eps: float,
) -> Callable[[int], RowInterval]:
    """Row *i*'s exact loss (nats) at a number of digits: ``+inf``, or an open interval
    of rationals (a point when the loss is rational, as for log-probabilities)."""
    k = y.shape[1]
    log_clip = (
        _LogClip.of(given.clip) if given.clip is not None and given.kind == "logprobs" else None
    )

    def row(i: int) -> RowInterval:
        from fractions import Fraction

        values = y[i].tolist()
        label = 0 if lab is None else int(lab[i])
        a = xb.loss_coefficients(k, label, None if t is None else t[i], w, eps)
        total = None
        if given.kind == "probs" and given.renormalize:
            total = sum((Fraction(v) for v in values), Fraction(0))

        def at(digits: int) -> float | tuple[Fraction, Fraction]:
            low = high = Fraction(0)
            for c, ac in enumerate(a):
                if ac == 0:
                    continue  # 0 log 0 = 0
                got = _nlq_interval(values, given, c, log_clip, digits, total)
                if got is None:
                    return math.inf
                low += ac * got[0]
                high += ac * got[1]
            return low, high

        return at

    return row


def _probability_interval(row: list[float], given: Given, label: int) -> RowInterval:
    """The label's probability at a number of digits (probabilities: ``p / S`` exactly;
    log-probabilities: ``exp(l)``)."""
    from decimal import Decimal
    from fractions import Fraction

    def at(digits: int) -> float | tuple[Fraction, Fraction]:
        v = row[label]
        if given.kind == "probs":
            total = sum((Fraction(x) for x in row), Fraction(0))
            q = Fraction(v) / total
            return q, q
        if v < -746:  # exp(l) < 2**-1076: rounds to 0
            return 0.0
        ctx = _context(digits)
        value = Fraction(ctx.exp(Decimal(v)))
        bound = value * Fraction(Decimal(10) ** (1 - digits))
        return value - bound, value + bound

    return at
