"""``xent compute --sigmoid``: binary and multi-label cross-entropy, label by label.

Each logit x_k is a separate yes/no question with its own target z_k (0/1, or soft):
sigma(x_k), the two log terms, the loss per label and its gradient come from
:func:`xentcli.core.bce_with_logits`; PyTorch's mean is over all labels. The naive
comparison takes sigma(x) in float64 first and then its log, which becomes -inf for
x = -800 (sigma underflows to 0), and PyTorch's ``BCELoss``, which clamps that log at -100.

From probabilities p (or log-probabilities) the steps start from p, with no sigmoid step:
log p, log(1 - p) and the loss of each label come from :func:`xentcli.core.bce_with_probs`
(:func:`~xentcli.core.bce_with_logprobs`), the functions ``xent batch --sigmoid --scores
probs|logprobs`` scores with, so the two commands agree to the bit; the gradient shown
is dL/dp, with respect to the given probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xentcli.core import (
    ExactSum,
    bce_with_logits,
    bce_with_logprobs,
    bce_with_probs,
    sigmoid_predicted,
)
from xentcli.text import fixed, sig

_LOG_BASE = {"e": 1.0, "2": math.log(2.0), "10": math.log(10.0)}
_UNITS = {"e": "nats", "2": "bits", "10": "bans"}


@dataclass(frozen=True)
class SigmoidTrace:
    logits: tuple[float, ...]
    targets: tuple[float, ...]
    pos_weight: tuple[float, ...] | None
    sigmoid: tuple[float, ...]
    log_sigmoid: tuple[float, ...]  #: nats
    log_one_minus: tuple[float, ...]  #: nats
    losses: tuple[float, ...]  #: in units
    gradient: tuple[float, ...]  #: in units per logit
    loss: float  #: PyTorch's mean over the labels, in units
    loss_sum: float
    units: str
    naive_log_sigmoid: tuple[float, ...]
    naive_losses: tuple[float, ...]  #: -(p z log s + (1 - z) log(1 - s)) from s = sigma(x)
    bce_clamped: tuple[float, ...]  #: torch BCELoss: logs clamped at -100 (no pos_weight)
    predicted: tuple[int, ...] = ()  #: 1 where the label's probability is > 1/2
    #: what was given: "logits", or "probs"/"logprobs" (then ``logits`` are the logits
    #: log p - log(1 - p) they imply, ``gradient`` is dL/dp and the naive fields are empty)
    scores: str = "logits"
    given: tuple[float, ...] | None = None  #: the probabilities or log-probabilities given
    scores_detected: bool = False  #: the kind was detected (``--from`` with ``--scores auto``)


def build(
    logits: Sequence[float],
    targets: Sequence[float],
    pos_weight: Sequence[float] | None = None,
    base: str = "e",
) -> SigmoidTrace:
    x = np.asarray(logits, dtype=np.float64)
    z = np.asarray(targets, dtype=np.float64)
    p = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    r = bce_with_logits(x, z, p)
    scale = _LOG_BASE[base]
    loss, loss_sum = _mean_and_sum(r.loss, base)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        s = 1.0 / (1.0 + np.exp(-x))
        log_s, log_1s = np.log(s), np.log(1.0 - s)
        weight = np.ones_like(x) if p is None else p
        naive = -(weight * z * log_s + (1 - z) * log_1s)
        naive = np.where(np.isnan(naive), np.inf, naive)  # 0 * -inf
        clamped = -(z * np.maximum(log_s, -100.0) + (1 - z) * np.maximum(log_1s, -100.0))

    def t(a: np.ndarray, divide: bool = False) -> tuple[float, ...]:
        return tuple(float(v) / (scale if divide else 1.0) + 0.0 for v in a)

    return SigmoidTrace(
        logits=t(x),
        targets=t(z),
        pos_weight=None if p is None else t(p),
        sigmoid=t(r.sigmoid),
        log_sigmoid=t(r.log_sigmoid),
        log_one_minus=t(r.log_one_minus),
        losses=t(r.loss, True),
        gradient=t(r.gradient, True),
        loss=loss,
        loss_sum=loss_sum,
        units=_UNITS[base],
        naive_log_sigmoid=t(log_s),
        naive_losses=t(naive, True),
        bce_clamped=t(clamped, True),
        predicted=tuple(int(v) for v in sigmoid_predicted(x, "logits")),
    )


def _mean_and_sum(losses: np.ndarray, base: str) -> tuple[float, float]:
    """PyTorch's mean over the labels and the sum, each the exact sum rounded once (an
    infinite loss makes both infinite)."""
    total = ExactSum()
    total.add(losses)
    count = ExactSum()
    count.add_ones(losses.size)
    return total.ratio(count, base), total.value(base)


def build_given(
    scores: Sequence[float],
    targets: Sequence[float],
    pos_weight: Sequence[float] | None = None,
    base: str = "e",
    kind: str = "probs",
    detected: bool = False,
) -> SigmoidTrace:
    """The trace from probabilities p (*kind* ``"probs"``) or log-probabilities log p
    (``"logprobs"``): the loss is :func:`~xentcli.core.bce_with_probs`' (PyTorch's
    ``BCELoss`` with ``pos_weight``, unclamped), the gradient dL/dp.

    >>> t = build_given([0.75], [0.0])
    >>> t.losses, t.gradient, t.predicted  # -log(1 - 0.75); 1 / (1 - p)
    ((1.3862943611198906,), (4.0,), (1,))
    """
    s = np.asarray(scores, dtype=np.float64)
    z = np.asarray(targets, dtype=np.float64)
    w = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    r = (bce_with_probs if kind == "probs" else bce_with_logprobs)(s, z, w)
    p = s + 0.0 if kind == "probs" else np.exp(s)  # -0.0 is p = 0: dL/dp is -inf, not +inf
    one_minus = 1.0 - p if kind == "probs" else -np.expm1(s)  # 1 - e^l without cancelling
    weight = np.ones_like(z) if w is None else np.broadcast_to(w, z.shape)
    # dL/dp = -w z / p + (1 - z) / (1 - p) (PyTorch's BCELoss backward, with w); a term
    # whose factor is 0 is absent (0 log 0 = 0), so it adds 0, not 0 / 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = np.where(weight * z > 0, -(weight * z) / p, 0.0)
        negative = np.where(1.0 - z > 0, (1.0 - z) / one_minus, 0.0)
        implied = r.log_p - r.log_one_minus  # the logit log(p / (1 - p))
    scale = _LOG_BASE[base]
    loss, loss_sum = _mean_and_sum(r.loss, base)

    def t(a: np.ndarray, divide: bool = False) -> tuple[float, ...]:
        return tuple(float(v) / (scale if divide else 1.0) + 0.0 for v in a)

    return SigmoidTrace(
        logits=t(implied),
        targets=t(z),
        pos_weight=None if w is None else t(weight),
        sigmoid=t(p),
        log_sigmoid=t(r.log_p),
        log_one_minus=t(r.log_one_minus),
        losses=t(r.loss, True),
        gradient=t(positive + negative, True),
        loss=loss,
        loss_sum=loss_sum,
        units=_UNITS[base],
        naive_log_sigmoid=(),
        naive_losses=(),
        bce_clamped=(),
        predicted=tuple(int(v) for v in sigmoid_predicted(s, kind)),  # type: ignore[arg-type]
        scores=kind,
        given=t(s),
        scores_detected=detected,
    )


#: the per-label columns of a trace from given probabilities (log-probabilities): the
#: given value first, the derived one after the target
_GIVEN_HEADERS = {
    "probs": ("p", "log p", "log(1 - p)", "dL/dp"),
    "logprobs": ("log p", "p", "log(1 - p)", "dL/dp"),
}
_GIVEN_WHAT = {"probs": "probabilities", "logprobs": "log-probabilities"}


def _title(t: SigmoidTrace) -> str:
    n = len(t.losses)
    of = "with logits" if t.scores == "logits" else f"of the {_GIVEN_WHAT[t.scores]}"
    return f"Sigmoid cross-entropy: {n} label{'s' if n != 1 else ''} (binary cross-entropy {of}, per label)"


def _predicted_text(t: SigmoidTrace) -> str:
    ones = [str(k) for k, v in enumerate(t.predicted) if v]
    if not ones:
        return "no label"
    return ("label " if len(ones) == 1 else "labels ") + ", ".join(ones)


def _given_notes(t: SigmoidTrace) -> list[str]:
    """What a trace from given probabilities says under its table: where the steps start,
    which gradient is shown, the predicted labels."""
    what = _GIVEN_WHAT[t.scores]
    return [
        f"Given {what}: the steps start from p (no sigmoid step). The loss is PyTorch's",
        "BCELoss (with pos_weight as BCEWithLogitsLoss has it) without its clamp of each",
        "log at -100: p = 0 with z > 0 (or p = 1 with z < 1) is an infinite loss.",
        "dL/dp is the gradient with respect to the given probability p (with respect to",
        "the logit log(p / (1 - p)) it implies it would be (1 - z) p - w z (1 - p)).",
        f"predicted 1 (p > 0.5): {_predicted_text(t)}",
    ]


def table_lines(t: SigmoidTrace, digits: int, naive: bool = False) -> list[str]:
    given = t.scores != "logits"
    if given:
        first, third, fourth, grad = _GIVEN_HEADERS[t.scores]
        headers = ["k", first, "z", third, fourth, "loss", grad, "predicted"]
    else:
        headers = ["k", "x", "z", "sigma(x)", "log sigma(x)", "log(1 - sigma(x))", "loss"]
        headers.append("dL/dx")
    if t.pos_weight is not None:
        headers.insert(3, "pos_weight")
    if naive:
        headers += ["naive loss", "BCELoss"]
    rows = []
    for k in range(len(t.losses)):
        shown = t.given[k] if t.given is not None else t.logits[k]
        row = [str(k), f"{shown:.6g}", f"{t.targets[k]:.6g}"]
        if t.pos_weight is not None:
            row.append(f"{t.pos_weight[k]:.6g}")
        if given and t.scores == "logprobs":
            row.append(fixed(t.sigmoid[k], digits))
        elif given:
            row.append(fixed(t.log_sigmoid[k], digits))
        else:
            row += [fixed(t.sigmoid[k], digits), fixed(t.log_sigmoid[k], digits)]
        row += [
            fixed(t.log_one_minus[k], digits),
            fixed(t.losses[k], digits),
            fixed(t.gradient[k], digits),
        ]
        if given:
            row.append(str(t.predicted[k]))
        if naive:
            row += [fixed(t.naive_losses[k], digits), fixed(t.bce_clamped[k], digits)]
        rows.append(row)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    out = [
        _title(t),
        "",
        "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
        "-" * (sum(widths) + 2 * (len(widths) - 1)),
    ]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    out += [
        "",
        f"mean loss (PyTorch's reduction='mean', over the labels)  {sig(t.loss, digits)} {t.units}",
        f"sum of the losses (reduction='sum')                     {sig(t.loss_sum, digits)} {t.units}",
    ]
    if given:
        out += ["", *_given_notes(t)]
    if naive:
        out += [
            "",
            "naive loss: sigma(x) first, then its log: sigma(x) underflows to 0 below",
            "x = -745 (and rounds to 1 above x = 37), so log sigma(x) = -inf and the loss",
            "is inf (or lost to 0). BCELoss: PyTorch's loss on probabilities clamps each",
            "log at -100, so the loss stops at 100.",
        ]
    return out


def explain_lines(t: SigmoidTrace, digits: int) -> list[str]:
    if t.scores != "logits":
        return _explain_given(t, digits)
    out = ["", "Step by step", ""]
    out.append("1) Each label is its own yes/no question: sigma(x) = 1 / (1 + e^-x)")
    for k, (x, s) in enumerate(zip(t.logits, t.sigmoid, strict=True)):
        out.append(f"   sigma({x:.6g}) = {fixed(s, digits)}   (label {k})")
    out += [
        "",
        "2) The two log terms, without forming sigma first:",
        "   log sigma(x) = -softplus(-x),  log(1 - sigma(x)) = -softplus(x),",
        "   softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|)   (never overflows)",
        "",
        "3) The loss per label: L = -(p z log sigma(x) + (1 - z) log(1 - sigma(x)))",
        "   = p z softplus(-x) + (1 - z) softplus(x)   (two non-negative terms: nothing cancels)",
    ]
    out += _losses_and_mean(t, digits, "p")
    out += [
        "",
        "5) The gradient: dL/dx = (1 - z) sigma(x) - p z (1 - sigma(x))  (sigma(x) - z without"
        " pos_weight)",
        "   = [" + ", ".join(fixed(g, digits) for g in t.gradient) + "]",
    ]
    return out


def _explain_given(t: SigmoidTrace, digits: int) -> list[str]:
    """The steps from given probabilities: w is the pos_weight (p is the probability)."""
    out = ["", "Step by step", ""]
    if t.scores == "probs":
        out.append("1) Each label's probability p is given: no sigmoid step")
        logs = [
            "2) The two log terms: log p, and log(1 - p) as log1p(-p) (1 - p is not rounded)",
        ]
    else:
        out.append("1) Each label's log-probability log p is given: p = e^(log p), no sigmoid step")
        logs = [
            "2) The two log terms: log p as given, and log(1 - p) = log(1 - e^(log p)) by the",
            "   log1mexp rule: log(-expm1(log p)) above -ln 2, log1p(-exp(log p)) below",
            "   (neither cancels)",
        ]
    for k, p in enumerate(t.sigmoid):
        out.append(
            f"   label {k}: p = {fixed(p, digits)}, log p = {fixed(t.log_sigmoid[k], digits)},"
            f" log(1 - p) = {fixed(t.log_one_minus[k], digits)}"
        )
    out += [
        "",
        *logs,
        "",
        "3) The loss per label: L = -(w z log p + (1 - z) log(1 - p))   (w the pos_weight;",
        "   0 log 0 = 0; PyTorch's BCELoss without its clamp of each log at -100)",
    ]
    out += _losses_and_mean(t, digits, "w")
    out += [
        "",
        "5) The gradient with respect to the given probability:",
        "   dL/dp = (1 - z) / (1 - p) - w z / p   ((p - z) / (p (1 - p)) without pos_weight)",
        "   = [" + ", ".join(fixed(g, digits) for g in t.gradient) + "]",
        "",
        "6) Predicted 1 where p > 0.5: [" + ", ".join(str(v) for v in t.predicted) + "]",
    ]
    return out


def _losses_and_mean(t: SigmoidTrace, digits: int, weight: str) -> list[str]:
    """Step 3's line per label (its pos_weight named *weight*) and step 4, the mean."""
    out = []
    for k, loss in enumerate(t.losses):
        w = 1.0 if t.pos_weight is None else t.pos_weight[k]
        out.append(
            f"   label {k}: {weight} = {w:.6g}, z = {t.targets[k]:.6g}:"
            f" L = {sig(loss, digits)} {t.units}"
        )
    mean = f"4) PyTorch's mean over the {len(t.losses)} labels: {sig(t.loss, digits)} {t.units}"
    return [*out, "", mean]


def to_json(t: SigmoidTrace, naive: bool = False) -> dict[str, object]:
    data: dict[str, object] = {
        "sigmoid": True,
        "logits": list(t.logits),
        "targets": list(t.targets),
        "pos_weight": None if t.pos_weight is None else list(t.pos_weight),
        "probabilities": list(t.sigmoid),
        "log_sigmoid": list(t.log_sigmoid),
        "log_one_minus_sigmoid": list(t.log_one_minus),
        "losses": list(t.losses),
        "gradient": list(t.gradient),
        "loss": t.loss,
        "loss_sum": t.loss_sum,
        "reduction": "mean",
        "units": t.units,
        # Added keys: what was given (as the softmax compute JSON says it), which
        # gradient "gradient" is, and the predicted labels.
        "scores": t.scores,
        "scores_detected": t.scores_detected,
        "scores_given": None if t.given is None else list(t.given),
        "gradient_with_respect_to": "logits" if t.scores == "logits" else "probabilities",
        "predicted": list(t.predicted),
    }
    if naive:
        data["naive"] = {
            "log_sigmoid": list(t.naive_log_sigmoid),
            "losses": list(t.naive_losses),
            "bce_loss_clamped": list(t.bce_clamped),
        }
    return data


def _formula(t: SigmoidTrace) -> str:
    """The loss per label in TeX (the same in Markdown's $$ and LaTeX's \\[ \\])."""
    if t.scores == "logits":
        return (
            "L_k = p_k z_k \\operatorname{softplus}(-x_k) + (1 - z_k) \\operatorname{softplus}(x_k)"
        )
    return "L_k = -\\bigl(w_k z_k \\log p_k + (1 - z_k) \\log(1 - p_k)\\bigr)"


def _closing(t: SigmoidTrace, digits: int) -> list[str]:
    """The sentences after the formula: the mean; from given probabilities the gradient
    shown and the predicted labels."""
    out = [f"Mean over the labels: $L = {sig(t.loss, digits)}$ {t.units}."]
    if t.scores != "logits":
        out += [
            "",
            "The gradient $\\partial L / \\partial p_k = (1 - z_k) / (1 - p_k) - w_k z_k / p_k$"
            " is with respect to the given probability.",
            "",
            f"Predicted 1 ($p_k > 0.5$): {_predicted_text(t)}.",
        ]
    return out


def markdown(t: SigmoidTrace, digits: int) -> str:
    lines = table_lines(t, digits)
    header, _rule, *rows = lines[2 : 3 + len(t.losses) + 1]
    cells = lambda line: [c for c in line.split("  ") if c.strip()]  # noqa: E731
    out = ["## Sigmoid cross-entropy, label by label", ""]
    if t.scores != "logits":
        out += [f"Given {_GIVEN_WHAT[t.scores]}: the steps start from $p$ (no sigmoid step).", ""]
    out.append("| " + " | ".join(c.strip() for c in cells(header)) + " |")
    out.append("|" + "|".join("---:" for _ in cells(header)) + "|")
    out += ["| " + " | ".join(c.strip() for c in cells(row)) + " |" for row in rows]
    out += ["", f"$$ {_formula(t)} $$", "", *_closing(t, digits), ""]
    return "\n".join(out)


def latex(t: SigmoidTrace, digits: int) -> str:
    """A LaTeX document: the table (verbatim), the formula and the mean."""
    return "\n".join(
        [
            "\\documentclass{article}",
            "\\usepackage{amsmath}",
            "\\begin{document}",
            "\\section*{Sigmoid cross-entropy, label by label}",
            "\\begin{verbatim}",
            *table_lines(t, digits),
            "\\end{verbatim}",
            f"\\[ {_formula(t)} \\]",
            *_closing(t, digits),
            "\\end{document}",
            "",
        ]
    )
