"""Rendering of a :class:`~xentcli.batch.compare.CompareSummary`: a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from xentcli.batch._report_metrics import fill_table, fit_columns
from xentcli.batch.report import _heading, _table, full, number, percent, shorten_left
from xentcli.text import dump

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from xentcli.batch.compare import ChangedRow, CompareSummary

#: the per-class table lists every class up to this many, else the largest changes
MAX_CLASSES = 20

# What a narrow terminal leaves out first (as xent batch's tables, #11 item 8: a row
# never wraps, a figure is never cut; output to a file or a pipe keeps every column).
# The summary: A, then B. The difference and its interval are what compare is for (is B
# really better?), and each side's figure is xent batch's on that file alone; B is kept
# longest as it gives A with the difference. The interval goes last, unless it is too wide
# to stay even alone: then it goes first, and A and B stay if they fit.
_SUMMARY_COLUMNS_DROPPED_FIRST = ("A", "B")
# The changed rows: the loss of A first (Loss B and the change give it), then that of B
# (the change, by which the rows are ranked, stays), then the predictions; the label and
# the row number (which the places under the table refer to) stay.
_CHANGE_COLUMNS_DROPPED_FIRST = ("Loss A", "Loss B", "Pred. A", "Pred. B")
# Per class: the loss of A first (as above), then the rows (the same on both sides and
# in xent batch), then the loss of B; the change, by which the classes are ranked, and
# both accuracies stay longest.
_CLASS_COLUMNS_DROPPED_FIRST = ("Loss A", "Rows", "Loss B", "Acc. A")


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
    """Print what a person reads: both sides, the difference and whether it is real.

    On a terminal every table fits its width, each figure whole (the least needed
    columns left out, and said so); output to a file or a pipe keeps every column, and
    has its lines' trailing padding removed.
    """
    if console.is_terminal:
        _render(summary, console)
        return
    width = console.width
    console.width = 1 << 16  # output to a file or a pipe is never cut
    try:
        with console.capture() as captured:
            _render(summary, console)
    finally:
        console.width = width
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
    _summary_table(summary, console)
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
            _changes(console, title, rows, summary.units)
    changed = [c for c in summary.per_class if c.loss_a is not None and c.loss_b is not None]
    if changed:
        if len(changed) > MAX_CLASSES:
            changed = sorted(changed, key=lambda c: -abs((c.loss_b or 0) - (c.loss_a or 0)))
            changed = changed[:MAX_CLASSES]
            title = f"Per class: the {MAX_CLASSES} largest changes of mean loss"
        else:
            title = "Per class"
        columns: dict[str, list[str]] = {
            "Class": [c.name for c in changed],
            "Rows": [str(c.rows) for c in changed],
            "Loss A": [number(c.loss_a) for c in changed],
            "Loss B": [number(c.loss_b) for c in changed],
            "Change": [number((c.loss_b or 0) - (c.loss_a or 0)) for c in changed],
            "Acc. A": [percent(c.accuracy_a) for c in changed],
            "Acc. B": [percent(c.accuracy_b) for c in changed],
        }
        left_out = fit_columns(columns, console, _CLASS_COLUMNS_DROPPED_FIRST)
        if left_out:
            title += f" ({', '.join(left_out)} left out to fit {console.width} columns)"
        _heading(console, title)
        per_class = _table(console)
        _fill(console, per_class, columns)
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


def _summary_table(summary: CompareSummary, console: Console) -> None:
    """Both sides' figures, B - A and its interval, one line per figure."""
    names, side_a, side_b, differences, intervals = [], [], [], [], []
    for name, value_a, value_b in _metrics(summary):
        if name == "loss":
            names.append(f"mean loss ({summary.units})")
            cells = [number(value_a), number(value_b), number(summary.loss_difference)]
            intervals.append(_interval(summary.loss_ci))
        elif name == "accuracy":
            names.append("accuracy")
            cells = [percent(value_a), percent(value_b), percent(summary.accuracy_difference)]
            intervals.append(_interval(summary.accuracy_ci, "percent"))
        else:
            names.append(name)
            difference = None if value_a is None or value_b is None else value_b - value_a
            cells = [number(value_a), number(value_b), number(difference)]
            intervals.append("")
        side_a.append(cells[0])
        side_b.append(cells[1])
        differences.append(cells[2])
    level = f"{100 * summary.ci_level:g} % interval" if summary.ci_level else ""
    # The names' column has a blank header, a space: with --ci 0 the interval column's
    # header is empty, and a column's header is its key.
    columns = {" ": names, "A": side_a, "B": side_b, "B - A": differences, level: intervals}
    order = (*_SUMMARY_COLUMNS_DROPPED_FIRST, level) if level else _SUMMARY_COLUMNS_DROPPED_FIRST
    left_out = fit_columns(fitted := dict(columns), console, order)
    if level in left_out:  # too wide even alone: the interval goes first, A and B stay if they fit
        left_out = fit_columns(fitted := dict(columns), console, (level, "A", "B"))
    columns = fitted
    table = _table(console)
    _fill(console, table, columns)
    console.print(table)
    if left_out:
        shown = ["the interval" if name == level else name for name in left_out]
        console.print(Text(f"({', '.join(shown)} left out to fit {console.width} columns)"))


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
    columns: dict[str, list[str]] = {" ": [], "B - A": []}  # a blank header: a space
    for name, interval in difference.intervals.items():
        fmt = "percent" if "accuracy" in name else "number"
        shown = f"mean loss ({summary.units})" if name == "loss" else name.replace("_", " ")
        columns[" "].append(shown)
        columns["B - A"].append(_interval(interval, fmt) or "undefined")
    table = _table(console)
    _fill(console, table, columns)  # two columns, both needed: the interval is never cut
    console.print(table)


def _fill(console: Console, table: Table, columns: dict[str, list[str]], text: int = 1) -> None:
    """:func:`fill_table`, and on a terminal too narrow for the headers whole, those wider
    than their figures wrap at their spaces, the widest first: left to shrink the table,
    rich would cut a figure (``+3.6478`` for ``+3.64789``) before wrapping a header."""
    fill_table(table, columns, text)
    natural = [max([len(name), *map(len, cells)]) for name, cells in columns.items()]
    excess = sum(natural) + 3 * (len(natural) - 1) - console.width
    least = [
        max([max((len(w) for w in name.split()), default=0), *map(len, cells)])
        for name, cells in columns.items()
    ]
    for i in sorted(range(len(natural)), key=lambda i: -natural[i]):
        if excess <= 0:
            break
        cut = min(natural[i] - least[i], excess)
        if cut > 0:
            table.columns[i].width = natural[i] - cut
            excess -= cut


def _changes(console: Console, title: str, rows: tuple[ChangedRow, ...], units: str) -> None:
    """The changed rows: a table of figures, then each row's places on a line of its own
    (never cut into a file name and line: a place is how the user finds the row)."""
    loss_a = f"Loss A ({units})"
    columns: dict[str, list[str]] = {
        "#": [str(i) for i in range(1, len(rows) + 1)],
        "Label": [str(row.label) for row in rows],
        "Pred. A": [str(row.predicted_a) for row in rows],
        "Pred. B": [str(row.predicted_b) for row in rows],
        loss_a: [number(row.loss_a) for row in rows],
        "Loss B": [number(row.loss_b) for row in rows],
        "Change": [f"{row.change:+.6g}" for row in rows],
    }
    left_out = fit_columns(
        columns,
        console,
        tuple(loss_a if c == "Loss A" else c for c in _CHANGE_COLUMNS_DROPPED_FIRST),
    )
    if loss_a in left_out:  # the units go with the change
        columns = {f"Change ({units})" if k == "Change" else k: v for k, v in columns.items()}
        left_out[left_out.index(loss_a)] = "Loss A"
    if left_out:
        title += f" ({', '.join(left_out)} left out to fit {console.width} columns)"
    _heading(console, title)
    table = _table(console)
    _fill(console, table, columns, text=0)
    console.print(table)
    for i, row in enumerate(rows, 1):
        _places(console, i, row.place_a, row.place_b)


def _places(console: Console, i: int, place_a: str, place_b: str) -> None:
    """Row *i*'s places in A and B on one line; on a terminal too narrow for them, the
    paths are shortened from the left (never into the file name and line), and B goes to
    a line of its own when even that is too long."""
    line = f"{i:>3}  A {place_a}   B {place_b}"
    if not console.is_terminal or len(line) <= console.width:
        console.print(Text(line), soft_wrap=True)
        return
    room = console.width - len(f"{i:>3}  A    B ")  # what the two places may take
    if len(place_a) >= len(place_b):  # the longer is cut first, to no less than half
        short_a = shorten_left(place_a, max(room - len(place_b), room // 2))
        short_b = shorten_left(place_b, room - len(short_a))
    else:
        short_b = shorten_left(place_b, max(room - len(place_a), room // 2))
        short_a = shorten_left(place_a, room - len(short_b))
    line = f"{i:>3}  A {short_a}   B {short_b}"
    if len(line) <= console.width:
        console.print(Text(line), no_wrap=True, overflow="ignore")
        return
    room = console.width - len(f"{i:>3}  A ")
    for side, place in (("A", place_a), ("B", place_b)):
        head = f"{i:>3}  " if side == "A" else " " * (len(f"{i:>3}") + 2)
        console.print(
            Text(f"{head}{side} {shorten_left(place, room)}"), no_wrap=True, overflow="ignore"
        )
