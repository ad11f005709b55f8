"""The exact value of every numeric field of ``xent compute --format json`` (mpmath).

Built on tests/mpref.py (exact shifts, ``log s`` with the max term kept apart) and written
from the definitions in docs/architecture.md, never from the code under test. :func:`check_fields`
compares a JSON result with these values within the bounds stated in docs/accuracy.md
("Bounds of every ``xent compute`` field"), and reports every field that is out of bounds.

The bounds, in units in the last place (ulp) of float64 at the exact value unless said:

=====================  =================================================================
max                    0.5 (``max(y) / T`` correctly rounded; exact at T = 1)
shifted                0.5 at T = 1 (``y - m`` correctly rounded); 2 with a temperature
exp_shifted            2
sum_exp_shifted        2
log_sum_exp_shifted    2
log_sum_exp            2 ulp of the larger of ``|m|`` and ``log s`` (no cancellation bound)
sum_exp                2 + ``|m|`` ulp with a temperature (``m`` itself is rounded), 4 at
                       T = 1; null exactly when the exact sum is outside the normal range
probabilities          3
log_probabilities      2
gradient               4 ulp of the larger of the two terms ``q_k A / (T ln b)`` and
                       ``a_k / (T ln b)`` (the gradient is their difference)
loss                   2 with a label; 4 with smoothing or soft targets; +1 in bits or bans;
                       with a label in nats also 0.51 + 2 ulp of ``w log s`` (a small
                       temperature: about half an ulp)
perplexity             1 + 2 x (the loss bound) x ``max(L, 1)``, L in nats
contributions          4, 1 more in bits or bans
one_minus_q            4
=====================  =================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mpmath as mp
import mpref

FLOAT_MAX = mp.mpf(2) ** 1024 - mp.mpf(2) ** 970  # from here up, float64 rounds to inf
NORMAL_MIN = mp.mpf(2) ** -1022
LOG_BASE = {"e": 1, "2": 2, "10": 10}

# Bounds (ulp), as in the table above and in docs/accuracy.md.
MAX_ULP = 0.5
SHIFTED_ULP = 0.5
SHIFTED_ULP_TEMPERATURE = 2.0  # fl(fl(y - m) / T): two roundings
EXP_ULP = 2.0
SUM_ULP = 2.0
LOG_S_ULP = 2.0
LSE_ULP = 2.0
SUM_EXP_ULP = 4.0
PROB_ULP = 3.0
LOG_PROB_ULP = 2.0
GRADIENT_ULP = 4.0
LOSS_ULP = 2.0
SOFT_LOSS_ULP = 4.0
BASE_EXTRA_ULP = 1.0
CONTRIBUTION_ULP = 4.0
ONE_MINUS_Q_ULP = 4.0


def _number(value: Any) -> float:
    """A JSON number or one of the strings "inf", "-inf", "nan" as a float."""
    if isinstance(value, str):
        return float(value)
    assert isinstance(value, (int, float)), value
    return float(value)


def reference(
    logits: Sequence[float],
    label: int | None = None,
    *,
    targets: Sequence[float] | None = None,
    weights: Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    base: str = "e",
) -> dict[str, Any]:
    """The exact fields (mpf, lists of mpf, or None for a null ``sum_exp``)."""
    k = len(logits)
    d, _ = mpref.shifts(logits, temperature)
    ls = mpref.log_s(d)
    with mp.workprec(mpref.WIDE):
        top = mp.mpf(max(y for y in logits if y != -math.inf)) / mp.mpf(temperature)
        lnb = mp.log(LOG_BASE[base]) if base != "e" else mp.mpf(1)
        scale = mp.mpf(temperature) * lnb

        def exp_of(v: mp.mpf | None) -> mp.mpf:
            # Below -1e5 the value is far under the smallest subnormal: 0 is exact enough.
            return mp.mpf(0) if v is None or v < -100_000 else mp.exp(v)

        e = [exp_of(v) for v in d]
        s = mp.fsum(e)
        q = [x / s for x in e]
        log_q = [-mp.inf if v is None else v - ls for v in d]
        sum_exp = s * mp.exp(top) if top < 800 else mp.inf
        eps = mp.mpf(label_smoothing)
        if targets is not None:
            p = [(1 - eps) * mp.mpf(t) + eps / k for t in targets]
        else:
            assert label is not None
            p = [(1 - eps) * (1 if c == label else 0) + eps / k for c in range(k)]
        w = [mp.mpf(1)] * k if weights is None else [mp.mpf(x) for x in weights]
        a = [w[c] * p[c] for c in range(k)]
        total = mp.fsum(a)
        gradient = [(q[c] * total - a[c]) / scale for c in range(k)]
        gradient_terms = [max(abs(q[c] * total), abs(a[c])) / scale for c in range(k)]
        loss_nats = mpref.row_loss(
            logits,
            label,
            targets=targets,
            weights=weights,
            label_smoothing=label_smoothing,
            temperature=temperature,
        )
        loss = mpref.in_base(loss_nats, base)
        contributions = [
            mp.mpf(0) if a[c] == 0 else (mp.inf if log_q[c] == -mp.inf else -a[c] * log_q[c] / lnb)
            for c in range(k)
        ]
        one_minus_q = None if label is None else 1 - q[label]
        perplexity = mp.inf if loss_nats > 1000 else mp.exp(loss_nats)
    return {
        "max": top,
        "shifted": [-mp.inf if v is None else v for v in d],
        "exp_shifted": e,
        "sum_exp_shifted": s,
        "log_sum_exp_shifted": ls,
        "log_sum_exp": top + ls,
        "sum_exp": sum_exp,
        "probabilities": q,
        "log_probabilities": log_q,
        "gradient": gradient,
        "gradient_terms": gradient_terms,
        "loss": loss,
        "loss_nats": loss_nats,
        "perplexity": perplexity,
        "contributions": contributions,
        "one_minus_q": one_minus_q,
    }


def _ulps_of(computed: float, exact: mp.mpf, scale: mp.mpf) -> float:
    """|computed - exact| in ulps of *scale* (for fields bounded relative to their terms)."""
    if mp.isinf(exact) or math.isinf(computed) or math.isnan(computed):
        return mpref.ulps(computed, exact)
    if scale == 0:
        return mpref.ulps(computed, exact)
    with mp.workprec(mpref.WIDE):
        _, exponent = mp.frexp(scale)
        ulp = mp.ldexp(1, max(int(exponent) - 53, -1074))
        return float(abs(mp.mpf(computed) - exact) / ulp)


def errors(data: dict[str, Any], exact: dict[str, Any], *, has_targets: bool) -> dict[str, float]:
    """The worst error of each field of *data* (the parsed JSON), in its bound's units."""
    out: dict[str, float] = {}

    def per_class(name: str) -> float:
        return max(mpref.ulps(_number(c), e) for c, e in zip(data[name], exact[name], strict=True))

    out["max"] = mpref.ulps(_number(data["max"]), exact["max"])
    out["shifted"] = per_class("shifted")
    out["exp_shifted"] = per_class("exp_shifted")
    out["sum_exp_shifted"] = mpref.ulps(_number(data["sum_exp_shifted"]), exact["sum_exp_shifted"])
    out["log_sum_exp_shifted"] = mpref.ulps(
        _number(data["log_sum_exp_shifted"]), exact["log_sum_exp_shifted"]
    )
    lse_scale = max(abs(exact["max"]), exact["log_sum_exp_shifted"])
    out["log_sum_exp"] = _ulps_of(_number(data["log_sum_exp"]), exact["log_sum_exp"], lse_scale)
    out["probabilities"] = per_class("probabilities")
    out["log_probabilities"] = per_class("log_probabilities")
    out["gradient"] = max(
        _ulps_of(_number(c), e, t)
        for c, e, t in zip(
            data["gradient"], exact["gradient"], exact["gradient_terms"], strict=True
        )
    )
    out["loss"] = mpref.ulps(_number(data["loss"]), exact["loss"])
    out["contributions"] = per_class("contributions")
    if exact["one_minus_q"] is not None:
        out["one_minus_q"] = mpref.ulps(_number(data["one_minus_q"]), exact["one_minus_q"])
    out["perplexity"] = mpref.ulps(_number(data["perplexity"]), exact["perplexity"])
    sum_exp = exact["sum_exp"]
    representable = NORMAL_MIN <= sum_exp < FLOAT_MAX
    if data["sum_exp"] is None:
        out["sum_exp"] = 0.0 if not representable else math.inf
    else:
        out["sum_exp"] = (
            mpref.ulps(_number(data["sum_exp"]), sum_exp) if representable else math.inf
        )
    return out


def _ulp(x: mp.mpf) -> mp.mpf:
    with mp.workprec(mpref.WIDE):
        if x == 0:
            return mp.ldexp(1, -1074)
        _, exponent = mp.frexp(x)
        return mp.ldexp(1, max(int(exponent) - 53, -1074))


def plain_loss_bound(loss: mp.mpf, log_s: mp.mpf, weight: float = 1.0) -> float:
    """The bound of a plain label's row loss (no smoothing, nats), in ulp of *loss*.

    The kernel computes ``w * (-hi + (log s - lo))`` with ``hi + lo`` the exact shift of
    the label's logit: one rounding of a sum whose parts are exact or within about an ulp
    of ``w log s``. So its error is at most half an ulp of the loss plus 2 ulp of
    ``w log s`` (0.51 for the rounding's own slack), and never more than LOSS_ULP. At a
    small temperature the shift dominates and the bound is about half an ulp: dropping
    ``lo`` costs up to a whole ulp there.
    """
    if mp.isinf(loss) or loss == 0:
        return LOSS_ULP
    with mp.workprec(mpref.WIDE):
        tight = mp.mpf("0.51") + 2 * _ulp(log_s * mp.mpf(weight)) / _ulp(loss)
    return min(LOSS_ULP, float(tight))


def tight_loss_bound(data: dict[str, Any], exact: dict[str, Any]) -> float:
    """:func:`plain_loss_bound` for a compute JSON result and its exact fields."""
    label = data["label"]
    w = 1.0 if data["weights"] is None else _number(data["weights"][label])
    return plain_loss_bound(exact["loss"], exact["log_sum_exp_shifted"], w)


def bounds(data: dict[str, Any], exact: dict[str, Any], *, soft: bool) -> dict[str, float]:
    """The bound of each field for this sample (see the module's table)."""
    temperature = _number(data["temperature"])
    base = data.get("base", "e")
    loss_ulp = (SOFT_LOSS_ULP if soft else LOSS_ULP) + (BASE_EXTRA_ULP if base != "e" else 0.0)
    loss_nats = exact["loss_nats"]
    if not soft and base == "e" and data["label"] is not None:
        loss_ulp = min(loss_ulp, tight_loss_bound(data, exact))
    large = float(loss_nats) if not mp.isinf(loss_nats) else 0.0
    m = abs(float(exact["max"])) if not mp.isinf(exact["max"]) else 0.0
    return {
        "max": MAX_ULP,
        "shifted": SHIFTED_ULP if temperature == 1.0 else SHIFTED_ULP_TEMPERATURE,
        "exp_shifted": EXP_ULP,
        "sum_exp_shifted": SUM_ULP,
        "log_sum_exp_shifted": LOG_S_ULP,
        "log_sum_exp": LSE_ULP,
        "sum_exp": SUM_EXP_ULP if temperature == 1.0 else 2.0 + m,
        "probabilities": PROB_ULP,
        "log_probabilities": LOG_PROB_ULP,
        "gradient": GRADIENT_ULP,
        "loss": loss_ulp,
        "perplexity": 1.0 + 2.0 * loss_ulp * max(large, 1.0),
        "contributions": CONTRIBUTION_ULP + (BASE_EXTRA_ULP if base != "e" else 0.0),
        "one_minus_q": ONE_MINUS_Q_ULP,
    }


def out_of_bounds(
    data: dict[str, Any],
    logits: Sequence[float],
    label: int | None = None,
    **options: Any,
) -> dict[str, tuple[float, float]]:
    """Fields of *data* beyond their bound, as ``{field: (error, bound)}`` (empty: all good).

    *options* are :func:`reference`'s keyword arguments (targets, weights,
    label_smoothing, temperature, base).
    """
    exact = reference(logits, label, **options)
    soft = options.get("targets") is not None or bool(options.get("label_smoothing"))
    got = errors(data, exact, has_targets=options.get("targets") is not None)
    limit = bounds(data, exact, soft=soft)
    return {name: (got[name], limit[name]) for name in got if not got[name] <= limit[name]}
