"""``xent batch --plot``: the report's figures drawn as one matplotlib figure.

Every number drawn is the report's own (the :class:`~xentcli.batch.accumulator.Summary`
that the table and ``--format json`` print): the reliability bars are the calibration
bins, the loss histogram is the report's histogram, the per-class bars are ``per_class``
and the heat map is ``confusion``. Nothing is recomputed here.

matplotlib is an optional extra, imported only when a figure is drawn (:func:`require`).
The figure is a bare :class:`matplotlib.figure.Figure`, never pyplot's: no display, no
global state, and :meth:`~matplotlib.figure.Figure.savefig` picks the Agg, SVG or PDF
canvas from the format, so no backend is ever selected or needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from xentcli.errors import XentError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from xentcli.batch.accumulator import Summary
    from xentcli.batch.tokens import TokenSummary

__all__ = [
    "EXTRA",
    "FORMATS",
    "MAX_HEATMAP_CLASSES",
    "MissingPlotExtraError",
    "plot_format",
    "report_figure",
    "require",
    "save",
    "token_figure",
]

EXTRA = "pip install 'xent[plot]'"
FORMATS = ("png", "svg", "pdf")  #: the file types --plot writes, from the name's extension
MAX_HEATMAP_CLASSES = 30  #: the confusion matrix is drawn up to this many classes
MAX_LABELLED = 30  #: class names and bin counts are written up to this many
_DPI = 100


class MissingPlotExtraError(XentError):
    """A figure was asked for but matplotlib is not installed."""


def plot_format(path: str) -> str:
    """The format of *path* from its extension (``png``, ``svg``, ``pdf``, any case).

    >>> plot_format("report.PNG"), plot_format("out/fig.pdf")
    ('png', 'pdf')
    >>> plot_format("fig.jpg")
    Traceback (most recent call last):
    xentcli.errors.XentError: --plot fig.jpg: unknown extension '.jpg' (give a .png, .svg or .pdf file)
    """
    extension = os.path.splitext(path)[1]
    kind = extension[1:].lower()
    if kind not in FORMATS:
        said = f"unknown extension {extension!r}" if extension else "no extension"
        raise XentError(f"--plot {path}: {said} (give a .png, .svg or .pdf file)")
    return kind


def require() -> None:
    """Import matplotlib, or raise :class:`MissingPlotExtraError` naming the extra."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise MissingPlotExtraError(f"--plot needs matplotlib: {EXTRA}") from None


def save(figure: Figure, handle: IO[bytes], kind: str) -> None:
    """Write *figure* to the binary *handle* as *kind* (``png``, ``svg`` or ``pdf``).

    The file carries no date, and SVG ids are salted with a constant, so the same report
    gives the same bytes on the same matplotlib (a committed figure does not churn).
    """
    import matplotlib

    metadata: dict[str, Any] = {
        "png": {"Software": None},
        "svg": {"Date": None},
        "pdf": {"CreationDate": None, "ModDate": None},
    }[kind]
    with matplotlib.rc_context({"svg.hashsalt": "xent", "svg.fonttype": "path"}):
        figure.savefig(handle, format=kind, dpi=_DPI, metadata=metadata)


# ------------------------------------------------------------------ a classifier's report
def report_figure(summary: Summary) -> Figure:
    """The figure of a classifier's report: reliability, loss histogram, per class, confusion.

    Each panel's axes has a gid (``reliability``, ``loss_histogram``, ``per_class``,
    ``confusion``) so that its artists can be found again (the tests read them back).
    """
    require()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 10), layout="constrained")
    grid = figure.subplots(2, 2)
    _reliability(grid[0][0], summary)
    _loss_histogram(grid[0][1], summary)
    _per_class(grid[1][0], summary)
    _confusion(grid[1][1], summary)
    figure.suptitle(_headline(summary))
    return figure


def _headline(summary: Summary) -> str:
    files = ", ".join(f.path for f in summary.files[:3])
    if len(summary.files) > 3:
        files += f" and {len(summary.files) - 3} more"
    parts = [f"{summary.rows_counted:,} rows"]
    if summary.loss_mean is not None:
        parts.append(f"mean loss {_short(summary.loss_mean)} {summary.units}")
    if summary.accuracy is not None:
        parts.append(f"accuracy {100 * summary.accuracy:.2f} %")
    metrics = summary.metrics
    if metrics is not None:
        if metrics.calibration.ece is not None:
            parts.append(f"ECE {_short(metrics.calibration.ece)}")
        if metrics.brier.mean is not None:
            parts.append(f"Brier {_short(metrics.brier.mean)}")
    return f"xent batch {files}\n" + ", ".join(parts)


def _short(value: float) -> str:
    """Four significant digits (the table has six, the JSON every digit).

    >>> _short(0.1757931), _short(float("inf"))
    ('0.1758', 'inf')
    """
    return f"{value:.4g}"


def _empty(axes: Axes, title: str, note: str) -> None:
    axes.set_title(title)
    axes.text(0.5, 0.5, note, ha="center", va="center", wrap=True, transform=axes.transAxes)
    axes.set_axis_off()


def _reliability(axes: Axes, summary: Summary) -> None:
    """Accuracy per equal-width confidence bin (bars labelled with their rows), the
    mean confidence of each bin, and the diagonal of perfect calibration."""
    axes.set_gid("reliability")
    title = "Reliability (top-label confidence)"
    if summary.metrics is None or not summary.metrics.calibration.rows:
        _empty(axes, title, "no row counts: no calibration")
        return
    calibration = summary.metrics.calibration
    # A bin of rows that all weigh 0 (--weight-column) has no accuracy: no bar.
    filled = [b for b in calibration.bins if b.rows and b.accuracy is not None]
    bars = axes.bar(
        [b.low for b in filled],
        [b.accuracy or 0.0 for b in filled],
        width=[b.high - b.low for b in filled],
        align="edge",
        color="#4c72b0",
        edgecolor="white",
        linewidth=0.5,
        label="accuracy",
    )
    if calibration.n_bins <= MAX_LABELLED:
        axes.bar_label(bars, labels=[f"{b.rows:,}" for b in filled], fontsize=7, padding=1)
    axes.plot(
        [(b.low + b.high) / 2 for b in filled],
        [math.nan if b.confidence is None else b.confidence for b in filled],
        "_",
        color="#c44e52",
        markersize=10,
        markeredgewidth=2,
        label="mean confidence",
        gid="confidence",
    )
    axes.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.08)
    axes.set_xlabel(f"confidence ({calibration.n_bins} equal-width bins)")
    axes.set_ylabel("accuracy")
    counts = "bars labelled with their rows" if calibration.n_bins <= MAX_LABELLED else ""
    ece = "" if calibration.ece is None else f"ECE {_short(calibration.ece)}"
    axes.set_title(f"{title}\n{ece}" + (f"; {counts}" if counts else ""))
    axes.legend(loc="upper left", fontsize=8)


def _loss_histogram(axes: Axes, summary: Summary) -> None:
    """The report's histogram of row losses on a log axis (its bins are log-spaced);
    rows of loss exactly 0 or +inf, which a log axis cannot show, are written beside."""
    from matplotlib.ticker import MaxNLocator

    axes.set_gid("loss_histogram")
    title = f"Loss per row ({summary.units}, log scale)"
    finite = [b for b in summary.histogram if b.low > 0 and b.high < math.inf]
    zeros = sum(b.rows for b in summary.histogram if b.high == 0)
    infinite = sum(b.rows for b in summary.histogram if b.low == math.inf)
    if not finite and not zeros and not infinite:
        _empty(axes, title, "no row counts")
        return
    if finite:
        lows = [b.low for b in finite]
        # Losses all equal make one bin of no width: give it some, to be seen.
        highs = [b.high if b.high > b.low else b.low * 1.1 for b in finite]
        axes.bar(
            lows,
            [b.rows for b in finite],
            width=[h - lo for h, lo in zip(highs, lows, strict=True)],
            align="edge",
            color="#55a868",
            edgecolor="white",
            linewidth=0.5,
            label="rows",
        )
        axes.set_xscale("log")
    notes = []
    if zeros:
        notes.append(f"{zeros:,} rows of loss 0")
    if infinite:
        notes.append(f"{infinite:,} rows of infinite loss")
    if notes:
        axes.text(0.98, 0.95, "\n".join(notes), ha="right", va="top", transform=axes.transAxes)
    if summary.loss_mean is not None and 0 < summary.loss_mean < math.inf and finite:
        axes.axvline(summary.loss_mean, color="black", linestyle="--", linewidth=1)
        axes.annotate(
            f" mean {_short(summary.loss_mean)}",
            (summary.loss_mean, 1),
            xycoords=("data", "axes fraction"),
            va="top",
            fontsize=8,
        )
    axes.set_xlabel(f"loss ({summary.units})")
    axes.set_ylabel("rows")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    how = "exact" if summary.quantile_relative_error == 0 else "bin edges within 1 %"
    axes.set_title(f"{title}\n{summary.rows_counted:,} counted rows; {how}")


def _per_class(axes: Axes, summary: Summary) -> None:
    """Accuracy of each class (bars, left axis) and its mean loss (dots, right axis)."""
    axes.set_gid("per_class")
    classes = summary.per_class
    with_rows = [c for c in classes if c.accuracy is not None]
    axes.bar(
        [c.index for c in with_rows],
        [c.accuracy or 0.0 for c in with_rows],
        width=0.8,
        color="#4c72b0",
        label="accuracy",
    )
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("accuracy", color="#4c72b0")
    axes.set_xlabel("class (true label)")
    if len(classes) <= MAX_LABELLED:
        axes.set_xticks([c.index for c in classes], [c.name for c in classes])
        if max((len(c.name) for c in classes), default=0) > 3:
            axes.tick_params(axis="x", labelrotation=45)
    losses = axes.twinx()
    losses.set_gid("per_class_loss")
    losses.plot(
        [c.index for c in classes],
        [math.nan if c.loss is None else c.loss for c in classes],
        "o" if len(classes) <= MAX_LABELLED else ".",
        color="#dd8452",
        markersize=5 if len(classes) <= MAX_LABELLED else 2,
        gid="loss",
    )
    losses.set_ylim(bottom=0)
    losses.set_ylabel(f"mean loss ({summary.units})", color="#dd8452")
    axes.set_title("Per class: accuracy (bars) and mean loss (dots)")


def _confusion(axes: Axes, summary: Summary) -> None:
    """The confusion matrix as a heat map (rows: true class), up to 30 classes."""
    axes.set_gid("confusion")
    k = len(summary.per_class)
    matrix = None if summary.metrics is None else summary.metrics.confusion.matrix
    if k > MAX_HEATMAP_CLASSES or matrix is None:
        where = "in --format json" if matrix is not None else "not kept"
        _empty(
            axes,
            "Confusion matrix",
            f"{k:,} classes: too many to draw (up to {MAX_HEATMAP_CLASSES});\n"
            f"the matrix is {where}",
        )
        return
    image = axes.imshow(matrix, cmap="Blues", interpolation="nearest")
    axes.figure.colorbar(image, ax=axes, label="rows", shrink=0.8)
    names = [c.name for c in summary.per_class]
    axes.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 3 else 0)
    axes.set_yticks(range(k), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title("Confusion matrix (rows: true class)")
    if k <= 12:
        _write_counts(axes, matrix.tolist())


def _write_counts(axes: Axes, rows: Sequence[Sequence[float]]) -> None:
    """Each non-zero cell's count (a weight sum with --weight-column) written in it,
    white on the darker half of the scale."""
    peak = max((max(r) for r in rows), default=0) or 1
    for i, row in enumerate(rows):
        for j, count in enumerate(row):
            if count:
                dark = count > peak / 2
                axes.text(
                    j,
                    i,
                    f"{count:.4g}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )


# ------------------------------------------------------------ a language model's tokens
def token_figure(summary: TokenSummary) -> Figure:
    """The figure of a token log-probability report: the histogram of each sequence's
    mean negative log-likelihood (the report's own bins).

    Token log-probabilities hold the probability of the true token only, so there is no
    calibration, class or confusion to draw; the figure says so.
    """
    require()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 5.5), layout="constrained")
    axes = figure.subplots()
    axes.set_gid("sequence_histogram")
    bins = summary.histogram
    if not bins:
        _empty(axes, "Mean NLL per sequence", "no finite sequence loss")
    else:
        lows = [lo for lo, _, _ in bins]
        widths = [(hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.1 for lo, hi, _ in bins]
        axes.bar(
            lows,
            [n for _, _, n in bins],
            width=widths,
            align="edge",
            color="#55a868",
            edgecolor="white",
            linewidth=0.5,
            label="sequences",
        )
        axes.set_xlabel(f"mean negative log-likelihood per token ({summary.units})")
        axes.set_ylabel("sequences")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(
            f"Mean NLL per sequence ({summary.sequences:,} sequences by {summary.sequences_from})"
        )
    parts = [f"{summary.tokens:,} tokens"]
    if summary.perplexity is not None:
        parts.append(f"perplexity {_short(summary.perplexity)}")
    if summary.bits_per_byte is not None:
        parts.append(f"bits per byte {_short(summary.bits_per_byte)}")
    files = ", ".join(p for p, _ in summary.files[:3])
    figure.suptitle(
        f"xent batch {files}: token log-probabilities\n{', '.join(parts)}\n"
        "(no calibration or classes: only the true token's probability is known)",
        fontsize=10,
    )
    return figure
