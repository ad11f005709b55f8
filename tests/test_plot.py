"""``xent batch --plot``: a valid PNG/SVG/PDF whose drawn numbers are the report's.

The figure is caught as the command draws it (a spy on ``plot.report_figure``) and its
artists are read back: reliability bars against the JSON calibration bins, histogram
bars against the JSON histogram and the row count, per-class bars against the JSON and
a direct numpy computation, the heat map against the JSON and scikit-learn's
``confusion_matrix``. One PNG is rendered; the SVG and PDF cases use a tiny file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hardening import (
    NEEDS_PERMISSIONS,
    assert_clean_error,
    drop_file_capabilities,
    leftovers,
    run,
    run_process,
)
from sklearn.metrics import confusion_matrix
from test_cli_batch import EXAMPLES, load_digits_example

from xentcli.batch import plot

DIGITS = str(EXAMPLES / "digits.csv")
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF-"}
TINY = "a,b,c,label\n2.0,0.5,-1.0,0\n0.1,1.5,0.2,2\n-3.0,0.0,4.0,2\n1.0,1.0,0.0,1\n"


class Spy:
    """Keeps the figures the command draws (the real functions still draw them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.figures: list[Any] = []
        for name in ("report_figure", "token_figure"):
            real = getattr(plot, name)
            monkeypatch.setattr(plot, name, self._keep(real))

    def _keep(self, real: Any) -> Any:
        def spy(summary: Any) -> Any:
            figure = real(summary)
            self.figures.append(figure)
            return figure

        return spy

    def axes(self, gid: str) -> Any:
        (figure,) = self.figures
        (found,) = [a for a in figure.axes if a.get_gid() == gid]
        return found


def bars(axes: Any, label: str) -> list[Any]:
    (container,) = [c for c in axes.containers if c.get_label() == label]
    return list(container)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy(monkeypatch)


def test_png_draws_the_reports_numbers(tmp_path: Path, spy: Spy) -> None:
    out = tmp_path / "report.png"
    outcome = run(["batch", DIGITS, "--plot", str(out), "--format", "json", "--bins", "10"])
    assert outcome.code == 0, outcome.stderr
    assert out.read_bytes().startswith(MAGIC["png"])
    assert leftovers(tmp_path, {"report.png"}) == set()
    data = json.loads(outcome.stdout)
    logits, labels = load_digits_example()

    # Reliability: one bar per non-empty bin, at its range, as high as its accuracy,
    # labelled with its rows; the mean confidence marks; the diagonal.
    reliability = spy.axes("reliability")
    filled = [b for b in data["calibration"]["bins"] if b["rows"] and b["accuracy"] is not None]
    drawn = bars(reliability, "accuracy")
    assert [(p.get_x(), p.get_x() + p.get_width()) for p in drawn] == pytest.approx(
        [(b["low"], b["high"]) for b in filled], abs=1e-12
    )
    assert [p.get_height() for p in drawn] == [b["accuracy"] for b in filled]
    labels_drawn = [t.get_text() for t in reliability.texts]
    assert labels_drawn == [f"{b['rows']:,}" for b in filled]
    (marks,) = [line for line in reliability.lines if line.get_gid() == "confidence"]
    assert list(marks.get_ydata()) == [b["confidence"] for b in filled]
    assert any(
        list(line.get_xdata()) == [0, 1] and list(line.get_ydata()) == [0, 1]
        for line in reliability.lines
    )

    # The loss histogram: the report's bins, on a log axis, adding up to the rows.
    histogram = spy.axes("loss_histogram")
    assert histogram.get_xscale() == "log"
    heights = [p.get_height() for p in bars(histogram, "rows")]
    assert heights == [b["rows"] for b in data["histogram"]]
    assert sum(heights) == data["rows_counted"] == labels.size

    # Per class: the report's accuracies, which are numpy's; the mean losses as dots.
    per_class = spy.axes("per_class")
    predicted = logits.argmax(axis=1)
    direct = [float(np.mean(predicted[labels == c] == c)) for c in range(10)]
    drawn_accuracy = [p.get_height() for p in bars(per_class, "accuracy")]
    assert drawn_accuracy == [c["accuracy"] for c in data["per_class"]]
    assert drawn_accuracy == pytest.approx(direct, rel=1e-15)
    (losses,) = spy.axes("per_class_loss").lines
    assert list(losses.get_ydata()) == [c["loss"] for c in data["per_class"]]

    # The heat map is the JSON confusion matrix (rows: true class), which is sklearn's.
    (image,) = spy.axes("confusion").images
    array = np.asarray(image.get_array())
    assert array.tolist() == data["confusion"]
    assert array.tolist() == confusion_matrix(labels, predicted).tolist()
    assert (array != array.T).any()  # a transposed heat map would fail


@pytest.mark.parametrize("kind", ["svg", "pdf"])
def test_every_format_is_a_valid_file(tmp_path: Path, kind: str) -> None:
    (tmp_path / "tiny.csv").write_text(TINY)
    out = tmp_path / f"figure.{kind}"
    outcome = run(["batch", str(tmp_path / "tiny.csv"), "--plot", str(out)])
    assert outcome.code == 0, outcome.stderr
    assert out.read_bytes().startswith(MAGIC[kind])
    assert leftovers(tmp_path, {"tiny.csv", out.name}) == set()


def test_many_classes_have_a_note_instead_of_the_heat_map(tmp_path: Path, spy: Spy) -> None:
    k = plot.MAX_HEATMAP_CLASSES + 1
    rows = [",".join(["0"] * i + ["3"] + ["0"] * (k - 1 - i)) + f",{i}" for i in range(k)]
    header = ",".join(f"s{i}" for i in range(k)) + ",label"
    (tmp_path / "wide.csv").write_text("\n".join([header, *rows]) + "\n")
    outcome = run(["batch", str(tmp_path / "wide.csv"), "--plot", str(tmp_path / "w.svg")])
    assert outcome.code == 0, outcome.stderr
    confusion = spy.axes("confusion")
    assert len(confusion.images) == 0
    assert "31 classes: too many to draw" in confusion.texts[0].get_text()
    assert len(bars(spy.axes("per_class"), "accuracy")) == k


def test_sample_weights_draw_the_weighted_figures(tmp_path: Path, spy: Spy) -> None:
    # Weighted accuracies and weight sums in the heat map, as in the JSON; a bin whose
    # rows all weigh 0 has no accuracy, hence no bar.
    text = (
        "a,b,c,label,w\n2.0,0.5,-1.0,0,2.5\n0.1,1.5,0.2,2,1\n-3.0,0.0,4.0,2,0\n1.0,1.0,0.0,1,0.5\n"
    )
    (tmp_path / "w.csv").write_text(text)
    out = tmp_path / "w.svg"
    args = ["batch", str(tmp_path / "w.csv"), "--weight-column", "w", "--bins", "5"]
    outcome = run([*args, "--format", "json", "--plot", str(out)])
    assert outcome.code == 0, outcome.stderr
    data = json.loads(outcome.stdout)
    (image,) = spy.axes("confusion").images
    assert np.asarray(image.get_array()).tolist() == data["confusion"]
    drawn = bars(spy.axes("reliability"), "accuracy")
    bins = [b for b in data["calibration"]["bins"] if b["accuracy"] is not None]
    assert [(p.get_x(), p.get_height()) for p in drawn] == [(b["low"], b["accuracy"]) for b in bins]
    assert any(b["rows"] and b["accuracy"] is None for b in data["calibration"]["bins"])


def test_no_counted_row_draws_notes(tmp_path: Path, spy: Spy) -> None:
    (tmp_path / "ignored.csv").write_text("a,b,label\n1.0,2.0,0\n3.0,0.5,0\n")
    out = tmp_path / "f.svg"
    outcome = run(
        ["batch", str(tmp_path / "ignored.csv"), "--ignore-index", "0", "--plot", str(out)]
    )
    assert outcome.code == 0, outcome.stderr
    assert out.read_bytes().startswith(MAGIC["svg"])
    reliability = spy.axes("reliability")
    assert len(reliability.containers) == 0
    assert "no calibration" in reliability.texts[0].get_text()
    assert "no row counts" in spy.axes("loss_histogram").texts[0].get_text()


def test_token_report_draws_the_sequence_histogram(tmp_path: Path, spy: Spy) -> None:
    out = tmp_path / "tokens.svg"
    args = ["batch", str(EXAMPLES / "zen_tokens.jsonl"), "--scores", "token-logprobs"]
    args += ["--sequence-column", "line", "--format", "json", "--plot", str(out)]
    outcome = run(args)
    assert outcome.code == 0, outcome.stderr
    assert out.read_bytes().startswith(MAGIC["svg"])
    data = json.loads(outcome.stdout)
    drawn = bars(spy.axes("sequence_histogram"), "sequences")
    assert [p.get_height() for p in drawn] == [b["sequences"] for b in data["histogram"]]
    assert [p.get_x() for p in drawn] == [b["low"] for b in data["histogram"]]
    assert sum(p.get_height() for p in drawn) == data["sequences"]


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", ["figure.jpg", "figure", "figure.png.txt"])
def test_unknown_extension_is_a_usage_error_before_reading(tmp_path: Path, name: str) -> None:
    # The input does not exist: exit 2 (not 1) shows the option was refused first.
    outcome = run(["batch", str(tmp_path / "missing.csv"), "--plot", str(tmp_path / name)])
    assert_clean_error(outcome, 2, contains=("--plot", ".png, .svg or .pdf"))
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    outcome = run(["batch", str(tmp_path / "missing.csv"), "--plot", str(tmp_path / "f.png")])
    line = assert_clean_error(outcome, 2, contains=("pip install 'xent[plot]'",))
    assert line == "Error: --plot needs matplotlib: pip install 'xent[plot]'"
    assert list(tmp_path.iterdir()) == []


def test_unwritable_paths_fail_before_reading(tmp_path: Path) -> None:
    (tmp_path / "adir.png").mkdir()
    for target, reason in (("nodir/f.png", "no such file"), ("adir.png", "is a directory")):
        outcome = run(["batch", str(tmp_path / "missing.csv"), "--plot", str(tmp_path / target)])
        assert_clean_error(outcome, 1, where=str(tmp_path / target), contains=(reason,))
    assert leftovers(tmp_path, {"adir.png"}) == set()


def test_plot_naming_the_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tiny.png").write_text(TINY)
    outcome = run(["batch", str(tmp_path / "tiny.png"), "--plot", str(tmp_path / "tiny.png")])
    assert_clean_error(outcome, 2, contains=("--plot", "is the input file"))
    assert (tmp_path / "tiny.png").read_text() == TINY


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tiny.csv").write_text(TINY)
    out = tmp_path / "f.png"
    out.write_bytes(b"the old figure")

    def full_disk(figure: Any, handle: Any, kind: str) -> None:
        handle.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plot, "save", full_disk)
    outcome = run(["batch", str(tmp_path / "tiny.csv"), "--plot", str(out)])
    assert_clean_error(outcome, 1, where=str(out), contains=("no space left",))
    assert outcome.stdout == ""  # the report is not printed when its figure fails
    assert out.read_bytes() == b"the old figure"
    assert leftovers(tmp_path, {"tiny.csv", "f.png"}) == set()


@NEEDS_PERMISSIONS
def test_plot_in_a_read_only_directory(tmp_path: Path) -> None:
    (tmp_path / "tiny.csv").write_text(TINY)
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    outcome = run_process(
        ["batch", "tiny.csv", "--plot", "ro/f.png"],
        cwd=tmp_path,
        preexec_fn=drop_file_capabilities,
    )
    locked.chmod(0o755)
    assert_clean_error(outcome, 1, where="ro/f.png", contains=("permission denied",))
    assert list(locked.iterdir()) == []
    assert outcome.stdout == ""


def test_plot_is_refused_with_sigmoid(tmp_path: Path) -> None:
    (tmp_path / "tags.csv").write_text("logit_a,logit_b,y_a,y_b\n1.0,-2.0,1,0\n")
    args = ["batch", str(tmp_path / "tags.csv"), "--sigmoid", "--logit-columns", "logit_*"]
    outcome = run([*args, "--target-columns", "y_*", "--plot", str(tmp_path / "f.png")])
    assert_clean_error(outcome, 2, contains=("--plot cannot be used with --sigmoid",))
    assert leftovers(tmp_path, {"tags.csv"}) == set()


def test_the_readme_shows_the_committed_figure_and_its_command() -> None:
    root = EXAMPLES.parent
    readme = (root / "README.md").read_text()
    command = "xent batch examples/digits.csv --plot examples/digits_plot.png"
    assert command in readme
    assert "](examples/digits_plot.png)" in readme
    assert '"--plot", "examples/digits_plot.png"' in (EXAMPLES / "make_plot.py").read_text()
    assert (EXAMPLES / "digits_plot.png").read_bytes().startswith(MAGIC["png"])
