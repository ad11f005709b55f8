"""Rendering of a :class:`~xentcli.batch.multilabel.MultiLabelSummary`: table, JSON, CSV."""

from __future__ import annotations

import csv
import io
import shlex
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from xentcli.batch._report_metrics import fill_table, fit_columns
from xentcli.batch.report import (
    _heading,
    _print_fitted,
    _table,
    full,
    number,
    percent,
    scores_line,
)
from xentcli.text import dumps, plural

if TYPE_CHECKING:
    from rich.console import Console

    from xentcli.batch.multilabel import ChunkRows, MultiLabelSummary


def render_json(summary: MultiLabelSummary) -> str:
    """The JSON document (full precision), with a final newline."""
    return dumps(summary.to_json()) + "\n"


CSV_COLUMNS = (
    "file",
    "label",
    "rows",
    "reduction",
    "loss",
    "units",
    "accuracy",
    "exact_match",
    "scores",
)


def render_csv(summary: MultiLabelSummary) -> str:
    """One CSV line per file, one per label (``*`` in the file column), then ``*,*``
    with the pooled figures; full precision, empty where undefined.

    A file's and the pooled ``loss`` are reduced as ``--reduction`` says (mean over rows
    and labels, or the sum); a label's is its mean over the rows; ``accuracy`` of the
    pooled line is 1 - Hamming loss (the share of labels right); ``scores`` is what the
    score columns hold (``logits``, ``probs`` or ``logprobs``), on every line.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    kind = summary.scores
    for f in summary.files:
        writer.writerow(
            [f.path, "*", f.rows, summary.reduction, full(f.loss), summary.units, "", "", kind]
        )
    accuracy = _accuracies(summary)
    for name, loss, acc in zip(summary.labels, summary.label_loss, accuracy, strict=True):
        writer.writerow(
            ["*", name, summary.rows, "mean", full(loss), summary.units, full(acc), "", kind]
        )
    hamming = summary.hamming_loss
    writer.writerow(
        [
            "*",
            "*",
            summary.rows,
            summary.reduction,
            full(summary.loss),
            summary.units,
            full(None if hamming is None else 1.0 - hamming),
            full(summary.exact_match),
            kind,
        ]
    )
    return out.getvalue()


def per_row_header(labels: list[str]) -> str:
    """The header of ``--per-row``: file, line, the row's mean loss, the labels wrong,
    then each label's loss (``loss_`` and the logit column's name)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        ["file", "line", "loss", "wrong_labels", *(f"loss_{name}" for name in labels)]
    )
    return out.getvalue()


def per_row_lines(rows: ChunkRows) -> str:
    """One CSV line per row of the chunk, full precision; ``wrong_labels`` is empty for a
    row with a soft target."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line, loss, wrong, losses in zip(
        rows.lines.tolist(),
        rows.loss.tolist(),
        rows.wrong.tolist(),
        rows.label_loss.tolist(),
        strict=True,
    ):
        writer.writerow(
            [rows.path, line, full(loss), "" if wrong < 0 else wrong, *map(full, losses)]
        )
    return out.getvalue()


def render_table(summary: MultiLabelSummary, console: Console, *, study: str | None = None) -> None:
    """Print the figures a person reads: the mean loss, exact match, per label, worst rows.

    With *study* (the column and loss options as command-line text), the worst row is
    followed by the ``xent compute --sigmoid --from FILE:LINE`` command that works it
    through (logits, probabilities or log-probabilities alike). Plain output has its
    lines' trailing padding removed.
    """
    if console.is_terminal:
        _render(summary, console, study)
        return
    width = console.width
    console.width = 1 << 16  # output to a file or a pipe is never cut
    try:
        with console.capture() as captured:
            _render(summary, console, study)
    finally:
        console.width = width
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _render(summary: MultiLabelSummary, console: Console, study: str | None) -> None:
    units = summary.units
    n_labels = len(summary.labels)
    console.print(
        Text(
            f"xent batch --sigmoid: {plural(len(summary.files), 'file')}, "
            f"{plural(summary.rows, 'row')} x {plural(n_labels, 'label')} "
            f"({summary.rows_skipped} skipped)",
            style="bold",
        )
    )
    if len(summary.files) > 1:
        files = _table(console)
        files.add_column("File")
        files.add_column("Rows", justify="right")
        files.add_column(f"{_loss_name(summary)} ({units})", justify="right")
        for f in summary.files:
            files.add_row(f.path, str(f.rows), number(f.loss))
        console.print()
        _print_fitted(console, files, 0)  # a long path cut from the left
    elif summary.files:
        console.print(f"File: {summary.files[0].path}")
    for line in input_lines(summary):
        console.print(Text(line))
    console.print(Text(_targets_line(summary)))
    console.print()
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column()
    if summary.reduction == "sum":
        grid.add_row("Loss (sum over rows and labels)", f"{number(summary.loss)} {units}")
    elif summary.loss is None:
        grid.add_row("Mean loss (over rows and labels)", "undefined: no row was read")
    else:
        grid.add_row("Mean loss (over rows and labels)", f"{number(summary.loss)} {units}")
    if summary.pos_weight is not None:
        grid.add_row("pos_weight", ", ".join(f"{w:g}" for w in summary.pos_weight))
    if summary.exact_match is not None:
        grid.add_row(
            "Exact match (every label right)",
            f"{percent(summary.exact_match)} ({summary.exact_matches} of "
            f"{plural(summary.rows, 'row')})",
        )
        grid.add_row("Hamming loss (share of labels wrong)", number(summary.hamming_loss))
    grid.add_row("Predicted 1", _PREDICTED[summary.scores])
    console.print(grid)
    if summary.rows_skipped:
        _heading(console, f"Skipped {plural(summary.rows_skipped, 'bad row')} (--on-error skip):")
        for error in summary.skipped:
            console.print(Text(f"  {error}"))
    if not summary.rows:
        return
    # In a narrow terminal a row never wraps and a figure is never cut (as xent batch's
    # per-class table): the target column's name goes first, then the counts.
    columns: dict[str, list[str]] = {
        "Label": list(summary.labels),
        "Target": list(summary.target_columns),
        "Positives": [f"{p:g}" for p in summary.label_positives],
        "Predicted": [str(p) for p in summary.label_predicted],
        f"Mean loss ({units})": [number(loss) for loss in summary.label_loss],
        "Accuracy": [percent(a) for a in _accuracies(summary)],
    }
    left_out = fit_columns(columns, console, ("Target", "Predicted", "Positives"))
    title = "Per label"
    if left_out:
        title += f" ({', '.join(left_out)} left out to fit {console.width} columns)"
    _heading(console, title)
    table = _table(console)
    fill_table(table, columns, text=2 if "Target" in columns else 1)
    console.print(table)
    _render_worst(summary, console, study)


_PREDICTED = {
    "logits": "where the label's logit is > 0 (sigma(x) > 0.5)",
    "probs": "where the label's probability is > 0.5",
    "logprobs": "where the label's probability is > 0.5 (its log-probability > -ln 2)",
}

#: how each kind of scores is scored, in the Targets line
_SCORED = {
    "logits": "binary cross-entropy with logits",
    "probs": "binary cross-entropy of the probabilities",
    "logprobs": "binary cross-entropy of the probabilities",
}


def input_lines(summary: MultiLabelSummary) -> list[str]:
    """What was read: the kind of scores, and the rows of infinite loss if any (the
    table prints them; with --format json or csv they go to stderr)."""
    lines = [f"Scores: {scores_line(summary.scores, summary.scores_detected)}"]
    if summary.rows_infinite:
        from xentcli.batch._types import place

        shown = ", ".join(place(f, n, unit) for f, n, unit in summary.infinite_rows)
        more = ", ..." if summary.rows_infinite > len(summary.infinite_rows) else ""
        lines.append(
            f"Infinite loss: {plural(summary.rows_infinite, 'row')} where a label's probability"
            f" is 0 with a target > 0, or 1 with a target < 1 ({shown}{more})"
        )
    return lines


def _accuracies(summary: MultiLabelSummary) -> list[float | None]:
    """Each label's accuracy, None for every label with soft targets."""
    if summary.label_accuracy is None:
        return [None] * len(summary.labels)
    return list(summary.label_accuracy)


def _loss_name(summary: MultiLabelSummary) -> str:
    return "Loss sum" if summary.reduction == "sum" else "Mean loss"


def _targets_line(summary: MultiLabelSummary) -> str:
    if not summary.soft_targets:
        return f"Targets: 0/1, one per label ({_SCORED[summary.scores]}, per label)"
    return (
        f"Targets: soft ({plural(summary.soft_targets, 'target')} neither 0 nor 1, the first"
        f" at {summary.first_soft}): no exact match or accuracy"
    )


def _render_worst(summary: MultiLabelSummary, console: Console, study: str | None) -> None:
    if not summary.worst:
        return
    where = "FILE:row N" if summary.worst[0].unit == "row" else "FILE:LINE"
    _heading(
        console,
        f"Worst {plural(len(summary.worst), 'row')} ({where}; mean loss over the row's labels)",
    )
    table = _table(console)
    table.add_column("#", justify="right")
    table.add_column("File:line")
    table.add_column(f"Loss ({summary.units})", justify="right")
    table.add_column("Labels wrong", justify="right")
    for rank, w in enumerate(summary.worst, start=1):
        wrong = "-" if w.wrong is None else f"{w.wrong} of {len(summary.labels)}"
        table.add_row(str(rank), w.place, number(w.loss), wrong)
    _print_fitted(console, table, 1)  # never cut into the file name and line
    first = summary.worst[0]
    if study is not None and first.unit == "line" and first.file != "<stdin>":
        command = (
            f"xent compute --sigmoid --from {shlex.quote(f'{first.file}:{first.line}')}{study}"
        )
        console.print()
        console.print(Text(f"Study the worst row step by step: {command}"), soft_wrap=True)
