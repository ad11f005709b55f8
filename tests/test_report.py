"""Tests of xentcli.batch.report: the rendered summary compared whole (width 100, no colour)."""

from __future__ import annotations

import io
import json
import math

import mpref
import numpy as np

from xentcli.batch.accumulator import BatchAccumulator, BatchOptions, Summary, summarize
from xentcli.batch.reader import Chunk
from xentcli.batch.report import (
    costliest,
    per_row_header,
    per_row_lines,
    render_csv,
    render_json,
    render_table,
)
from xentcli.cli.tools import make_console
from xentcli.core._kernel import cross_entropy
from xentcli.errors import DataError


def two_files() -> Summary:
    """Two small files: an ignored row, a skipped row, a tiny and a large loss."""
    options = BatchOptions(ignore_index=-1, worst=3, class_names=["cat", "dog", "bird"])
    acc = BatchAccumulator(3, options)
    acc.add(
        Chunk(
            "a.csv",
            np.array([[1.2, 2.3, 0.8], [0.0, -40.0, -40.0], [2.0, 0.0, 0.0]]),
            np.array([1, 0, 2]),
            None,
            np.array([2, 3, 4]),
        )
    )
    acc.add(
        Chunk(
            "b.csv",
            np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 3.0]]),
            np.array([-1, 2]),
            None,
            np.array([2, 4]),
        )
    )
    acc.add_skipped("b.csv", 1, [DataError("b.csv", 3, 2, "not a number", "x")])
    return acc.summary()


# The exact means of two_files() (mpmath), and the bound the contract gives them: a mean is
# the correctly rounded mean of row losses each within 2 ulp (docs/accuracy.md).
A_ROWS = ([[1.2, 2.3, 0.8], [0.0, -40.0, -40.0], [2.0, 0.0, 0.0]], [1, 0, 2])
B_ROWS = ([[1.0, 1.0, 3.0]], [2])
MEAN_ULP = 2.0


def exact_mean(*tables: tuple[list[list[float]], list[int]]) -> mpref.mp.mpf:
    rows = [row for table in tables for row in table[0]]
    labels = [label for table in tables for label in table[1]]
    return mpref.mean(rows, labels)


def assert_near(got: float, exact: mpref.mp.mpf, bound: float = MEAN_ULP) -> None:
    assert mpref.ulps(got, exact) <= bound, (got, float(exact))


def rendered(summary: Summary) -> str:
    buffer = io.StringIO()
    render_table(summary, make_console(buffer, width=100))
    return buffer.getvalue()


TWO_FILES = """\
xent batch: 2 files, 6 rows (4 counted, 1 ignored, 1 skipped)

File    Rows   Counted   Ignored   Skipped   Mean loss (nats)   Perplexity   Accuracy
-------------------------------------------------------------------------------------
a.csv      3         3         0         0             0.8939       2.4446    66.67 %
b.csv      3         1         1         1             0.2395       1.2707   100.00 %
Scores: logits

Mean loss                         0.730302 nats [0, 1.73]
Perplexity                        2.07571
Accuracy                          75.00 % (3 of 4 rows) [30.1 %, 95.4 %]
Brier score                       0.4228 [0, 1.08]
ECE (15 equal-width bins)         0.2328
ECE (15 equal-mass bins)          0.2328 (exact within 0.61)
MCE                               0.3573
Macro precision / recall / F1     0.8333 / 0.8333 / 0.7778
Weighted precision / recall / F1  0.8750 / 0.7500 / 0.7500
Intervals                         95 % (normal approximation; Wilson for accuracies)

Skipped 1 bad row (--on-error skip):
  b.csv:3:2: not a number ('x')

Loss per row (nats; exact quantiles)
        min       p50      p90      p99      max
8.49671e-18  0.340832  1.70032  2.18562  2.23954

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

Reliability (top-label confidence, 15 equal-width bins; 12 empty not shown)
Confidence      Rows   Mean conf.   Accuracy       Gap
-----------------------------------------------------------------------------
0.600 - 0.667      1       0.6427     1.0000   +0.3573   ####################
0.733 - 0.800      2       0.7870     0.5000   -0.2870   ##########..........
0.933 - 1.000      1       1.0000     1.0000   +0.0000   ####################

Per class
Class   Rows   Mean loss (nats)   Accuracy   Share of loss   Precision   Recall       F1
----------------------------------------------------------------------------------------
cat        1          8.497e-18   100.00 %          0.00 %      0.5000   1.0000   0.6667
dog        1          4.421e-01   100.00 %         15.13 %      1.0000   1.0000   1.0000
bird       2          1.240e+00    50.00 %         84.87 %      1.0000   0.5000   0.6667

Confusion matrix (rows: true class, columns: predicted)
True   cat   dog   bird
-----------------------
cat      1     .      .
dog      .     1      .
bird     1     .      1

Worst 3 rows (FILE:LINE)
#   File:line   Label   Predicted   P(label)   Loss (nats)
----------------------------------------------------------
1   a.csv:4      bird         cat     0.1065        2.2395
2   a.csv:2       dog         dog     0.6427        0.4421
3   b.csv:4      bird        bird     0.7870        0.2395
"""


def test_table_two_files() -> None:
    assert rendered(two_files()) == TWO_FILES


def test_table_sum_in_bits_one_file_with_infinite_loss() -> None:
    logits = np.array([[0.0, -np.inf], [0.0, 0.0], [0.0, 0.0]])
    chunk = Chunk("x.csv", logits, np.array([1, 0, 1]), None, np.array([2, 3, 4]))
    summary = summarize([chunk], 2, BatchOptions(reduction="sum", base="2", worst=2))
    assert (
        rendered(summary)
        == """\
xent batch: 1 file, 3 rows (3 counted, 0 ignored, 0 skipped)
File: x.csv
Scores: logits
Infinite loss: 1 row where the true class has probability 0 (x.csv:2)

Loss (sum)                        inf bits
Mean loss                         inf bits
Perplexity                        inf
Accuracy                          33.33 % (1 of 3 rows) [6.1 %, 79.2 %]
Brier score                       1.0000 [0.02, 1.98]
ECE (15 equal-width bins)         0.3333
ECE (15 equal-mass bins)          0.3333 (exact within 1)
MCE                               1.0000
Macro precision / recall / F1     0.1667 / 0.5000 / 0.2500
Weighted precision / recall / F1  0.1111 / 0.3333 / 0.1667
Intervals                         95 % (normal approximation; Wilson for accuracies)

Loss per row (bits; exact quantiles)
min  p50  p90  p99  max
  1    1  inf  inf  inf

Loss (bits)   Rows
-------------------------------------------------------------
1                2   ########################################
inf              1   ####################

Reliability (top-label confidence, 15 equal-width bins; 13 empty not shown)
Confidence      Rows   Mean conf.   Accuracy       Gap
-----------------------------------------------------------------------------
0.467 - 0.533      2       0.5000     0.5000   +0.0000   ##########..........
0.933 - 1.000      1       1.0000     0.0000   -1.0000   ....................

Per class
Class   Rows   Mean loss (bits)   Accuracy   Share of loss   Precision   Recall       F1
----------------------------------------------------------------------------------------
0          1             1.0000   100.00 %               -      0.3333   1.0000   0.5000
1          2                inf     0.00 %               -           -   0.0000   0.0000

Confusion matrix (rows: true class, columns: predicted)
True   0   1
------------
0      1   .
1      2   .

Worst 2 rows (FILE:LINE)
#   File:line   Label   Predicted   P(label)   Loss (bits)
----------------------------------------------------------
1   x.csv:2         1           0          0           inf
2   x.csv:3         0           0     0.5000        1.0000
"""
    )


def test_table_undefined_mean() -> None:
    chunk = Chunk("x.csv", np.array([[1.0, 2.0]]), np.array([-100]), None, np.array([2]))
    summary = summarize([chunk], 2, BatchOptions(ignore_index=-100))
    assert (
        rendered(summary)
        == """\
xent batch: 1 file, 1 row (0 counted, 1 ignored, 0 skipped)
File: x.csv
Scores: logits

Mean loss   undefined: no row counts (every label is the ignore index, or has weight 0)
Perplexity  undefined
Accuracy    - (0 of 0 rows)
"""
    )


def test_many_classes_show_the_costliest() -> None:
    k = 30
    logits = np.zeros((k, k))
    labels = np.arange(k)
    logits[labels, labels] = np.linspace(3.0, -3.0, k)  # class 29 costs most
    summary = summarize(
        [Chunk("w.csv", logits, labels, None, labels + 2)], k, BatchOptions(worst=0)
    )
    text = rendered(summary)
    start = text.index("The 10 costliest")
    assert (
        text[start:]
        == """\
The 10 costliest of 30 classes (by share of the total loss)
Class   Rows   Mean loss (nats)   Accuracy   Share of loss   Precision   Recall       F1
----------------------------------------------------------------------------------------
29         1             6.3690     0.00 %          6.11 %           -   0.0000   0.0000
28         1             6.1625     0.00 %          5.92 %           -   0.0000   0.0000
27         1             5.9561     0.00 %          5.72 %           -   0.0000   0.0000
26         1             5.7498     0.00 %          5.52 %           -   0.0000   0.0000
25         1             5.5436     0.00 %          5.32 %           -   0.0000   0.0000
24         1             5.3376     0.00 %          5.12 %           -   0.0000   0.0000
23         1             5.1318     0.00 %          4.93 %           -   0.0000   0.0000
22         1             4.9263     0.00 %          4.73 %           -   0.0000   0.0000
21         1             4.7211     0.00 %          4.53 %           -   0.0000   0.0000
20         1             4.5162     0.00 %          4.34 %           -   0.0000   0.0000

Confusion matrix: 30 classes, in --format json.
"""
    )
    assert [c.index for c in costliest(summary.per_class, 3)] == [29, 28, 27]


def test_soft_targets_are_labelled() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    targets = np.array([[0.9, 0.1], [0.5, 0.5]])
    summary = summarize(
        [Chunk("s.csv", logits, None, targets, np.array([2, 3]))], 2, BatchOptions(worst=1)
    )
    text = rendered(summary)
    assert "Accuracy (argmax of target)" in text
    assert "50.00 % (1 of 2 rows)" in text
    assert "Per class (argmax of target)" in text
    # the label of a soft-target row is the argmax of its target (the first on ties)
    assert "1   s.csv:3         0           1     0.2689        0.8133" in text


def test_json_is_full_precision_and_parses() -> None:
    summary = two_files()
    data = json.loads(render_json(summary))
    assert data["loss"] == summary.loss
    assert_near(data["loss"], exact_mean(A_ROWS, B_ROWS))
    assert_near(data["files"][1]["loss"], exact_mean(B_ROWS))
    assert data["files"][1] == {
        "path": "b.csv",
        "rows": 3,
        "loss": data["files"][1]["loss"],
        "rows_counted": 1,
        "rows_ignored": 1,
        "rows_skipped": 1,
        "skipped_lines": [3],
        "perplexity": data["files"][1]["perplexity"],
        "accuracy": 1.0,
        "correct": 1,
    }
    assert_near(data["files"][1]["perplexity"], mpref.mp.exp(exact_mean(B_ROWS)), 1 + 2 * MEAN_ULP)
    assert data["worst"][0] == {
        "file": "a.csv",
        "line": 4,
        "label": "bird",
        "predicted": "cat",
        "probability": summary.worst[0].probability,
        "loss": summary.worst[0].loss,
        "unit": "line",
    }
    assert data["per_class"][0]["class"] == "cat"
    assert data["skipped"] == [
        {"file": "b.csv", "line": 3, "column": 2, "error": "b.csv:3:2: not a number ('x')"}
    ]
    assert data["loss_quantiles"]["min"] == cross_entropy([0.0, -40.0, -40.0], 0)


def test_json_writes_infinity_as_a_string() -> None:
    chunk = Chunk("x.csv", np.array([[0.0, -np.inf]]), np.array([1]), None, np.array([2]))
    data = json.loads(render_json(summarize([chunk], 2)))
    assert data["loss"] == "inf"
    assert data["worst"][0]["loss"] == "inf"


def test_csv_whole() -> None:
    import csv

    text = render_csv(two_files())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
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
        "brier",
        "ece",
        "ece_equal_mass",
        "mce",
    ]
    # Everything but the losses is exact; the losses are full-precision numbers within the
    # contract's bound of the exact means.
    assert [r[:6] + r[7:8] for r in rows[1:]] == [
        ["a.csv", "3", "3", "0", "0", "mean", "nats"],
        ["b.csv", "3", "1", "1", "1", "mean", "nats"],
        ["*", "6", "4", "1", "1", "mean", "nats"],
    ]
    # Every file has its perplexity and accuracy, as the pooled line does.
    assert [r[9] for r in rows[1:]] == [repr(2 / 3), "1.0", "0.75"]
    assert_near(float(rows[1][8]), mpref.mp.exp(exact_mean(A_ROWS)), 1 + 2 * MEAN_ULP)
    assert [r[10:] for r in rows[1:3]] == [[""] * 4] * 2
    assert all(rows[3][10:])
    assert_near(float(rows[1][6]), exact_mean(A_ROWS))
    assert_near(float(rows[2][6]), exact_mean(B_ROWS))
    mean = exact_mean(A_ROWS, B_ROWS)
    assert_near(float(rows[3][6]), mean)
    # perplexity e^mean: the mean's error (2 ulp of 0.73) plus exp's rounding
    assert_near(float(rows[3][8]), mpref.mp.exp(mean), 1 + 2 * MEAN_ULP)
    assert repr(float(rows[3][6])) == rows[3][6]  # full precision: the shortest repr


def test_per_row_lines() -> None:
    acc = BatchAccumulator(3, BatchOptions(ignore_index=-1))
    chunk = Chunk(
        "a,b.csv",
        np.array([[1.2, 2.3, 0.8], [0.0, 0.0, 0.0]]),
        np.array([1, -1]),
        None,
        np.array([2, 3]),
    )
    result = acc.add(chunk, per_row=True)
    assert result is not None
    assert per_row_header() == "file,line,label,predicted,probability,loss\n"
    probability = float(result.probability[0])
    loss = cross_entropy([1.2, 2.3, 0.8], 1)
    assert per_row_lines(result) == (
        f'"a,b.csv",2,1,1,{probability!r},{loss!r}\n"a,b.csv",3,-1,0,,\n'
    )
    assert per_row_lines(result, ["x", "y", "z"]).splitlines()[0].startswith('"a,b.csv",2,y,y,')
    assert not math.isnan(probability)
