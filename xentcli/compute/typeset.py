"""Markdown and LaTeX of one sample: the per-class table and the derivation, typeset.

Both read the same data as the table (:func:`xentcli.compute.render.per_class`) and as
``--explain`` (the steps of :mod:`xentcli.compute.derivation`), so all say the same.
"""

from __future__ import annotations

from xentcli.compute.derivation import (
    derivation,
    describe_label,
    md_escape,
    naive_lines,
    tex_escape,
    tex_number,
    vec,
)
from xentcli.compute.render import per_class
from xentcli.compute.trace import Trace
from xentcli.text import DEFAULT_DIGITS, fixed, given, sig


def _heading(t: Trace) -> str:
    if t.from_given:
        return f"Cross-entropy of given {'probabilities' if t.scores == 'probs' else 'log-probabilities'}"
    return "Softmax and cross-entropy"


_TEX_HEADERS = {
    "k": "$k$",
    "class": "class",
    "y": "$y_k$",
    "y/T": "$y_k / T$",
    "y - max": "$y_k - m$",
    "e^(y - max)": "$e^{y_k - m}$",
    "q": "$q_k$",
    "log q": "$\\log q_k$",
    "given q": "given $q_k$",
    "given log q": "given $\\log q_k$",
    "p": "$p_k$",
    "w": "$w_k$",
    "-p log q": "$-p_k \\log q_k$",
    "-w p log q": "$-w_k p_k \\log q_k$",
    "dL/dy": "$\\partial L / \\partial y_k$",
}


def _intro_tex(t: Trace, digits: int) -> str:
    if t.given is not None:
        values = vec([given(v, digits) for v in t.given], True)
        what = "Probabilities $q" if t.scores == "probs" else "Log-probabilities $\\log q"
        text = f"{what} = {values}$ (given), $K = {t.num_classes}$"
    else:
        y = vec([given(v, digits) for v in t.logits], True)
        text = f"Logits $y = {y}$, $K = {t.num_classes}$"
    if t.label is not None:
        _, who = describe_label(t)
        text += f", true class {who}"
    elif t.has_target:
        text += ", a soft target"
    else:
        text += ", no label"
    if t.temperature != 1.0:
        text += f", temperature $T = {given(t.temperature, digits)}$"
    if t.label_smoothing:
        text += f", label smoothing $\\varepsilon = {given(t.label_smoothing, digits)}$"
    if t.weights is not None:
        text += f", class weights $w = {vec([given(v, digits) for v in t.weights], True)}$"
    return text + "."


def _summary_tex(t: Trace, digits: int) -> str:
    if not t.has_target:
        if t.from_given:
            return "No loss without a label."
        return (
            f"Log-sum-exp $m + \\log s = {tex_number(sig(t.log_sum_exp, digits))}$;"
            " no loss without a label."
        )
    loss = tex_number(sig(t.loss, digits))
    text = (
        f"Loss $L = {loss}$ {t.units}; perplexity"
        f" ${t.base}^{{L}} = {tex_number(sig(t.perplexity, digits))}$"
    )
    if t.from_given:
        return text + "."
    return text + f"; log-sum-exp $m + \\log s = {tex_number(sig(t.log_sum_exp, digits))}$."


def _naive_tex(t: Trace, digits: int) -> list[str]:
    loss = tex_number(sig(t.naive.loss, digits))
    gives = (
        f"Without the shift, $q = e^y / \\sum_k e^{{y_k}}$ in float64 gives"
        f" $\\sum_k e^{{y_k}} = {tex_number(sig(t.naive.sum_exp, digits))}$"
        f"{',' if t.has_target else ' and'}"
        f" $q = {vec([fixed(v, digits) for v in t.naive.probabilities], True)}$"
    )
    if t.has_target:
        gives += f" and $L = {loss}$ (stable: ${tex_number(sig(t.loss, digits))}$)"
    lines = [gives + "."]
    lines += [line.tex for line in naive_lines(t, digits)]
    return lines


def _extras(t: Trace, frameworks: bool, dtype: str | None, kind: str) -> list[str]:
    """The ``--frameworks`` and ``--dtype`` sections, as Markdown or LaTeX lines."""
    out: list[str] = []
    if frameworks:
        from xentcli.compute import frameworks as fw

        values = fw.framework_values(t)
        out += fw.markdown_lines(values) if kind == "markdown" else fw.latex_lines(values)
    if dtype is not None:
        from xentcli.compute import lowprecision as lp

        r = lp.low_precision(t, dtype)
        out += lp.markdown_lines(r) if kind == "markdown" else lp.latex_lines(r)
    return out


def markdown(
    t: Trace,
    *,
    digits: int = DEFAULT_DIGITS,
    naive: bool = False,
    frameworks: bool = False,
    dtype: str | None = None,
) -> str:
    """The table and the derivation as Markdown, with TeX math between ``$`` signs.

    With *frameworks* and *dtype* (a format name), the sections of ``--frameworks``
    and ``--dtype`` follow, as tables.
    """
    headers, rows = per_class(t, digits)
    out = [f"## {_heading(t)}, step by step", "", _intro_tex(t, digits), ""]
    out.append("| " + " | ".join(_TEX_HEADERS[h] for h in headers) + " |")
    out.append("|" + "|".join("---" if h == "class" else "---:" for h in headers) + "|")
    for k, row in enumerate(rows):
        cells = [md_escape(c) for c in row]
        if k == t.label:
            cells = [f"**{c}**" for c in cells]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    for step in derivation(t, digits):
        out += [f"**{step.number}. {step.title}.**", ""]
        for step_line in step.lines:
            out += [f"$$ {step_line.tex} $$" if step_line.math else step_line.tex, ""]
    out += [_summary_tex(t, digits), ""]
    if naive:
        out += ["**The textbook formula, without the shift.**", ""]
        for line in _naive_tex(t, digits):
            out += [line, ""]
    out += _extras(t, frameworks, dtype, "markdown")
    return "\n".join(out)


def latex(
    t: Trace,
    *,
    digits: int = DEFAULT_DIGITS,
    naive: bool = False,
    frameworks: bool = False,
    dtype: str | None = None,
) -> str:
    """A complete LaTeX document (amsmath only); its body pastes into notes.

    With *frameworks* and *dtype*, the sections of ``--frameworks`` and ``--dtype``
    follow, as tabulars.
    """
    headers, rows = per_class(t, digits)
    named_column = "class" in headers
    spec = "".join("l" if h == "class" else "r" for h in headers)
    out = [
        "\\documentclass{article}",
        "\\usepackage{amsmath}",
        "\\begin{document}",
        "% Written by xent compute. The body below needs only \\usepackage{amsmath}.",
        f"\\section*{{{_heading(t)}, step by step}}",
        "",
        _intro_tex(t, digits),
        "",
        "\\begin{center}",
        f"\\begin{{tabular}}{{{spec}}}",
        " & ".join(_TEX_HEADERS[h] for h in headers) + " \\\\",
        "\\hline",
    ]
    for k, row in enumerate(rows):
        cells = []
        for column, cell in enumerate(row):
            if named_column and column == 1:
                cells.append(
                    f"\\textbf{{{tex_escape(cell)}}}" if k == t.label else tex_escape(cell)
                )
            else:
                number = tex_number(cell)
                cells.append(f"$\\mathbf{{{number}}}$" if k == t.label else f"${number}$")
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\end{tabular}", "\\end{center}", "", "\\begin{enumerate}"]
    for step in derivation(t, digits):
        out.append(f"\\item[{step.number}.] \\textbf{{{tex_escape(step.title)}.}}")
        for step_line in step.lines:
            out.append(f"\\[ {step_line.tex} \\]" if step_line.math else step_line.tex)
    out += ["\\end{enumerate}", "", _summary_tex(t, digits), ""]
    if naive:
        out += ["\\subsection*{The textbook formula, without the shift}", ""]
        for line in _naive_tex(t, digits):
            out += [line, ""]
    out += _extras(t, frameworks, dtype, "latex")
    out += ["\\end{document}", ""]
    return "\n".join(out)
