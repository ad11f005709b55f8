"""End-to-end tests of ``xent batch`` on real files, through click's CliRunner."""

from __future__ import annotations

import csv
import gzip
import json
import math
import shutil
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xentcli.batch import accumulator as batch_module
from xentcli.cli.main import main
from xentcli.core._kernel import cross_entropy

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run(args: Sequence[str], *, input: bytes | None = None) -> Outcome:
    """``xent ARGS`` in process, through the same ``main`` as the installed script."""
    runner = CliRunner()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with runner.isolation(
            input=input, env={"COLUMNS": "100", "NO_COLOR": "1", "XENT_DEBUG": None}
        ) as streams:
            try:
                main(list(args))
                code = 0
            except SystemExit as request:
                code = (
                    request.code
                    if isinstance(request.code, int)
                    else (0 if request.code is None else 1)
                )
            sys.stdout.flush()
            sys.stderr.flush()
            stdout = streams[0].getvalue().decode()
            stderr = streams[1].getvalue().decode()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return Outcome(code, stdout, stderr)


def ok(args: Sequence[str], **kwargs: bytes) -> Outcome:
    outcome = run(args, **kwargs)
    assert outcome.code == 0, outcome.stderr
    return outcome


def write_table(
    path: Path,
    logits: np.ndarray,
    labels: Sequence[object] | None = None,
    targets: np.ndarray | None = None,
    delimiter: str = ",",
    header: bool = True,
) -> Path:
    k = logits.shape[1]
    names = [f"logit_{j}" for j in range(k)]
    if labels is not None:
        names.append("label")
    if targets is not None:
        names += [f"target_{j}" for j in range(k)]
    lines = [delimiter.join(names)] if header else []
    for i, row in enumerate(logits):
        cells = [repr(float(v)) for v in row]
        if labels is not None:
            cells.append(str(labels[i]))
        if targets is not None:
            cells += [repr(float(v)) for v in targets[i]]
        lines.append(delimiter.join(cells))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def random_data(n: int = 40, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(scale=3.0, size=(n, k)), rng.integers(0, k, size=n)


def load_digits_example() -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(EXAMPLES / "digits.csv", delimiter=",", skiprows=1)
    return data[:, :10], data[:, 10].astype(np.int64)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------- table
SMALL = """\
logit_0,logit_1,logit_2,label
1.2,2.3,0.8,1
0.0,-40.0,-40.0,0
2.0,0.0,0.0,2
0.0,0.0,0.0,1
"""

SMALL_TABLE = """\
xent batch: 1 file, 4 rows (4 counted, 0 ignored, 0 skipped)
File: small.csv
Scores: logits (detected; --scores to override)

Mean loss                         0.945069 nats [0, 1.9]
Perplexity                        2.57299
Accuracy                          50.00 % (2 of 4 rows) [15.0 %, 85.0 %]
Brier score                       0.5724 [0, 1.2]
ECE (15 equal-width bins)         0.3694
ECE (15 equal-mass bins)          0.3694 (exact within 0)
MCE                               0.7870
Macro precision / recall / F1     0.4444 / 0.5000 / 0.3889
Weighted precision / recall / F1  0.5833 / 0.5000 / 0.4583
Intervals                         95 % (normal approximation; Wilson for accuracies)

Loss per row (nats; exact quantiles)
        min       p50      p90      p99      max
8.49671e-18  0.770366  1.89727  2.20532  2.23954

Loss (nats)           Rows
---------------------------------------------------------------------
8.5e-18 - 4.69e-16       1   #############
4.69e-16 - 2.59e-14      0
2.59e-14 - 1.43e-12      0
1.43e-12 - 7.9e-11       0
7.9e-11 - 4.36e-09       0
4.36e-09 - 2.41e-07      0
2.41e-07 - 1.33e-05      0
1.33e-05 - 0.000734      0
0.000734 - 0.0406        0
0.0406 - 2.24            3   ########################################

Reliability (top-label confidence, 15 equal-width bins; 11 empty not shown)
Confidence      Rows   Mean conf.   Accuracy       Gap
-----------------------------------------------------------------------------
0.333 - 0.400      1       0.3333     0.0000   -0.3333   ....................
0.600 - 0.667      1       0.6427     1.0000   +0.3573   ####################
0.733 - 0.800      1       0.7870     0.0000   -0.7870   ....................
0.933 - 1.000      1       1.0000     1.0000   +0.0000   ####################

Per class
Class   Rows   Mean loss (nats)   Accuracy   Share of loss   Precision   Recall       F1
----------------------------------------------------------------------------------------
0          1          8.497e-18   100.00 %          0.00 %      0.3333   1.0000   0.5000
1          2          7.704e-01    50.00 %         40.76 %      1.0000   0.5000   0.6667
2          1          2.240e+00     0.00 %         59.24 %           -   0.0000   0.0000

Confusion matrix (rows: true class, columns: predicted)
True   0   1   2
----------------
0      1   .   .
1      1   1   .
2      1   .   .

Worst 2 rows (FILE:LINE)
#   File:line     Label   Predicted   P(label)   Loss (nats)
------------------------------------------------------------
1   small.csv:4       2           0     0.1065        2.2395
2   small.csv:5       1           0     0.3333        1.0986

Study the worst row step by step: xent compute --from small.csv:4
"""


def test_table_whole(work: Path) -> None:
    (work / "small.csv").write_text(SMALL)
    outcome = ok(["batch", "small.csv", "--worst", "2"])
    assert outcome.stdout == SMALL_TABLE
    assert outcome.stderr == ""


def test_example_dataset_mean_is_the_kernels(work: Path) -> None:
    logits, labels = load_digits_example()
    shutil.copy(EXAMPLES / "digits.csv", work / "digits.csv")
    data = json.loads(ok(["batch", "digits.csv", "--format", "json"]).stdout)
    assert data["loss"] == cross_entropy(logits, labels)
    assert data["rows"] == data["rows_counted"] == 540
    assert data["accuracy"] == np.mean(logits.argmax(axis=1) == labels)
    assert data["perplexity"] == math.exp(data["loss"])
    worst = data["worst"][0]
    assert worst["loss"] == max(cross_entropy(logits, labels, reduction="none"))
    # the reported line is the physical line, so the row is found again in the file
    line = (work / "digits.csv").read_text().splitlines()[worst["line"] - 1]
    assert line.endswith(f",{worst['label']}")


def test_soft_target_example(work: Path) -> None:
    data = np.loadtxt(EXAMPLES / "digits_distill.csv", delimiter=",", skiprows=1)
    out = ok(
        [
            "batch",
            str(EXAMPLES / "digits_distill.csv"),
            "--target-columns",
            "target_*",
            "--format",
            "json",
            "--chunk-rows",
            "7",
        ]
    ).stdout
    result = json.loads(out)
    assert result["loss"] == cross_entropy(data[:, :10], targets=data[:, 10:])
    assert result["soft_targets"] is True


# ---------------------------------------------------------- exactness and options
OPTIONS = [
    [],
    ["--weights", "0.5,2,1,0.1"],
    ["--ignore-index", "3"],
    ["--label-smoothing", "0.1", "--temperature", "0.7"],
    ["--base", "2", "--weights", "1,2,3,4", "--label-smoothing", "0.05"],
    ["--base", "10", "--reduction", "sum"],
]


def kernel_options(args: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        key = flag[2:].replace("-", "_")
        if key == "weights":
            out[key] = [float(v) for v in value.split(",")]
        elif key == "ignore_index":
            out[key] = int(value)
        elif key in ("label_smoothing", "temperature"):
            out[key] = float(value)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("chunk", ["1", "3", "1000"])
@pytest.mark.parametrize("args", OPTIONS, ids=[" ".join(a) or "default" for a in OPTIONS])
def test_mean_matches_the_kernel_to_the_last_bit(work: Path, args: list[str], chunk: str) -> None:
    logits, labels = random_data()
    write_table(work / "p.csv", logits, labels)
    data = json.loads(
        ok(["batch", "p.csv", "--format", "json", "--chunk-rows", chunk, *args]).stdout
    )
    expected = cross_entropy(logits, labels, **kernel_options(args))  # type: ignore[arg-type]
    assert data["loss"] == expected
    assert (
        data["units"]
        == {"e": "nats", "2": "bits", "10": "bans"}[str(kernel_options(args).get("base", "e"))]
    )


def test_per_row_matches_the_kernel_in_input_order(work: Path) -> None:
    logits, labels = random_data(n=30)
    labels[4] = -100
    write_table(work / "a.csv", logits[:20], labels[:20])
    write_table(work / "b.tsv", logits[20:], labels[20:], delimiter="\t")
    ok(
        [
            "batch",
            "a.csv",
            "b.tsv",
            "--per-row",
            "rows.csv",
            "--ignore-index",
            "-100",
            "--base",
            "2",
            "--chunk-rows",
            "3",
        ]
    )
    with (work / "rows.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "line", "label", "predicted", "probability", "loss"]
    expected = cross_entropy(logits, labels, ignore_index=-100, base="2", reduction="none")
    q = np.exp(-cross_entropy(logits, labels, ignore_index=-100, reduction="none"))
    assert len(rows) == 31
    for i, row in enumerate(rows[1:]):
        file, line = ("a.csv", i + 2) if i < 20 else ("b.tsv", i - 20 + 2)
        assert row[:4] == [file, str(line), str(labels[i]), str(int(logits[i].argmax()))]
        if i == 4:
            assert row[4:] == ["", ""]
        else:
            assert row[5] == repr(float(expected[i]))
            assert float(row[4]) == pytest.approx(q[i], rel=1e-12)


def test_per_row_to_stdout_sends_the_summary_to_stderr(work: Path) -> None:
    logits, labels = random_data(n=3)
    write_table(work / "p.csv", logits, labels)
    outcome = ok(["batch", "p.csv", "--per-row", "-"])
    assert outcome.stdout.splitlines()[0] == "file,line,label,predicted,probability,loss"
    assert len(outcome.stdout.splitlines()) == 4
    assert outcome.stderr.startswith("xent batch: 1 file, 3 rows")


def test_class_names(work: Path) -> None:
    (work / "named.csv").write_text("a,b,c,label\n1,2,3,cat\n3,2,1,bird\n")
    out = ok(
        [
            "batch",
            "named.csv",
            "--classes",
            "cat,dog,bird",
            "--format",
            "json",
            "--per-row",
            "rows.csv",
        ]
    ).stdout
    data = json.loads(out)
    assert data["loss"] == cross_entropy([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [0, 2])
    assert [c["class"] for c in data["per_class"]] == ["cat", "dog", "bird"]
    assert {(w["label"], w["predicted"]) for w in data["worst"]} == {
        ("cat", "bird"),
        ("bird", "cat"),
    }
    assert (work / "rows.csv").read_text().splitlines()[1].startswith("named.csv,2,cat,bird,")


# ----------------------------------------------------------------- formats, inputs
def test_csv_format(work: Path) -> None:
    logits, labels = random_data(n=10)
    write_table(work / "a.csv", logits[:6], labels[:6])
    write_table(work / "b.csv.gz", logits[6:], labels[6:])
    out = ok(["batch", "a.csv", "b.csv.gz", "--format", "csv"]).stdout
    a = cross_entropy(logits[:6], labels[:6])
    b = cross_entropy(logits[6:], labels[6:])
    total = cross_entropy(logits, labels)
    accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    accuracy_a = float(np.mean(logits[:6].argmax(axis=1) == labels[:6]))
    accuracy_b = float(np.mean(logits[6:].argmax(axis=1) == labels[6:]))
    expected = (
        "file,rows,rows_counted,rows_ignored,rows_skipped,reduction,loss,units,perplexity,"
        "accuracy\n"
        f"a.csv,6,6,0,0,mean,{a!r},nats,{math.exp(a)!r},{accuracy_a!r}\n"
        f"b.csv.gz,4,4,0,0,mean,{b!r},nats,{math.exp(b)!r},{accuracy_b!r}\n"
        f"*,10,10,0,0,mean,{total!r},nats,{math.exp(total)!r},{accuracy!r}\n"
    )
    # the first ten columns; the evaluation columns (tests/test_metrics.py) follow
    got = "".join(",".join(line.split(",")[:10]) + "\n" for line in out.splitlines())
    assert got == expected


def test_several_files_table_lists_each(work: Path) -> None:
    logits, labels = random_data(n=10)
    write_table(work / "a.csv", logits[:6], labels[:6])
    write_table(work / "b.csv", logits[6:], labels[6:])
    out = ok(["batch", "a.csv", "b.csv"]).stdout
    assert out.startswith(
        "xent batch: 2 files, 10 rows (10 counted, 0 ignored, 0 skipped)\n"
        "\nFile    Rows   Counted   Ignored   Skipped   Mean loss (nats)   Perplexity   Accuracy\n"
    )
    assert (
        f"\na.csv      6         6         0         0   "
        f"{cross_entropy(logits[:6], labels[:6]):>16.4f}   " in out
    )


def test_quoted_glob_is_expanded_in_sorted_order(work: Path) -> None:
    logits, labels = random_data(n=9)
    (work / "runs").mkdir()
    for part, start in (("2", 0), ("1", 3), ("3", 6)):
        write_table(
            work / "runs" / f"part{part}.csv", logits[start : start + 3], labels[start : start + 3]
        )
    data = json.loads(ok(["batch", "runs/part*.csv", "--format", "json"]).stdout)
    assert [f["path"] for f in data["files"]] == [
        "runs/part1.csv",
        "runs/part2.csv",
        "runs/part3.csv",
    ]
    assert data["loss"] == cross_entropy(logits, labels)
    outcome = run(["batch", "runs/none*.csv"])
    assert outcome.code == 1
    assert outcome.stderr == "Error: runs/none*.csv: no file matches this pattern\n"


def test_standard_input(work: Path) -> None:
    data = json.loads(ok(["batch", "-", "--format", "json"], input=SMALL.encode()).stdout)
    assert data["files"][0]["path"] == "<stdin>"
    assert data["rows"] == 4


def test_no_header_and_explicit_columns(work: Path) -> None:
    (work / "raw.txt").write_text("1;0.5;2.0;-1.0\n0;0.0;0.0;3.0\n")
    data = json.loads(
        ok(
            [
                "batch",
                "raw.txt",
                "--delimiter",
                ";",
                "--no-header",
                "--label-column",
                "0",
                "--logit-columns",
                "1:4",
                "--format",
                "json",
            ]
        ).stdout
    )
    assert data["loss"] == cross_entropy([[0.5, 2.0, -1.0], [0.0, 0.0, 3.0]], [1, 0])


def test_progress_forced_on_still_reports(work: Path) -> None:
    (work / "small.csv").write_text(SMALL)
    outcome = ok(["batch", "small.csv", "--progress", "--format", "json"])
    assert json.loads(outcome.stdout)["rows"] == 4


def test_help_ends_with_examples() -> None:
    out = ok(["batch", "--help"]).stdout
    assert "Examples:" in out
    assert out.rstrip().endswith("zcat preds.csv.gz | xent batch - --format csv")


# --------------------------------------------------------------------- bad input
BAD = "logit_0,logit_1,label\n0,1,0\n1,x,0\n2,1,1\n1,1,5\n0,0,1\n"


def test_bad_cell_stops_with_a_located_error_and_no_file(work: Path) -> None:
    (work / "bad.csv").write_text(BAD)
    outcome = run(["batch", "bad.csv", "--per-row", "rows.csv", "--chunk-rows", "1"])
    assert outcome.code == 1
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("Error: bad.csv:3:2: ")
    assert len(outcome.stderr.splitlines()) == 1
    assert sorted(p.name for p in work.iterdir()) == ["bad.csv"]


def test_failed_run_leaves_an_existing_output_untouched(work: Path) -> None:
    (work / "bad.csv").write_text(BAD)
    (work / "rows.csv").write_text("previous\n")
    outcome = run(["batch", "bad.csv", "--per-row", "rows.csv"])
    assert outcome.code == 1
    assert (work / "rows.csv").read_text() == "previous\n"
    assert sorted(p.name for p in work.iterdir()) == ["bad.csv", "rows.csv"]


def test_interrupted_run_leaves_no_file(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logits, labels = random_data(n=20)
    write_table(work / "p.csv", logits, labels)
    calls = []
    original = batch_module.BatchAccumulator.add

    def interrupt(self, chunk, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, chunk, **kwargs)

    monkeypatch.setattr(batch_module.BatchAccumulator, "add", interrupt)
    outcome = run(["batch", "p.csv", "--per-row", "rows.csv", "--chunk-rows", "2"])
    assert outcome.code == 130
    assert outcome.stdout == ""
    assert sorted(p.name for p in work.iterdir()) == ["p.csv"]


def test_on_error_skip_counts_and_reports(work: Path) -> None:
    (work / "bad.csv").write_text(BAD)
    outcome = ok(
        ["batch", "bad.csv", "--on-error", "skip", "--format", "json", "--per-row", "rows.csv"]
    )
    data = json.loads(outcome.stdout)
    assert (data["rows"], data["rows_counted"], data["rows_skipped"]) == (5, 3, 2)
    assert data["files"][0]["skipped_lines"] == [3, 5]
    assert data["loss"] == cross_entropy([[0.0, 1.0], [2.0, 1.0], [0.0, 0.0]], [0, 1, 1])
    assert outcome.stderr == "Warning: skipped 2 bad rows (first: bad.csv:3, bad.csv:5)\n"
    assert len((work / "rows.csv").read_text().splitlines()) == 4
    table = ok(["batch", "bad.csv", "--on-error", "skip"]).stdout
    assert "Skipped 2 bad rows (--on-error skip):\n  bad.csv:3:2: " in table


def test_mismatched_files_are_a_data_error(work: Path) -> None:
    logits, labels = random_data(n=4)
    write_table(work / "a.csv", logits, labels)
    write_table(work / "b.csv", logits[:, :3], np.minimum(labels, 2))
    outcome = run(["batch", "a.csv", "b.csv", "--per-row", "rows.csv"])
    assert outcome.code == 1
    assert outcome.stderr == "Error: b.csv: 3 logit columns, but the first file has 4\n"
    assert not (work / "rows.csv").exists()


def test_no_row_counts_reports_an_undefined_mean(work: Path) -> None:
    (work / "ignored.csv").write_text("a,b,label\n1,2,-100\n")
    outcome = ok(["batch", "ignored.csv", "--ignore-index", "-100", "--format", "json"])
    assert json.loads(outcome.stdout)["loss"] is None
    assert outcome.stderr == "Warning: the mean loss is undefined: no row counts\n"
    table = ok(["batch", "ignored.csv", "--ignore-index", "-100"]).stdout
    assert "Mean loss   undefined: no row counts" in table


USAGE = [
    (["--target-columns", "target_*", "--label-column", "label"], "cannot be used together"),
    (["--target-columns", "target_*", "--ignore-index", "0"], "--ignore-index"),
    (["--label-smoothing", "1.5"], "--label-smoothing"),
    (["--label-smoothing", "abc"], "--label-smoothing"),
    (["--temperature", "0"], "--temperature"),
    (["--temperature", "nan"], "--temperature"),
    (["--weights", "1,-2,3,4"], "--weights"),
    (["--weights", "1,2"], "Error: --weights: 2 values for 4 classes\n"),
    (["--delimiter", "ab"], "--delimiter"),
    (["--worst", "-1"], "--worst"),
    (["--format", "xml"], "--format"),
    (["--per-row", "-", "--format", "json"], "standard output"),
    (["--base", "3"], "--base"),
]


@pytest.mark.parametrize(("args", "message"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_mistakes_exit_2(work: Path, args: list[str], message: str) -> None:
    logits, labels = random_data(n=3)
    write_table(work / "p.csv", logits, labels)
    outcome = run(["batch", "p.csv", "--per-row", "rows.csv", *args])
    assert outcome.code == 2, outcome.stderr
    assert message in outcome.stderr
    assert outcome.stdout == ""
    assert not (work / "rows.csv").exists()


def test_stdin_twice_is_a_usage_error() -> None:
    outcome = run(["batch", "-", "-"], input=b"")
    assert outcome.code == 2
    assert "only once" in outcome.stderr


def test_missing_file_and_directory(work: Path) -> None:
    outcome = run(["batch", "nope.csv"])
    assert outcome.code == 1
    assert outcome.stderr.startswith("Error: nope.csv")
    (work / "dir").mkdir()
    outcome = run(["batch", "dir"])
    assert outcome.code == 1
    assert outcome.stderr.startswith("Error: dir")
    assert "directory" in outcome.stderr


def test_per_row_path_problems(work: Path) -> None:
    (work / "small.csv").write_text(SMALL)
    outcome = run(["batch", "small.csv", "--per-row", "missing/rows.csv"])
    assert outcome.code == 1
    assert outcome.stderr.startswith("Error: missing/rows.csv: cannot write the per-row file")


def test_per_row_replaces_through_a_symlink_and_keeps_the_mode(work: Path) -> None:
    (work / "small.csv").write_text(SMALL)
    (work / "real.csv").write_text("old\n")
    (work / "real.csv").chmod(0o640)
    (work / "link.csv").symlink_to("real.csv")
    ok(["batch", "small.csv", "--per-row", "link.csv"])
    assert (work / "link.csv").is_symlink()
    assert (work / "real.csv").read_text().startswith("file,line,label,")
    assert (work / "real.csv").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in work.iterdir()) == ["link.csv", "real.csv", "small.csv"]
