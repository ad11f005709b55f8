"""``xent compare A B``: two models' outputs on the same rows, and whether B is better.

Reads A and B with ``xent batch``'s reading and loss options (the same click options,
shared), pairs their rows (by position; with ``--on-error skip``, by line or row number so
that a row skipped on one side skips its pair; with ``--id-column``, by id), and prints each side's figures, the
paired difference with its interval, McNemar's exact test and the rows that changed
most. ``--fail-if-worse`` makes it a gate for CI pipelines: exit 3 when B's mean loss is
higher than A's by more than ``--margin`` and the interval lies above the margin.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import TYPE_CHECKING, Any

import click

from xentcli.cli.batch import batch as _batch
from xentcli.cli.exitcodes import ExitCode
from xentcli.cli.params import REPORT_FORMAT, Number, bootstrap_options, loss_options
from xentcli.cli.tools import BadInvocation, reading_errors

if TYPE_CHECKING:
    from xentcli.core import LossOptions

EPILOG = """\b
Examples:
  xent compare examples/digits.csv examples/digits_boosted.csv
  xent compare old.parquet new.parquet --format json
  xent compare old.csv new.csv --fail-if-worse --margin 0.01   (exit 3 if worse)
  xent compare a.csv b.csv --ci 0.99 --worst 10
  xent compare a.csv b.csv --bootstrap 1000 --seed 1   (paired bootstrap intervals)
  xent compare old.csv shuffled.parquet --id-column id   (pair rows by id)
"""

#: the options of ``xent batch`` that ``xent compare`` takes as they are (how to read the
#: files); the loss options come from the shared ``loss_options`` decorator
SHARED = (
    "delimiter",
    "header",
    "label_column",
    "logit_columns",
    "target_columns",
    "class_names",
    "on_error",
    "file_format",
    "labels_path",
    "targets_path",
    "scores_key",
    "labels_key",
    "scores",
    "sum_tolerance",
    "renormalize",
    "clip",
)


def _shared(command: Any) -> Any:
    """Give *command* the reading options of ``xent batch`` (the same click objects)."""
    by_name = {param.name: param for param in _batch.params}
    for name in SHARED:
        if name in by_name:
            command.params.append(by_name[name])
    return command


@_shared
@click.command(epilog=EPILOG, context_settings={"max_content_width": 100})
@click.argument("file_a", metavar="A")
@click.argument("file_b", metavar="B")
@loss_options(ignore_index=True)
@click.option(
    "--id-column",
    metavar="NAME",
    default=None,
    help="Pair the rows of A and B by this column's values (a join; CSV, Parquet, Arrow,"
    " JSON Lines; in an .npz, the array NAME),"
    " not by position. Memory grows with the rows: about 57 bytes per row and file plus the"
    " ids' text; files of more than 20,000,000 rows are refused. Ids must be unique; an id"
    " in one file only is an error (--on-error skip: counted as unpaired).",
)
@click.option(
    "--worst",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="How many rows whose loss rose most (and fell most) to show.",
)
@click.option(
    "--ci",
    type=Number("a number in [0, 1)", low=0.0, high=1.0, high_open=True),
    default="0.95",
    show_default=True,
    metavar="LEVEL",
    help="Level of the intervals of the differences (0: none).",
)
@bootstrap_options(
    "every difference (paired) and each side's figures",
    "a pair's weights depend only on the seed and the pair's number, or its id with"
    " --id-column: the same on both sides",
)
@click.option(
    "--fail-if-worse",
    is_flag=True,
    help="Exit 3 when B's mean loss exceeds A's by more than --margin, beyond the interval.",
)
@click.option(
    "--margin",
    type=Number("a finite number >= 0", low=0.0, finite=True),
    default="0",
    show_default=True,
    metavar="M",
    help="With --fail-if-worse: how much worse B may be (in the loss's units).",
)
@REPORT_FORMAT
def compare(
    file_a: str,
    file_b: str,
    loss: LossOptions,
    worst: int,
    ci: float,
    bootstrap: int,
    seed: int,
    fail_if_worse: bool,
    margin: float,
    fmt: str,
    id_column: str | None,
    **reading: Any,
) -> None:
    """Compare two models' outputs on the same rows: the difference and whether it is real.

    A and B hold the same rows in the same order (any format xent batch reads), with the
    same labels. Each side's figures are those of xent batch on that file alone; B - A
    comes with an interval and McNemar's exact test, and the rows that changed most.
    """
    from xentcli.batch.accumulator import BatchOptions
    from xentcli.batch.compare import CompareOptions, compare_files
    from xentcli.batch.reader import ReadOptions

    if "-" in (file_a, file_b):
        raise BadInvocation("compare reads two files: standard input ('-') cannot be one")
    if bootstrap and ci == 0:
        raise BadInvocation("--bootstrap needs intervals: give --ci a level above 0")
    label_column = reading.get("label_column")
    if reading.get("target_columns") is not None and label_column is not None:
        raise BadInvocation("--target-columns and --label-column cannot be used together")
    if label_column is not None and re.fullmatch(r"-?\d+", label_column.strip()):
        reading["label_column"] = int(label_column)
    reading["on_error"] = "skip" if reading.get("on_error") == "skip" else "raise"
    clip = reading.pop("clip", None)  # the loss's, not the reader's
    if clip is not None and loss.temperature != 1.0:
        raise BadInvocation(
            "--clip reproduces a library's clipped log-loss, which has no temperature:"
            " give --clip or --temperature, not both"
        )
    if loss.exact:
        # The paired difference and the sides' means are not held to correct rounding
        # here yet: refused rather than taken silently (docs/accuracy.md).
        raise BadInvocation("--exact is not available in xent compare yet")
    read_options = ReadOptions(
        ignore_index=loss.ignore_index, id_column=id_column, roles=("id",), **reading
    )
    options = BatchOptions(
        weights=None if loss.weights is None else list(loss.weights),
        ignore_index=loss.ignore_index,
        label_smoothing=loss.label_smoothing,
        temperature=loss.temperature,
        base=loss.base,
        worst=0,
        class_names=reading.get("class_names"),
        renormalize=bool(reading.get("renormalize")),
        clip=clip,
    )

    def current() -> str:
        # the file a system error is about, when it carries no name: the first that
        # is not a readable file (the readers name their own files otherwise)
        return next((p for p in (file_a, file_b) if not os.path.isfile(p)), file_b)

    # xent batch's mapping of reading errors to exit codes (a column option naming no
    # column: 2, a bad cell or file: 1), the same object so that the two cannot drift
    notes: list[str] = []
    with reading_errors(current):
        summary = compare_files(
            file_a,
            file_b,
            read_options,
            options,
            CompareOptions(worst, ci, margin, bootstrap, seed),
            notes,
        )
    for note in notes:  # what the readers inferred, as xent batch says it
        click.echo(note, err=True)
    from xentcli.batch import compare_report

    if fmt == "json":
        compare_report.write_json(summary, sys.stdout.write)
    elif fmt == "csv":
        click.echo(compare_report.render_csv(summary), nl=False)
    else:
        from xentcli.cli.tools import make_console

        compare_report.render_table(summary, make_console())
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    if fail_if_worse and summary.worse:
        click.echo(
            f"Error: B is worse than A: mean loss {summary.loss_difference:+.6g}"
            f" {summary.units} (margin {margin:g})",
            err=True,
        )
        sys.exit(ExitCode.WORSE)
