"""The derivation of one sample as numbered steps: data that the outputs read.

``xent compute --explain`` prints these steps (:mod:`xentcli.compute.render`);
``--format markdown`` and ``--format latex`` typeset them (:mod:`xentcli.compute.typeset`).
Each :class:`Step` holds every line twice, as plain text and as TeX, so that all three
say the same thing. Numbers round for reading with the formats of :mod:`xentcli.text`.

>>> from xentcli.compute.trace import build_trace
>>> [step.title for step in derivation(build_trace([1.2, 2.3, 0.8], 1))][:2]
['The largest logit', 'Shift the logits by the max']
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from xentcli.compute.trace import NO_TARGET_HINT, Trace
from xentcli.text import DEFAULT_DIGITS, fixed, given, sig

_LIST_LIMIT = 12  # lists longer than this are elided in derivations
_TEX_DOTS = "\\ldots"


def tex_number(text: str) -> str:
    """A formatted number for TeX math: ``4.2e-18`` becomes ``4.2 \\times 10^{-18}``.

    >>> tex_number("4.248e-18"), tex_number("-inf"), tex_number("0.5")
    ('4.248 \\\\times 10^{-18}', '-\\\\infty', '0.5')
    """
    if text in ("inf", "-inf"):
        return text.replace("inf", "\\infty")
    if text == "nan":
        return "\\mathrm{NaN}"
    return tex_exponents(text)


_SCIENTIFIC = re.compile(r"(?<![\w.^])(-?\d+(?:\.\d+)?)e([+-]?\d+)\b")
# A bare inf or nan (from a formatted number) in TeX; not the inf of \infty or infinite.
_INF = re.compile(r"(?<![\\\w])inf\b")
_NAN = re.compile(r"(?<![\\\w])nan\b")


def tex_exponents(text: str) -> str:
    """Write every ``1.5e-18`` in *text* as ``1.5 \\times 10^{-18}``.

    >>> print(tex_exponents("s = 1.0000e+05 and 4e-3, -inf, nan, \\\\infty"))
    s = 1.0000 \\times 10^{5} and 4 \\times 10^{-3}, -\\infty, \\mathrm{NaN}, \\infty
    """
    text = _SCIENTIFIC.sub(lambda m: f"{m.group(1)} \\times 10^{{{int(m.group(2))}}}", text)
    text = _INF.sub("\\\\infty", text)
    return _NAN.sub("\\\\mathrm{NaN}", text)


_TEX_SPECIAL = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
    # In OT1 text fonts these print as other glyphs (| as an em dash).
    "|": "\\textbar{}",
    "<": "\\textless{}",
    ">": "\\textgreater{}",
}


def tex_escape(text: str) -> str:
    """Escape prose (a class name) for LaTeX text mode.

    >>> tex_escape("cat_1 & 50%")
    'cat\\\\_1 \\\\& 50\\\\%'
    """
    return "".join(_TEX_SPECIAL.get(char, char) for char in text)


def md_escape(text: str) -> str:
    """Escape prose (a class name, a note) for a Markdown table cell.

    >>> print(md_escape("a|b_c*"))
    a\\|b\\_c\\*
    """
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _listing(items: list[str], separator: str = ", ", dots: str = "...") -> str:
    if len(items) > _LIST_LIMIT:
        items = [*items[:8], dots, *items[-2:]]
    return separator.join(items)


# ----------------------------------------------------------------------- the steps
@dataclass(frozen=True)
class Line:
    """One line of a step: a formula (``math``) or a sentence, as plain text and TeX.

    In ``tex`` a sentence may hold inline math between ``$`` signs; a formula is bare
    math (the renderer puts it in display math).
    """

    text: str
    tex: str
    math: bool = True


@dataclass
class Step:
    """A numbered step of the derivation."""

    number: int
    title: str
    lines: list[Line] = field(default_factory=list)

    def math(self, text: str, tex: str) -> None:
        self.lines.append(Line(text, tex_exponents(tex), True))

    def say(self, text: str, tex: str) -> None:
        self.lines.append(Line(text, tex_exponents(tex), False))


def vec(values: Iterable[str], tex: bool = False) -> str:
    items = [tex_number(v) for v in values] if tex else list(values)
    body = _listing(items, dots=_TEX_DOTS if tex else "...")
    return f"\\left[{body}\\right]" if tex else f"[{body}]"


def describe_label(t: Trace) -> tuple[str, str]:
    """``i = 1`` (with the class name when names were given), as text and TeX."""
    assert t.label is not None
    name = t.classes[t.label]
    if name == str(t.label):
        return f"i = {t.label}", f"$i = {t.label}$"
    return f"i = {t.label} ({name})", f"$i = {t.label}$ ({tex_escape(name)})"


def derivation(t: Trace, digits: int = DEFAULT_DIGITS) -> list[Step]:
    """The numbered steps of the computation of *t*, with the numbers substituted.

    With probabilities or log-probabilities given, the steps start from them: at
    temperature 1 they are q (no softmax); otherwise their logs are the logits of the
    softmax. The steps are then numbered from 1.
    """
    if t.given is None:
        return _from_logits(t, digits)
    steps = _from_given(t, digits) if t.from_given else [_implied_step(t, digits)]
    if not t.from_given:
        steps += _from_logits(t, digits)
    for number, step in enumerate(steps, 1):
        step.number = number
    return steps


_GIVEN_WHAT = {"probs": "probabilities", "logprobs": "log-probabilities"}


def _total_line(t: Trace, digits: int) -> tuple[str, str]:
    """The check of the given row's total, as ``xent batch`` checks it."""
    total = sig(t.given_total if t.given_total is not None else math.nan, digits)
    tol = f"{t.given_tolerance:g}"
    if t.scores == "probs":
        return (
            f"Each is in [0, 1] and they sum to {total}, within the tolerance {tol} of 1.",
            f"Each is in $[0, 1]$ and they sum to ${tex_number(total)}$, within the"
            f" tolerance ${tex_number(tol)}$ of 1.",
        )
    return (
        f"Each is <= 0 and their log-sum-exp is {total}, within the tolerance {tol} of 0.",
        f"Each is $\\le 0$ and their log-sum-exp is ${tex_number(total)}$, within the"
        f" tolerance ${tex_number(tol)}$ of 0.",
    )


def _implied_say(step: Step) -> None:
    step.say(
        "These are also the logits the distribution implies, up to an additive constant c:"
        " softmax(log q + c) = q for every c.",
        "These are also the logits the distribution implies, up to an additive constant $c$:"
        " $\\operatorname{softmax}(\\log q + c) = q$ for every $c$.",
    )


def _from_given(t: Trace, digits: int) -> list[Step]:
    """The steps when the given distribution is q: its check, its logs, the loss."""
    assert t.given is not None
    g = lambda x: sig(x, digits)  # noqa: E731
    written = [given(v, digits) for v in t.given]
    log_q = [fixed(v, digits) for v in t.log_probabilities]
    q = [fixed(v, digits) for v in t.probabilities]
    what = _GIVEN_WHAT[t.scores]
    first = Step(1, f"The given {what}")
    if t.scores == "probs":
        first.math(f"q = {vec(written)}", f"q = {vec(written, True)}")
    else:
        first.math(f"log q = {vec(written)}", f"\\log q = {vec(written, True)}")
    first.say(*_total_line(t, digits))
    first.say(
        "They are used as given: no softmax is computed.",
        "They are used as given: no softmax is computed.",
    )
    if t.scores == "probs":
        second = Step(2, "Their logs")
        second.math(f"log q_k = {vec(log_q)}", f"\\log q_k = {vec(log_q, True)}")
    else:
        second = Step(2, "The probabilities")
        second.math(f"q_k = e^(log q_k) = {vec(q)}", f"q_k = e^{{\\log q_k}} = {vec(q, True)}")
    _implied_say(second)
    steps = [first, second]
    if not t.has_target:
        steps.append(_prediction_step(t, digits))
        return steps
    steps.append(_target_step(t, digits))
    loss = Step(4, "The loss")
    if t.label is not None and not t.label_smoothing:
        i = t.label
        nll = g(-t.log_probabilities[i])
        if t.weights is not None:
            w = given(t.effective_weights[i], digits)
            loss.math(
                f"L = w_{i} * (-log q_{i}) = {w} * {nll} = {g(t.loss_nats)} nats",
                f"L = w_{{{i}}} \\cdot (-\\log q_{{{i}}}) = {w} \\cdot {tex_number(nll)}"
                f" = {tex_number(g(t.loss_nats))}\\ \\text{{nats}}",
            )
        else:
            loss.math(
                f"L = -log q_{i} = {g(t.loss_nats)} nats",
                f"L = -\\log q_{{{i}}} = {tex_number(g(t.loss_nats))}\\ \\text{{nats}}",
            )
        if t.probabilities[i] == 0:
            loss.say(
                "The true class has probability 0: -log 0 = inf, so the loss is infinite."
                " This is reported, not an error.",
                "The true class has probability 0: $-\\log 0 = \\infty$, so the loss is"
                " infinite. This is reported, not an error.",
            )
    else:
        _sum_lines(loss, t, digits, None, "")
    _loss_value_lines(loss, t, digits)
    steps.append(loss)
    if t.soft:
        steps.append(_divergence_step(t, digits, 5))
    gradient = _gradient_step(t, digits, 6)
    plain = t.weights is None
    gradient.say(
        "The derivatives are with respect to the logits log q + c that the distribution"
        " implies: the gradient with respect to the logits is "
        + ("still q - p." if plain else "the one of logits, as for --logits."),
        "The derivatives are with respect to the logits $\\log q + c$ that the distribution"
        " implies: the gradient with respect to the logits is "
        + ("still $q - p$." if plain else "the one of logits, as for logits given."),
    )
    steps.append(gradient)
    return steps


def _implied_step(t: Trace, digits: int) -> Step:
    """The first step when a softmax of the given scores' logs is computed (temperature)."""
    assert t.given is not None
    written = [given(v, digits) for v in t.given]
    y = [fixed(v, digits) for v in t.logits]
    step = Step(1, f"The logits the given {_GIVEN_WHAT[t.scores]} imply")
    if t.scores == "probs":
        step.math(
            f"y_k = log q_k = log {vec(written)} = {vec(y)}",
            f"y_k = \\log q_k = \\log {vec(written, True)} = {vec(y, True)}",
        )
    else:
        step.math(f"y_k = log q_k = {vec(written)}", f"y_k = \\log q_k = {vec(written, True)}")
    step.say(*_total_line(t, digits))
    _implied_say(step)
    return step


def _from_logits(t: Trace, digits: int) -> list[Step]:
    """The steps from logits: the softmax, then the loss and its gradient."""
    f = lambda x: fixed(x, digits)  # noqa: E731
    g = lambda x: sig(x, digits)  # noqa: E731
    y = [given(v, digits) for v in t.scaled]
    m = given(t.max, digits)
    steps: list[Step] = []

    if t.temperature != 1.0:
        step = Step(0, "Divide by the temperature")
        temp = given(t.temperature, digits)
        step.math(
            f"y_k <- y_k / T = {vec([given(v, digits) for v in t.logits])} / {temp} = {vec(y)}",
            f"y_k \\leftarrow y_k / T = "
            f"{vec([given(v, digits) for v in t.logits], True)} / {temp} = {vec(y, True)}",
        )
        step.say(
            "From here on y stands for the divided logits.",
            "From here on $y$ stands for the divided logits.",
        )
        steps.append(step)

    step = Step(1, "The largest logit")
    y_tex = _listing([tex_number(v) for v in y], dots=_TEX_DOTS)
    step.math(
        f"m = max_k y_k = max({_listing(y)}) = {m}",
        f"m = \\max_k y_k = \\max({y_tex}) = {tex_number(m)}",
    )
    step.say(
        f"(class {t.classes[t.argmax]}, the predicted class)",
        f"(class {tex_escape(t.classes[t.argmax])}, the predicted class)",
    )
    steps.append(step)

    step = Step(2, "Shift the logits by the max")
    diffs = [f"{v} - {m}" for v in y]
    diffs_tex = _listing([f"{tex_number(v)} - {tex_number(m)}" for v in y], dots=_TEX_DOTS)
    step.math(
        f"y_k - m = {vec(diffs)} = {vec([f(v) for v in t.shifted])}",
        f"y_k - m = \\left[{diffs_tex}\\right] = {vec([f(v) for v in t.shifted], True)}",
    )
    steps.append(step)

    step = Step(3, "Their exponentials")
    exps_text = [f"e^{f(v)}" for v in t.shifted]
    exps_tex = [f"e^{{{tex_number(f(v))}}}" for v in t.shifted]
    step.math(
        f"e^(y_k - m) = {vec(exps_text)} = {vec([f(v) for v in t.exp_shifted])}",
        f"e^{{y_k - m}} = \\left[{_listing(exps_tex, dots=_TEX_DOTS)}\\right]"
        f" = {vec([f(v) for v in t.exp_shifted], True)}",
    )
    step.say(
        "Every exponent is <= 0, so every term is in [0, 1], and the max's own term is 1.",
        "Every exponent is $\\le 0$, so every term is in $[0, 1]$, and the max's own term"
        " is $e^0 = 1$.",
    )
    steps.append(step)

    step = Step(4, "Their sum")
    s = g(t.sum_exp_shifted)
    terms = [f(v) for v in t.exp_shifted]
    step.math(
        f"s = sum_k e^(y_k - m) = {_listing(terms, ' + ')} = {s}",
        f"s = \\sum_k e^{{y_k - m}} = "
        f"{_listing([tex_number(v) for v in terms], ' + ', _TEX_DOTS)} = {s}",
    )
    _unshifted_lines(step, t, digits)
    steps.append(step)

    step = Step(5, "The probabilities (softmax)")
    quotients = [f"{f(v)} / {s}" for v in t.exp_shifted]
    quotients_tex = [f"\\frac{{{tex_number(f(v))}}}{{{s}}}" for v in t.exp_shifted]
    q = [f(v) for v in t.probabilities]
    step.math(
        f"q_k = e^(y_k - m) / s = {vec(quotients)} = {vec(q)}",
        f"q_k = \\frac{{e^{{y_k - m}}}}{{s}} = "
        f"\\left[{_listing(quotients_tex, dots=_TEX_DOTS)}\\right] = {vec(q, True)}",
    )
    step.say(
        "They are >= 0 and sum to 1; e^m cancels, so q is also e^(y_k) / sum_j e^(y_j).",
        "They are $\\ge 0$ and sum to 1; $e^m$ cancels, so $q_k$ is also"
        " $e^{y_k} / \\sum_j e^{y_j}$.",
    )
    steps.append(step)

    if not t.has_target:
        steps.append(_prediction_step(t, digits))
        return steps
    steps.append(_target_step(t, digits))
    steps.append(_stable_step(t, digits))
    number = 8
    if t.soft:
        steps.append(_divergence_step(t, digits, number))
        number += 1
    confident = _confident_step(t, digits, number)
    if confident is not None:
        steps.append(confident)
        number += 1
    steps.append(_gradient_step(t, digits, number))
    return steps


def _prediction_step(t: Trace, digits: int) -> Step:
    """The last step when there is no label or target: the prediction, and no loss."""
    step = Step(6, "The predicted class")
    c = t.argmax
    q = fixed(t.probabilities[c], digits)
    name = t.classes[c]
    step.math(
        f"argmax_k q_k = {c}" + ("" if name == str(c) else f" ({name})") + f", q_{c} = {q}",
        f"\\arg\\max_k q_k = {c}, \\quad q_{{{c}}} = {tex_number(q)}",
    )
    step.say(
        "There is no label, so there is no loss. " + NO_TARGET_HINT,
        "There is no label, so there is no loss. A label or a soft target adds the loss and"
        " its gradient.",
    )
    return step


def _unshifted_lines(step: Step, t: Trace, digits: int) -> None:
    s = sig(t.sum_exp_shifted, digits)
    m = given(t.max, digits)
    if t.sum_exp is not None:
        total = sig(t.sum_exp, digits)
        step.math(
            f"Check: s * e^m = {s} * e^{m} = {total} = sum_k e^(y_k), the unshifted sum",
            f"s \\cdot e^{{m}} = {s} \\cdot e^{{{tex_number(m)}}} = {tex_number(total)}"
            f" = \\sum_k e^{{y_k}}",
        )
        step.say(
            "The shift changes the sum by the factor e^-m only, and that cancels in q.",
            "The shift changes the sum by the factor $e^{-m}$ only, and it cancels in $q$.",
        )
        return
    try:
        math.exp(t.max)
        e_m_fits = True
    except OverflowError:
        e_m_fits = False
    if t.max > 0 and not e_m_fits:
        what = (
            f"e^m = e^{m} overflows float64 (the largest float64 is about 1.8e308 = e^709.78),"
            " so the unshifted sum of the e^(y_k) is inf, and the textbook"
            " q = e^y / sum e^y would be inf / inf = nan."
        )
        what_tex = (
            f"$e^m = e^{{{tex_number(m)}}}$ overflows float64 (the largest float64 is"
            " about $1.8 \\times 10^{308} = e^{709.78}$), so the unshifted sum of the"
            " $e^{y_k}$ is $\\infty$, and the textbook $q = e^y / \\sum e^y$ would be"
            " $\\infty / \\infty = \\mathrm{NaN}$."
        )
    elif t.max > 0:
        what = (
            f"s * e^m = {s} * e^{m} overflows float64 (above about 1.8e308): the unshifted"
            " sum of the e^(y_k) is inf, and the textbook q would be 0 or nan."
        )
        what_tex = (
            f"$s \\cdot e^m = {s} \\cdot e^{{{tex_number(m)}}}$ overflows float64"
            " (above about $1.8 \\times 10^{308}$): the unshifted sum of the $e^{y_k}$ is"
            " $\\infty$, and the textbook $q$ would be $0$ or $\\mathrm{NaN}$."
        )
    else:
        what = (
            f"e^m = e^{m} underflows float64 (below about 2.2e-308 = e^-708.4), so the"
            " unshifted sum of the e^(y_k) is 0 or loses its digits, and the textbook"
            " q = e^y / sum e^y would be 0 / 0 = nan."
        )
        what_tex = (
            f"$e^m = e^{{{tex_number(m)}}}$ underflows float64 (below about"
            " $2.2 \\times 10^{-308} = e^{-708.4}$), so the unshifted sum of the $e^{y_k}$"
            " is 0 or loses its digits, and the textbook $q = e^y / \\sum e^y$ would be"
            " $0 / 0 = \\mathrm{NaN}$."
        )
    step.say(what, what_tex)
    step.say(
        "That is why the logits are shifted by the max first: every term is then in [0, 1]"
        f" and 1 <= s <= K = {t.num_classes}.",
        "That is why the logits are shifted by the max first: every term is then in"
        f" $[0, 1]$ and $1 \\le s \\le K = {t.num_classes}$.",
    )


def _smoothing_target(t: Trace, digits: int) -> tuple[str, str]:
    eps = given(t.label_smoothing, digits)
    p = [fixed(v, digits) for v in t.targets]
    k_total = t.num_classes
    source = "onehot" if t.label is not None else "t"
    source_tex = "\\mathrm{onehot}" if t.label is not None else "t"
    return (
        f"p = (1 - eps) {source} + eps / K = (1 - {eps}) {source} + {eps} / {k_total} = {vec(p)}",
        f"p = (1 - \\varepsilon)\\,{source_tex} + \\varepsilon / K = (1 - {eps})\\,{source_tex}"
        f" + {eps} / {k_total} = {vec(p, True)}",
    )


def _target_step(t: Trace, digits: int) -> Step:
    weighted = t.weights is not None
    if t.label is not None and not t.label_smoothing:
        step = Step(6, "The one-hot target")
        i = t.label
        who, who_tex = describe_label(t)
        step.say(
            f"The true class is {who}: p_{i} = 1 and every other p_k = 0, so the sum keeps"
            " one term.",
            f"The true class is {who_tex}: $p_{{{i}}} = 1$ and every other $p_k = 0$, so"
            " the sum keeps one term.",
        )
        qi = fixed(t.probabilities[i], digits)
        if weighted:
            w = given(t.effective_weights[i], digits)
            step.math(
                f"L = -sum_k w_k p_k log q_k = w_{i} * (-log q_{i}) = {w} * (-log {qi})",
                f"L = -\\sum_k w_k p_k \\log q_k = w_{{{i}}} \\cdot (-\\log q_{{{i}}})"
                f" = {w} \\cdot (-\\log {tex_number(qi)})",
            )
            step.say(
                "The class weight w_i scales the row (PyTorch's weight); a batch mean"
                " divides the sum of such losses by the sum of the rows' w_i, not by N.",
                "The class weight $w_i$ scales the row (PyTorch's weight); a batch mean"
                " divides the sum of such losses by the sum of the rows' $w_i$, not by $N$.",
            )
        else:
            step.math(
                f"L = -sum_k p_k log q_k = -log q_{i} = -log {qi}",
                f"L = -\\sum_k p_k \\log q_k = -\\log q_{{{i}}} = -\\log {tex_number(qi)}",
            )
        return step
    wk, wk_tex = ("w_k ", "w_k ") if weighted else ("", "")
    if t.label is not None:
        step = Step(6, "The smoothed target")
        who, who_tex = describe_label(t)
        eps = given(t.label_smoothing, digits)
        step.say(
            f"The true class is {who}; label smoothing eps = {eps} mixes its one-hot"
            " target with the uniform one (the true class included):",
            f"The true class is {who_tex}; label smoothing $\\varepsilon = {eps}$ mixes its"
            " one-hot target with the uniform one (the true class included):",
        )
        step.math(*_smoothing_target(t, digits))
        i = t.label
        wi, wi_tex = (f"w_{i} ", f"w_{{{i}}} ") if weighted else ("", "")
        step.math(
            f"L = -sum_k {wk}p_k log q_k = (1 - eps) {wi}(-log q_{i})"
            f" + (eps / K) sum_k {wk}(-log q_k)",
            f"L = -\\sum_k {wk_tex}p_k \\log q_k = (1 - \\varepsilon)\\, {wi_tex}"
            f"(-\\log q_{{{i}}}) + \\frac{{\\varepsilon}}{{K}} \\sum_k {wk_tex}(-\\log q_k)",
        )
        if weighted:
            step.say(
                "With class weights this is PyTorch's smoothed loss; a batch mean divides"
                " by the sum of the rows' w_i.",
                "With class weights this is PyTorch's smoothed loss; a batch mean divides"
                " by the sum of the rows' $w_i$.",
            )
        return step
    step = Step(6, "The soft target")
    assert t.targets_given is not None
    step.say(
        "The target is a probability distribution, so no term of the sum drops out"
        " (a term with p_k = 0 is 0, even where q_k = 0):",
        "The target is a probability distribution, so no term of the sum drops out"
        " (a term with $p_k = 0$ is 0, even where $q_k = 0$):",
    )
    if t.label_smoothing:
        t_given = [given(v, digits) for v in t.targets_given]
        step.math(f"t = {vec(t_given)}", f"t = {vec(t_given, True)}")
        step.math(*_smoothing_target(t, digits))
    else:
        p = [given(v, digits) for v in t.targets]
        step.math(f"p = {vec(p)}", f"p = {vec(p, True)}")
    step.math(f"L = -sum_k {wk}p_k log q_k", f"L = -\\sum_k {wk_tex}p_k \\log q_k")
    if weighted:
        step.say(
            "With class weights and soft targets a batch mean divides by N, not by the"
            " weights (PyTorch's documented behaviour).",
            "With class weights and soft targets a batch mean divides by $N$, not by the"
            " weights (PyTorch's documented behaviour).",
        )
    return step


def _loss_value_lines(step: Step, t: Trace, digits: int) -> None:
    loss = sig(t.loss_nats, digits)
    if t.base != "e":
        ln_b = f"ln {t.base}"
        step.math(
            f"In {t.units}: L / {ln_b} = {loss} / {sig(t.log_base, digits)}"
            f" = {sig(t.loss, digits)} {t.units}",
            f"L / \\ln {t.base} = {tex_number(loss)} / {sig(t.log_base, digits)}"
            f" = {tex_number(sig(t.loss, digits))}\\ \\text{{{t.units}}}",
        )
    step.math(
        f"Perplexity: {t.base}^L = {sig(t.perplexity, digits)}",
        f"\\text{{perplexity: }} {t.base}^{{L}} = {tex_number(sig(t.perplexity, digits))}",
    )


def _stable_step(t: Trace, digits: int) -> Step:
    step = Step(7, "The stable form and its value")
    log_s = sig(t.log_sum_exp_shifted, digits)
    units = "nats"
    if t.label is not None and not t.label_smoothing:
        i = t.label
        yi, m = given(t.scaled[i], digits), given(t.max, digits)
        neg = sig(-t.shifted[i], digits)
        nll = sig(-t.log_probabilities[i], digits)
        core = f"-(y_{i} - m) + log s"
        core_tex = f"-(y_{{{i}}} - m) + \\log s"
        sub = f"-({yi} - {m}) + log {sig(t.sum_exp_shifted, digits)}"
        sub_tex = f"-({tex_number(yi)} - {tex_number(m)}) + \\log {sig(t.sum_exp_shifted, digits)}"
        if t.weights is not None:
            w = given(t.effective_weights[i], digits)
            step.math(
                f"L = w_{i} * ({core}) = {w} * ({sub}) = {w} * ({neg} + {log_s})"
                f" = {sig(t.loss_nats, digits)} {units}",
                f"L = w_{{{i}}} \\left({core_tex}\\right) = {w} \\left({sub_tex}\\right)"
                f" = {w} \\cdot ({tex_number(neg)} + {tex_number(log_s)})"
                f" = {tex_number(sig(t.loss_nats, digits))}\\ \\text{{{units}}}",
            )
        else:
            step.math(
                f"L = {core} = {sub} = {neg} + {log_s} = {nll} {units}",
                f"L = {core_tex} = {sub_tex} = {tex_number(neg)} + {tex_number(log_s)}"
                f" = {tex_number(nll)}\\ \\text{{{units}}}",
            )
        step.say(
            "log q_i = (y_i - m) - log s is never rounded through q_i itself.",
            "$\\log q_i = (y_i - m) - \\log s$ is never rounded through $q_i$ itself.",
        )
        if t.logits[i] == -math.inf:
            step.say(
                f"The true class is masked (its logit is -inf): q_{i} = 0, so the loss is"
                " infinite. This is reported, not an error.",
                f"The true class is masked (its logit is $-\\infty$): $q_{{{i}}} = 0$, so"
                " the loss is infinite. This is reported, not an error.",
            )
    else:
        _sum_lines(step, t, digits, "-(y_k - m) + log s", "-(y_k - m) + \\log s")
    _loss_value_lines(step, t, digits)
    note = _rounding_note(t)
    if note is not None:
        step.say(*note)
    return step


def _sum_lines(step: Step, t: Trace, digits: int, form: str | None, form_tex: str) -> None:
    """The loss as the sum of its terms a_k (-log q_k), with the terms substituted;
    *form* is how -log q_k was computed (None: it is given)."""
    units = "nats"
    nlq = [sig(-v, digits) for v in t.log_probabilities]
    if form is None:
        step.math(f"-log q_k = {vec(nlq)}", f"-\\log q_k = {vec(nlq, True)}")
    else:
        step.math(f"-log q_k = {form} = {vec(nlq)}", f"-\\log q_k = {form_tex} = {vec(nlq, True)}")
    terms = [(fixed(a, digits), v) for a, v in zip(t.coefficients, nlq, strict=True) if a > 0]
    text_terms = _listing([f"{a} * {v}" for a, v in terms], " + ")
    tex_terms = _listing(
        [f"{tex_number(a)} \\cdot {tex_number(v)}" for a, v in terms], " + ", "\\ldots"
    )
    a_text = "w_k p_k" if t.weights is not None else "p_k"
    step.math(
        f"L = sum_k {a_text} (-log q_k) = {text_terms} = {sig(t.loss_nats, digits)} {units}",
        f"L = \\sum_k {a_text} (-\\log q_k) = {tex_terms}"
        f" = {tex_number(sig(t.loss_nats, digits))}\\ \\text{{{units}}}",
    )
    # Which class makes the loss infinite: with smoothing or soft targets it need not
    # be the true one (any class with a share of the target and probability 0).
    pairs = enumerate(zip(t.coefficients, t.probabilities, strict=True))
    zero = [k for k, (a, q) in pairs if a > 0 and q == 0]
    if zero:
        smoothed = bool(t.label_smoothing)
        why = " (label smoothing gives every class eps / K)" if smoothed else ""
        why_tex = " (label smoothing gives every class $\\varepsilon / K$)" if smoothed else ""
        text = " = ".join(f"q_{k}" for k in zero)
        tex = " = ".join(f"q_{{{k}}}" for k in zero)
        step.say(
            f"{text} = 0 where the target is above 0{why}: -log 0 = inf, so the loss is"
            " infinite. This is reported, not an error.",
            f"${tex} = 0$ where the target is above 0{why_tex}: $-\\log 0 = \\infty$, so the"
            " loss is infinite. This is reported, not an error.",
        )


def _rounding_note(t: Trace) -> tuple[str, str] | None:
    """A hand calculation's slip: the seed note rounded q_1 to 0.642 and printed 0.443."""
    if t.label is None or t.label_smoothing or t.weights is not None or t.base != "e":
        return None
    q = t.probabilities[t.label]
    if not 0.001 <= q < 1.0:  # also false for a nan
        return None
    cut = math.floor(q * 1000) / 1000
    if not 0.001 <= cut < 1.0:
        return None
    rough = -math.log(cut)
    if f"{rough:.3f}" == f"{t.loss:.3f}":
        return None
    i = t.label
    return (
        f"Note: cutting q_{i} to {cut:.3f} before the log, as a hand calculation might, gives"
        f" -log {cut:.3f} = {rough:.3f} instead of {t.loss:.3f}: keep every digit until the"
        " end.",
        f"Note: cutting $q_{{{i}}}$ to ${cut:.3f}$ before the log, as a hand calculation"
        f" might, gives $-\\log {cut:.3f} = {rough:.3f}$ instead of ${t.loss:.3f}$: keep every"
        " digit until the end.",
    )


def _divergence_step(t: Trace, digits: int, number: int) -> Step:
    """L = H(p) + KL(p || q): the target's own entropy and what the model adds to it."""
    step = Step(number, "Entropy and KL divergence")
    g = lambda x: sig(x, digits)  # noqa: E731
    units = t.units
    logs = "log" if t.base == "e" else f"log_{t.base}"
    log_tex = "\\log" if t.base == "e" else f"\\log_{{{t.base}}}"
    step.math(
        f"H(p) = -sum_k p_k {logs} p_k = {g(t.entropy)} {units}",
        f"H(p) = -\\sum_k p_k {log_tex} p_k = {tex_number(g(t.entropy))}\\ \\text{{{units}}}",
    )
    step.math(
        f"KL(p || q) = sum_k p_k ({logs} p_k - {logs} q_k) = {g(t.kl_divergence)} {units}",
        f"\\mathrm{{KL}}(p \\,\\|\\, q) = \\sum_k p_k \\left({log_tex} p_k - {log_tex} q_k\\right)"
        f" = {tex_number(g(t.kl_divergence))}\\ \\text{{{units}}}",
    )
    if t.weights is None:
        total = g(t.entropy + t.kl_divergence)
        step.math(
            f"L = H(p) + KL(p || q) = {g(t.entropy)} + {g(t.kl_divergence)} = {total} {units}",
            f"L = H(p) + \\mathrm{{KL}}(p \\,\\|\\, q) = {tex_number(g(t.entropy))}"
            f" + {tex_number(g(t.kl_divergence))} = {tex_number(total)}\\ \\text{{{units}}}",
        )
        step.say(
            "H(p) is the target's own uncertainty, which no model can remove; KL(p || q) >= 0"
            " is what the model adds, 0 only when q = p (the distillation view).",
            "$H(p)$ is the target's own uncertainty, which no model can remove;"
            " $\\mathrm{KL}(p \\,\\|\\, q) \\ge 0$ is what the model adds, 0 only when"
            " $q = p$ (the distillation view).",
        )
    else:
        step.say(
            "With class weights the loss is -sum w_k p_k log q_k, so L = H + KL holds only"
            " without them; H and KL are shown unweighted.",
            "With class weights the loss is $-\\sum_k w_k p_k \\log q_k$, so $L = H + \\mathrm{KL}$"
            " holds only without them; $H$ and KL are shown unweighted.",
        )
    return step


def _confident_step(t: Trace, digits: int, number: int) -> Step | None:
    if t.label is None or t.one_minus_q is None or not t.probabilities[t.label] > 0.99:
        return None
    i = t.label
    step = Step(number, "A confident prediction")
    rest = sig(t.one_minus_q, digits)
    step.math(
        f"1 - q_{i} = sum_(k != {i}) q_k = {rest}",
        f"1 - q_{{{i}}} = \\sum_{{k \\ne {i}}} q_k = {tex_number(rest)}",
    )
    if t.probabilities[i] == 1.0:
        step.say(
            f"q_{i} itself rounds to 1 in float64, so -log q_{i} computed from q would be 0"
            " (what the textbook formula and most frameworks return). The stable form"
            " computes log s as log1p of the sum of the other terms, and keeps the loss:"
            f" L = {sig(t.loss_nats, digits)} nats, about 1 - q_{i}.",
            f"$q_{{{i}}}$ itself rounds to 1 in float64, so $-\\log q_{{{i}}}$ computed from"
            " $q$ would be 0 (what the textbook formula and most frameworks return). The"
            " stable form computes $\\log s$ as $\\operatorname{log1p}$ of the sum of the"
            " other terms, and keeps the loss:"
            f" $L = {tex_number(sig(t.loss_nats, digits))}$ nats, about $1 - q_{{{i}}}$.",
        )
    else:
        step.say(
            f"Near q_{i} = 1, 1 - q_{i} computed from a rounded q_{i} loses digits; it is"
            f" computed from log q_{i} instead (1 - q = -expm1(log q)), and L = -log q_{i}"
            f" is close to it.",
            f"Near $q_{{{i}}} = 1$, $1 - q_{{{i}}}$ computed from a rounded $q_{{{i}}}$"
            f" loses digits; it is computed from $\\log q_{{{i}}}$ instead"
            f" ($1 - q = -\\operatorname{{expm1}}(\\log q)$), and $L = -\\log q_{{{i}}}$ is"
            " close to it.",
        )
    return step


def _gradient_step(t: Trace, digits: int, number: int) -> Step:
    step = Step(number, "The gradient with respect to the logits")
    grad = [fixed(v, digits) for v in t.gradient]
    if t.weights is None:
        core, core_tex = "q_k - p_k", "q_k - p_k"
    elif t.label is not None and not t.label_smoothing:
        core, core_tex = f"w_{t.label} (q_k - p_k)", f"w_{{{t.label}}} (q_k - p_k)"
    else:
        core, core_tex = "q_k sum_c w_c p_c - w_k p_k", "q_k \\sum_c w_c p_c - w_k p_k"
    divisors = []
    divisors_tex = []
    if t.temperature != 1.0:
        divisors.append("T")
        divisors_tex.append("T")
    if t.base != "e":
        divisors.append(f"ln {t.base}")
        divisors_tex.append(f"\\ln {t.base}")
    if divisors:
        core = (
            f"({core}) / ({' '.join(divisors)})"
            if len(divisors) > 1
            else f"({core}) / {divisors[0]}"
        )
        core_tex = f"\\frac{{{core_tex}}}{{{' '.join(divisors_tex)}}}"
    step.math(
        f"dL/dy_k = {core} = {vec(grad)}",
        f"\\frac{{\\partial L}}{{\\partial y_k}} = {core_tex} = {vec(grad, True)}",
    )
    return step


# --------------------------------------------------------------------------- naive
def naive_notes(t: Trace, digits: int = DEFAULT_DIGITS) -> list[str]:
    """Sentences saying where the textbook computation breaks, for *t*."""
    return [line.text for line in naive_lines(t, digits)]


def naive_lines(t: Trace, digits: int = DEFAULT_DIGITS) -> list[Line]:
    """:func:`naive_notes` as sentences in plain text and TeX."""
    naive = t.naive
    notes: list[Line] = []
    if naive.overflow:
        worst = given(max(t.scaled), digits)
        notes.append(
            Line(
                f"e^{worst} overflows float64 to inf (the largest float64 is about 1.8e308 ="
                " e^709.78), so sum e^y = inf and q = e^y / sum e^y is inf / inf = nan (and 0 for"
                " the finite terms).",
                f"$e^{{{tex_number(worst)}}}$ overflows float64 to $\\infty$ (the largest float64 is"
                " about $1.8 \\times 10^{308} = e^{709.78}$), so $\\sum e^y = \\infty$ and"
                " $q = e^y / \\sum e^y$ is $\\infty / \\infty = \\mathrm{NaN}$ (and 0 for the"
                " finite terms).",
                False,
            )
        )
    elif naive.underflow:
        notes.append(
            Line(
                "Every e^y underflows float64 to 0 (below about e^-745), so sum e^y = 0 and"
                " q = 0 / 0 = nan.",
                "Every $e^y$ underflows float64 to 0 (below about $e^{-745}$), so $\\sum e^y = 0$"
                " and $q = 0 / 0 = \\mathrm{NaN}$.",
                False,
            )
        )
    elif math.isinf(naive.sum_exp):
        notes.append(
            Line(
                "The sum of the e^y overflows float64 to inf, so every q becomes 0 or nan.",
                "The sum of the $e^y$ overflows float64 to $\\infty$, so every $q$ becomes 0 or"
                " $\\mathrm{NaN}$.",
                False,
            )
        )
    if not naive.overflow and not naive.nan and t.label is not None:
        q_i = naive.probabilities[t.label]
        if q_i == 1.0 and t.loss > 0:
            i = t.label
            loss = sig(t.loss, digits)
            notes.append(
                Line(
                    f"q_{i} = e^y_{i} / sum e^y rounds to exactly 1, so the textbook -log q_{i} = 0:"
                    f" the loss ({loss} {t.units}) is lost. The stable form computes log s as"
                    " log1p(...) and keeps it.",
                    f"$q_{{{i}}} = e^{{y_{{{i}}}}} / \\sum e^y$ rounds to exactly 1, so the textbook"
                    f" $-\\log q_{{{i}}} = 0$: the loss (${tex_number(loss)}$ {t.units}) is lost. The"
                    " stable form computes $\\log s$ as $\\operatorname{log1p}(\\ldots)$ and keeps"
                    " it.",
                    False,
                )
            )
    if math.isfinite(naive.loss) and math.isfinite(t.loss) and t.loss > 0 and naive.loss > 0:
        error = abs(naive.loss - t.loss) / t.loss
        if error <= 1e-12:
            text = "Here both agree: the shift matters for large logits and confident predictions."
            notes.append(Line(text, text, False))
        else:
            rel = f"{error:.1e}"
            notes.append(
                Line(
                    f"The textbook loss is off by a relative {rel}.",
                    f"The textbook loss is off by a relative ${tex_number(rel)}$.",
                    False,
                )
            )
    return notes
