"""``xent compute --sigmoid``: binary and multi-label cross-entropy, label by label.

Each logit x_k is a separate yes/no question with its own target z_k (0/1, or soft):
sigma(x_k), the two log terms, the loss per label and its gradient come from
:func:`xentcli.core.bce_with_logits`; PyTorch's mean is over all labels. The naive
comparison takes sigma(x) in float64 first and then its log, which becomes -inf for
x = -800 (sigma underflows to 0), and PyTorch's ``BCELoss``, which clamps that log at -100.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xentcli.core import bce_with_logits
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
    from xentcli.core import ExactSum

    total = ExactSum()
    total.add(r.loss)
    count = ExactSum()
    count.add_ones(x.size)
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
        loss=total.ratio(count, base),
        loss_sum=total.value(base),
        units=_UNITS[base],
        naive_log_sigmoid=t(log_s),
        naive_losses=t(naive, True),
        bce_clamped=t(clamped, True),
    )


def table_lines(t: SigmoidTrace, digits: int, naive: bool = False) -> list[str]:
    headers = ["k", "x", "z", "sigma(x)", "log sigma(x)", "log(1 - sigma(x))", "loss", "dL/dx"]
    if t.pos_weight is not None:
        headers.insert(3, "pos_weight")
    if naive:
        headers += ["naive loss", "BCELoss"]
    rows = []
    for k in range(len(t.logits)):
        row = [str(k), f"{t.logits[k]:.6g}", f"{t.targets[k]:.6g}"]
        if t.pos_weight is not None:
            row.append(f"{t.pos_weight[k]:.6g}")
        row += [
            fixed(t.sigmoid[k], digits),
            fixed(t.log_sigmoid[k], digits),
            fixed(t.log_one_minus[k], digits),
            fixed(t.losses[k], digits),
            fixed(t.gradient[k], digits),
        ]
        if naive:
            row += [fixed(t.naive_losses[k], digits), fixed(t.bce_clamped[k], digits)]
        rows.append(row)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    out = [
        f"Sigmoid cross-entropy: {len(t.logits)} label{'s' if len(t.logits) != 1 else ''}"
        " (binary cross-entropy with logits, per label)",
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
    for k, loss in enumerate(t.losses):
        p = 1.0 if t.pos_weight is None else t.pos_weight[k]
        out.append(
            f"   label {k}: p = {p:.6g}, z = {t.targets[k]:.6g}: L = {sig(loss, digits)} {t.units}"
        )
    out += [
        "",
        f"4) PyTorch's mean over the {len(t.losses)} labels: {sig(t.loss, digits)} {t.units}",
        "",
        "5) The gradient: dL/dx = (1 - z) sigma(x) - p z (1 - sigma(x))  (sigma(x) - z without"
        " pos_weight)",
        "   = [" + ", ".join(fixed(g, digits) for g in t.gradient) + "]",
    ]
    return out


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
    }
    if naive:
        data["naive"] = {
            "log_sigmoid": list(t.naive_log_sigmoid),
            "losses": list(t.naive_losses),
            "bce_loss_clamped": list(t.bce_clamped),
        }
    return data


def markdown(t: SigmoidTrace, digits: int) -> str:
    lines = table_lines(t, digits)
    header, _rule, *rows = lines[2 : 3 + len(t.logits) + 1]
    cells = lambda line: [c for c in line.split("  ") if c.strip()]  # noqa: E731
    out = ["## Sigmoid cross-entropy, label by label", ""]
    out.append("| " + " | ".join(c.strip() for c in cells(header)) + " |")
    out.append("|" + "|".join("---:" for _ in cells(header)) + "|")
    out += ["| " + " | ".join(c.strip() for c in cells(row)) + " |" for row in rows]
    out += [
        "",
        "$$ L_k = p_k z_k \\operatorname{softplus}(-x_k) + (1 - z_k) \\operatorname{softplus}(x_k) $$",
        "",
        f"Mean over the labels: $L = {sig(t.loss, digits)}$ {t.units}.",
        "",
    ]
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
            "\\[ L_k = p_k z_k \\operatorname{softplus}(-x_k)"
            " + (1 - z_k) \\operatorname{softplus}(x_k) \\]",
            f"Mean over the labels: $L = {sig(t.loss, digits)}$ {t.units}.",
            "\\end{document}",
            "",
        ]
    )
