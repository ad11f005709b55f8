"""The evaluation part of the ``xent batch`` table: Brier, top-k, calibration, confusion.

Tables round for reading (figures to 4 decimals, percentages to 2); the JSON has every
figure at full precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xentcli.batch.metrics import MetricsSummary

#: the confusion matrix is printed up to this many classes (the JSON has it up to 1000)
MAX_PRINTED_MATRIX = 20
BAR_WIDTH = 20


def figure(value: float | None) -> str:
    """A metric in [0, 2] for reading: 4 decimals, '-' when undefined.

    >>> figure(0.17583), figure(None)
    ('0.1758', '-')
    """
    return "-" if value is None else f"{value:.4f}"


def interval(bounds: tuple[float, float] | None, scale: float = 1.0, unit: str = "") -> str:
    """An interval for reading, with a leading space: 3 significant digits.

    Percentages (*scale* 100) get one decimal.

    >>> interval((0.15204, 0.19899)), interval((0.99, 0.99959), 100, " %"), interval(None)
    (' [0.152, 0.199]', ' [99.0 %, 100.0 %]', '')
    """
    if bounds is None:
        return ""
    low, high = (scale * b for b in bounds)
    spec = ".1f" if scale == 100 else ".3g"
    return f" [{low:{spec}}{unit}, {high:{spec}}{unit}]"


def summary_rows(metrics: MetricsSummary) -> list[tuple[str, str]]:
    """(name, value) lines for the summary grid, after the accuracy."""
    out = []
    top = metrics.top_k
    ci = metrics.intervals
    for k in top.hits:
        if k != 1:
            accuracy = top.accuracy(k)
            shown = "-" if accuracy is None else f"{100 * accuracy:.2f} %"
            bounds = interval(ci.top_k.get(k), 100, " %") if ci is not None else ""
            counts = f"{top.hits[k]} of {top.rows} rows"
            if top.weighted_hits is not None:
                counts = f"weighted; {counts}"
            out.append((f"Top-{k} accuracy", f"{shown} ({counts}){bounds}"))
    cal = metrics.calibration
    brier_ci = interval(ci.brier) if ci is not None else ""
    out.append(("Brier score", figure(metrics.brier.mean) + brier_ci))
    out.append((f"ECE ({cal.n_bins} equal-width bins)", figure(cal.ece)))
    bound = (
        ""
        if cal.ece_equal_mass_bound is None
        else f" (exact within {cal.ece_equal_mass_bound:.2g})"
    )
    out.append((f"ECE ({cal.n_bins} equal-mass bins)", figure(cal.ece_equal_mass) + bound))
    out.append(("MCE", figure(cal.mce)))
    scores = metrics.confusion
    for name, avg in (("Macro", scores.macro), ("Weighted", scores.weighted)):
        out.append(
            (
                f"{name} precision / recall / F1",
                f"{figure(avg.precision)} / {figure(avg.recall)} / {figure(avg.f1)}",
            )
        )
    if ci is not None:
        out.append(
            (
                "Intervals",
                f"{100 * ci.level:g} % (normal approximation; Wilson for accuracies"
                + (
                    ", at the effective sample size)"
                    if metrics.top_k.weighted_hits is not None
                    else ")"
                ),
            )
        )
    return out


def render_groups(
    summary: Any,
    console: Console,
    table: Callable[[Console], Table],
    heading: Callable[[Console, str], None],
) -> None:
    """One line per group of ``--group-by``: rows, mean loss, accuracy, Brier, ECE."""
    groups = summary.groups
    if groups is None:
        return
    weighted = summary.sample_weights is not None
    heading(
        console,
        f"Per {summary.group_by} (--group-by {summary.group_by}; {len(groups)} groups"
        + ("; weighted means" if weighted else "")
        + ")",
    )
    columns: dict[str, list[str]] = {str(summary.group_by): [], "Rows": []}
    if weighted:
        columns["Weight"] = []
    for name in (f"Mean loss ({summary.units})", "Accuracy", "Brier", "ECE"):
        columns[name] = []
    for group in groups:
        part = group.summary
        metrics = part.metrics
        loss = "-" if part.loss_mean is None else f"{part.loss_mean:.6g}"
        accuracy = "-" if part.accuracy is None else f"{100 * part.accuracy:.2f} %"
        cells = [group.name, str(part.rows)]
        if weighted:
            cells.append(f"{part.sample_weights['sum']:.6g}")
        cells += [
            loss,
            accuracy,
            figure(None if metrics is None else metrics.brier.mean),
            figure(None if metrics is None else metrics.calibration.ece),
        ]
        for cells_of, cell in zip(columns.values(), cells, strict=True):
            cells_of.append(cell)
    left_out = fit_columns(columns, console, ("Weight", "Brier", "ECE"))
    out = table(console)
    fill_table(out, columns)
    console.print(out)
    if left_out:
        console.print(Text(f"({', '.join(left_out)} left out to fit {console.width} columns)"))


def fit_columns(
    columns: dict[str, list[str]], console: Console, dropped_first: Sequence[str]
) -> list[str]:
    """Drop columns of *columns* in the order *dropped_first* until a row fits a terminal
    (3 characters between columns; a header wraps at its spaces); return those dropped.

    #11 item 8: in a narrow terminal a table row never wraps and a figure is never cut.
    Output to a file keeps every column.
    """

    def width() -> int:
        return sum(
            max(max((len(w) for w in name.split()), default=0), *(len(c) for c in cells))
            for name, cells in columns.items()
        ) + 3 * (len(columns) - 1)

    left_out: list[str] = []
    if not console.is_terminal:
        return left_out
    for name in dropped_first:
        if width() <= console.width:
            break
        if name in columns:
            del columns[name]
            left_out.append(name)
    return left_out


def fill_table(table: Table, columns: dict[str, list[str]], text: int = 1) -> None:
    """Add *columns* (header: cells) to *table*, each at least as wide as its widest
    figure, so that only a header wraps (at its spaces); the first *text* are text
    (left-justified), the rest figures."""
    for i, (name, figures) in enumerate(columns.items()):
        widest = max((len(c) for c in figures), default=0)
        table.add_column(name, justify="left" if i < text else "right", min_width=widest)
    for cells in zip(*columns.values(), strict=True):
        table.add_row(*cells)


def render_reliability(
    metrics: MetricsSummary,
    console: Console,
    table: Callable[[Console], Table],
    heading: Callable[[Console, str], None],
) -> None:
    """The reliability table: one line per non-empty equal-width bin, with a bar."""
    cal = metrics.calibration
    bins = [b for b in cal.bins if b.rows]
    if not bins:
        return
    heading(
        console,
        f"Reliability (top-label confidence, {cal.n_bins} equal-width bins; "
        f"{cal.n_bins - len(bins)} empty not shown)",
    )
    headers = ("Confidence", "Rows", "Mean conf.", "Accuracy", "Gap")
    rows = [
        (
            f"{b.low:.3f} - {b.high:.3f}",
            str(b.rows),
            figure(b.confidence),
            figure(b.accuracy),
            "-" if b.gap is None else f"{b.gap:+.4f}",
        )
        for b in bins
    ]
    # A row never wraps (#11, narrow terminals): the bar takes what the figures leave of
    # the width (3 characters between columns), and goes when fewer than 6 are left.
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    bar_width = min(BAR_WIDTH, console.width - sum(widths) - 3 * len(headers))
    out = table(console)
    out.add_column("Confidence", no_wrap=True)
    for name in headers[1:]:
        out.add_column(name, justify="right", no_wrap=True)
    if bar_width >= 6:
        out.add_column("", no_wrap=True)
    full, empty = ("█", "·") if console.is_terminal else ("#", ".")
    for b, figures in zip(bins, rows, strict=True):
        cells = list(figures)
        if bar_width >= 6:
            length = 0 if b.accuracy is None else round(bar_width * b.accuracy)
            cells.append(full * length + empty * (bar_width - length))
        out.add_row(*cells)
    console.print(out)


def render_confusion(
    metrics: MetricsSummary,
    names: Sequence[str],
    console: Console,
    table: Callable[[Console], Table],
    heading: Callable[[Console, str], None],
) -> None:
    """The confusion matrix (rows: true class) for up to 20 classes, else a note."""
    matrix = metrics.confusion.matrix
    k = len(names)
    if matrix is None or k > MAX_PRINTED_MATRIX:
        where = "in --format json" if matrix is not None else "not kept past 1000 classes"
        console.print()
        console.print(Text(f"Confusion matrix: {k} classes, {where}."))
        return
    heading(console, "Confusion matrix (rows: true class, columns: predicted)")
    out = table(console)
    out.add_column("True")
    for name in names:
        out.add_column(name, justify="right")
    for name, row in zip(names, matrix.tolist(), strict=True):
        out.add_row(name, *(f"{v:.6g}" if v else "." for v in row))
    console.print(out)
