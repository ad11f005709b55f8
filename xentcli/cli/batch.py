"""``xent batch``: stream CSV files of model outputs into a loss report.

Only this module prints and chooses exit codes for the command: bad data exits 1 with
``Error: FILE:LINE:COLUMN: ...``; a bad or conflicting option exits 2. The heavy modules
(numpy, rich, the reader) are imported inside the command so ``xent --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import re
import shlex
import sys
from typing import IO, TYPE_CHECKING, Any

import click

from xentcli.cli.columns import column_arguments, column_fields, column_options
from xentcli.cli.params import (
    CLIP,
    NAMES,
    POS_WEIGHT_HELP,
    REPORT_FORMAT,
    SUM_TOLERANCE,
    WEIGHTS,
    Number,
    bootstrap_options,
    loss_options,
    split_list,
)
from xentcli.cli.tools import BadData, BadInvocation, reading_errors
from xentcli.errors import ColumnError, DataError, XentError

if TYPE_CHECKING:
    from rich.progress import Progress

    from xentcli.core import LossOptions

EPILOG = """\b
Examples:
  xent batch examples/digits.csv
  xent batch 'runs/*.csv.gz' --worst 10
  xent batch preds.tsv --label-column y --logit-columns 'logit_*' --base 2
  xent batch examples/digits_distill.csv --target-columns 'target_*'
  xent batch preds.csv --no-header --label-column 0 --logit-columns 1:11
  xent batch preds.csv --classes cat,dog,bird --weights 1,2,0.5 --format json
  xent batch preds.csv --per-row rows.csv --on-error skip
  xent batch preds.parquet --weight-column importance
  xent batch preds.csv --group-by language --format json
  xent batch shard1.csv --save-state shard1.state   (then: xent merge *.state)
  xent batch tags.csv --sigmoid --logit-columns 'logit_*' --target-columns 'y_*'
  xent batch examples/digits.csv --plot report.png   (needs xent[plot])
  zcat preds.csv.gz | xent batch - --format csv
"""


def _top_k(text: str | None) -> tuple[int, ...] | None:
    """The ``--top-k`` list: whole numbers >= 1 (exit 2 otherwise).

    >>> _top_k("1,5"), _top_k(None)
    ((1, 5), None)
    """
    if text is None:
        return None
    values = []
    for item in split_list(text) or [""]:
        if not re.fullmatch(r"\d+", item) or int(item) < 1:
            raise BadInvocation(f"--top-k: {item!r} is not a whole number >= 1")
        values.append(int(item))
    return tuple(values)


def expand_paths(paths: tuple[str, ...]) -> list[str]:
    """Expand directories (their files of a known format) and quoted shell globs.

    A glob that names a file literally is that file; matches are sorted, per pattern.

    >>> expand_paths(("-",))
    ['-']
    """
    from xentcli.batch.reader import is_model_output

    out: list[str] = []
    for path in paths:
        if path != "-" and os.path.isdir(path):
            found = sorted(
                os.path.join(path, name)
                for name in os.listdir(path)
                if is_model_output(name) and os.path.isfile(os.path.join(path, name))
            )
            if not found:
                raise BadData(
                    f"{path}: is a directory with no file of a known format"
                    " (.csv .tsv .parquet .arrow .feather .npy .npz .jsonl)"
                )
            out.extend(found)
            continue
        if path == "-" or os.path.lexists(path) or not glob.has_magic(path):
            out.append(path)
            continue
        matches = sorted(glob.glob(path))
        if not matches:
            raise BadData(f"{path}: no file matches this pattern")
        out.extend(matches)
    return out


class _Progress:
    """The progress bar on stderr: bytes, rows per second and time left (no-op when off)."""

    def __init__(self, enabled: bool, paths: list[str]) -> None:
        self.enabled = enabled
        self.rows = 0
        self.done_bytes = 0
        self._progress: Progress | None = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column
        from rich.text import Text

        from xentcli.cli.tools import make_console

        class RowsPerSecond(ProgressColumn):
            def render(self, task: Task) -> Text:
                elapsed = task.elapsed or 0.0
                rows = int(task.fields.get("rows", 0))
                rate = rows / elapsed if elapsed > 0 else 0.0
                return Text(f"{rows:,} rows {rate:,.0f}/s", no_wrap=True)

        sizes = []
        for path in paths:
            try:
                sizes.append(None if path == "-" else os.path.getsize(path))
            except OSError:
                sizes.append(None)
        total = None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)
        console = make_console(stderr=True)
        # One line whatever the terminal's width: a narrow one drops the rate, shortens
        # the file name (from the left) and the bar.
        self._name_width = 24 if console.width >= 100 else 16
        narrow = console.width < 100
        columns: list[ProgressColumn] = [
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=24 if not narrow else max(6, console.width - 50)),
            DownloadColumn(table_column=Column(no_wrap=True)),
        ]
        if not narrow:
            columns.append(RowsPerSecond(table_column=Column(no_wrap=True)))
        columns.append(TimeRemainingColumn(table_column=Column(no_wrap=True)))
        self._progress = Progress(*columns, console=console, transient=True)
        self._task = self._progress.add_task("xent batch", total=total, rows=0)
        self._progress.start()

    def update(self, name: str, bytes_read: int, rows: int) -> None:
        if self._progress is None:
            return
        self.rows += rows
        # The end of the name, cut from the left: it says which file, the bar how far.
        width = self._name_width
        self._progress.update(
            self._task,
            description=name if len(name) <= width else "…" + name[1 - width :],
            completed=self.done_bytes + bytes_read,
            rows=self.rows,
        )

    def file_done(self, bytes_read: int) -> None:
        self.done_bytes += bytes_read

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _per_row_output(stack: contextlib.ExitStack[Any], path: str | None) -> IO[str] | None:
    """The per-row output: None, stdout for '-', or an atomic file entered on *stack*."""
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    from xentcli.cli.atomic import atomic_output

    try:
        return stack.enter_context(atomic_output(path))
    except OSError as error:
        raise BadData(f"{path}: cannot write the per-row file: {error.strerror or error}") from None


def _refuse_overwriting_an_input(per_row: str, paths: list[str], option: str = "--per-row") -> None:
    """Exit 2 if an output file is one of the inputs: the rename would destroy it."""
    try:
        target = os.stat(per_row)
    except OSError:
        return  # it does not exist yet, so it is no input
    for path in paths:
        if path == "-":
            continue
        try:
            source = os.stat(path)
        except OSError:
            continue  # the reader reports a missing input with its own message
        if (source.st_dev, source.st_ino) == (target.st_dev, target.st_ino):
            raise BadInvocation(
                f"{option} {per_row} is the input file {path}: writing it would destroy the data"
            )


@click.command(epilog=EPILOG, context_settings={"max_content_width": 100})
@click.argument("files", nargs=-1, required=True, metavar="FILES...")
@column_options
@click.option(
    "--scores",
    type=click.Choice(["auto", "logits", "probs", "logprobs", "token-logprobs"]),
    default="auto",
    show_default=True,
    help="What the score columns hold (auto: detected from the first rows of each file; with "
    "--sigmoid every score in [0, 1] is probs, else logits, and logprobs is never detected; "
    "token-logprobs: one row per token, see --logprob-column; docs/input-formats.md).",
)
@click.option(
    "--sum-tolerance",
    type=SUM_TOLERANCE,
    metavar="TOL",
    help="How far a row of probabilities or soft targets may sum from 1 "
    "(default: min(1e-2, max(1e-5, 5e-5*K))).",
)
@click.option(
    "--renormalize",
    is_flag=True,
    help="Divide each row of probabilities (and of soft targets) by its sum instead of "
    "requiring 1 (the rows that were off are counted).",
)
@click.option(
    "--clip",
    type=CLIP,
    metavar="EPS",
    help="Clip probabilities to [EPS, 1-EPS] as scikit-learn (2.220446049250313e-16) "
    "or Keras (1e-7) do, for comparison (not with --temperature).",
)
@click.option(
    "--classes",
    "class_names",
    type=NAMES,
    metavar="NAMES",
    help="Class names, in logit order; labels are names.",
)
@loss_options(ignore_index=True)
@click.option(
    "--reduction",
    type=click.Choice(["mean", "sum"]),
    default="mean",
    show_default=True,
    help="Report the mean or the sum of the row losses.",
)
@click.option(
    "--worst",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="How many highest-loss rows to show.",
)
@REPORT_FORMAT
@click.option(
    "--per-row",
    metavar="PATH|-",
    help="Write file,line,label,predicted,probability,loss per input row (CSV, "
    "full precision; '-' for stdout). An existing PATH is replaced, atomically: it is "
    "written whole to a temporary file first, so a failed run leaves the old one as it was.",
)
@click.option(
    "--on-error",
    type=click.Choice(["raise", "skip"]),
    default="raise",
    show_default=True,
    help="Stop at the first bad row, or skip and count bad rows.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
@click.option(
    "--file-format",
    type=click.Choice(["csv", "parquet", "arrow", "npy", "npz", "jsonl"]),
    default=None,
    help="The files' format (default: from the name: .csv .tsv .parquet .arrow .feather "
    ".npy .npz .jsonl, each also .gz/.bz2/.xz where the format allows; stdin is CSV).",
)
@click.option(
    "--labels",
    "labels_path",
    metavar="FILE.npy",
    help="For .npy scores: the labels (a 1-D integer array, one per row).",
)
@click.option(
    "--targets",
    "targets_path",
    metavar="FILE.npy",
    help="For .npy scores: soft targets (an array of the scores' shape).",
)
@click.option(
    "--scores-key", metavar="NAME", help="For .npz: the scores array (default: logits, then probs)."
)
@click.option("--labels-key", metavar="NAME", help="For .npz: the labels array (default: labels).")
@click.option(
    "--save-state",
    metavar="PATH",
    help="Also save the run's state (exact sums, counts, sketch, worst rows; JSON, "
    "written atomically) for xent merge.",
)
@click.option(
    "--logprob-column",
    metavar="NAME",
    help="Token log-probabilities (--scores token-logprobs; default column 'logprob'): the"
    " column holding log p(true token) of a language model's evaluation; the report is per"
    " token, sequence and byte.",
)
@click.option("--sequence-column", metavar="NAME", help="With --logprob-column: the sequence id.")
@click.option(
    "--bytes-column", metavar="NAME", help="With --logprob-column: each token's length in bytes."
)
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: this process; dask: parts of the files scored on a Dask cluster "
    "(same bits; needs xent[dask]).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="With --engine dask: the Dask scheduler (tcp://host:8786); default a local cluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="With --engine dask and no --scheduler: worker processes (default: one per core).",
)
@click.option(
    "--part-bytes", type=click.IntRange(min=1), default=None, hidden=True
)  # the size of a part for --engine dask (tests cut small files)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default=None,
    help="Also report the mean loss with every step in this precision (stable and naive),"
    " and how many rows overflow to inf/NaN or lose their loss to 0 (with --format csv:"
    " that table instead of the files' lines).",
)
@click.option(
    "--frameworks",
    is_flag=True,
    help="Also report the mean loss each library (PyTorch, Keras, optax, scikit-learn,"
    " SciPy) would return for these rows, with its weighted-mean denominator (with"
    " --format csv: that table instead of the files' lines).",
)
@click.option(
    "--top-k",
    "top_k",
    metavar="K1,K2,...",
    help="Top-k accuracies to report (default: 1, and 5 when there are more than 5 classes).",
)
@click.option(
    "--bins",
    type=click.IntRange(min=1, max=10_000),
    default=15,
    show_default=True,
    metavar="N",
    help="Calibration bins (equal-width for ECE and the reliability table; equal-mass too).",
)
@click.option(
    "--ci",
    "ci",
    type=Number("a number in [0, 1)", low=0.0, high=1.0, high_open=True, finite=True),
    default=0.95,
    show_default=True,
    metavar="LEVEL",
    help="Confidence level of the intervals (mean loss, accuracy, Brier); 0 turns them off.",
)
@bootstrap_options("every figure", "a row's weights depend only on seed, file name, row")
@click.option(
    "--sigmoid",
    is_flag=True,
    help="Multi-label (sigmoid) outputs: each score column (logits, or probabilities: see"
    " --scores) is its own yes/no label, with a 0/1 (or soft) target column each"
    " (--target-columns, same order); the binary cross-entropy (PyTorch's BCEWithLogitsLoss,"
    " or BCELoss unclamped for probabilities), exact match, per-label figures.",
)
@click.option(
    "--pos-weight",
    "pos_weight",
    type=WEIGHTS,
    metavar="LIST",
    help=POS_WEIGHT_HELP,
)
@click.option(
    "--weight-column",
    metavar="NAME",
    help="A column of per-row sample weights (finite, >= 0): every mean becomes a weighted "
    "mean that divides by the sum of the weights (times the class weights for the loss).",
)
@click.option(
    "--group-by",
    "group_by",
    metavar="COLUMN",
    help="Also every figure per value of COLUMN (language, domain, split...): a line per "
    "group beside the total (at most 1000 groups).",
)
@click.option(
    "--plot",
    "plot_path",
    metavar="FILE",
    help="Also draw the report as one figure (.png, .svg or .pdf, from the name; written "
    "atomically): reliability diagram, loss histogram, per-class accuracy and loss, "
    "confusion heat map. Needs xent[plot] (matplotlib).",
)
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None, hidden=True)
def batch(
    files: tuple[str, ...],
    delimiter: str | None,
    header: bool | None,
    label_column: str | None,
    logit_columns: list[str] | None,
    target_columns: list[str] | None,
    class_names: list[str] | None,
    loss: LossOptions,
    scores: str,
    sum_tolerance: float | None,
    renormalize: bool,
    clip: float | None,
    reduction: str,
    worst: int,
    fmt: str,
    per_row: str | None,
    on_error: str,
    progress: bool | None,
    file_format: str | None,
    labels_path: str | None,
    targets_path: str | None,
    scores_key: str | None,
    labels_key: str | None,
    save_state: str | None,
    logprob_column: str | None,
    sequence_column: str | None,
    bytes_column: str | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    part_bytes: int | None,
    dtype: str | None,
    frameworks: bool,
    top_k: str | None,
    bins: int,
    ci: float,
    bootstrap: int,
    seed: int,
    sigmoid: bool,
    pos_weight: list[float] | None,
    weight_column: str | None,
    group_by: str | None,
    plot_path: str | None,
    chunk_rows: int | None,
) -> None:
    """Score CSV files of model outputs: loss, perplexity, accuracy and the worst rows.

    FILES are CSV or TSV files (.gz, .bz2, .xz read transparently), quoted globs, or '-'
    for standard input. Each row holds a classifier's logits and the true label (or soft
    targets). The mean is exact: the same bits as xent's cross_entropy on all rows.
    With --sigmoid, each row holds one score (a logit, or a probability) and one 0/1 target
    per label (multi-label).
    """
    plot = None
    if plot_path is not None:
        from xentcli.cli.plotfile import check_plot_path

        plot = (plot_path, check_plot_path(plot_path))
    if sigmoid and plot is not None:
        raise BadInvocation(
            "--plot cannot be used with --sigmoid: the figure draws a softmax classifier's"
            " report (calibration, classes, confusion)"
        )
    if sigmoid:
        from xentcli.cli import batch_sigmoid

        ctx = click.get_current_context()
        params = {**ctx.params, "loss": loss}
        columns = (delimiter, header, label_column, logit_columns, target_columns)
        batch_sigmoid.refuse_options(ctx, params)
        if files.count("-") > 1:
            raise BadInvocation("standard input ('-') can be read only once")
        paths = expand_paths(files)
        if per_row is not None and per_row != "-":
            _refuse_overwriting_an_input(per_row, paths)
        with contextlib.ExitStack() as stack:
            out = _per_row_output(stack, per_row)
            batch_sigmoid.run(paths, columns, params, pos_weight, _Progress, out)
        return
    if pos_weight is not None:
        raise BadInvocation("--pos-weight goes with --sigmoid")
    if scores == "token-logprobs" and logprob_column is None:
        logprob_column = "logprob"  # the column's usual name
    if logprob_column is not None and scores not in ("auto", "token-logprobs"):
        raise BadInvocation(
            f"--logprob-column reads token log-probabilities, not --scores {scores}"
        )
    if logprob_column is None and (sequence_column or bytes_column):
        raise BadInvocation("--sequence-column and --bytes-column go with --logprob-column")
    if logprob_column is not None and engine == "dask":
        raise BadInvocation("--engine dask does not read --logprob-column files yet")
    if logprob_column is not None:
        _tokens(
            files,
            logprob_column,
            sequence_column,
            bytes_column,
            loss.base,
            worst,
            fmt,
            file_format,
            plot,
        )
        return

    columns = (delimiter, header, label_column, logit_columns, target_columns)
    column_values = column_fields(*columns)
    if target_columns is not None and loss.ignore_index is not None:
        raise BadInvocation("--ignore-index applies to labels, not to --target-columns")
    if per_row == "-" and fmt != "table":
        raise BadInvocation(
            f"--per-row - and --format {fmt} both write to standard output; give --per-row a file"
        )
    if clip is not None and scores == "logits":
        raise BadInvocation("--clip applies to probabilities: not with --scores logits")
    if clip is not None and loss.temperature != 1.0:
        raise BadInvocation(
            "--clip reproduces a library's clipped log-loss, which has no temperature:"
            " give --clip or --temperature, not both"
        )
    if files.count("-") > 1:
        raise BadInvocation("standard input ('-') can be read only once")
    top_k_values = _top_k(top_k)
    if frameworks and dtype is not None and fmt == "csv":
        raise BadInvocation(
            "--frameworks and --dtype are two CSV tables: give one of them with --format csv"
        )
    if bootstrap and ci == 0:
        raise BadInvocation("--bootstrap needs intervals: give --ci a level above 0")
    if loss.exact:
        # A loss times a sample weight is rounded, and the groups' figures are not given
        # the second pass: refused rather than not correctly rounded (docs/accuracy.md).
        for column, option in ((weight_column, "--weight-column"), (group_by, "--group-by")):
            if column is not None:
                raise BadInvocation(f"--exact is not available with {option} yet")
    if weight_column is not None:
        for given, option in ((bootstrap, "--bootstrap"), (frameworks, "--frameworks")):
            if given:
                raise BadInvocation(f"{option} does not take sample weights (--weight-column) yet")
        if dtype is not None:
            raise BadInvocation("--dtype does not take sample weights (--weight-column) yet")

    from xentcli.batch.accumulator import BatchOptions
    from xentcli.batch.reader import ReadOptions

    read_kwargs: dict[str, Any] = {}
    if chunk_rows is not None:
        read_kwargs["chunk_rows"] = chunk_rows
    read_options = ReadOptions(
        **column_values,
        class_names=class_names,
        ignore_index=loss.ignore_index,
        on_error="skip" if on_error == "skip" else "raise",
        file_format=file_format,
        labels_path=labels_path,
        targets_path=targets_path,
        scores_key=scores_key,
        labels_key=labels_key,
        scores=scores,  # type: ignore[arg-type]
        sum_tolerance=sum_tolerance,
        renormalize=renormalize,
        weight_column=weight_column,
        group_column=group_by,
        **read_kwargs,
    )
    batch_options = BatchOptions(
        weights=None if loss.weights is None else list(loss.weights),
        ignore_index=loss.ignore_index,
        label_smoothing=loss.label_smoothing,
        temperature=loss.temperature,
        base=loss.base,
        exact=loss.exact,
        reduction="sum" if reduction == "sum" else "mean",
        worst=worst,
        class_names=class_names,
        renormalize=renormalize,
        clip=clip,
        top_k=top_k_values,
        bins=bins,
        ci=ci,
        bootstrap=bootstrap,
        seed=seed,
        sample_weight_column=weight_column,
        group_by=group_by,
    )
    paths = expand_paths(files)
    if per_row is not None and per_row != "-":
        _refuse_overwriting_an_input(per_row, paths)
    if save_state is not None:
        _refuse_overwriting_an_input(save_state, paths, "--save-state")
    if plot is not None:
        _refuse_overwriting_an_input(plot[0], paths, "--plot")
    study = None
    # xent compute --from reads the score columns by default: with a weight column left out
    # of them by name, only --logit-columns would tell it which they are.
    plain_columns = (weight_column is None and group_by is None) or logit_columns is not None
    if (
        plain_columns
        and labels_path is None
        and targets_path is None
        and scores_key is None
        and labels_key is None
    ):
        # What xent compute --from needs to read the worst row and compute its loss alike.
        study = column_arguments(*columns) + _loss_arguments(loss)
        if scores in ("logits", "probs", "logprobs"):  # given: the row is read as given
            study += f" --scores {scores}"
        if class_names is not None:
            study += f" --classes {shlex.quote(','.join(class_names))}"
    if engine == "dask":
        if frameworks or dtype is not None:
            raise BadInvocation("--frameworks and --dtype are not available with --engine dask")
        if per_row is not None:
            raise BadInvocation("--per-row is not available with --engine dask")
        if bootstrap:
            # A part of a CSV file numbers its rows from its own start, so the replicates'
            # weights would differ from one process's: refused rather than other bits.
            raise BadInvocation("--bootstrap is not available with --engine dask")
        if "-" in paths:
            raise BadInvocation("--engine dask reads files, not standard input ('-')")
        accumulator = _run_dask(paths, read_options, batch_options, scheduler, workers, part_bytes)
        finish(accumulator, fmt, save_state, study=study, plot=plot)
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()
        return
    if scheduler is not None or workers is not None:
        raise BadInvocation("--scheduler and --workers need --engine dask")
    show_progress = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(show_progress, paths)
    collector = None
    if frameworks:
        if save_state is not None:
            raise BadInvocation("--frameworks cannot be saved with --save-state")
        from xentcli.batch.frameworks import FrameworkMeans

        collector = FrameworkMeans(
            weights=None if loss.weights is None else list(loss.weights),
            ignore_index=loss.ignore_index,
            label_smoothing=loss.label_smoothing,
            temperature=loss.temperature,
        )
    precision = None
    if dtype is not None:
        if save_state is not None:
            raise BadInvocation("--dtype cannot be saved with --save-state")
        if target_columns is not None:
            raise BadInvocation("--dtype works labelled rows through: not with --target-columns")
        from xentcli.batch.lowprecision import LowPrecisionStats

        precision = LowPrecisionStats(
            dtype, ignore_index=loss.ignore_index, temperature=loss.temperature
        )
    collectors = [c for c in (collector, precision) if c is not None]
    try:
        accumulator = _run(paths, read_options, batch_options, per_row, bar, collectors)
    finally:
        bar.stop()
    _decide_exact(accumulator, paths, read_options)
    finish(
        accumulator,
        fmt,
        save_state,
        to_stderr=per_row == "-",
        study=study,
        frameworks=collector,
        precision=precision,
        plot=plot,
    )


def _loss_arguments(loss: LossOptions) -> str:
    """The loss options that xent compute shares, as command-line text (or "")."""
    given = {
        "--weights": None if loss.weights is None else ",".join(map(repr, loss.weights)),
        "--label-smoothing": None if loss.label_smoothing == 0 else repr(loss.label_smoothing),
        "--temperature": None if loss.temperature == 1 else repr(loss.temperature),
        "--base": None if loss.base == "e" else loss.base,
    }
    return "".join(f" {o} {shlex.quote(v)}" for o, v in given.items() if v is not None)


def finish(
    accumulator: Any,
    fmt: str,
    save_state: str | None,
    *,
    to_stderr: bool = False,
    study: str | None = None,
    frameworks: Any = None,
    precision: Any = None,
    plot: tuple[str, str] | None = None,
    title: str = "xent batch",
) -> None:
    """Save the state (atomically) if asked, then print the report of *accumulator*.

    *study* (command-line options) has the table end with the command that works the
    worst row through (see :func:`xentcli.batch.report.render_table`); given a
    :class:`~xentcli.batch.frameworks.FrameworkMeans`, each library's mean follows.
    *plot* (path, format) writes the figure first, so a failed write prints no report.
    *title* opens the table (the command that made the report).
    """
    if save_state is not None:
        write_state(accumulator, save_state)
    means = None if frameworks is None else frameworks.means()
    low = None if precision is None else precision.summary()
    summary = accumulator.summary()
    if plot is not None:
        from xentcli.cli.plotfile import write_plot

        write_plot(summary, *plot)
    _report(
        summary,
        fmt,
        to_stderr=to_stderr,
        study=study,
        frameworks=means,
        precision=low,
        title=title,
    )
    # Flush here, inside the command, so that a write error (a full disk) is reported
    # through the usual error path rather than at interpreter exit. A closed pipe is left
    # to the final flush in xentcli.cli.main.main (exit 141): click would turn it into exit 1.
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()


def _tokens(
    files: tuple[str, ...],
    logprob_column: str,
    sequence_column: str | None,
    bytes_column: str | None,
    base: str,
    worst: int,
    fmt: str,
    file_format: str | None,
    plot: tuple[str, str] | None = None,
) -> None:
    """``xent batch --logprob-column``: a language model's token log-probabilities.

    *plot* (path, format): the figure is the histogram of the sequences' mean NLL
    (there is no calibration or class to draw)."""
    from xentcli.batch import token_report
    from xentcli.batch.tokens import TokenAccumulator, TokenOptions, token_rows
    from xentcli.cli.tools import make_console

    options = TokenOptions(logprob_column, sequence_column, bytes_column, base, worst, file_format)
    accumulator = TokenAccumulator(options)
    paths = expand_paths(files)
    if plot is not None:
        _refuse_overwriting_an_input(plot[0], paths, "--plot")
    try:
        for path in paths:
            accumulator.start_file("<stdin>" if path == "-" else path)
            for logprobs, sequences, byte_counts, places, unit in token_rows(path, options):
                accumulator.add(logprobs, sequences, byte_counts, places, unit)
    except ColumnError as error:  # an option naming no column: a usage error
        raise BadInvocation(str(error)) from None
    except DataError as error:
        raise BadData(str(error)) from None
    summary = accumulator.summary()
    if plot is not None:
        from xentcli.cli.plotfile import write_plot

        write_plot(summary, *plot, tokens=True)
    if fmt == "json":
        click.echo(token_report.render_json(summary), nl=False)
    elif fmt == "csv":
        click.echo(token_report.render_csv(summary), nl=False)
    else:
        token_report.render_table(summary, make_console())
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()


def _run(
    paths: list[str],
    read_options: Any,
    batch_options: Any,
    per_row: str | None,
    bar: _Progress,
    collectors: Any = (),
) -> Any:
    from xentcli.batch.accumulator import BatchAccumulator
    from xentcli.batch.reader import open_table
    from xentcli.batch.report import per_row_header, per_row_lines

    accumulator: BatchAccumulator | None = None
    names = batch_options.class_names
    current = first = ""
    with reading_errors(lambda: current), contextlib.ExitStack() as stack:
        out = _per_row_output(stack, per_row)
        if out is not None:
            out.write(per_row_header())
        for path in paths:
            current = path
            # The kernel runs in the reader's parsing threads, beside the parse (from
            # the first file's header on, which tells the number of classes).
            prepare = accumulator.prepare if accumulator is not None else None
            with open_table(path, read_options, prepare) as table:
                current = table.display_name
                if accumulator is None:
                    named = getattr(table, "class_names", None)
                    if batch_options.class_names is None and named is not None:
                        # The file names its classes (labels written as names).
                        batch_options = dataclasses.replace(batch_options, class_names=named)
                        names = named
                    accumulator = _accumulator(table, batch_options)
                    table.prepare = accumulator.prepare
                    first = table.display_name
                else:
                    _same_scores(accumulator, table, first)
                # What was inferred about the columns is said once rows have been read:
                # a file that fails (no data rows, a bad first row) gets its one-line
                # error alone.
                notes = [f"{table.display_name}: {n}" for n in getattr(table, "notes", ())]
                accumulator.start_file(table.display_name)
                for chunk in table.chunks():
                    for note in notes:
                        click.echo(note, err=True)
                    notes = []
                    if chunk.path != table.display_name:
                        chunk = dataclasses.replace(chunk, path=table.display_name)
                    result = accumulator.add(chunk, per_row=out is not None)
                    for collector in collectors:
                        collector.add(accumulator.logit_chunk(chunk))
                    if result is not None and out is not None:
                        out.write(per_row_lines(result, names))
                    bar.update(table.display_name, table.bytes_read, len(chunk.lines))
                for note in notes:  # a file of skipped rows only
                    click.echo(note, err=True)
                accumulator.add_skipped(table.display_name, table.rows_skipped, table.skipped)
                bar.file_done(table.bytes_read)
    assert accumulator is not None
    return accumulator


def _run_dask(
    paths: list[str],
    read_options: Any,
    batch_options: Any,
    scheduler: str | None,
    workers: int | None,
    part_bytes: int | None,
) -> Any:
    """The merged accumulator of *paths* scored on Dask (errors as in :func:`_run`)."""
    from xentcli.batch import engine

    extra: dict[str, Any] = {} if part_bytes is None else {"part_bytes": part_bytes}
    notes: list[str] = []
    try:
        accumulator = engine.accumulate(
            paths, read_options, batch_options, scheduler=scheduler, workers=workers,
            notes=notes, **extra,
        )  # fmt: skip
        for note in notes:  # what the readers inferred, as one process says it
            click.echo(note, err=True)
        return accumulator
    except engine.MissingExtraError as error:
        raise BadInvocation(str(error)) from None
    except DataError as error:
        raise BadData(str(error)) from None
    except XentError as error:
        raise BadInvocation.of(error) from None
    except OSError as error:  # the scheduler cannot be reached
        raise BadData(f"--scheduler {scheduler}: {error}") from None


def _decide_exact(accumulator: Any, paths: list[str], read_options: Any) -> None:
    """--exact: read the inputs again if a figure is too near a rounding boundary to be
    decided from the stream (rare: docs/accuracy.md); errors as in :func:`_run`."""
    from xentcli.batch.exact_mean import second_pass

    if not accumulator.options.exact:
        return
    try:
        passes = second_pass(accumulator, paths, read_options)
    except XentError as error:  # DataError included
        raise BadData(str(error)) from None
    except OSError as error:
        raise BadData(f"--exact: cannot read the inputs again: {error}") from None
    if passes:
        click.echo(
            f"--exact: a figure was within its error bound of a rounding boundary; the rows"
            f" were read again and computed in decimal ({passes} extra pass"
            f"{'es' if passes > 1 else ''})",
            err=True,
        )


def write_state(accumulator: Any, path: str) -> None:
    """Write *accumulator*'s state to *path* atomically (exit 1 if it cannot be written)."""
    from xentcli.batch.state_file import dumps
    from xentcli.cli.atomic import atomic_output

    text = dumps(accumulator)
    try:
        with atomic_output(path) as handle:
            handle.write(text)
    except OSError as error:
        raise BadData(f"{path}: cannot write the state: {error.strerror or error}") from None


def _check_exact_scores(table: Any, kind: str, options: Any) -> None:
    """--exact on probabilities or log-probabilities: refused (exit 2) where the loss
    cannot be correctly rounded (docs/accuracy.md says why), naming what was inferred."""
    from xentcli.core import KIND_NAMES

    detected = getattr(table, "scores_detected", False)
    how = "detected; --scores logits if they are logits" if detected else "given"
    holds = f"{table.display_name} holds {KIND_NAMES[kind]} ({how})"
    if getattr(table, "binary", False):
        why = "one score column is not correctly rounded yet (give a column per class)"
    elif kind == "probs" and options.temperature != 1.0:
        why = (
            "probabilities with --temperature are not correctly rounded (softmax of the"
            " real log p / T); give log-probabilities"
        )
    elif options.clip is not None and options.renormalize:
        why = "--clip with --renormalize is not correctly rounded (two rounding steps)"
    else:
        return
    raise BadInvocation(f"--exact: {why}; {holds}")


def _accumulator(table: Any, batch_options: Any) -> Any:
    """The run's accumulator, for the kind of scores of its first file (said on stderr)."""
    from xentcli.batch.accumulator import BatchAccumulator

    if batch_options.clip is not None and getattr(table, "scores", "logits") == "logits":
        raise BadInvocation(
            f"--clip applies to probabilities, but {table.display_name} holds logits "
            "(detected; --scores probs if they are probabilities)"
        )
    kind = getattr(table, "scores", "logits")
    if batch_options.exact and kind != "logits":
        _check_exact_scores(table, kind, batch_options)
    # Tables of other formats may not know these (yet): logits, as given.
    options = dataclasses.replace(
        batch_options,
        scores=getattr(table, "scores", "logits"),
        scores_detected=getattr(table, "scores_detected", False),
        binary=getattr(table, "binary", False),
    )
    accumulator = BatchAccumulator(getattr(table, "num_classes", len(table.logit_names)), options)
    from xentcli.batch.reader import inferred_columns

    accumulator.columns = inferred_columns(table)
    return accumulator


def _same_scores(accumulator: Any, table: Any, first: str) -> None:
    """Exit 2 when a later file was detected as another kind of scores."""
    from xentcli.batch._kinds import mixed_kinds

    kind = accumulator.options.scores
    if getattr(table, "scores", "logits") != kind:
        raise BadInvocation(mixed_kinds(first, kind, table.display_name, table.scores))
    if getattr(table, "binary", False) != accumulator.options.binary:
        raise BadInvocation(
            f"{first} and {table.display_name} have different numbers of score columns"
        )


def _report(
    summary: Any,
    fmt: str,
    *,
    to_stderr: bool,
    study: str | None = None,
    frameworks: Any = None,
    precision: Any = None,
    title: str = "xent batch",
) -> None:
    from xentcli.batch.report import render_csv, render_json, render_table
    from xentcli.cli.tools import make_console
    from xentcli.text import plural

    if summary.rows_skipped:
        lines = ", ".join(error.where for error in summary.skipped)
        click.echo(
            f"Warning: skipped {plural(summary.rows_skipped, 'bad row')} (first: {lines})",
            err=True,
        )
    if fmt != "table":
        from xentcli.batch.report import input_lines

        # Detected logits, the historical default, go to the JSON only.
        notes = input_lines(summary)
        plain = summary.scores == "logits" and not summary.binary
        for note in notes[1:] if plain else notes:
            click.echo(note, err=True)
    if summary.loss is None and fmt != "table":
        click.echo("Warning: the mean loss is undefined: no row counts", err=True)
    if fmt == "json":
        if frameworks is None and precision is None:
            click.echo(render_json(summary), nl=False)
        else:
            from xentcli.batch import lowprecision
            from xentcli.compute.frameworks import to_json
            from xentcli.text import dumps

            data = summary.to_json()
            if frameworks is not None:
                data["frameworks"] = to_json(_framework_values(frameworks))
            if precision is not None:
                data["dtype"] = lowprecision.to_json(precision)
            click.echo(dumps(data) + "\n", nl=False)
    elif fmt == "csv" and frameworks is not None:  # its lines instead of the files'
        from xentcli.compute.frameworks import to_csv

        click.echo(to_csv(_framework_values(frameworks)), nl=False)
    elif fmt == "csv" and precision is not None:
        from xentcli.batch import lowprecision

        click.echo(lowprecision.to_csv(precision), nl=False)
    elif fmt == "csv":
        click.echo(render_csv(summary), nl=False)
    else:
        console = make_console(stderr=to_stderr)
        render_table(summary, console, study=study, title=title)
        if frameworks is not None:
            from xentcli.compute import frameworks as fw

            title = (
                "What each library returns as the mean of these rows"
                " (nats; exact: xent's value of the same convention)"
            )
            text = fw.lines(_framework_values(frameworks), console.width, title)
            click.echo("\n" + "\n".join(text), err=to_stderr)
        if precision is not None:
            from xentcli.batch import lowprecision

            click.echo("\n" + "\n".join(lowprecision.lines(precision)), err=to_stderr)


def _framework_values(means: Any) -> list[Any]:
    from xentcli.compute.frameworks import FrameworkValue

    return [
        FrameworkValue(
            m.name,
            m.function,
            m.value,
            m.exact,
            f"{m.note}; {m.mean_note}" if m.mean_note else m.note,
            m.dtype,
        )
        for m in means
    ]
