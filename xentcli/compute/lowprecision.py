"""``xent compute --dtype``: the sample's loss computed in float32, float16 or bfloat16.

Builds :class:`xentcli.core.LowPrecision` from a trace (the trace's float64 values are
the exact ones each step is measured against) and lays it out as text lines and JSON.
"""

from __future__ import annotations

import math

from xentcli.compute.trace import Trace
from xentcli.core import LowPrecision, low_precision_loss
from xentcli.core import LowPrecisionStep as Step

MARKS = {
    "overflow": "overflows to inf",
    "underflow": "underflows to 0",
    "cancellation": "s rounds to 1: the tail cancels, log s = 0",
    "grid": "on a coarse grid",
    "lost": "the loss is lost: 0",
    "nan": "nan",
    "rounded": "",
}


def low_precision(t: Trace, name: str) -> LowPrecision:
    """The loss of *t*'s sample (with a label) in the format *name*."""
    assert t.label is not None
    return low_precision_loss(
        t.scaled,
        t.label,
        name,
        exact_shifted=t.shifted,
        exact_exp=t.exp_shifted,
        exact_sum=t.sum_exp_shifted,
        exact_log_sum=t.log_sum_exp_shifted,
        exact_loss=t.loss_nats,
        exact_probabilities=t.probabilities,
    )


def _number(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.8g}"


def _ulps(x: float) -> str:
    if math.isinf(x) or math.isnan(x):
        return "-"
    if x < 0.01:  # float64 noise against the format's unit
        return "0"
    return f"{x:.2f}" if x < 100 else f"{x:.2e}"


#: a row of the steps' table: the step, its value, the exact value, the error, the marks
Row = tuple[str, float | None, float | None, float | None, str]
NAIVE = "naive: q = e^y / sum e^y"


def rows(r: LowPrecision) -> list[Row]:
    """The steps (stable, then the naive heading and steps), one row per value."""
    out: list[Row] = []

    def add(steps: tuple[Step, ...]) -> None:
        for step in steps:
            ulps = step.ulps(r.name)
            for k, (v, e, u) in enumerate(zip(step.value, step.exact, ulps, strict=True)):
                label = step.name if len(step.value) == 1 else f"{step.name} [{k}]"
                marks = ", ".join(MARKS[m] for m in step.marks if MARKS[m]) if k == 0 else ""
                out.append((label, v, e, u, marks))

    add(r.steps)
    out.append((NAIVE, None, None, None, ""))
    add(r.naive_steps)
    return out


def title(r: LowPrecision) -> str:
    return f"In {r.name} (each step rounded to {r.name}; the sum accumulated in float32)"


def closing(r: LowPrecision) -> list[str]:
    """The two closing sentences: the losses, and the grid near the exact loss."""
    return [
        f"loss in {r.name}: {_number(r.loss)} stable, {_number(r.naive_loss)} naive;"
        f" exact {_number(r.exact_loss)} nats;",
        f"near the exact loss {r.name} moves in steps of {r.loss_spacing:.3g}",
    ]


def _cells(row: Row) -> tuple[str, str, str, str, str]:
    label, v, e, u, marks = row
    if v is None or e is None or u is None:
        return (label, "", "", "", marks)
    return (label, _number(v), _number(e), _ulps(u), marks)


def lines(r: LowPrecision) -> list[str]:
    """Each step: the format's value, the exact value, the error in the format's ulps."""
    out = [title(r), ""]
    table = [("step", "value", "exact", "error (ulp)", ""), *(_cells(row) for row in rows(r))]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        out.append(
            f"  {row[0].ljust(widths[0])}  {row[1].rjust(widths[1])}  {row[2].rjust(widths[2])}"
            f"  {row[3].rjust(widths[3])}  {row[4]}".rstrip()
        )
    return [*out, "", *("  " + line for line in closing(r))]


def markdown_lines(r: LowPrecision) -> list[str]:
    """A section of Markdown: the steps' table and the closing sentences."""
    from xentcli.compute.derivation import md_escape

    out = [
        f"## {title(r)}",
        "",
        "| step | value | exact | error (ulp) | |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows(r):
        label, value, exact, ulps, marks = _cells(row)
        label = f"*{md_escape(label)}*" if row[1] is None else f"`{label}`"
        out.append(f"| {label} | {value} | {exact} | {ulps} | {md_escape(marks)} |")
    return [*out, "", *(md_escape(line) for line in closing(r)), ""]


def latex_lines(r: LowPrecision) -> list[str]:
    """A section of LaTeX (amsmath only): the steps in a tabular, then the closing."""
    from xentcli.compute.derivation import tex_escape, tex_number

    out = [
        f"\\subsection*{{{tex_escape(title(r))}}}",
        "",
        "\\begin{center}",
        "\\begin{tabular}{lrrrl}",
        "step & value & exact & error (ulp) & \\\\",
        "\\hline",
    ]
    for row in rows(r):
        label, value, exact, ulps, marks = _cells(row)
        if row[1] is None:
            out.append(f"\\multicolumn{{5}}{{l}}{{\\emph{{{tex_escape(label)}}}}} \\\\")
            continue
        numbers = " & ".join(
            f"${tex_number(c)}$" if c != "-" else "--" for c in (value, exact, ulps)
        )
        out.append(f"\\texttt{{{tex_escape(label)}}} & {numbers} & {tex_escape(marks)} \\\\")
    out += ["\\end{tabular}", "\\end{center}", ""]
    return [*out, " ".join(tex_escape(line) for line in closing(r)), ""]


CSV_COLUMNS = ("formula", "step", "value", "exact", "ulps", "marks")


def to_csv(r: LowPrecision) -> str:
    """One line per value of each step (``formula`` stable or naive), full precision:
    the value as the format holds it, the exact value, the error in the format's ulps."""
    import csv
    import io

    from xentcli.text import nonfinite_text

    def number(x: float) -> str:
        return nonfinite_text(x) or repr(float(x))

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    formula = "stable"
    for label, v, e, u, marks in rows(r):
        if v is None or e is None or u is None:
            formula = "naive"
            continue
        writer.writerow([formula, label, number(v), number(e), number(u), marks])
    return out.getvalue()


def to_json(r: LowPrecision) -> dict[str, object]:
    def steps(items: tuple[Step, ...]) -> list[dict[str, object]]:
        return [
            {
                "name": s.name,
                "value": list(s.value),
                "exact": list(s.exact),
                "ulps": list(s.ulps(r.name)),
                "marks": list(s.marks),
            }
            for s in items
        ]

    return {
        "name": r.name,
        "loss": r.loss,
        "naive_loss": r.naive_loss,
        "exact_loss": r.exact_loss,
        "loss_spacing": r.loss_spacing,
        "steps": steps(r.steps),
        "naive_steps": steps(r.naive_steps),
    }
