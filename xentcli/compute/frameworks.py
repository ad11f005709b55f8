"""``xent compute --frameworks``: the sample's loss as each library would return it.

The values come from :func:`xentcli.core.framework_rows` (emulations; no library is
imported). This module turns them into :class:`FrameworkValue` records for one sample
and lays them out as text lines and JSON. Values are in nats, as the libraries return
them, whatever ``--base`` says; a float32 value is shown to 6 significant digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentcli.compute.trace import Trace
from xentcli.core import FrameworkRows, framework_rows


@dataclass(frozen=True)
class FrameworkValue:
    """One library's value for the sample, beside xent's exact value of its convention."""

    name: str
    function: str
    value: float
    exact: float
    note: str
    dtype: str

    def value_text(self) -> str:
        return dtype_repr(self.value, self.dtype)


def dtype_repr(value: float, dtype: str) -> str:
    """*value* as read in *dtype*: float64 in full, float32 to 6 significant digits.

    A float32 result's last bits depend on the CPU's exp and log (a few float32 ulp, 1e-7
    relative), so they are not shown; JSON has the value in full.

    >>> dtype_repr(0.44211915135383606, "float32"), dtype_repr(0.1, "float64")
    ('0.442119', '0.1')
    """
    if dtype == "float32":
        return f"{float(np.float32(value)):.6g}"
    return repr(float(value))


def from_rows(rows: list[FrameworkRows]) -> list[FrameworkValue]:
    """Each convention's mean over the rows it was given (one row: its value)."""
    return [
        FrameworkValue(r.name, r.function, r.mean(), r.exact_mean(), r.note, r.dtype) for r in rows
    ]


def framework_values(t: Trace) -> list[FrameworkValue]:
    """The values each library returns for the sample of *t*, with its options."""
    rows = framework_rows(
        [t.logits],
        None if t.label is None else [t.label],
        targets=None if t.targets_given is None else [t.targets_given],
        weights=t.weights,
        label_smoothing=t.label_smoothing,
        temperature=t.temperature,
    )
    return from_rows(rows)


def lines(values: list[FrameworkValue], width: int, title: str) -> list[str]:
    """The table: name, value, exact value; under each row its function and the reason."""
    import textwrap

    header = ("convention", "value", "exact")
    cells = [(v.name, v.value_text(), repr(v.exact)) for v in values]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(3)]

    def row(items: tuple[str, str, str]) -> str:
        return (
            f"  {items[0].ljust(widths[0])}   {items[1].rjust(widths[1])}"
            f"   {items[2].rjust(widths[2])}"
        )

    out = textwrap.wrap(title, max(width, 30), break_on_hyphens=False)
    out += ["", row(header), "  " + "-" * (sum(widths) + 6)]
    for value, cell in zip(values, cells, strict=True):
        out.append(row(cell))
        out += textwrap.wrap(
            f"{value.function}: {value.note}",
            max(width - 6, 30),
            initial_indent="      ",
            subsequent_indent="      ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return out


def to_json(values: list[FrameworkValue]) -> list[dict[str, object]]:
    return [
        {
            "name": v.name,
            "function": v.function,
            "value": v.value,
            "exact": v.exact,
            "note": v.note,
            "dtype": v.dtype,
        }
        for v in values
    ]


TITLE = "What each library returns for this sample"
INTRO = (
    "Values in nats, as the libraries return them (emulated: no library is imported);"
    " exact: xent's float64 value of the same convention."
)


def markdown_lines(values: list[FrameworkValue]) -> list[str]:
    """A section of Markdown: a table of convention, function, value, exact value, note."""
    from xentcli.compute.derivation import md_escape

    out = [f"## {TITLE}", "", INTRO, ""]
    out.append("| convention | function | value | exact | why it differs |")
    out.append("|---|---|---:|---:|---|")
    for v in values:
        function = v.function.replace("|", "\\|")  # a code span: only the pipe
        out.append(
            f"| {md_escape(v.name)} | `{function}` | {v.value_text()} | {v.exact!r}"
            f" | {md_escape(v.note)} |"
        )
    return [*out, ""]


def latex_lines(values: list[FrameworkValue]) -> list[str]:
    """A section of LaTeX (amsmath only): the values in a tabular, then each function
    and why it differs in a description list (long notes do not fit a table cell)."""
    from xentcli.compute.derivation import tex_escape, tex_number

    out = [
        f"\\subsection*{{{TITLE}}}",
        "",
        tex_escape(INTRO),
        "",
        "\\begin{center}",
        "\\begin{tabular}{lrr}",
        "convention & value & exact \\\\",
        "\\hline",
    ]
    for v in values:
        out.append(
            f"{tex_escape(v.name)} & ${tex_number(v.value_text())}$"
            f" & ${tex_number(repr(v.exact))}$ \\\\"
        )
    out += ["\\end{tabular}", "\\end{center}", "", "\\begin{description}"]
    for v in values:
        out.append(
            f"\\item[{tex_escape(v.name)}] \\texttt{{{tex_escape(v.function)}}}:"
            f" {tex_escape(v.note)}"
        )
    return [*out, "\\end{description}", ""]


CSV_COLUMNS = ("name", "function", "value", "exact", "dtype", "note")


def to_csv(values: list[FrameworkValue]) -> str:
    """One line per convention, full precision (a float32 value as float64 prints it)."""
    import csv
    import io

    from xentcli.text import nonfinite_text

    def number(x: float) -> str:
        return nonfinite_text(x) or repr(float(x))

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for v in values:
        writer.writerow([v.name, v.function, number(v.value), number(v.exact), v.dtype, v.note])
    return out.getvalue()
