"""Rendering of traces: whole tables at a fixed width without colour, JSON, CSV, Markdown,
LaTeX (structure always; compiled with pdflatex where it is installed), the derivation.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import given as hypothesis_given
from hypothesis import strategies as st
from rich.console import Console

from xentcli.cli.tools import make_console
from xentcli.compute.derivation import derivation, naive_notes, tex_escape, tex_number
from xentcli.compute.render import print_table, to_csv, to_json
from xentcli.compute.trace import Trace, build_trace
from xentcli.compute.typeset import latex as to_latex
from xentcli.compute.typeset import markdown as to_markdown
from xentcli.text import fixed, given, sig

INF = math.inf


def table(trace: Trace, **options: bool) -> str:
    buffer = io.StringIO()
    print_table(trace, make_console(buffer, width=100), **options)  # type: ignore[arg-type]
    return buffer.getvalue()


SEED = build_trace([1.2, 2.3, 0.8], 1)
SOFT_EVERYTHING_TRACE = build_trace(
    [1.0, 2.0, 3.0],
    targets=[0.25, 0.25, 0.5],
    weights=[1, 2, 0.5],
    label_smoothing=0.2,
    temperature=0.5,
    base="10",
    classes=["cat", "dog", "bird"],
)
# Traces that exercise every branch of the derivation and of the renderers.
VARIETY = {
    "seed": SEED,
    "soft, weights, smoothing, temperature, bans": SOFT_EVERYTHING_TRACE,
    "overflow": build_trace([1000.0, 1001.0, 1002.0], 0),
    "sum overflow": build_trace([709.0, 709.5], 1),
    "underflow": build_trace([-800.0, -801.0], 1),
    "confident": build_trace([0.0, -40.0], 0),
    "fairly confident": build_trace([0.0, -8.0], 0),
    "masked true class": build_trace([0.0, -INF, 1.0], 1),
    "weights": build_trace([1.2, 2.3, 0.8], 0, weights=[0.5, 2.0, 3.0], base="2"),
    "smoothing and weights": build_trace(
        [1.2, 2.3, 0.8], 2, label_smoothing=0.1, weights=[1.0, 2.0, 1.0]
    ),
    "awkward names": build_trace([0.5, -1.5, 2.5], 2, classes=["a_b|<c>", "50% & {x}", "c#~^$\\"]),
    "many classes": build_trace([float(v) for v in range(20)], 3),
    "huge magnitudes": build_trace([1e300, -1e300], 1),
    "subnormal logits": build_trace([1e-320, 0.0], 0),
    "tiny temperature": build_trace([1e-300, 2e-300], 0, temperature=1e-300),
}

SEED_TABLE = """\
Softmax and cross-entropy: 3 classes, true class 1

    k     y   y - max   e^(y - max)        q   p   -p log q     dL/dy
---------------------------------------------------------------------
    0   1.2   -1.1000        0.3329   0.2139   0          0    0.2139
>   1   2.3         0        1.0000   0.6427   1     0.4421   -0.3573
    2   0.8   -1.5000        0.2231   0.1434   0          0    0.1434

max m (class 1)                              2.3000
sum of shifted exps s = sum e^(y - m)        1.5560
log s                                       0.44212
log-sum-exp m + log s                        2.7421
loss L                                 0.44212 nats
perplexity e^L                               1.5560

probabilities q
  0  #########                                 0.2139
> 1  ##########################                0.6427
  2  ######                                    0.1434
"""

SEED_EXPLAIN = """\
Softmax and cross-entropy: 3 classes, true class 1

    k     y   y - max   e^(y - max)        q   p   -p log q     dL/dy
---------------------------------------------------------------------
    0   1.2   -1.1000        0.3329   0.2139   0          0    0.2139
>   1   2.3         0        1.0000   0.6427   1     0.4421   -0.3573
    2   0.8   -1.5000        0.2231   0.1434   0          0    0.1434

max m (class 1)                              2.3000
sum of shifted exps s = sum e^(y - m)        1.5560
log s                                       0.44212
log-sum-exp m + log s                        2.7421
loss L                                 0.44212 nats
perplexity e^L                               1.5560

probabilities q
  0  #########                                 0.2139
> 1  ##########################                0.6427
  2  ######                                    0.1434

Step by step

1) The largest logit
   m = max_k y_k = max(1.2, 2.3, 0.8) = 2.3
   (class 1, the predicted class)

2) Shift the logits by the max
   y_k - m = [1.2 - 2.3, 2.3 - 2.3, 0.8 - 2.3] = [-1.1000, 0, -1.5000]

3) Their exponentials
   e^(y_k - m) = [e^-1.1000, e^0, e^-1.5000] = [0.3329, 1.0000, 0.2231]
   Every exponent is <= 0, so every term is in [0, 1], and the max's own term is 1.

4) Their sum
   s = sum_k e^(y_k - m) = 0.3329 + 1.0000 + 0.2231 = 1.5560
   Check: s * e^m = 1.5560 * e^2.3 = 15.520 = sum_k e^(y_k), the unshifted sum
   The shift changes the sum by the factor e^-m only, and that cancels in q.

5) The probabilities (softmax)
   q_k = e^(y_k - m) / s = [0.3329 / 1.5560, 1.0000 / 1.5560, 0.2231 / 1.5560] = [0.2139, 0.6427,
   0.1434]
   They are >= 0 and sum to 1; e^m cancels, so q is also e^(y_k) / sum_j e^(y_j).

6) The one-hot target
   The true class is i = 1: p_1 = 1 and every other p_k = 0, so the sum keeps one term.
   L = -sum_k p_k log q_k = -log q_1 = -log 0.6427

7) The stable form and its value
   L = -(y_1 - m) + log s = -(2.3 - 2.3) + log 1.5560 = 0 + 0.44212 = 0.44212 nats
   log q_i = (y_i - m) - log s is never rounded through q_i itself.
   Perplexity: e^L = 1.5560
   Note: cutting q_1 to 0.642 before the log, as a hand calculation might, gives -log 0.642 = 0.443
   instead of 0.442: keep every digit until the end.

8) The gradient with respect to the logits
   dL/dy_k = q_k - p_k = [0.2139, -0.3573, 0.1434]
"""

OVERFLOW_NAIVE = """\
Softmax and cross-entropy: 3 classes, true class 0

    k      y   y - max   e^(y - max)        q   p   -p log q     dL/dy
----------------------------------------------------------------------
>   0   1000   -2.0000        0.1353   0.0900   1     2.4076   -0.9100
    1   1001   -1.0000        0.3679   0.2447   0          0    0.2447
    2   1002         0        1.0000   0.6652   0          0    0.6652

max m (class 2)                             1002.0
sum of shifted exps s = sum e^(y - m)       1.5032
log s                                      0.40761
log-sum-exp m + log s                       1002.4
loss L                                 2.4076 nats
perplexity e^L                              11.107

probabilities q
> 0  ####                                      0.0900
  1  ##########                                0.2447
  2  ###########################               0.6652

The textbook formula q = e^y / sum e^y, L = -log q, unshifted:

k   e^y   sum e^y   q textbook   q stable
-----------------------------------------
0   inf       inf          nan     0.0900
1   inf                    nan     0.2447
2   inf                    nan     0.6652

textbook loss  nan nats   (stable: 2.4076 nats)
  e^1002 overflows float64 to inf (the largest float64 is about 1.8e308 = e^709.78), so sum e^y =
  inf and q = e^y / sum e^y is inf / inf = nan (and 0 for the finite terms).
"""

CONFIDENT_NAIVE = """\
Softmax and cross-entropy: 2 classes, true class 0

    k     y    y - max   e^(y - max)           q   p    -p log q        dL/dy
-----------------------------------------------------------------------------
>   0     0          0     1.000e+00   1.000e+00   1   4.248e-18   -4.248e-18
    1   -40   -40.0000     4.248e-18   4.248e-18   0           0    4.248e-18

max m (class 0)                                      0
sum of shifted exps s = sum e^(y - m)           1.0000
log s                                       4.2484e-18
log-sum-exp m + log s                       4.2484e-18
loss L                                 4.2484e-18 nats
perplexity e^L                                  1.0000
1 - q_0                                     4.2484e-18

probabilities q
> 0  ########################################  1.0000
  1                                            4.248e-18

The textbook formula q = e^y / sum e^y, L = -log q, unshifted:

k          e^y   sum e^y   q textbook    q stable
-------------------------------------------------
0       1.0000    1.0000       1.0000      1.0000
1   4.2484e-18              4.248e-18   4.248e-18

textbook loss  0 nats   (stable: 4.2484e-18 nats)
  q_0 = e^y_0 / sum e^y rounds to exactly 1, so the textbook -log q_0 = 0: the loss (4.2484e-18
  nats) is lost. The stable form computes log s as log1p(...) and keeps it.
"""

SOFT_EVERYTHING = """\
Softmax and cross-entropy: 3 classes, soft target, temperature 0.5, label smoothing 0.2, class
weights

   k   class   y   y/T   y - max   e^(y - max)        q        p     w   -w p log q     dL/dy
---------------------------------------------------------------------------------------------
   0   cat     1     2   -4.0000        0.0183   0.0159   0.2667     1       0.4798   -0.2174
   1   dog     2     4   -2.0000        0.1353   0.1173   0.2667     2       0.4964   -0.3580
   2   bird    3     6         0        1.0000   0.8668   0.4667   0.5       0.0145    0.5753

max m (class bird)                           6.0000
sum of shifted exps s = sum e^(y - m)        1.1537
log s                                       0.14293
log-sum-exp m + log s                        6.1429
loss L                                 0.99064 bans
perplexity 10^L                              9.7867
entropy of the target H(p)             0.46061 bans
KL divergence KL(p || q)               0.29633 bans

probabilities q
   cat  #                                         0.0159
   dog  #####                                     0.1173
  bird  ###################################       0.8668
"""


# --------------------------------------------------------------------- whole tables
def test_seed_table_whole():
    assert table(SEED) == SEED_TABLE


def test_seed_table_with_the_derivation_whole():
    assert table(SEED, explain=True) == SEED_EXPLAIN


def test_naive_overflow_whole():
    assert table(VARIETY["overflow"], naive=True) == OVERFLOW_NAIVE


def test_naive_loses_the_confident_loss_whole():
    assert table(VARIETY["confident"], naive=True) == CONFIDENT_NAIVE


def test_soft_target_with_every_option_whole():
    assert table(SOFT_EVERYTHING_TRACE) == SOFT_EVERYTHING


def test_seed_table_shows_the_design_values():
    text = table(SEED)
    for value in ("0.2139", "0.6427", "0.1434", "1.5560", "0.44212 nats"):
        assert value in text


def test_plain_table_has_no_colour_no_box_drawing_and_no_trailing_spaces():
    for trace in VARIETY.values():
        text = table(trace, explain=True, naive=True)
        assert "\x1b[" not in text
        assert text.isascii() or any(not c.isascii() for c in "".join(trace.classes))
        assert all(line == line.rstrip() for line in text.splitlines())
        assert all(len(line) <= 100 for line in text.splitlines())


def test_a_narrow_console_never_cuts_a_number():
    buffer = io.StringIO()
    print_table(SEED, make_console(buffer, width=40), naive=True)
    text = buffer.getvalue()
    assert "\u2026" not in text  # no ellipsis
    assert ">   1   2.3         0        1.0000   0.6427   1     0.4421   -0.3573" in text
    assert "sum of shifted exps s = sum e^(y - m)        1.5560" in text


def test_terminal_table_highlights_the_true_class():
    buffer = io.StringIO()
    # A terminal with colour, as a user sees it.
    console = Console(file=buffer, width=100, force_terminal=True, color_system="standard")
    print_table(SEED, console)
    text = buffer.getvalue()
    assert "\x1b[1m" in text  # the true class's row is bold
    assert "\u2588" in text or "#" in text


def test_digits_give_more_decimals():
    text = table(SEED, digits=8)  # type: ignore[arg-type]
    assert "0.21392726" in text
    assert "0.442119225 nats" in text


# ------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.21392726067185291, 4, "0.2139"),
        (-1.0999999999999999, 4, "-1.1000"),
        (0.0, 4, "0"),
        (-0.0, 4, "0"),
        (4.248354255291589e-18, 4, "4.248e-18"),
        (1234567.0, 4, "1.235e+06"),
        (0.009, 2, "9.0e-03"),
        (INF, 4, "inf"),
        (-INF, 4, "-inf"),
        (math.nan, 4, "nan"),
        (0.21392726067185291, 17, "0.21392726067185291"),
    ],
)
def test_fixed(value, digits, expected):
    assert fixed(value, digits) == expected


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (1.5560012438465094, 4, "1.5560"),
        (0.44211922514309726, 4, "0.44212"),
        (15.519840306043733, 4, "15.520"),
        (12345.4, 4, "12345"),
        (2.3, 4, "2.3000"),
        (4.248354255291589e-18, 4, "4.2484e-18"),
        (1e300, 2, "1.00e+300"),
        (0.44211922514309726, 16, "0.44211922514309726"),
        (INF, 4, "inf"),
    ],
)
def test_sig(value, digits, expected):
    assert sig(value, digits) == expected


def test_given_and_tex_helpers():
    assert [given(v) for v in (1.2, 1e300, -INF, 1.0, 0.1)] == ["1.2", "1e+300", "-inf", "1", "0.1"]
    assert tex_number("4.248e-18") == "4.248 \\times 10^{-18}"
    assert tex_number("1e+300") == "1 \\times 10^{300}"
    assert tex_number("inf") == "\\infty"
    assert tex_number("nan") == "\\mathrm{NaN}"
    assert tex_escape("a_b & {c} 50% #1 ~^ \\") == (
        "a\\_b \\& \\{c\\} 50\\% \\#1 \\textasciitilde{}\\textasciicircum{} \\textbackslash{}"
    )
    assert tex_escape("a|b<c>") == "a\\textbar{}b\\textless{}c\\textgreater{}"


# ---------------------------------------------------------------------- derivation
def test_derivation_numbers_the_steps_of_the_issue():
    titles = [(s.number, s.title) for s in derivation(SEED)]
    assert titles == [
        (1, "The largest logit"),
        (2, "Shift the logits by the max"),
        (3, "Their exponentials"),
        (4, "Their sum"),
        (5, "The probabilities (softmax)"),
        (6, "The one-hot target"),
        (7, "The stable form and its value"),
        (8, "The gradient with respect to the logits"),
    ]


def _text_of(trace: Trace) -> str:
    return "\n".join(line.text for step in derivation(trace) for line in step.lines)


def test_derivation_says_why_the_shift_is_needed():
    overflow = _text_of(VARIETY["overflow"])
    assert "e^m = e^1002 overflows float64" in overflow
    assert "That is why the logits are shifted by the max first" in overflow
    assert "overflows float64 (above about 1.8e308)" in _text_of(VARIETY["sum overflow"])
    assert "e^m = e^-800 underflows float64" in _text_of(VARIETY["underflow"])
    assert "15.520 = sum_k e^(y_k)" in _text_of(SEED)


def test_derivation_of_a_confident_prediction_shows_one_minus_q():
    steps = derivation(VARIETY["confident"])
    confident = next(s for s in steps if s.title == "A confident prediction")
    assert confident.number == 8
    assert confident.lines[0].text == "1 - q_0 = sum_(k != 0) q_k = 4.2484e-18"
    assert "q_0 itself rounds to 1 in float64" in confident.lines[1].text
    fairly = _text_of(VARIETY["fairly confident"])
    assert "1 - q_0 = sum_(k != 0) q_k = 0.00033535" in fairly
    assert "-expm1(log q)" in fairly


def test_derivation_explains_smoothing_weights_and_soft_targets():
    soft = _text_of(SOFT_EVERYTHING_TRACE)
    assert derivation(SOFT_EVERYTHING_TRACE)[0].title == "Divide by the temperature"
    assert "p = (1 - eps) t + eps / K = (1 - 0.2) t + 0.2 / 3 = [0.2667, 0.2667, 0.4667]" in soft
    assert "a batch mean divides by N, not by the weights" in soft
    assert "In bans: L / ln 10" in soft
    assert "dL/dy_k = (q_k sum_c w_c p_c - w_k p_k) / (T ln 10)" in soft
    smoothing = _text_of(VARIETY["smoothing and weights"])
    assert "label smoothing eps = 0.1 mixes its one-hot target" in smoothing
    assert (
        "L = -sum_k w_k p_k log q_k = (1 - eps) w_2 (-log q_2) + (eps / K) sum_k w_k (-log q_k)"
    ) in smoothing
    weights = _text_of(VARIETY["weights"])
    assert "L = w_0 * (-(y_0 - m) + log s) = 0.5 * (-(1.2 - 2.3) + log 1.5560)" in weights
    assert "divides the sum of such losses by the sum of the rows' w_i, not by N" in weights
    assert "dL/dy_k = (w_0 (q_k - p_k)) / ln 2" in weights


def test_derivation_points_out_the_seed_notes_rounding():
    text = _text_of(SEED)
    assert "gives -log 0.642 = 0.443 instead of 0.442" in text
    assert "cutting" not in _text_of(VARIETY["overflow"])  # 0.090 -> 2.408 rounds the same


def test_long_rows_are_elided_in_the_derivation():
    text = _text_of(VARIETY["many classes"])
    assert "max(0, 1, 2, 3, 4, 5, 6, 7, ..., 18, 19) = 19" in text


def test_huge_magnitudes_in_text_and_tex():
    trace = VARIETY["huge magnitudes"]
    assert trace.loss == 2e300
    assert "e^m = e^1e+300 overflows float64" in _text_of(trace)
    tex = to_latex(trace)
    assert "e^{1 \\times 10^{300}}" in tex
    assert "1e+300" not in tex


def test_masked_true_class_has_infinite_loss():
    trace = VARIETY["masked true class"]
    text = table(trace, explain=True)
    assert "loss L                                 inf nats" in text
    assert "The true class is masked (its logit is -inf): q_1 = 0" in text
    assert "-(-inf - 1) + log" in text


def test_infinite_loss_from_another_class_under_smoothing_or_soft_targets_says_which():
    # Class 2 is masked, the true class 0 is not: the target's share of class 2 (eps / K
    # under smoothing, 0.2 as a soft target) times -log 0 makes the loss inf.
    smoothed = build_trace([1.0, 2.0, -INF], 0, label_smoothing=0.1)
    assert smoothed.loss == math.inf
    assert smoothed.probabilities[0] > 0.25
    text = " ".join(_text_of(smoothed).split())
    assert (
        "q_2 = 0 where the target is above 0 (label smoothing gives every class eps / K):" in text
    )
    assert "The true class has probability 0" not in text
    assert "$q_{2} = 0$ where the target is above 0 (label smoothing" in to_latex(smoothed)
    soft = build_trace([1.0, 2.0, -INF], targets=[0.5, 0.3, 0.2])
    assert "q_2 = 0 where the target is above 0: -log 0 = inf" in " ".join(_text_of(soft).split())
    # a masked class without a share of the target changes nothing: no such line
    assert "where the target is above 0" not in _text_of(
        build_trace([1.0, 2.0, -INF], targets=[0.5, 0.5, 0.0])
    )


# ---------------------------------------------------------------------------- naive
def test_naive_notes():
    assert naive_notes(SEED) == [
        "Here both agree: the shift matters for large logits and confident predictions."
    ]
    (overflow,) = naive_notes(VARIETY["overflow"])
    assert overflow.startswith("e^1002 overflows float64 to inf")
    (underflow,) = naive_notes(VARIETY["underflow"])
    assert underflow.startswith("Every e^y underflows float64 to 0")
    (lost,) = naive_notes(VARIETY["confident"])
    assert "rounds to exactly 1, so the textbook -log q_0 = 0" in lost
    (summed,) = naive_notes(VARIETY["sum overflow"])
    assert summed.startswith("The sum of the e^y overflows float64 to inf")
    (off,) = naive_notes(build_trace([0.0, -30.0], 0))
    assert off.startswith("The textbook loss is off by a relative")


# ----------------------------------------------------------------------------- json
DESIGN_KEYS = [
    "logits",
    "classes",
    "label",
    "targets",
    "temperature",
    "label_smoothing",
    "weights",
    "max",
    "shifted",
    "exp_shifted",
    "sum_exp_shifted",
    "log_sum_exp_shifted",
    "log_sum_exp",
    "sum_exp",
    "probabilities",
    "log_probabilities",
    "gradient",
    "loss",
    "units",
]


def test_json_has_design_shape_and_full_precision():
    data = json.loads(to_json(SEED))
    assert list(data)[: len(DESIGN_KEYS)] == DESIGN_KEYS
    assert data["loss"] == SEED.loss
    assert abs(data["loss"] - 0.44211922514309726) <= 2 * math.ulp(0.44211922514309726)
    assert data["probabilities"] == list(SEED.probabilities)
    assert data["sum_exp"] == SEED.sum_exp
    assert data["label"] == 1
    assert data["classes"] == ["0", "1", "2"]
    assert data["weights"] is None
    assert data["units"] == "nats"
    assert "naive" not in data
    assert "steps" not in data


def test_json_infinities_are_strings_and_overflowing_sum_is_null():
    data = json.loads(to_json(VARIETY["masked true class"]))
    assert data["loss"] == "inf"
    assert data["logits"][1] == "-inf"
    assert data["log_probabilities"][1] == "-inf"
    assert json.loads(to_json(VARIETY["overflow"]))["sum_exp"] is None


def test_json_with_naive_and_steps():
    data = json.loads(to_json(VARIETY["overflow"], naive=True, explain=True))
    assert data["naive"]["exp"] == ["inf", "inf", "inf"]
    assert data["naive"]["probabilities"] == ["nan", "nan", "nan"]
    assert data["naive"]["loss"] == "nan"
    assert data["naive"]["overflow"] is True
    assert data["steps"][0] == {
        "number": 1,
        "title": "The largest logit",
        "lines": ["m = max_k y_k = max(1000, 1001, 1002) = 1002", "(class 2, the predicted class)"],
    }


# ------------------------------------------------------------------------------ csv
def test_csv_is_one_line_per_class_at_full_precision():
    *rows, loss = list(csv.DictReader(io.StringIO(to_csv(SEED))))
    assert len(rows) == 3
    assert loss["index"] == "loss"
    assert float(loss["contribution"]) == SEED.loss
    assert list(rows[0]) == [
        "index",
        "class",
        "logit",
        "scaled_logit",
        "shifted",
        "exp_shifted",
        "probability",
        "log_probability",
        "target",
        "weight",
        "contribution",
        "gradient",
        "is_label",
    ]
    assert [float(r["probability"]) for r in rows] == list(SEED.probabilities)
    assert [r["is_label"] for r in rows] == ["0", "1", "0"]
    assert math.fsum(float(r["contribution"]) for r in rows) == SEED.loss


def test_csv_with_naive_columns_and_infinities():
    text = to_csv(VARIETY["overflow"], naive=True)
    assert text.splitlines()[0].endswith(",naive_exp,naive_probability")
    assert text.splitlines()[1].endswith(",inf,nan")
    masked = list(csv.DictReader(io.StringIO(to_csv(VARIETY["masked true class"]))))
    assert masked[1]["logit"] == "-inf"
    assert masked[1]["contribution"] == "inf"


# ------------------------------------------------------------------------- markdown
def test_markdown_has_the_table_the_steps_and_the_loss():
    text = to_markdown(SEED)
    lines = text.splitlines()
    assert lines[0] == "## Softmax and cross-entropy, step by step"
    assert (
        "| **1** | **2.3** | **0** | **1.0000** | **0.6427** | **1** | **0.4421** | **-0.3573** |"
    ) in lines
    assert "**7. The stable form and its value.**" in lines
    assert (
        "$$ L = -(y_{1} - m) + \\log s = -(2.3 - 2.3) + \\log 1.5560 = 0 + 0.44212"
        " = 0.44212\\ \\text{nats} $$"
    ) in lines
    assert lines[-1] == (
        "Loss $L = 0.44212$ nats; perplexity $e^{L} = 1.5560$; log-sum-exp $m + \\log s = 2.7421$."
    )
    assert text.count("$$") % 2 == 0


def test_markdown_escapes_class_names_in_the_table():
    text = to_markdown(build_trace([0.0, 1.0], 1, classes=["a|b", "c_d"]), naive=True)
    assert "| 0 | a\\|b |" in text
    assert "**c\\_d**" in text
    assert "**The textbook formula, without the shift.**" in text


# ---------------------------------------------------------------------------- latex
def _strip_escapes(tex: str) -> str:
    # \{ \} \$ \% \& \# \_ are literal characters, not structure.
    return re.sub(r"\\[{}$%&#_]", "", tex)


def check_latex_structure(tex: str) -> None:
    """Balanced braces, matched environments and math delimiters, a whole document."""
    body = _strip_escapes(tex)
    depth = 0
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unbalanced braces"
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", body):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack, f"\\end{{{name}}} without \\begin"
            assert stack.pop() == name, f"\\end{{{name}}} closes another environment"
    assert not stack, f"unclosed environments: {stack}"
    assert body.count("\\[") == body.count("\\]")
    assert len(re.findall(r"\\left(?![a-z])", body)) == len(re.findall(r"\\right(?![a-z])", body))
    for line in body.splitlines():
        assert line.count("$") % 2 == 0, f"unbalanced $ in {line!r}"
        assert not line.startswith("\\[") or line.endswith("\\]")
    assert body.startswith("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}")
    assert body.rstrip().endswith("\\end{document}")
    assert "nan" not in re.sub(r"\\mathrm\{NaN\}", "", body).replace("naive", "")


@pytest.mark.parametrize("name", list(VARIETY))
def test_latex_structure(name):
    check_latex_structure(to_latex(VARIETY[name], naive=True))


def test_latex_content_for_the_seed():
    tex = to_latex(SEED)
    assert "\\begin{tabular}{rrrrrrrr}" in tex
    assert "$\\mathbf{0.6427}$" in tex
    assert "\\item[7.] \\textbf{The stable form and its value.}" in tex
    assert "s \\cdot e^{m} = 1.5560 \\cdot e^{2.3} = 15.520 = \\sum_k e^{y_k}" in tex
    names = to_latex(VARIETY["awkward names"])
    assert "\\textbf{c\\#\\textasciitilde{}\\textasciicircum{}\\$\\textbackslash{}}" in names


# Compiled with a real LaTeX engine. CI installs one (.ci/run: Debian's texlive-latex-base)
# and sets XENT_REQUIRE_LATEX=1, so there a missing engine fails rather than skips; on
# other machines without pdflatex these tests show as skipped, with the reason.
_NO_PDFLATEX = shutil.which("pdflatex") is None and os.environ.get("XENT_REQUIRE_LATEX") != "1"


@pytest.mark.skipif(
    _NO_PDFLATEX, reason="pdflatex is not installed (apt-get install texlive-latex-base)"
)
@pytest.mark.parametrize(
    "name",
    [
        "seed",
        "soft, weights, smoothing, temperature, bans",
        "overflow",
        "awkward names",
        "masked true class",
        "huge magnitudes",
    ],
)
def test_latex_compiles_with_pdflatex(name, tmp_path):
    assert shutil.which("pdflatex"), "XENT_REQUIRE_LATEX=1 but pdflatex is not installed"
    (tmp_path / "doc.tex").write_text(to_latex(VARIETY[name], naive=True), encoding="utf-8")
    result = subprocess.run(
        [
            "pdflatex",
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-no-shell-escape",
            "doc.tex",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


# --------------------------------------------------------------------- robustness

_LOGIT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(min_value=-50, max_value=50),
    st.just(-INF),
)


@st.composite
def _traces(draw: st.DrawFn) -> Trace:
    logits = draw(
        st.lists(_LOGIT, min_size=1, max_size=6).filter(lambda row: any(v != -INF for v in row))
    )
    k = len(logits)
    options: dict[str, object] = {
        "temperature": draw(st.sampled_from([1.0, 0.5, 3.0])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1])),
        "base": draw(st.sampled_from(["e", "2", "10"])),
    }
    if draw(st.booleans()):
        options["weights"] = draw(
            st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=k, max_size=k)
        )
    if draw(st.booleans()):
        raw = draw(st.lists(st.integers(0, 4), min_size=k, max_size=k).filter(any))
        return build_trace(logits, targets=[v / sum(raw) for v in raw], **options)  # type: ignore[arg-type]
    return build_trace(logits, draw(st.integers(0, k - 1)), **options)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@hypothesis_given(_traces())
def test_every_format_renders_any_valid_sample(trace):
    text = table(trace, explain=True, naive=True)
    assert "loss L" in text
    assert json.loads(to_json(trace, naive=True, explain=True))["units"] == trace.units
    assert len(list(csv.reader(io.StringIO(to_csv(trace, naive=True))))) == trace.num_classes + 2
    assert to_markdown(trace, naive=True).startswith("## ")
    check_latex_structure(to_latex(trace, naive=True))
