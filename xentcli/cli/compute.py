"""``xent compute``: one sample worked through the softmax and the cross-entropy loss.

Parses the options, builds a :class:`~xentcli.compute.trace.Trace` and renders it. Every bad
value is one line ``Error: ...`` on stderr with exit code 2 (:class:`BadInvocation`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from xentcli.cli.columns import COLUMN_PARAMETERS, column_fields, column_options
from xentcli.cli.params import NAMES, NUMBERS, POS_WEIGHT_HELP, WEIGHTS, loss_options
from xentcli.cli.tools import BadInvocation
from xentcli.errors import CountError, InvalidInputError, XentError

if TYPE_CHECKING:
    from xentcli.batch.one_row import OneRow
    from xentcli.cli.params import Numbers
    from xentcli.core import LossOptions

FORMATS = ("table", "json", "csv", "markdown", "latex")

# The option a kernel error is about, by InvalidInputError.field.
_OPTION_OF_FIELD = {
    "logit": "--logits",
    "score": "--probs",  # or --logprobs: _message is told which
    "label": "--label",
    "target": "--target",
    "weight": "--weights",
    "class": "--classes",
}

EPILOG = """\b
Examples:
  xent compute --logits 1.2,2.3,0.8 --label 1
  xent compute --logits 1.2,2.3,0.8
  xent compute --from examples/digits.csv:218 --explain
  xent compute --from examples/digits_proba.csv:5 --scores probs
  xent compute --logits "1.2 2.3 0.8" --label 1 --explain
  xent compute --probs 0.2,0.7,0.1 --label 1
  xent compute --logprobs -1.6094,-0.3567,-2.3026 --label 1 --explain
  xent compute --logits 1.2,2.3,0.8 --classes cat,dog,bird --label dog
  xent compute --logits -1,2,3 --target 0.1,0.2,0.7 --format json
  xent compute --logits 1.2,2.3,0.8 --label 1 --label-smoothing 0.1 --weights 1,2,1
  xent compute --logits 1000,1001,1002 --label 0 --naive
  xent compute --logits 0,-40 --label 0 --frameworks
  xent compute --logits 0,-36.04 --label 1 --dtype bfloat16
  xent compute --sigmoid --logits 2.0,-1.0,0.5 --target 1,0,1 --pos-weight 1,1,3
  xent compute --sigmoid --probs 0.7,0.2,0.9 --target 1,0,1 --explain
  xent compute --logits 0,-40 --label 0 --naive --digits 17
  xent compute --logits 1.2,2.3,0.8 --label 1 --format latex > loss.tex
"""


def _parse_label(text: str, k: int, classes: list[str] | None) -> int:
    """An index in [0, K), or a class name from ``--classes``."""
    stripped = text.strip()
    if classes is not None and stripped in classes:
        return classes.index(stripped)
    try:
        label = int(stripped)
    except ValueError:
        if classes is not None:
            raise BadInvocation(
                f"--label: unknown class name {stripped!r} (classes: {', '.join(classes)})"
            ) from None
        raise BadInvocation(
            f"--label must be a class index from 0 to {k - 1}, or a class name with --classes"
            f" (got {stripped!r})"
        ) from None
    if label < 0:
        raise BadInvocation(f"--label: {label} is negative; class indices run from 0 to {k - 1}")
    if label >= k:
        raise BadInvocation(
            f"--label: {label} is out of range; class indices run from 0 to {k - 1} ({k} logits)"
        )
    return label


def _read_from(
    spec: str,
    columns: tuple[Any, ...],
    classes: list[str] | None,
    scores: str,
    multilabel: bool = False,
) -> OneRow:
    """The row that ``--from FILE:LINE`` names, read with the column options and
    ``--scores`` as xent batch reads it (``auto``: the kind detected from the file's first
    rows): exit 2 for a bad FILE:LINE or column option, exit 1 for the file or line."""
    from xentcli.batch.one_row import read_row
    from xentcli.batch.reader import ReadOptions
    from xentcli.cli.tools import reading_errors

    path, _, number = spec.rpartition(":")
    if not path or not number.isascii() or not number.isdigit() or int(number) < 1:
        raise BadInvocation(f"--from: expected FILE:LINE with a line number from 1, got {spec!r}")
    if path == "-":
        raise BadInvocation("--from reads a file, not standard input")
    # --sigmoid: targets in [0, 1], one per logit, as xent batch --sigmoid reads them.
    options = ReadOptions(
        **column_fields(*columns),
        class_names=classes,
        scores=scores,  # type: ignore[arg-type]
        multilabel=multilabel,
        roles=(),  # only --logit-columns chooses the score columns here
    )
    # As xent batch maps them; only this file is read here (nothing is written), so any
    # system error is this file's and names it (the readers name theirs already).
    with reading_errors(lambda: path, reads_only=True):
        return read_row(path, int(number), options)


def _row_scores(row: OneRow) -> tuple[list[float], str]:
    """The row's scores and their kind as the trace takes them: one score column (the
    binary case) becomes two, as xent batch scores it."""
    if not row.binary:
        return list(row.logits), row.scores
    import numpy as np

    from xentcli.core import binary_log_scores

    pair, kind = binary_log_scores(np.asarray(row.logits, dtype=np.float64), row.scores)  # type: ignore[arg-type]
    return [float(v) for v in pair[0]], kind


def _scores_said(row: OneRow) -> str:
    """What the stderr says about the row's scores: the kind (detected or given), the
    binary case."""
    from xentcli.batch.report import scores_line

    text = f"Scores: {scores_line(row.scores, row.scores_detected)}"
    if row.binary:
        text += "; one score column: the binary case, scored as " + (
            "the logits [0, s]" if row.scores == "logits" else "[1 - p, p]"
        )
    return "\n".join([text, *(f"{row.path}: {note}" for note in row.notes)])


def _message(error: XentError, written: dict[str, list[str]], scores: str = "--logits") -> str:
    """The one-line message for an error of the trace, naming the option at fault.

    *written* holds each list option's items as the user wrote them, by field, so that
    the message quotes ``'1e999'`` rather than the ``inf`` it became; *scores* is the
    option that gave the scores (``--logits``, ``--probs`` or ``--logprobs``).
    """
    if not (isinstance(error, InvalidInputError) and error.field in _OPTION_OF_FIELD):
        return str(error)
    field = error.field
    option = scores if field in ("logit", "score") else _OPTION_OF_FIELD[field]
    text = f"{option}: {error.reason}"
    items = written.get(field, [])
    if error.column is not None:
        text += f" at item {error.column}"
        if error.column < len(items):
            item = items[error.column]
            if math.isinf(float(item)) and "inf" not in item.lower():
                text += " (it overflows float64)"
            return f"{text}: {item!r}"
    if error.value is not None:
        value = error.value
        text += f" ({value!r})" if isinstance(value, str) else f" ({value})"
    return text


@click.command(epilog=EPILOG)
@click.option(
    "--from",
    "from_spec",
    metavar="FILE:LINE",
    help="Read the logits and the label (or soft target) from that line of a file, as"
    " xent batch reads it (the column options below say which columns hold what).",
)
@column_options
@click.option(
    "--scores",
    "file_scores",
    type=click.Choice(["auto", "logits", "probs", "logprobs"]),
    default=None,
    help="With --from: what the file's score columns hold (default auto: detected from"
    " the file's first rows, as xent batch detects it, and said on stderr; with --sigmoid"
    " every score in [0, 1] is probs, else logits).",
)
@click.option(
    "--logits",
    type=NUMBERS,
    metavar="LIST",
    help='The K logits: 1.2,2.3,0.8 or "1.2 2.3 0.8" or [1.2, 2.3, 0.8]; -inf masks a class.',
)
@click.option(
    "--probs",
    type=NUMBERS,
    metavar="LIST",
    help="Instead of --logits: K probabilities (each in [0, 1], summing to 1 within the"
    " tolerance of xent batch); the loss is -log q_label of the given values. With"
    " --sigmoid: one probability per label, each in [0, 1].",
)
@click.option(
    "--logprobs",
    type=NUMBERS,
    metavar="LIST",
    help="Instead of --logits: K log-probabilities (each <= 0, log-sum-exp 0 within the"
    " tolerance); the loss is -log q_label as given. With --sigmoid: log p per label, each"
    " <= 0 (-inf is p = 0).",
)
@click.option(
    "--label",
    "label_text",
    metavar="CLASS",
    help="The true class: an index from 0, or a name from --classes.",
)
@click.option(
    "--target",
    "targets",
    type=NUMBERS,
    metavar="LIST",
    help="A soft target instead of --label: K probabilities summing to 1.",
)
@click.option(
    "--classes", type=NAMES, metavar="NAMES", help="Class names, comma-separated: cat,dog,bird."
)
@loss_options(ignore_index=False)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output: a table, or JSON/CSV at full precision, or the derivation in Markdown or LaTeX"
    " (with --frameworks or --dtype, the CSV is that table).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Also show the derivation, step by step, with the numbers substituted.",
)
@click.option(
    "--sigmoid",
    is_flag=True,
    help="Sigmoid outputs: each logit is its own yes/no label, with --target 0/1 (or soft)"
    " per label; the binary cross-entropy with logits (PyTorch's BCEWithLogitsLoss). With"
    " --probs or --logprobs, of the given probabilities (PyTorch's BCELoss, unclamped: as"
    " xent batch --sigmoid --scores probs).",
)
@click.option(
    "--pos-weight",
    "pos_weight",
    type=WEIGHTS,
    metavar="LIST",
    help=POS_WEIGHT_HELP,
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default=None,
    help="Also compute every step in this precision (stable and naive), with its error in"
    " that format's last place and where it overflows, underflows or rounds to a grid.",
)
@click.option(
    "--frameworks",
    is_flag=True,
    help="Also show what PyTorch, Keras, optax, scikit-learn and SciPy return for this"
    " sample (their conventions and precision, emulated), beside the exact value.",
)
@click.option(
    "--naive",
    is_flag=True,
    help="Also show the textbook q = e^y / sum e^y, and where it overflows or loses the loss.",
)
@click.option(
    "--digits",
    type=click.IntRange(1, 17),
    default=4,
    show_default=True,
    metavar="N",
    help="Decimals shown in tables and derivations (JSON and CSV are exact).",
)
def compute(
    from_spec: str | None,
    delimiter: str | None,
    header: bool | None,
    label_column: str | None,
    logit_columns: list[str] | None,
    target_columns: list[str] | None,
    file_scores: str | None,
    logits: Numbers | None,
    probs: Numbers | None,
    logprobs: Numbers | None,
    label_text: str | None,
    targets: Numbers | None,
    classes: list[str] | None,
    loss: LossOptions,
    output_format: str,
    explain: bool,
    sigmoid: bool,
    pos_weight: Numbers | None,
    dtype: str | None,
    frameworks: bool,
    naive: bool,
    digits: int,
) -> None:
    """Work one sample through the softmax and the cross-entropy loss.

    Shows every intermediate value of the numerically stable computation: the max, the
    shifted logits, their exponentials and sum, the probabilities q, the loss
    L = -log q_label (or -sum p log q for a soft target), its gradient and perplexity.
    Without --label or --target it shows the softmax and the predicted class only.
    With --probs or --logprobs instead of --logits the steps start from the given
    distribution q: the loss is -log q_label, and log q are the logits it implies.
    With --sigmoid each score is a label of its own, against its --target: the binary
    cross-entropy of sigma(x), or of the given probability p (no sigmoid step).
    """
    from xentcli.cli.tools import make_console
    from xentcli.compute import render
    from xentcli.compute.trace import build_trace

    columns = (delimiter, header, label_column, logit_columns, target_columns)
    given = [
        (option, kind, values)
        for option, kind, values in (
            ("--logits", "logits", logits),
            ("--probs", "probs", probs),
            ("--logprobs", "logprobs", logprobs),
        )
        if values is not None
    ]
    if len(given) > 1:
        raise BadInvocation(
            f"give one of --logits, --probs and --logprobs, not {' and '.join(g[0] for g in given)}"
        )
    scores_option, scores, logits = given[0] if given else ("--logits", "logits", None)
    if from_spec is not None:
        if given or label_text is not None or targets is not None:
            raise BadInvocation("--from reads the scores and the label from the file: give"
                                " --logits, --probs, --logprobs, --label and --target"
                                " without it")  # fmt: skip
        scores_read = file_scores or "auto"
        # --sigmoid: the kind detected by xent batch --sigmoid's rule (every score in
        # [0, 1]: probabilities), and the row checked as it checks it.
        row = _read_from(from_spec, columns, classes, scores_read, multilabel=sigmoid)
        values, scores = (list(row.logits), row.scores) if sigmoid else _row_scores(row)
        # the option that would have given them, for the messages
        scores_option = {"logits": "--logits", "probs": "--probs"}.get(scores, "--logprobs")
        written = {"logit": [repr(v) for v in values], "score": [repr(v) for v in values]}
        label = row.label
        row_targets = list(row.targets) if row.targets is not None else None
        classes = list(row.class_names) if row.class_names is not None else None
        k = len(values)
    elif file_scores is not None:
        raise BadInvocation(
            "--scores goes with --from FILE:LINE (for one sample give --probs or --logprobs"
            " instead of --logits)"
        )
    elif any(value is not None for value in columns):
        used = [n for n, v in zip(COLUMN_PARAMETERS, columns, strict=True) if v is not None]
        raise BadInvocation(f"--{used[0].replace('_', '-')} goes with --from FILE:LINE")
    elif logits is None:
        raise BadInvocation(
            "give the logits with --logits, for example --logits 1.2,2.3,0.8 (or"
            " probabilities with --probs, log-probabilities with --logprobs)"
        )
    else:
        values, row_targets = list(logits), None
        written = {"logit": logits.written, "score": logits.written}
        k = len(values)
        if label_text is not None and targets is not None:
            raise BadInvocation("give one of --label and --target, not both")
        label = None
    if sigmoid:
        if from_spec is not None and row.scores_detected:
            click.echo(_scores_said(row), err=True)
        kind = _SigmoidGiven(scores, scores_option, written["logit"],
                             from_spec is not None and row.scores_detected)  # fmt: skip
        _sigmoid(values, label_text, targets, row_targets, pos_weight, loss, output_format,
                 explain, naive, frameworks, dtype, digits, kind)  # fmt: skip
        return
    if pos_weight is not None:
        raise BadInvocation("--pos-weight goes with --sigmoid")
    if classes is not None and len(classes) != k:
        raise BadInvocation(str(CountError("--classes", len(classes), "name", k)))
    if label_text is not None:
        label = _parse_label(label_text, k, classes)
    if targets is not None:
        written["target"] = targets.written
        if len(targets) != k:
            raise BadInvocation(str(CountError("--target", len(targets), "value", k)))
    if loss.weights is not None and len(loss.weights) != k:
        raise BadInvocation(str(CountError("--weights", len(loss.weights), "value", k)))
    if scores != "logits" and (naive or dtype is not None):
        raise BadInvocation(
            f"--{'naive' if naive else 'dtype'} goes with --logits (it shows the softmax of"
            f" logits computed another way), not {scores_option}"
        )
    if dtype is not None and label is None:
        raise BadInvocation("--dtype works a labelled sample through: give --label")
    if frameworks and label is None and targets is None:
        raise BadInvocation("--frameworks compares losses: give --label or --target")
    if frameworks and dtype is not None and output_format == "csv":
        raise BadInvocation(
            "--frameworks and --dtype are two CSV tables: give one of them with --format csv"
        )
    if explain and output_format == "csv":
        raise BadInvocation(
            "--explain has no CSV form; use --format table, json, markdown or latex"
        )
    try:
        trace = build_trace(
            values,
            label,
            targets=targets if targets is not None else row_targets,
            weights=loss.weights,
            label_smoothing=loss.label_smoothing,
            temperature=loss.temperature,
            base=loss.base,
            classes=classes,
            exact=loss.exact,
            scores=scores,
        )
    except XentError as error:
        raise BadInvocation(_message(error, written, scores_option)) from None
    if from_spec is not None:
        import dataclasses

        trace = dataclasses.replace(trace, scores_detected=row.scores_detected)
        if row.scores_detected or row.binary:
            click.echo(_scores_said(row), err=True)

    if output_format == "table":
        console = make_console()
        render.print_table(
            trace,
            console,
            digits=digits,
            explain=explain,
            naive=naive,
            frameworks=frameworks,
            dtype=dtype,
        )
    elif output_format == "json":
        click.echo(
            render.to_json(
                trace,
                naive=naive,
                explain=explain,
                digits=digits,
                frameworks=frameworks,
                dtype=dtype,
            ),
            nl=False,
        )
    elif output_format == "csv":
        click.echo(_csv(trace, naive, frameworks, dtype), nl=False)
    else:
        from xentcli.compute import typeset

        typeset_as = typeset.markdown if output_format == "markdown" else typeset.latex
        click.echo(
            typeset_as(trace, digits=digits, naive=naive, frameworks=frameworks, dtype=dtype),
            nl=False,
        )


def _csv(trace: Any, naive: bool, frameworks: bool, dtype: str | None) -> str:
    """The CSV: one line per class; with --frameworks one per library's convention, with
    --dtype one per value of each step (each its own table, so it replaces the classes')."""
    if frameworks:
        from xentcli.compute import frameworks as fw

        return fw.to_csv(fw.framework_values(trace))
    if dtype is not None:
        from xentcli.compute import lowprecision as lp

        return lp.to_csv(lp.low_precision(trace, dtype))
    from xentcli.compute import render

    return render.to_csv(trace, naive=naive)


class _SigmoidGiven(NamedTuple):
    """What ``--sigmoid`` was given: the kind of scores, the option that gave them, the
    items as written (for the error messages), whether the kind was detected."""

    kind: str
    option: str
    written: list[str]
    detected: bool


def _check_sigmoid_scores(given: _SigmoidGiven, values: list[float]) -> None:
    """A probability outside [0, 1], a log-probability above 0 or NaN: the option, the
    item and the value, with xent batch --sigmoid's wording of the cell's fault."""
    if given.kind == "logits":
        return  # checked by bce_with_logits (finite), named as for the softmax
    import numpy as np

    from xentcli.core import SigmoidScoreCheck

    fault = SigmoidScoreCheck(given.kind, 0.0).row_error(np.asarray(values, dtype=np.float64))  # type: ignore[arg-type]
    if fault is not None:
        column, reason = fault
        assert column is not None
        raise BadInvocation(f"{given.option}: {reason} at item {column}: {given.written[column]!r}")


def _sigmoid(
    values: list[float],
    label_text: str | None,
    targets: Numbers | None,
    row_targets: list[float] | None,
    pos_weight: Numbers | None,
    loss: LossOptions,
    output_format: str,
    explain: bool,
    naive: bool,
    frameworks: bool,
    dtype: str | None,
    digits: int,
    given: _SigmoidGiven,
) -> None:
    """``xent compute --sigmoid``: each logit (or probability, log-probability) a label of
    its own, against its target."""
    from xentcli.compute import sigmoid as bce

    k = len(values)
    if label_text is not None:
        raise BadInvocation("--sigmoid takes a 0/1 (or soft) --target per label, not --label")
    z = list(targets) if targets is not None else row_targets
    if z is None:
        one = {"logits": "logit", "probs": "probability"}.get(given.kind, "log-probability")
        raise BadInvocation(f"--sigmoid needs --target: one 0/1 (or soft) value per {one}")
    if len(z) != k:
        raise BadInvocation(str(CountError("--target", len(z), "value", k, per="label")))
    if pos_weight is not None and len(pos_weight) != k:
        raise BadInvocation(
            str(CountError("--pos-weight", len(pos_weight), "value", k, per="label"))
        )
    if loss.weights is not None or loss.label_smoothing or loss.temperature != 1.0:
        raise BadInvocation(
            "--weights, --label-smoothing and --temperature go with the softmax loss, not"
            " --sigmoid (use --pos-weight)"
        )
    if frameworks or dtype is not None:
        raise BadInvocation("--frameworks and --dtype go with the softmax loss, not --sigmoid")
    if output_format == "csv":
        raise BadInvocation(
            "--sigmoid has no CSV form; use --format table, json, markdown or latex"
        )
    if naive and given.kind != "logits":
        raise BadInvocation(
            "--naive goes with --logits (it shows sigma(x) taken first, then its log), not"
            f" {given.option}"
        )
    _check_sigmoid_scores(given, values)
    try:
        if given.kind == "logits":
            import dataclasses

            trace = bce.build(values, z, pos_weight, loss.base)
            trace = dataclasses.replace(trace, scores_detected=given.detected)
        else:
            trace = bce.build_given(values, z, pos_weight, loss.base, given.kind, given.detected)
    except XentError as error:
        raise BadInvocation(_message(error, {"target": [repr(v) for v in z]})) from None
    if output_format == "json":
        from xentcli.text import dumps

        data = bce.to_json(trace, naive=naive)
        if explain:
            data["steps"] = bce.explain_lines(trace, digits)[3:]
        click.echo(dumps(data) + "\n", nl=False)
    elif output_format == "markdown":
        click.echo(bce.markdown(trace, digits), nl=False)
    elif output_format == "latex":
        click.echo(bce.latex(trace, digits), nl=False)
    else:
        lines = bce.table_lines(trace, digits, naive=naive)
        if explain:
            lines += bce.explain_lines(trace, digits)
        click.echo("\n".join(lines))
