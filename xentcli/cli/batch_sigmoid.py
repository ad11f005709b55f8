"""``xent batch --sigmoid``: multi-label files (one sigmoid output and target per label).

The score columns hold logits, probabilities or log-probabilities (``--scores``); with
``--scores auto`` the kind is detected from the first rows of each file (every score in
[0, 1]: probabilities; otherwise logits) and said on stderr and in the report.

Called by :mod:`xentcli.cli.batch` once the options are parsed. The options that belong
to the softmax report (class weights, smoothing, probabilities, calibration, top-k...)
are refused with a usage error (exit 2) rather than ignored; bad cells exit 1 with the
reader's ``Error: FILE:LINE:COLUMN: ...``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable
from typing import IO, Any

import click

from xentcli.cli.tools import BadInvocation, reading_errors

#: options refused with --sigmoid when given: parameter name -> (option, why)
_REFUSED = {
    "label_column": ("--label-column", "give the targets with --target-columns, one per logit"),
    "sum_tolerance": ("--sum-tolerance", "sigmoid targets are not distributions"),
    "renormalize": ("--renormalize", "sigmoid targets are not distributions"),
    "clip": (
        "--clip",
        "probabilities are scored as given (p = 0 for a positive target is an infinite loss)",
    ),
    "class_names": ("--classes", "the labels are the logit columns' names"),
    "labels_path": ("--labels", "give --targets FILE.npy: one 0/1 target per logit"),
    "labels_key": ("--labels-key", "the targets of a .npz are its 'targets' array"),
    "save_state": ("--save-state", "not available with --sigmoid yet (no xent merge)"),
    "dtype": ("--dtype", "it works the softmax loss through"),
    "frameworks": ("--frameworks", "it compares softmax conventions"),
    "top_k": ("--top-k", "each label is a yes/no question: see the exact match"),
    "bins": ("--bins", "calibration is a softmax report's"),
    "ci": ("--ci", "intervals are a softmax report's"),
    "bootstrap": ("--bootstrap", "intervals are a softmax report's"),
    "seed": ("--seed", "it seeds the bootstrap"),
    "scheduler": ("--scheduler", "--engine dask does not read --sigmoid files"),
    "workers": ("--workers", "--engine dask does not read --sigmoid files"),
    "weight_column": ("--weight-column", "not available with --sigmoid yet"),
    "group_by": ("--group-by", "not available with --sigmoid yet"),
}


#: the parameters --sigmoid reads (or checks below); any other option given is refused,
#: so that an option added to xent batch later is never silently ignored here
_READ = {
    "files", "delimiter", "header", "logit_columns", "target_columns", "base", "reduction",
    "worst", "fmt", "per_row", "on_error", "progress", "file_format", "targets_path",
    "scores_key", "sigmoid", "pos_weight", "chunk_rows", "part_bytes", "scores", "engine",
    "logprob_column", "sequence_column", "bytes_column",
    "weights", "ignore_index", "label_smoothing", "temperature", "exact",
}  # fmt: skip


def refuse_options(ctx: click.Context, params: dict[str, Any]) -> None:
    """Exit 2 for an option given with ``--sigmoid`` that has no meaning there."""
    from click.core import ParameterSource

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source is not ParameterSource.DEFAULT

    for name, (option, why) in _REFUSED.items():
        if given(name):
            raise BadInvocation(f"{option} cannot be used with --sigmoid: {why}")
    for parameter in ctx.command.params:
        name = parameter.name or ""
        if name not in _READ and name not in _REFUSED and given(name):
            option = max(parameter.opts, key=len)
            raise BadInvocation(f"{option} cannot be used with --sigmoid (not available there)")
    loss = params["loss"]
    softmax_only = {
        "--weights": loss.weights is not None,
        "--ignore-index": loss.ignore_index is not None,
        "--label-smoothing": loss.label_smoothing != 0,
        "--temperature": loss.temperature != 1,
        "--exact": loss.exact,
    }
    for option, is_given in softmax_only.items():
        if is_given:
            raise BadInvocation(
                f"{option} cannot be used with --sigmoid: it goes with the softmax loss"
                " (--pos-weight weighs each label's positive term)"
            )
    if params["scores"] == "token-logprobs":
        raise BadInvocation(
            "--scores token-logprobs cannot be used with --sigmoid: it reads one logit,"
            " probability or log-probability per label"
        )
    if params["logprob_column"] or params["sequence_column"] or params["bytes_column"]:
        raise BadInvocation("--sigmoid reads logits and targets, not token log-probabilities")
    if params["per_row"] == "-" and params["fmt"] != "table":
        raise BadInvocation(
            f"--per-row - and --format {params['fmt']} both write to standard output;"
            " give --per-row a file"
        )
    if params["engine"] == "dask":
        raise BadInvocation("--engine dask does not read --sigmoid files: use --engine local")
    if params["target_columns"] is None and params["targets_path"] is None:
        raise BadInvocation(
            "--sigmoid needs --target-columns: one 0/1 (or soft) target column per logit"
            " column, in the same order (e.g. --logit-columns 'logit_*' --target-columns 'y_*')"
        )


def run(
    paths: list[str],
    columns: tuple[Any, ...],
    params: dict[str, Any],
    pos_weight: list[float] | None,
    progress: Callable[[bool, list[str]], Any],
    per_row: IO[str] | None = None,
) -> None:
    """Read *paths* as multi-label rows and print the report (see the module docstring).

    *columns* are the column options' values (:data:`~xentcli.cli.columns.COLUMN_PARAMETERS`);
    *progress* makes xent batch's progress bar (enabled, paths); *per_row*, when given,
    receives a CSV line per row (``--per-row``; the report then goes to stderr if it is
    standard output).
    """
    from xentcli.batch.multilabel import MultiLabelOptions
    from xentcli.batch.reader import ReadOptions
    from xentcli.cli.columns import column_arguments, column_fields

    read_fields = column_fields(*columns)
    # What xent compute --sigmoid --from needs to read the worst row and score it alike.
    study = column_arguments(*columns)
    if params["scores"] != "auto":  # given: compute would detect as batch would have
        study += f" --scores {params['scores']}"
    if pos_weight is not None:
        study += " --pos-weight " + ",".join(map(repr, pos_weight))
    if params["loss"].base != "e":
        study += f" --base {params['loss'].base}"

    loss = params["loss"]
    extra: dict[str, Any] = {}
    if params["chunk_rows"] is not None:
        extra["chunk_rows"] = params["chunk_rows"]
    read_options = ReadOptions(
        **read_fields,
        on_error="skip" if params["on_error"] == "skip" else "raise",
        file_format=params["file_format"],
        targets_path=params["targets_path"],
        scores_key=params["scores_key"],
        scores=params["scores"],
        multilabel=True,
        roles=(),  # --sigmoid takes neither --weight-column nor --group-by yet
        **extra,
    )
    options = MultiLabelOptions(
        pos_weight=None if pos_weight is None else tuple(pos_weight),
        base=loss.base,
        reduction=params["reduction"],
        worst=params["worst"],
    )
    show = sys.stderr.isatty() if params["progress"] is None else params["progress"]
    bar = progress(show, paths)
    try:
        accumulator = _accumulate(paths, read_options, options, bar, per_row)
    finally:
        bar.stop()
    summary = accumulator.summary()
    to_stderr = per_row is sys.stdout
    _print(summary, params["fmt"], None if params["targets_path"] else study, to_stderr)


def _accumulate(
    paths: list[str], read_options: Any, options: Any, bar: Any, per_row: IO[str] | None
) -> Any:
    from xentcli.batch import multilabel_report as report
    from xentcli.batch.multilabel import MultiLabelAccumulator
    from xentcli.batch.reader import open_table

    accumulator: MultiLabelAccumulator | None = None
    first = current = ""
    with reading_errors(lambda: current):
        for path in paths:
            current = path
            with open_table(path, read_options) as table:
                current = table.display_name
                labels = list(table.logit_names)
                if accumulator is None:
                    accumulator = _new(table, labels, options)
                    first = table.display_name
                    if per_row is not None:
                        per_row.write(report.per_row_header(labels))
                elif labels != accumulator.labels:
                    raise BadInvocation(
                        f"{first} has the labels {', '.join(accumulator.labels)} but"
                        f" {table.display_name} has {', '.join(labels)}"
                    )
                else:
                    _same_scores(accumulator, table, first)
                for note in getattr(table, "notes", ()):
                    click.echo(f"{table.display_name}: {note}", err=True)
                accumulator.start_file(table.display_name)
                for chunk in table.chunks():
                    assert chunk.targets is not None
                    rows = accumulator.add(
                        chunk.logits, chunk.targets, chunk.lines, chunk.unit, per_row is not None
                    )
                    if rows is not None and per_row is not None:
                        per_row.write(report.per_row_lines(rows))
                    bar.update(table.display_name, table.bytes_read, len(chunk.lines))
                accumulator.add_skipped(table.rows_skipped, list(table.skipped))
                bar.file_done(table.bytes_read)
    assert accumulator is not None
    return accumulator


def _new(table: Any, labels: list[str], options: Any) -> Any:
    """The run's accumulator, for the labels of its first file."""
    from xentcli.batch.multilabel import MultiLabelAccumulator

    targets = table.target_names
    if targets is None:
        raise BadInvocation(f"{table.display_name}: --sigmoid needs a target column per logit")
    weights = options.pos_weight
    if weights is not None and len(weights) != len(labels):
        raise BadInvocation(
            f"--pos-weight: {len(weights)} values for {len(labels)} labels"
            f" ({', '.join(labels)}): give one per logit column"
        )
    options = dataclasses.replace(
        options,
        scores=getattr(table, "scores", "logits"),
        scores_detected=getattr(table, "scores_detected", False),
    )
    return MultiLabelAccumulator(labels, list(targets), options)


def _same_scores(accumulator: Any, table: Any, first: str) -> None:
    """Exit 2 when a later file was detected as another kind of scores (as xent batch)."""
    from xentcli.batch._kinds import mixed_kinds

    kind = accumulator.options.scores
    other = getattr(table, "scores", "logits")
    if other != kind:
        raise BadInvocation(mixed_kinds(first, kind, table.display_name, other))


def _print(summary: Any, fmt: str, study: str | None, to_stderr: bool = False) -> None:
    from xentcli.batch import multilabel_report as report
    from xentcli.cli.tools import make_console
    from xentcli.text import plural

    if summary.rows_skipped:
        lines = ", ".join(f"{e.path}:{e.line}" for e in summary.skipped)
        click.echo(
            f"Warning: skipped {plural(summary.rows_skipped, 'bad row')} (first: {lines})",
            err=True,
        )
    if fmt != "table":
        # As xent batch: the kind of scores and the infinite losses on stderr, except
        # logits, the historical default (the JSON says it).
        notes = report.input_lines(summary)
        for note in notes[1:] if summary.scores == "logits" else notes:
            click.echo(note, err=True)
    if fmt != "table" and summary.soft_targets:
        click.echo(
            f"Note: {plural(summary.soft_targets, 'target')} neither 0 nor 1 (the first at"
            f" {summary.first_soft}): no exact match or accuracy",
            err=True,
        )
    if summary.loss is None and fmt != "table":
        click.echo("Warning: the mean loss is undefined: no row was read", err=True)
    if fmt == "json":
        click.echo(report.render_json(summary), nl=False)
    elif fmt == "csv":
        click.echo(report.render_csv(summary), nl=False)
    else:
        report.render_table(summary, make_console(stderr=to_stderr), study=study)
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
