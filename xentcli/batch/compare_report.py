"""Rendering of a :class:`~xentcli.batch.compare.CompareSummary`: a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from rich.text import Text

from xentcli.batch.report import _heading, _table, full, number, percent
from xentcli.text import dump

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from xentcli.batch.compare import ChangedRow, CompareSummary

#: the per-class table lists every class up to this many, else the largest changes
MAX_CLASSES = 20


def write_json(summary: CompareSummary, write: Callable[[str], object]) -> None:
    """The JSON document (full precision, a final newline) through *write*, in pieces of
    about 64 KB: at K = 1000 the two confusion matrices are 35 MB of text, which made
    the document, held whole, 2-3 times that (benchmarks/RESULTS.md, compare)."""
    dump(summary.to_json(), write)
    write("\n")


def _metrics(summary: CompareSummary) -> list[tuple[str, float | None, float | None]]:
    a, b = summary.a, summary.b
    rows = [
        ("loss", a.loss_mean, b.loss_mean),
        ("perplexity", a.perplexity, b.perplexity),
        ("accuracy", a.accuracy, b.accuracy),
    ]
    from xentcli.batch.compare import _side_metrics

    rows.extend(_side_metrics(a, b))
    return rows


def render_csv(summary: CompareSummary) -> str:
    """One line per figure: ``metric,a,b,difference,ci_low,ci_high,units`` and, with
    ``--bootstrap``, ``bootstrap_low,bootstrap_high`` (of the difference); full precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    boot = summary.bootstrap
    header = ["metric", "a", "b", "difference", "ci_low", "ci_high", "units"]
    writer.writerow(header + (["bootstrap_low", "bootstrap_high"] if boot else []))
    intervals = {"loss": summary.loss_ci, "accuracy": summary.accuracy_ci}
    differences = {"loss": summary.loss_difference, "accuracy": summary.accuracy_difference}
    for name, value_a, value_b in _metrics(summary):
        difference = differences.get(name)
        if difference is None and value_a is not None and value_b is not None:
            difference = value_b - value_a
        low, high = intervals.get(name) or (None, None)
        unit = summary.units if name == "loss" else ""
        row = [name, full(value_a), full(value_b), full(difference), full(low), full(high), unit]
        if boot is not None:
            boot_low, boot_high = boot.difference.intervals.get(name) or (None, None)
            row += [full(boot_low), full(boot_high)]
        writer.writerow(row)
    m = summary.mcnemar
    writer.writerow(
        ["mcnemar_p_value", "", "", full(m.p_value), "", "", ""] + (["", ""] if boot else [])
    )
    return out.getvalue()


def render_table(summary: CompareSummary, console: Console) -> None:
    """Print what a person reads: both sides, the difference and whether it is real."""
    with console.capture() as captured:
        _render(summary, console)
    lines = captured.get().splitlines()
    console.file.write("".join(line.rstrip() + "\n" for line in lines))


def _interval(low_high: tuple[float, float] | None, fmt: str = "number") -> str:
    if low_high is None:
        return ""
    show = percent if fmt == "percent" else number
    return f"[{show(low_high[0])}, {show(low_high[1])}]"


def _render(summary: CompareSummary, console: Console) -> None:
    a, b = summary.a, summary.b
    name_a = ", ".join(f.path for f in a.files)
    name_b = ", ".join(f.path for f in b.files)
    console.print(
        Text(
            f"xent compare: A = {name_a}, B = {name_b}; {summary.rows} paired rows"
            + (f" (by {summary.extra['id_column']!r})" if "id_column" in summary.extra else ""),
            style="bold",
        )
    )
    table = _table(console)
    table.add_column("")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B - A", justify="right")
    level = f"{100 * summary.ci_level:g} % interval" if summary.ci_level else ""
    table.add_column(level, justify="right")
    for name, value_a, value_b in _metrics(summary):
        if name == "loss":
            table.add_row(
                f"mean loss ({summary.units})",
                number(value_a),
                number(value_b),
                number(summary.loss_difference),
                _interval(summary.loss_ci),
            )
        elif name == "accuracy":
            table.add_row(
                "accuracy",
                percent(value_a),
                percent(value_b),
                percent(summary.accuracy_difference),
                _interval(summary.accuracy_ci, "percent"),
            )
        else:
            difference = None if value_a is None or value_b is None else value_b - value_a
            table.add_row(name, number(value_a), number(value_b), number(difference), "")
    console.print(table)
    if summary.bootstrap is not None:
        _bootstrap(console, summary)
    m = summary.mcnemar
    _heading(console, "Right and wrong on the same rows (McNemar's exact test)")
    grid = _table(console)
    grid.add_column("")
    grid.add_column("B right", justify="right")
    grid.add_column("B wrong", justify="right")
    grid.add_row("A right", str(m.both_right), str(m.only_a))
    grid.add_row("A wrong", str(m.only_b), str(m.both_wrong))
    console.print(grid)
    verdict = (
        "no row changed from right to wrong or back"
        if m.p_value is None
        else f"p = {number(m.p_value)} (two-sided, on the {m.only_a + m.only_b} rows that changed)"
    )
    console.print(Text(verdict))
    for title, rows in (
        ("Regressions (loss rose most from A to B)", summary.regressions),
        ("Improvements (loss fell most from A to B)", summary.improvements),
    ):
        if rows:
            _heading(console, title)
            _changes(console, rows, summary.units)
    changed = [c for c in summary.per_class if c.loss_a is not None and c.loss_b is not None]
    if changed:
        if len(changed) > MAX_CLASSES:
            changed = sorted(changed, key=lambda c: -abs((c.loss_b or 0) - (c.loss_a or 0)))
            changed = changed[:MAX_CLASSES]
            _heading(console, f"Per class: the {MAX_CLASSES} largest changes of mean loss")
        else:
            _heading(console, "Per class")
        per_class = _table(console)
        for column in ("Class", "Rows", "Loss A", "Loss B", "Change", "Acc. A", "Acc. B"):
            per_class.add_column(column, justify="left" if column == "Class" else "right")
        for c in changed:
            per_class.add_row(
                c.name,
                str(c.rows),
                number(c.loss_a),
                number(c.loss_b),
                number((c.loss_b or 0) - (c.loss_a or 0)),
                percent(c.accuracy_a),
                percent(c.accuracy_b),
            )
        console.print(per_class)
    if summary.worse:
        console.print()
        console.print(
            Text(
                f"B is worse than A: its mean loss is higher by more than {summary.margin:g}"
                f" {summary.units}, beyond the interval",
                style="bold",
            )
        )


def _bootstrap(console: Console, summary: CompareSummary) -> None:
    """The paired bootstrap's percentile intervals of B - A (each side's: in the JSON)."""
    boot = summary.bootstrap
    assert boot is not None
    difference = boot.difference
    _heading(
        console,
        f"Paired bootstrap: {100 * difference.level:g} % intervals of B - A"
        f" ({difference.replicates} replicates, pairs keyed by {boot.keyed_by})",
    )
    table = _table(console)
    table.add_column("")
    table.add_column("B - A", justify="right")
    for name, interval in difference.intervals.items():
        fmt = "percent" if "accuracy" in name else "number"
        shown = f"mean loss ({summary.units})" if name == "loss" else name.replace("_", " ")
        table.add_row(shown, _interval(interval, fmt) or "undefined")
    console.print(table)


def _changes(console: Console, rows: tuple[ChangedRow, ...], units: str) -> None:
    """The changed rows: a table of figures, then each row's places on a line of its own
    (never cut: a place is how the user finds the row)."""
    table = _table(console)
    table.add_column("#", justify="right")
    for column in ("Label", "Pred. A", "Pred. B", f"Loss A ({units})", "Loss B", "Change"):
        table.add_column(column, justify="right")
    for i, row in enumerate(rows, 1):
        table.add_row(
            str(i),
            str(row.label),
            str(row.predicted_a),
            str(row.predicted_b),
            number(row.loss_a),
            number(row.loss_b),
            f"{row.change:+.6g}",
        )
    console.print(table)
    for i, row in enumerate(rows, 1):
        console.print(Text(f"{i:>3}  A {row.place_a}   B {row.place_b}"), soft_wrap=True)
