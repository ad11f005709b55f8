"""An independent high-precision reference for softmax and cross-entropy (mpmath).

Written from the definitions in docs/architecture.md, not from the kernel: the logits are taken as
exact binary values, differences are formed exactly, and everything else is evaluated with
a few hundred bits. PyTorch's semantics for weights, smoothing and soft targets are spelled
out here again, term by term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mpmath as mp

WIDE = 2300  # bits: y - m is exact for any two float64 values
PREC = 240  # bits for everything else
CUTOFF = mp.mpf(-3000)  # exp(d) for d below this cannot reach a float64 result

Number = float | int


def _mpf_exact(x: float) -> mp.mpf:
    with mp.workprec(WIDE):
        return mp.mpf(x)


def shifts(logits: Sequence[float], temperature: float = 1.0) -> tuple[list, int]:
    """The exact ``(y_k - max) / T`` (None for -inf) and the first argmax."""
    finite = [y for y in logits if y != -math.inf]
    top = max(finite)
    a = list(logits).index(top)
    out = []
    with mp.workprec(WIDE):
        m = mp.mpf(top)
        t = mp.mpf(temperature)
        for y in logits:
            if y == -math.inf:
                out.append(None)
            elif temperature == 1.0:
                out.append(mp.mpf(y) - m)
            else:
                out.append((mp.mpf(y) - m) / t)
    return out, a


def log_s(d: list) -> mp.mpf:
    """``log sum_k exp(d_k)``; the max term (d = 0) is kept apart so that log(1 + tiny)
    keeps its relative precision at any size of tiny."""
    first_max = next(i for i, v in enumerate(d) if v is not None and v == 0)
    with mp.workprec(PREC):
        rest = mp.fsum(
            mp.exp(v) for i, v in enumerate(d) if i != first_max and v is not None and v > CUTOFF
        )
        return mp.log1p(rest)


def neg_log_q(d: list, ls: mp.mpf) -> list:
    """``-log q_k = log s - d_k`` (None for a masked class: +inf)."""
    with mp.workprec(WIDE):
        return [None if v is None else ls - v for v in d]


def loss(logits: Sequence[float], label: int, temperature: float = 1.0) -> mp.mpf:
    d, _ = shifts(logits, temperature)
    if d[label] is None:
        return mp.inf
    return neg_log_q(d, log_s(d))[label]


def probabilities(logits: Sequence[float], temperature: float = 1.0) -> list:
    d, _ = shifts(logits, temperature)
    with mp.workprec(PREC):
        e = [mp.mpf(0) if v is None or v < CUTOFF * 100 else mp.exp(v) for v in d]
        s = mp.fsum(e)
        return [x / s for x in e]


def log_probabilities(logits: Sequence[float], temperature: float = 1.0) -> list:
    d, _ = shifts(logits, temperature)
    ls = log_s(d)
    with mp.workprec(WIDE):
        return [-mp.inf if v is None else v - ls for v in d]


def logsumexp(logits: Sequence[float], temperature: float = 1.0) -> mp.mpf:
    d, _ = shifts(logits, temperature)
    with mp.workprec(WIDE):
        return mp.mpf(max(y for y in logits)) / mp.mpf(temperature) + log_s(d)


def _term(weight: mp.mpf, nlq: mp.mpf | None) -> mp.mpf:
    """``weight * -log q`` with 0 * inf = 0."""
    if weight == 0:
        return mp.mpf(0)
    return mp.inf if nlq is None else weight * nlq


def row_loss(
    logits: Sequence[float],
    label: int | None = None,
    *,
    targets: Sequence[float] | None = None,
    weights: Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
) -> mp.mpf:
    """PyTorch's per-row cross-entropy (reduction='none'), exactly."""
    k = len(logits)
    d, _ = shifts(logits, temperature)
    nlq = neg_log_q(d, log_s(d))
    with mp.workprec(WIDE):
        w = [mp.mpf(1)] * k if weights is None else [mp.mpf(x) for x in weights]
        eps = mp.mpf(label_smoothing)
        if targets is not None:
            t = [(1 - eps) * mp.mpf(x) + eps / k for x in targets]
            return mp.fsum(_term(w[c] * t[c], nlq[c]) for c in range(k))
        assert label is not None
        main = _term(w[label], nlq[label])
        if eps == 0:
            return main
        uniform = mp.fsum(_term(w[c], nlq[c]) for c in range(k))
        return (1 - eps) * main + eps / k * uniform


def mean(
    rows: Sequence[Sequence[float]],
    labels: Sequence[int] | None = None,
    *,
    targets: Sequence[Sequence[float]] | None = None,
    weights: Sequence[float] | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
) -> mp.mpf:
    """PyTorch's reduction='mean', exactly (weighted mean for labels, / N for targets)."""
    total = []
    denominator = []
    for i, row in enumerate(rows):
        if targets is not None:
            total.append(
                row_loss(
                    row,
                    targets=targets[i],
                    weights=weights,
                    label_smoothing=label_smoothing,
                    temperature=temperature,
                )
            )
            denominator.append(mp.mpf(1))
            continue
        assert labels is not None
        if ignore_index is not None and labels[i] == ignore_index:
            continue
        total.append(
            row_loss(
                row,
                labels[i],
                weights=weights,
                label_smoothing=label_smoothing,
                temperature=temperature,
            )
        )
        denominator.append(mp.mpf(1) if weights is None else _mpf_exact(weights[labels[i]]))
    with mp.workprec(WIDE):
        return mp.fsum(total) / mp.fsum(denominator)


def in_base(x: mp.mpf, base: str) -> mp.mpf:
    if base == "e":
        return x
    with mp.workprec(PREC):
        return x / mp.log(int(base))


def ulps(computed: float, exact: mp.mpf) -> float:
    """|computed - exact| in units of the last place of float64 at *exact*."""
    if mp.isinf(exact) or math.isinf(computed):
        if math.isinf(computed) and mp.isinf(exact):
            return 0.0 if (computed > 0) == (exact > 0) else math.inf
        # A finite exact value beyond the float range rounds to inf.
        big = exact if not mp.isinf(exact) else None
        if big is not None and abs(big) >= mp.mpf(2) ** 1024 - mp.mpf(2) ** 970:
            return 0.0 if (computed > 0) == (big > 0) else math.inf
        return math.inf
    if math.isnan(computed):
        return math.inf
    with mp.workprec(WIDE):
        if exact == 0:
            return abs(computed) / 2.0**-1074
        _, e = mp.frexp(exact)
        ulp = mp.ldexp(1, max(int(e) - 53, -1074))
        return float(abs(mp.mpf(computed) - exact) / ulp)
