"""Rendering of a batch :class:`~xentcli.batch.accumulator.Summary`: a rich summary, JSON and CSV.

Tables round for reading (6 significant digits); JSON and CSV carry full precision (the
shortest text that round-trips). Nothing here chooses exit codes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from xentcli.batch._report_metrics import (
    figure,
    fill_table,
    fit_columns,
    interval,
    render_confusion,
    render_groups,
    render_reliability,
    summary_rows,
)
from xentcli.batch.accumulator import ChunkResult, ClassSummary, Summary, WorstRow
from xentcli.core import KIND_NAMES
from xentcli.text import dumps, fixed_column, nonfinite_text, plural

#: the per-class table lists every class up to this many, else the costliest few
MAX_CLASSES = 20
TOP_CLASSES = 10
HISTOGRAM_WIDTH = 40

# A header rule in plain ASCII for output that is not a terminal.
_PLAIN_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def number(value: float | None, undefined: str = "undefined") -> str:
    """Round *value* for reading: 6 significant digits.

    >>> number(0.4421192251430), number(4.248354255291589e-18), number(None), number(float("inf"))
    ('0.442119', '4.24835e-18', 'undefined', 'inf')
    """
    if value is None:
        return undefined
    return nonfinite_text(value) or f"{value:.6g}"


def column(values: Sequence[float | None], missing: str = "-") -> list[str]:
    """A table column's numbers in one format, chosen from the whole column
    (:func:`xentcli.text.fixed_column`: fixed-point, or scientific for every value when
    one needs it); *missing* stands for None.

    >>> column([0.175839, 1.2e-05, None])
    ['1.758e-01', '1.200e-05', '-']
    >>> column([0.08816, 0.274985, 4.51554])
    ['0.0882', '0.2750', '4.5155']
    """
    shown = iter(fixed_column([v for v in values if v is not None]))
    return [missing if v is None else next(shown) for v in values]


def percent(value: float | None) -> str:
    """A fraction as a percentage with two decimals.

    >>> percent(0.970370), percent(None), percent(1.0)
    ('97.04 %', '-', '100.00 %')
    """
    return "-" if value is None else f"{100 * value:.2f} %"


def full(value: float | None) -> str:
    """Full precision for CSV: the shortest round-tripping text; empty for missing.

    >>> full(0.1), full(None), full(float("inf")), full(float("nan"))
    ('0.1', '', 'inf', '')
    """
    if value is None or math.isnan(value):
        return ""
    return nonfinite_text(value) or repr(float(value))


# ---------------------------------------------------------------------------- table
def _table(console: Console, title: str | None = None) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD if console.is_terminal else _PLAIN_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )


def shorten_left(place: str, width: int) -> str:
    """*place* (``path:line``) cut from the left to *width* characters, never into the
    file name and line, which are how the user finds the row.

    >>> shorten_left("runs/2024-06-01_resnet50/val.csv:218", 16)
    '…t50/val.csv:218'
    >>> shorten_left("runs/2024-06-01_resnet50/val.csv:218", 8)
    '…/val.csv:218'
    >>> shorten_left("a.csv:3", 4)
    'a.csv:3'
    """
    if len(place) <= width:
        return place
    name = place.rsplit("/", 1)[-1]
    keep = max(width - 1, len(name) + 1 if "/" in place else len(name))
    return place if keep >= len(place) else "…" + place[-keep:]


def _print_fitted(
    console: Console, table: Table, column: int, optional: tuple[str, ...] = ()
) -> None:
    """Print *table* whole on a terminal too narrow for its places (``path:line``).

    The places in *column* are first shortened from the left (:func:`shorten_left`);
    when even the file names and lines leave no room for the other columns, the columns
    whose headers are in *optional* are left out and the places move to lines of their
    own under the table, by row number. No cell is ever cut.
    """
    from rich.measure import Measurement
    from rich.table import Column

    def natural() -> int:
        options = console.options.update(max_width=1 << 16)
        return Measurement.get(console, options, table).maximum

    for other in table.columns:
        other.no_wrap = True
    places = [str(cell) for cell in table.columns[column]._cells]
    excess = natural() - console.width
    if not console.is_terminal or excess <= 0 or not places:
        console.print(table)
        return
    target = max(max(len(p) for p in places) - excess, 1)
    table.columns[column]._cells = [shorten_left(p, target) for p in places]
    if natural() <= console.width:
        console.print(table)
        return
    table.columns.pop(column)
    table.columns[:] = [c for c in table.columns if c.header not in optional]
    if table.columns[0].header != "#":
        numbers = Column(header="#", justify="right", no_wrap=True)
        numbers._cells = [str(n) for n in range(1, len(places) + 1)]
        table.columns.insert(0, numbers)
    for index, each in enumerate(table.columns):  # rich pads by a column's own index
        each._index = index
    console.print(table)
    width = len(str(len(places)))
    for n, place in enumerate(places, start=1):
        console.print(
            Text(f"{n:>{width}}  {shorten_left(place, console.width - width - 2)}"),
            no_wrap=True,
            overflow="ignore",
        )


def _heading(console: Console, text: str) -> None:
    console.print()
    console.print(Text(text, style="bold"))


def render_table(
    summary: Summary, console: Console, *, study: str | None = None, title: str = "xent batch"
) -> None:
    """Print the summary a person reads: totals, distribution, per class, worst rows.

    With *study* (the options that read the files and compute the loss, as command-line
    text), the worst row is followed by the ``xent compute --from FILE:LINE`` command that
    works it through. Plain output (not a terminal) has its lines' trailing padding removed.
    """
    if console.is_terminal:
        _render_table(summary, console, study, title)
        return
    # Output to a file or a pipe is never cut: tables keep their natural width.
    width = console.width
    console.width = 1 << 16
    try:
        with console.capture() as captured:
            _render_table(summary, console, study, title)
    finally:
        console.width = width
    lines = captured.get().splitlines()
    console.file.write("".join(line.rstrip() + "\n" for line in lines))


def _render_table(
    summary: Summary, console: Console, study: str | None, title: str = "xent batch"
) -> None:
    units = summary.units
    files = summary.files
    n_files = len(files)
    head = f"{title}: {plural(n_files, 'file')}, {plural(summary.rows, 'row')}"
    counts = (
        f"({summary.rows_counted} counted, {summary.rows_ignored} ignored, "
        f"{summary.rows_skipped} skipped)"
    )
    # One line, or two where a narrow terminal would wrap it (never in the middle).
    fits = len(head) + 1 + len(counts) <= console.width
    console.print(Text(f"{head} {counts}" if fits else f"{head}\n{counts}", style="bold"))
    if n_files > 1:
        table = _table(console)
        table.add_column("File")
        for name in ("Rows", "Counted", "Ignored", "Skipped"):
            table.add_column(name, justify="right")
        table.add_column(f"{_loss_name(summary)} ({units})", justify="right")
        table.add_column("Perplexity", justify="right")
        table.add_column("Accuracy", justify="right")
        losses = column([f.loss for f in files], "undefined")
        perplexities = column([f.perplexity for f in files])
        for f, loss, perplexity in zip(files, losses, perplexities, strict=True):
            table.add_row(
                f.path,
                str(f.rows),
                str(f.rows_counted),
                str(f.rows_ignored),
                str(f.rows_skipped),
                loss,
                perplexity,
                percent(f.accuracy),
            )
        console.print()
        _print_fitted(console, table, 0, optional=("Counted", "Ignored", "Skipped"))
    elif files:
        console.print(f"File: {files[0].path}")
    for line in input_lines(summary):
        console.print(Text(line))
    console.print()
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column()
    if summary.reduction == "sum":
        grid.add_row("Loss (sum)", f"{number(summary.loss)} {units}")
    if summary.loss_mean is None:
        grid.add_row(
            "Mean loss",
            "undefined: no row counts (every label is the ignore index, or has weight 0)",
        )
    else:
        ci = summary.metrics.intervals if summary.metrics is not None else None
        bounds = interval(ci.loss) if ci is not None else ""
        grid.add_row("Mean loss", f"{number(summary.loss_mean)} {units}{bounds}")
    grid.add_row("Perplexity", number(summary.perplexity))
    if summary.entropy is not None and summary.kl_divergence is not None:
        grid.add_row("Mean entropy of the targets H(p)", f"{number(summary.entropy)} {units}")
        grid.add_row("Mean KL divergence KL(p || q)", f"{number(summary.kl_divergence)} {units}")
    accuracy_name = "Accuracy (argmax of target)" if summary.soft_targets else "Accuracy"
    ci = summary.metrics.intervals if summary.metrics is not None else None
    bounds = interval(ci.accuracy, 100, " %") if ci is not None else ""
    counts = f"{summary.correct} of {plural(summary.rows_counted, 'row')}"
    if summary.sample_weights is not None:
        counts = f"weighted; {counts} right"
    grid.add_row(accuracy_name, f"{percent(summary.accuracy)} ({counts})" + bounds)
    if summary.metrics is not None and summary.rows_counted:
        for name, value in summary_rows(summary.metrics):
            grid.add_row(name, value)
    console.print(grid)
    _render_skipped(summary, console)
    if summary.rows_counted:
        render_groups(summary, console, _table, _heading)
        _render_distribution(summary, console)
        if summary.metrics is not None:
            render_reliability(summary.metrics, console, _table, _heading)
        _render_classes(summary, console)
        if summary.metrics is not None:
            names = [c.name for c in summary.per_class]
            render_confusion(summary.metrics, names, console, _table, _heading)
        _render_worst(summary, console, study)


def scores_line(kind: str, detected: bool) -> str:
    """How the report names the kind of scores.

    >>> scores_line("probs", True)
    'probabilities (detected; --scores to override)'
    """
    text = KIND_NAMES[kind]
    if detected:
        text += " (detected; --scores to override)"
    return text


_BINARY = {
    "logits": "the logit s of class 1 (scored as the logits [0, s])",
    "probs": "the probability p of class 1 (scored as [1 - p, p])",
    "logprobs": "the log-probability of class 1",
}


def input_lines(summary: Summary) -> list[str]:
    """What was read and how: the kind of scores, the binary case, renormalized rows,
    clipping and the rows of infinite loss (one line each, when they apply)."""
    lines = [f"Scores: {scores_line(summary.scores, summary.scores_detected)}"]
    columns = summary.columns or {}
    if columns.get("label_guessed") == "the last column":
        # No column is named like a label: the last one was taken. Right for most files
        # without a header, but a guess all the same, and a wrong one scores silently.
        name = str(columns["label_column"])
        shown = f"column {name}, counting from 0" if name.isdigit() else repr(name)
        lines.append(
            f"Labels: the last column ({shown}): no column is named like a label"
            " (--label-column to choose)"
        )
    if summary.binary:
        lines.append(f"One score column: a binary classifier, {_BINARY[summary.scores]}")
    if summary.renormalize:
        lines.append(
            f"Renormalized (--renormalize): {summary.rows_renormalized} rows of scores "
            f"and {summary.targets_renormalized} of targets did not sum to 1 within "
            "the tolerance"
        )
    if summary.clip is not None:
        lines.append(
            f"Clipped (--clip): probabilities clipped to [{summary.clip!r}, 1 - {summary.clip!r}]"
        )
    weights = summary.sample_weights
    if weights is not None:
        effective = weights["effective_rows"]
        lines.append(
            f"Sample weights: column {weights['column']!r}, sum {number(weights['sum'])}"  # type: ignore[arg-type]
            + ("" if effective is None else f" ({number(effective)} effective rows)")  # type: ignore[arg-type]
            + "; every mean divides by the sum of the weights"
            + (
                " (the loss: of sample x class weights)"
                if summary.weight_sum != weights["sum"]
                else ""
            )
        )
    if summary.rows_infinite:
        shown = ", ".join(f"{path}:{line}" for path, line in summary.infinite_rows)
        more = ", ..." if summary.rows_infinite > len(summary.infinite_rows) else ""
        lines.append(
            f"Infinite loss: {summary.rows_infinite} row"
            f"{'s' if summary.rows_infinite != 1 else ''} where {_infinite_cause(summary)}"
            f" ({shown}{more})"
        )
    return lines


def _infinite_cause(summary: Summary) -> str:
    """Why a row's loss is inf: a class of the target has probability 0. With labels
    alone that class is the true one; label smoothing and soft targets give other
    classes a share of the target, and any of them can be the one."""
    if summary.label_smoothing:
        return "a class has probability 0 and label smoothing gives it a share of the target"
    if summary.soft_targets:
        return "a class with a target above 0 has probability 0"
    return "the true class has probability 0"


def _loss_name(summary: Summary) -> str:
    return "Loss sum" if summary.reduction == "sum" else "Mean loss"


def _render_skipped(summary: Summary, console: Console) -> None:
    if not summary.rows_skipped:
        return
    shown = len(summary.skipped)
    more = f"; the first {shown}" if shown < summary.rows_skipped else ""
    _heading(
        console,
        f"Skipped {plural(summary.rows_skipped, 'bad row')} (--on-error skip){more}:",
    )
    for error in summary.skipped:
        console.print(Text(f"  {error}"))


def _render_distribution(summary: Summary, console: Console) -> None:
    q = summary.quantiles
    if summary.quantile_relative_error:
        how = f"p50, p90, p99 within {100 * summary.quantile_relative_error:g} %"
    else:
        how = "exact quantiles"
    _heading(console, f"Loss per row ({summary.units}; {how})")
    grid = Table.grid(padding=(0, 2))
    for _ in q:
        grid.add_column(justify="right")
    grid.add_row(*q.keys())
    grid.add_row(*(number(v) for v in q.values()))
    console.print(grid)
    bins = summary.histogram
    if not bins:
        return
    peak = max(b.rows for b in bins)
    bar = "█" if console.is_terminal else "#"
    table = _table(console)
    table.add_column(f"Loss ({summary.units})")
    table.add_column("Rows", justify="right")
    table.add_column("", no_wrap=True)
    labels = [
        number(b.low) if b.low == b.high else f"{number_short(b.low)} - {number_short(b.high)}"
        for b in bins
    ]
    # The bars shrink to fit a narrow terminal (label, rows and the gaps between stay whole).
    room = console.width - max(len(f"Loss ({summary.units})"), *map(len, labels))
    room -= max(4, len(str(peak))) + 6
    longest = max(8, min(HISTOGRAM_WIDTH, room))
    for b, label in zip(bins, labels, strict=True):
        length = 0 if b.rows == 0 else max(1, round(longest * b.rows / peak))
        table.add_row(label, str(b.rows), bar * length)
    console.print()
    console.print(table)


def number_short(value: float) -> str:
    """Three significant digits, for histogram edges.

    >>> number_short(0.0123456), number_short(12345.0)
    ('0.0123', '1.23e+04')
    """
    return f"{value:.3g}"


def costliest(classes: Sequence[ClassSummary], count: int = TOP_CLASSES) -> list[ClassSummary]:
    """The *count* classes with the largest share of the loss (ties: lower index first)."""
    present = [c for c in classes if c.rows]
    return sorted(present, key=lambda c: (-(c.share or 0.0), -c.loss_sum, c.index))[:count]


# What a narrow terminal drops first from the per-class table (#11 item 8: never wrap a
# row, never cut a figure): the loss's share, then precision and recall (F1 sums them up).
_DROPPED_FIRST = ("Share of loss", "Precision", "Recall", "F1")


def _render_classes(summary: Summary, console: Console) -> None:
    classes: Iterable[ClassSummary] = summary.per_class
    k = len(summary.per_class)
    if k <= MAX_CLASSES:
        title = "Per class" + (" (argmax of target)" if summary.soft_targets else "")
    else:
        classes = costliest(summary.per_class)
        title = f"The {TOP_CLASSES} costliest of {k} classes (by share of the total loss)"
    scores = summary.metrics.confusion.classes if summary.metrics is not None else None
    classes = list(classes)
    columns: dict[str, list[str]] = {
        "Class": [c.name for c in classes],
        "Rows": [str(c.rows) for c in classes],
        f"Mean loss ({summary.units})": column([c.loss for c in classes]),
        "Accuracy": [percent(c.accuracy) for c in classes],
        "Share of loss": [percent(c.share) for c in classes],
    }
    if scores is not None:
        columns["Precision"] = [figure(scores[c.index].precision) for c in classes]
        columns["Recall"] = [figure(scores[c.index].recall) for c in classes]
        columns["F1"] = [figure(scores[c.index].f1) for c in classes]
    left_out = fit_columns(columns, console, _DROPPED_FIRST)
    table = _table(console)
    fill_table(table, columns)
    if left_out:
        title += f" ({', '.join(left_out)} left out to fit {console.width} columns)"
    _heading(console, title)
    console.print(table)


def study_command(row: WorstRow, options: str = "") -> str:
    """The command that works *row* through, step by step.

    >>> study_command(WorstRow("runs/a b.csv", 218, 1, 2, 0.1, 2.3), " --base 2")
    "xent compute --from 'runs/a b.csv:218' --base 2"
    """
    import shlex

    return f"xent compute --from {shlex.quote(f'{row.file}:{row.line}')}{options}"


def _render_worst(summary: Summary, console: Console, study: str | None = None) -> None:
    if not summary.worst:
        return
    where = "FILE:row N" if summary.worst[0].unit == "row" else "FILE:LINE"
    _heading(console, f"Worst {plural(len(summary.worst), 'row')} ({where})")
    table = _table(console)
    table.add_column("#", justify="right")
    table.add_column("File:line")
    table.add_column("Label", justify="right")
    table.add_column("Predicted", justify="right")
    table.add_column("P(label)", justify="right")
    table.add_column(f"Loss ({summary.units})", justify="right")
    probabilities = column([w.probability for w in summary.worst])
    losses = column([w.loss for w in summary.worst])
    for rank, (w, probability, loss) in enumerate(
        zip(summary.worst, probabilities, losses, strict=True), start=1
    ):
        table.add_row(str(rank), w.place, str(w.label), str(w.predicted), probability, loss)
    _print_fitted(console, table, 1)
    worst = summary.worst[0].file
    if study is not None and worst != "<stdin>" and "://" not in worst:  # a local file
        console.print()
        # Never wrapped or cut: it is meant to be copied whole.
        console.print(
            Text(f"Study the worst row step by step: {study_command(summary.worst[0], study)}"),
            soft_wrap=True,
        )


# ----------------------------------------------------------------------- JSON / CSV
def render_json(summary: Summary) -> str:
    """The JSON document (the documented shape, full precision), with a final newline."""
    return dumps(summary.to_json()) + "\n"


CSV_COLUMNS = (
    "file",
    "rows",
    "rows_counted",
    "rows_ignored",
    "rows_skipped",
    "reduction",
    "loss",
    "units",
    "perplexity",
    "accuracy",
)


def _metric_columns(summary: Summary) -> tuple[list[str], list[str]]:
    """The evaluation columns of the CSV (names, pooled values): top-k, then the rest."""
    m = summary.metrics
    if m is None:
        return [], []
    ks = [k for k in m.top_k.hits if k != 1]
    names = ["brier", "ece", "ece_equal_mass", "mce"] + [f"top_{k}_accuracy" for k in ks]
    cal = m.calibration
    values = [m.brier.mean, cal.ece, cal.ece_equal_mass, cal.mce]
    values += [m.top_k.accuracy(k) for k in ks]
    return names, [full(v) for v in values]


def render_csv(summary: Summary) -> str:
    """One CSV line per file, then a line ``*`` for all files pooled; full precision.

    Every line has the loss, perplexity and accuracy of its rows (empty where undefined).
    The evaluation figures (Brier, ECE, MCE, top-k accuracy for each k above 1) are
    on the pooled line only; file lines leave them empty.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names, values = _metric_columns(summary)
    grouped = summary.groups is not None
    writer.writerow(CSV_COLUMNS + tuple(names) + (("group",) if grouped else ()))
    for f in summary.files:
        writer.writerow(
            [
                f.path,
                f.rows,
                f.rows_counted,
                f.rows_ignored,
                f.rows_skipped,
                summary.reduction,
                full(f.loss),
                summary.units,
                full(f.perplexity),
                full(f.accuracy),
                *([""] * len(names)),
                *([""] if grouped else []),
            ]
        )
    writer.writerow(
        [
            "*",
            summary.rows,
            summary.rows_counted,
            summary.rows_ignored,
            summary.rows_skipped,
            summary.reduction,
            full(summary.loss),
            summary.units,
            full(summary.perplexity),
            full(summary.accuracy),
            *values,
            *([""] if grouped else []),
        ]
    )
    for group in summary.groups or ():
        part = group.summary
        writer.writerow(
            [
                "*",
                part.rows,
                part.rows_counted,
                part.rows_ignored,
                part.rows_skipped,
                part.reduction,
                full(part.loss),
                part.units,
                full(part.perplexity),
                full(part.accuracy),
                *_metric_columns(part)[1],
                group.name,
            ]
        )
    return out.getvalue()


# ------------------------------------------------------------------------- per row
PER_ROW_COLUMNS = ("file", "line", "label", "predicted", "probability", "loss")


def _csv_field(text: str) -> str:
    """One CSV field, quoted as the csv module would (minimal quoting).

    >>> _csv_field("a.csv"), _csv_field('a,"b".csv')
    ('a.csv', '"a,""b"".csv"')
    """
    if any(c in text for c in ',"\r\n') or text != text.strip(" "):
        return '"' + text.replace('"', '""') + '"'
    return text


def _full_text(value: float) -> str:
    # repr is the shortest round-tripping text; nan (an ignored row) is left empty.
    return "" if value != value else repr(value)


def per_row_lines(result: ChunkResult, names: Sequence[str] | None = None) -> str:
    """CSV text of one chunk's rows (no header): full precision; ignored rows have empty
    probability and loss. With *names*, labels and predictions are class names.

    Vectorised per chunk (no csv.writer call per row): per-row output of millions of
    rows is written at the speed of ``repr``.
    """
    prefix = _csv_field(result.path) + ","
    if names is not None:
        quoted = [_csv_field(name) for name in names]
        k = len(quoted)
        labels = [quoted[i] if 0 <= i < k else str(i) for i in result.labels.tolist()]
        predicted = [quoted[i] for i in result.predicted.tolist()]
    else:
        labels = result.labels.tolist()
        predicted = result.predicted.tolist()
    probability = [_full_text(v) for v in result.probability.tolist()]
    loss = [_full_text(v) for v in result.loss.tolist()]
    return "".join(
        f"{prefix}{line},{label},{pred},{prob},{row_loss}\n"
        for line, label, pred, prob, row_loss in zip(
            result.lines.tolist(), labels, predicted, probability, loss, strict=True
        )
    )


def per_row_header() -> str:
    """The header line of the ``--per-row`` CSV."""
    return ",".join(PER_ROW_COLUMNS) + "\n"
