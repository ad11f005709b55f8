"""Rendering of a :class:`~xentcli.compute.trace.Trace`: table, JSON and CSV.

Tables and derivations round for reading, with the number formats of :mod:`xentcli.text`
(:func:`~xentcli.text.fixed`, :func:`~xentcli.text.sig`, :func:`~xentcli.text.given`).
JSON and CSV carry full precision (the shortest representation that round-trips). Tables
are plain text (ASCII rules, no colour) when the console is not a terminal.

The table is what ``xent compute`` prints by default, so this module holds only what it
needs; the steps of the derivation (:mod:`xentcli.compute.derivation`) are imported when
asked for (as are :mod:`json` and :mod:`csv`). Markdown and LaTeX are
:mod:`xentcli.compute.typeset`'s.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from rich import box
from rich.cells import cell_len
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from xentcli.text import DEFAULT_DIGITS, fixed, fixed_column, given, nonfinite_text, sig

if TYPE_CHECKING:
    from rich.console import Console

    from xentcli.compute.trace import Trace

_BAR_WIDTH = 40

# Like rich's SIMPLE box, in ASCII: what goes to a file or a pipe stays plain text.
PLAIN_BOX = box.Box(
    "    \n    \n -- \n    \n    \n -- \n    \n    \n",
    ascii=True,
)


# --------------------------------------------------------------------------- table
def per_class(t: Trace, digits: int) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the per-class table (formatted for reading)."""
    named = any(name != str(k) for k, name in enumerate(t.classes))
    headers = ["k"]
    if named:
        headers.append("class")
    if t.from_given:  # the given distribution is q: no softmax columns
        headers += ["q", "log q"] if t.scores == "probs" else ["log q", "q"]
    else:
        if t.given is not None:
            headers.append(GIVEN_HEADER[t.scores])
        headers.append("y")
        if t.temperature != 1.0:
            headers.append("y/T")
        headers += ["y - max", "e^(y - max)", "q"]
    if t.has_target:
        headers.append("p")
        if t.weights is not None:
            headers.append("w")
        headers += ["-w p log q" if t.weights is not None else "-p log q", "dL/dy"]
    # One format per computed column, chosen from all its values (fixed_column).
    shifted = fixed_column(t.shifted, digits)
    exps = fixed_column(t.exp_shifted, digits)
    q = fixed_column(t.probabilities, digits)
    p = (
        fixed_column(t.targets, digits)
        if t.label_smoothing
        else [given(v, digits) for v in t.targets]
    )
    terms = fixed_column(t.contributions, digits)
    gradient = fixed_column(t.gradient, digits)
    log_q = fixed_column(t.log_probabilities, digits)
    implied = fixed_column(t.logits, digits)
    rows = []
    for k in range(t.num_classes):
        row = [str(k)]
        if named:
            row.append(t.classes[k])
        if t.from_given:
            written = given(t.given[k], digits) if t.given is not None else ""
            row += [written, log_q[k]] if t.scores == "probs" else [written, q[k]]
        else:
            if t.given is not None:
                row += [given(t.given[k], digits), implied[k]]
            else:
                row.append(given(t.logits[k], digits))
            if t.temperature != 1.0:
                row.append(given(t.scaled[k], digits))
            row += [shifted[k], exps[k], q[k]]
        if t.has_target:
            row.append(p[k])
            if t.weights is not None:
                row.append(given(t.weights[k], digits))
            row += [terms[k], gradient[k]]
        rows.append(row)
    return headers, rows


#: the per-class column of the given scores (when a softmax of their logs is computed)
GIVEN_HEADER = {"probs": "given q", "logprobs": "given log q"}


def given_note(t: Trace) -> str:
    """One sentence under the title when probabilities or log-probabilities were given."""
    what = "probabilities" if t.scores == "probs" else "log-probabilities"
    if t.from_given and not t.has_target:
        return (
            f"Given {what}: q is the given distribution; the logits it implies are log q (up"
            " to an additive constant)."
        )
    if t.from_given:
        return (
            f"Given {what}: q is the given distribution and the loss is -log q of the given"
            " values; the logits they imply are log q (up to an additive constant), and the"
            " gradient with respect to those logits is still q - p."
        )
    return (
        f"Given {what}: the logits y are log q, the logits they imply (up to an additive"
        " constant), divided by the temperature before the softmax."
    )


def _summary(t: Trace, digits: int) -> list[tuple[str, str]]:
    g = lambda x: sig(x, digits)  # noqa: E731
    lines = [
        (f"max m (class {t.classes[t.argmax]})", g(t.max)),
        ("sum of shifted exps s = sum e^(y - m)", g(t.sum_exp_shifted)),
        ("log s", g(t.log_sum_exp_shifted)),
        ("log-sum-exp m + log s", g(t.log_sum_exp)),
    ]
    if t.from_given and t.given_total is not None:
        total = "sum of the given q" if t.scores == "probs" else "log-sum-exp of the given log q"
        lines = [(total, g(t.given_total))]
    if not t.has_target:
        q = fixed(t.probabilities[t.argmax], digits)
        return [*lines, ("predicted class", f"{t.classes[t.argmax]} (q = {q})")]
    lines += [
        ("loss L", f"{g(t.loss)} {t.units}"),
        (f"perplexity {t.base}^L", g(t.perplexity)),
    ]
    if t.label is not None and t.one_minus_q is not None and t.probabilities[t.label] > 0.99:
        lines.append((f"1 - q_{t.label}", g(t.one_minus_q)))
    if t.soft:
        lines += [
            ("entropy of the target H(p)", f"{g(t.entropy)} {t.units}"),
            ("KL divergence KL(p || q)", f"{g(t.kl_divergence)} {t.units}"),
        ]
        if t.weights is None:
            lines.append(("H(p) + KL(p || q) = L", f"{g(t.entropy + t.kl_divergence)} {t.units}"))
    return lines


def _title(t: Trace, digits: int) -> str:
    parts = [f"{t.num_classes} {'class' if t.num_classes == 1 else 'classes'}"]
    if t.label is not None:
        name = t.classes[t.label]
        parts.append(f"true class {t.label}" + ("" if name == str(t.label) else f" ({name})"))
    elif t.has_target:
        parts.append("soft target")
    else:
        parts.append("no label")
    if t.temperature != 1.0:
        parts.append(f"temperature {given(t.temperature, digits)}")
    if t.label_smoothing:
        parts.append(f"label smoothing {given(t.label_smoothing, digits)}")
    if t.weights is not None:
        parts.append("class weights")
    if t.from_given:
        what = "probabilities" if t.scores == "probs" else "log-probabilities"
        if not t.has_target:
            return f"Given {what}: " + ", ".join(parts)
        return f"Cross-entropy of given {what}: " + ", ".join(parts)
    if not t.has_target:
        return "Softmax: " + ", ".join(parts)
    return "Softmax and cross-entropy: " + ", ".join(parts)


def _bars(t: Trace, digits: int, glyph: str) -> list[str]:
    names = [t.classes[k] for k in range(t.num_classes)]
    width = max(len(n) for n in names)
    out = []
    for k, name in enumerate(names):
        mark = ">" if k == t.label else " "
        q = t.probabilities[k]
        bar = glyph * (round(q * _BAR_WIDTH) if 0 <= q <= 1 else 0)  # no bar for a nan
        out.append(
            f"{mark} {name.rjust(width)}  {bar.ljust(_BAR_WIDTH)}  "
            f"{fixed(t.probabilities[k], digits)}"
        )
    return out


def _naive_table(t: Trace, digits: int, table_box: box.Box) -> Table:
    table = Table(box=table_box, title=None, show_edge=False, pad_edge=False)
    for header in ("k", "e^y", "sum e^y", "q textbook", "q stable"):
        table.add_column(header, justify="right")
    for k in range(t.num_classes):
        table.add_row(
            str(k),
            sig(t.naive.exp[k], digits),
            sig(t.naive.sum_exp, digits) if k == 0 else "",
            fixed(t.naive.probabilities[k], digits),
            fixed(t.probabilities[k], digits),
        )
    return table


def _wrapped(text: str, indent: int, width: int) -> list[str]:
    # textwrap rather than rich's wrapping: rich pads wrapped lines to the full width.
    lines = textwrap.wrap(
        text, max(width - indent, 20), break_long_words=False, break_on_hyphens=False
    )
    return [" " * indent + line for line in lines]


def _print_lines(console: Console, lines: list[str]) -> None:
    # One print for a block of plain lines: rich's per-call overhead dominates otherwise.
    console.print(Text("\n".join(lines)), soft_wrap=True)


def _surely_fits(console: Console, table: Table) -> bool:
    """Whether *table* fits the console for sure, found without rich measuring it.

    Rich's natural width of a table of plain text cells is at most, for each column, its
    widest cell plus the cell padding, plus one character per rule between and around
    the columns. Measuring with rich costs as much as printing the table again.
    """
    _top, right, _bottom, left = table.padding
    width = len(table.columns) + 1
    for column in table.columns:
        cells = [column.header, *column.cells] if table.show_header else list(column.cells)
        widest = 0
        for cell in cells:
            # Anything but printable text (a tab expands; markup only shrinks) is measured.
            if not (isinstance(cell, str) and cell.isprintable()):
                return False
            widest = max(widest, cell_len(cell))
        width += widest + left + right
    return width <= console.width


def _print_whole(console: Console, table: Table) -> None:
    # A number must never be cut to "1.10…": on a narrow console the table keeps its natural
    # width and the terminal wraps it, rather than rich squeezing the cells.
    if _surely_fits(console, table):
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update(max_width=100_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    width = console.width
    console.width = natural  # print(width=...) is capped at the console's width
    try:
        console.print(table)
    finally:
        console.width = width


#: per-class columns left out first when a terminal is too narrow (the rest: k, y, q, ...)
_LEAST_NEEDED = ("y - max", "e^(y - max)", "y/T", "-w p log q", "-p log q", "w", "p")


def _class_table(t: Trace, headers: list[str], rows: list[list[str]], table_box: box.Box) -> Table:
    table = Table(box=table_box, show_edge=False, pad_edge=False)
    table.add_column("", justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header == "class" else "right")
    for k, row in enumerate(rows):
        is_true = k == t.label
        table.add_row(">" if is_true else "", *row, style="bold" if is_true else None)
    return table


def _natural_width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update(max_width=100_000), table).maximum


def print_table(
    t: Trace,
    console: Console,
    *,
    digits: int = DEFAULT_DIGITS,
    explain: bool = False,
    naive: bool = False,
    frameworks: bool = False,
    dtype: str | None = None,
) -> None:
    """Print the per-class table, the totals, the bar chart (and the steps) to *console*.

    With *frameworks*, also the value each library would return (``--frameworks``).
    """
    plain = not console.is_terminal
    width = console.width
    table_box = PLAIN_BOX if plain else box.SIMPLE_HEAD
    glyph = "#" if plain or not console.encoding.lower().startswith("utf") else "\u2588"
    headers, rows = per_class(t, digits)
    table = _class_table(t, headers, rows, table_box)
    left_out = []
    if not plain:
        # A terminal too narrow for the table: leave out the columns that matter least
        # (they are in --explain and --format json) rather than wrap every row.
        for header in _LEAST_NEEDED:
            if header not in headers or _natural_width(console, table) <= width:
                continue
            keep = [i for i, h in enumerate(headers) if h != header]
            headers = [headers[i] for i in keep]
            rows = [[row[i] for i in keep] for row in rows]
            left_out.append(header)
            table = _class_table(t, headers, rows, table_box)
    summary = Table.grid(padding=(0, 2))
    summary.add_column()
    summary.add_column(justify="right")
    for name, value in _summary(t, digits):
        summary.add_row(name, value)
    _print_lines(console, [*_wrapped(_title(t, digits), 0, width), ""])
    if t.given is not None:
        _print_lines(console, [*_wrapped(given_note(t), 0, width), ""])
    _print_whole(console, table)
    if left_out:
        note = f"(left out to fit {width} columns: {', '.join(left_out)}; --explain shows them)"
        _print_lines(console, _wrapped(note, 0, width))
    _print_lines(console, [""])
    _print_whole(console, summary)
    _print_lines(console, ["", "probabilities q", *_bars(t, digits, glyph)])
    if not t.has_target:
        from xentcli.compute.trace import NO_TARGET_HINT

        _print_lines(console, ["", *_wrapped(NO_TARGET_HINT, 0, width)])
    if naive:
        from xentcli.compute.derivation import naive_notes

        _print_lines(
            console, ["", "The textbook formula q = e^y / sum e^y, L = -log q, unshifted:", ""]
        )
        _print_whole(console, _naive_table(t, digits, table_box))
        lines = [""]
        if t.has_target:
            lines.append(
                f"textbook loss  {sig(t.naive.loss, digits)} {t.units}"
                f"   (stable: {sig(t.loss, digits)} {t.units})"
            )
        for note in naive_notes(t, digits):
            lines += _wrapped(note, 2, width)
        _print_lines(console, lines)
    if explain:
        from xentcli.compute.derivation import derivation

        lines = ["", "Step by step"]
        for step in derivation(t, digits):
            lines += ["", f"{step.number}) {step.title}"]
            for step_line in step.lines:
                lines += _wrapped(step_line.text, 3, width)
        _print_lines(console, lines)
    if frameworks:
        from xentcli.compute import frameworks as fw

        title = (
            "What each library returns for this sample"
            " (nats; exact: xent's value of the same convention)"
        )
        if t.given is not None:
            title += "; the libraries are given the logits log q that the scores imply"
        _print_lines(console, ["", *fw.lines(fw.framework_values(t), width, title)])
    if dtype is not None:
        from xentcli.compute import lowprecision

        _print_lines(console, ["", *lowprecision.lines(lowprecision.low_precision(t, dtype))])


# ----------------------------------------------------------------------- json, csv
def to_json(
    t: Trace,
    *,
    naive: bool = False,
    explain: bool = False,
    digits: int = DEFAULT_DIGITS,
    frameworks: bool = False,
    dtype: str | None = None,
) -> str:
    """The trace as JSON in its documented shape (README), at full precision, plus extra keys."""
    from xentcli import text as jsonfmt

    # Without a label or target there is no loss: its keys are null (the documented keys stay).
    has = t.has_target
    data: dict[str, object] = {
        "logits": list(t.logits),
        "classes": list(t.classes),
        "label": t.label,
        "targets": list(t.targets) if has else None,
        "temperature": t.temperature,
        "label_smoothing": t.label_smoothing,
        "weights": list(t.weights) if t.weights is not None else None,
        "max": t.max,
        "shifted": list(t.shifted),
        "exp_shifted": list(t.exp_shifted),
        "sum_exp_shifted": t.sum_exp_shifted,
        "log_sum_exp_shifted": t.log_sum_exp_shifted,
        "log_sum_exp": t.log_sum_exp,
        "sum_exp": t.sum_exp,
        "probabilities": list(t.probabilities),
        "log_probabilities": list(t.log_probabilities),
        "gradient": list(t.gradient) if has else None,
        "loss": t.loss if has else None,
        "units": t.units,
        # Added keys (the documented shape allows additions):
        "label_name": t.classes[t.label] if t.label is not None else None,
        "targets_given": list(t.targets_given) if t.targets_given is not None else None,
        "scaled_logits": list(t.scaled),
        "predicted": t.argmax,
        "contributions": list(t.contributions) if has else None,
        "loss_nats": t.loss_nats if has else None,
        "base": t.base,
        "perplexity": t.perplexity if has else None,
        "one_minus_q": t.one_minus_q,
        "entropy": t.entropy if has else None,
        "kl_divergence": t.kl_divergence if has else None,
        "scores": t.scores,
        "scores_detected": t.scores_detected,
        "scores_given": list(t.given) if t.given is not None else None,
        "scores_total": t.given_total,
        "sum_tolerance": t.given_tolerance,
    }
    if t.given is not None:
        data["scores_note"] = given_note(t)
    if naive:
        from xentcli.compute.derivation import naive_notes

        data["naive"] = {
            "exp": list(t.naive.exp),
            "sum_exp": t.naive.sum_exp,
            "probabilities": list(t.naive.probabilities),
            "loss": t.naive.loss if has else None,
            "overflow": t.naive.overflow,
            "underflow": t.naive.underflow,
            "notes": naive_notes(t, digits),
        }
    if not has:
        from xentcli.compute.trace import NO_TARGET_HINT

        data["note"] = NO_TARGET_HINT
    if explain:
        from xentcli.compute.derivation import derivation

        data["steps"] = [
            {"number": s.number, "title": s.title, "lines": [line.text for line in s.lines]}
            for s in derivation(t, digits)
        ]
    if frameworks:
        from xentcli.compute import frameworks as fw

        data["frameworks"] = fw.to_json(fw.framework_values(t))
    if dtype is not None:
        from xentcli.compute import lowprecision

        data["dtype"] = lowprecision.to_json(lowprecision.low_precision(t, dtype))
    return jsonfmt.dumps(data) + "\n"


def _csv_number(x: float) -> str:
    special = nonfinite_text(x)
    return special if special is not None else repr(x)


CSV_COLUMNS = (
    "index",
    "class",
    "logit",
    "scaled_logit",
    "shifted",
    "exp_shifted",
    "probability",
    "log_probability",
    "target",
    "weight",
    "contribution",
    "gradient",
    "is_label",
)


def to_csv(t: Trace, *, naive: bool = False) -> str:
    """One line per class at full precision, then a line ``loss`` with the loss (the sum
    of ``contribution``) in the ``contribution`` column.

    Without a label or target, ``target``, ``contribution`` and ``gradient`` are empty,
    and so is the loss.
    """
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = list(CSV_COLUMNS)
    if naive:
        header += ["naive_exp", "naive_probability"]
    writer.writerow(header)
    for k in range(t.num_classes):
        row = (
            [str(k), t.classes[k]]
            + [
                _csv_number(v)
                for v in (
                    t.logits[k],
                    t.scaled[k],
                    t.shifted[k],
                    t.exp_shifted[k],
                    t.probabilities[k],
                    t.log_probabilities[k],
                    t.targets[k],
                    t.effective_weights[k],
                    t.contributions[k],
                    t.gradient[k],
                )
            ]
            + ["1" if k == t.label else "0"]
        )
        if not t.has_target:
            for column in ("target", "contribution", "gradient"):
                row[CSV_COLUMNS.index(column)] = ""
        if naive:
            row += [_csv_number(t.naive.exp[k]), _csv_number(t.naive.probabilities[k])]
        writer.writerow(row)
    loss_row = [""] * len(header)
    loss_row[0] = "loss"
    if t.has_target:
        loss_row[CSV_COLUMNS.index("contribution")] = _csv_number(t.loss)
    writer.writerow(loss_row)
    return out.getvalue()
