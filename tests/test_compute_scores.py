"""``xent compute --probs / --logprobs``: one sample given as a distribution.

Oracles: mpmath (the loss from the given floats, PyTorch's semantics written out term by
term here), scikit-learn's ``log_loss``, PyTorch's gradient of the implied logits; the
errors are the exact lines a user sees (CliRunner).
"""

from __future__ import annotations

import json
import math

import mpmath as mp
import pytest
from click.testing import CliRunner
from mpref import PREC, ulps

from xentcli.cli.main import cli


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["compute", *args], env={"COLUMNS": "100", "NO_COLOR": "1"})


def compute_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def given_loss(
    given: list[float],
    kind: str,
    label: int | None = None,
    *,
    targets: list[float] | None = None,
    weights: list[float] | None = None,
    smoothing: float = 0.0,
) -> mp.mpf:
    """PyTorch's row loss on log q, with q the given floats taken exactly (mpmath)."""
    k = len(given)
    with mp.workprec(PREC):
        nlq = [
            (mp.inf if v == 0 else -mp.log(mp.mpf(v))) if kind == "probs" else -mp.mpf(v)
            for v in given
        ]
        w = [mp.mpf(1)] * k if weights is None else [mp.mpf(x) for x in weights]
        eps = mp.mpf(smoothing)

        def term(a: mp.mpf, x: mp.mpf) -> mp.mpf:
            return mp.mpf(0) if a == 0 else a * x

        if targets is not None:
            t = [(1 - eps) * mp.mpf(x) + eps / k for x in targets]
            return mp.fsum(term(w[c] * t[c], nlq[c]) for c in range(k))
        assert label is not None
        main = term(w[label], nlq[label])
        if not smoothing:
            return main
        return (1 - eps) * main + eps / k * mp.fsum(term(w[c], nlq[c]) for c in range(k))


PROBS = [0.2, 0.7, 0.1]
CASES = [
    ([], {}),
    (["--weights", "1,2.5,0.5"], {"weights": [1, 2.5, 0.5]}),
    (["--label-smoothing", "0.1"], {"smoothing": 0.1}),
    (["--label-smoothing", "0.2", "--weights", "2,1,3"], {"smoothing": 0.2, "weights": [2, 1, 3]}),
]


@pytest.mark.parametrize(("kind", "given"), [("probs", PROBS), ("logprobs", [-1.6, -0.3, -2.5])])
@pytest.mark.parametrize(("options", "oracle"), CASES)
def test_labelled_loss_against_mpmath(
    kind: str, given: list[float], options: list[str], oracle: dict
) -> None:  # type: ignore[type-arg]
    if kind == "logprobs":  # a valid row: log-sum-exp 0 within the tolerance
        given = [math.log(p) for p in PROBS]
    values = ",".join(repr(v) for v in given)
    data = compute_json(f"--{kind}", values, "--label", "1", *options)
    assert data["scores"] == kind
    assert data["scores_given"] == given
    assert ulps(data["loss"], given_loss(given, kind, 1, **oracle)) <= 2
    bits = compute_json(f"--{kind}", values, "--label", "1", "--base", "2", *options)
    with mp.workprec(PREC):
        assert ulps(bits["loss"], given_loss(given, kind, 1, **oracle) / mp.log(2)) <= 2


@pytest.mark.parametrize("weights", [None, [1.0, 3.0, 0.5]])
def test_soft_target_against_mpmath(weights: list[float] | None) -> None:
    target = [0.3333, 0.3333, 0.3334]
    extra = [] if weights is None else ["--weights", ",".join(map(str, weights))]
    data = compute_json("--probs", "0.25,0.5,0.25", "--target", "0.3333,0.3333,0.3334", *extra)
    exact = given_loss([0.25, 0.5, 0.25], "probs", targets=target, weights=weights)
    assert ulps(data["loss"], exact) <= 2


def test_log_loss_of_scikit_learn() -> None:
    from sklearn.metrics import log_loss

    rows = [([0.1, 0.6, 0.3], 2), ([0.05, 0.05, 0.9], 2), ([0.7, 0.2, 0.1], 0)]
    for p, label in rows:
        data = compute_json("--probs", ",".join(map(repr, p)), "--label", str(label))
        want = log_loss([label], [p], labels=[0, 1, 2])
        assert data["loss"] == pytest.approx(want, rel=4.5e-16, abs=0)


def test_starts_from_what_was_given() -> None:
    import torch
    import torch.nn.functional as F

    data = compute_json("--probs", "0.2,0.7,0.1", "--label", "1")
    # q is the given distribution itself, log q its logs, the implied logits log q
    assert data["probabilities"] == PROBS
    assert data["log_probabilities"] == [math.log(p) for p in PROBS]
    assert data["logits"] == [math.log(p) for p in PROBS]
    assert data["scores_total"] == pytest.approx(1.0, abs=1e-15)  # the sum, checked
    # the gradient with respect to the implied logits is q - p (PyTorch on log q)
    y = torch.log(torch.tensor([PROBS], dtype=torch.float64)).requires_grad_()
    F.cross_entropy(y, torch.tensor([1])).backward()
    assert y.grad is not None
    assert data["gradient"] == pytest.approx(y.grad[0].tolist(), abs=1e-15)
    logp = compute_json("--logprobs", "-1.6094,-0.3567,-2.3026", "--label", "1")
    assert (logp["scores"], logp["loss"]) == ("logprobs", 0.3567)  # -log q as given
    assert logp["probabilities"] == [math.exp(v) for v in (-1.6094, -0.3567, -2.3026)]


def test_logits_json_keeps_its_keys() -> None:
    data = compute_json("--logits", "1.2,2.3,0.8", "--label", "1")
    assert data["scores"] == "logits"
    assert data["scores_given"] is None
    assert data["logits"] == [1.2, 2.3, 0.8]
    assert "scores_note" not in data


def test_zero_probability_at_the_label_is_an_infinite_loss() -> None:
    data = compute_json("--probs", "0.3,0.7,0", "--label", "2")
    assert (data["loss"], data["perplexity"]) == ("inf", "inf")
    table = run("--probs", "0.3,0.7,0", "--label", "2", "--explain")
    assert table.exit_code == 0
    assert "loss L              inf nats" in table.stdout
    assert "The true class has probability 0: -log 0 = inf" in table.stdout


def test_temperature_runs_the_softmax_of_the_logs() -> None:
    import torch
    import torch.nn.functional as F

    data = compute_json("--probs", "0.2,0.7,0.1", "--label", "1", "--temperature", "2")
    y = torch.log(torch.tensor([PROBS], dtype=torch.float64)) / 2
    want = F.cross_entropy(y, torch.tensor([1])).item()
    assert data["loss"] == pytest.approx(want, rel=1e-15)
    assert data["probabilities"] == pytest.approx(torch.softmax(y, 1)[0].tolist(), rel=1e-15)


TABLE = """\
Cross-entropy of given probabilities: 3 classes, true class 1

Given probabilities: q is the given distribution and the loss is -log q of the given values; the
logits they imply are log q (up to an additive constant), and the gradient with respect to those
logits is still q - p.

    k     q     log q   p   -p log q     dL/dy
----------------------------------------------
    0   0.2   -1.6094   0          0    0.2000
>   1   0.7   -0.3567   1     0.3567   -0.3000
    2   0.1   -2.3026   0          0    0.1000

sum of the given q        1.0000
loss L              0.35667 nats
perplexity e^L            1.4286

probabilities q
  0  ########                                  0.2000
> 1  ############################              0.7000
  2  ####                                      0.1000
"""


def test_table_whole() -> None:
    result = run("--probs", "0.2,0.7,0.1", "--label", "1")
    assert (result.exit_code, result.stdout, result.stderr) == (0, TABLE, "")


def test_derivation_starts_from_the_given_distribution() -> None:
    result = run("--probs", "0.2,0.7,0.1", "--label", "1", "--explain")
    titles = [line for line in result.stdout.splitlines() if line[:2] in ("1)", "2)", "4)")]
    assert titles == ["1) The given probabilities", "2) Their logs", "4) The loss"]
    assert "within the tolerance 0.00015 of 1" in result.stdout
    assert "y - max" not in result.stdout  # no softmax was computed
    md = run("--logprobs", "-1.6094,-0.3567,-2.3026", "--label", "1", "--format", "markdown")
    assert md.stdout.startswith("## Cross-entropy of given log-probabilities, step by step")
    assert "$$ L = -\\log q_{1} = 0.35670\\ \\text{nats} $$" in md.stdout
    tex = run("--probs", "0.2,0.7,0.1", "--label", "1", "--format", "latex")
    assert "\\section*{Cross-entropy of given probabilities, step by step}" in tex.stdout


def test_frameworks_see_the_implied_logits() -> None:
    data = compute_json("--probs", "0.2,0.7,0.1", "--label", "1", "--frameworks")
    sklearn = next(f for f in data["frameworks"] if f["name"] == "scikit-learn")
    assert sklearn["value"] == pytest.approx(-math.log(0.7), rel=1e-15)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--probs", "-0.1,0.7,0.4", "--label", "0"],
            "Error: --probs: probability is negative at item 0: '-0.1'",
        ),
        (
            ["--probs", "1.5,0.5", "--label", "0"],
            "Error: --probs: probability is above 1 at item 0: '1.5'",
        ),
        (
            ["--probs", "0.2,0.7,0.2", "--label", "0"],
            "Error: --probs: probabilities sum to 1.0999999999999999, not 1 (tolerance 0.00015)",
        ),
        (["--probs", "0,0", "--label", "0"], "Error: --probs: every probability of the row is 0"),
        (
            ["--logprobs", "0.1,-1", "--label", "0"],
            "Error: --logprobs: log-probability is positive (above the tolerance 0.0001)"
            " at item 0: '0.1'",
        ),
        (
            ["--logprobs", "-1,-1", "--label", "0"],
            "Error: --logprobs: log-probabilities' log-sum-exp is -0.3068528194400547, not 0"
            " (tolerance 0.0001)",
        ),
        (
            ["--logits", "1,2", "--probs", "0.5,0.5"],
            "Error: give one of --logits, --probs and --logprobs, not --logits and --probs",
        ),
        (
            ["--label", "1"],
            "Error: give the logits with --logits, for example --logits 1.2,2.3,0.8 (or"
            " probabilities with --probs, log-probabilities with --logprobs)",
        ),
        (
            ["--probs", "0.5,0.5", "--label", "0", "--naive"],
            "Error: --naive goes with --logits (it shows the softmax of logits computed another"
            " way), not --probs",
        ),
        (
            ["--logprobs", "-0.5,-1", "--label", "0", "--dtype", "float32"],
            "Error: --dtype goes with --logits (it shows the softmax of logits computed another"
            " way), not --logprobs",
        ),
        (
            ["--probs", "0.5,0.5", "--sigmoid", "--target", "1,0", "--naive"],
            "Error: --naive goes with --logits (it shows sigma(x) taken first, then its log),"
            " not --probs",
        ),
        (
            ["--probs", "0.5,0.5", "--weights", "1,2,3", "--label", "0"],
            "Error: --weights: 3 values for 2 classes",
        ),
        (
            ["--from", "x.csv:2", "--probs", "0.5,0.5"],
            "Error: --from reads the scores and the label from the file: give --logits,"
            " --probs, --logprobs, --label and --target without it",
        ),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = run(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")


def test_naive_refused_for_a_file_of_probabilities_names_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--naive with --from a file of probabilities names what the file holds (the message
    once said "not --logits" for every file)."""
    path = tmp_path / "p.csv"
    path.write_text("a,b,c,label\n0.2,0.7,0.1,1\n")
    result = run("--from", f"{path}:2", "--naive")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "Error: --naive goes with --logits (it shows the softmax of logits computed another"
        " way), not --probs\n"
    )


# ------------------------------------------------ xent compute --from FILE:LINE --scores
def _proba_file(tmp_path):  # type: ignore[no-untyped-def]
    """A scikit-learn classifier's predict_proba, written by pandas as people write it."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x[::2], y[::2])
    proba = model.predict_proba(x[1::25])
    frame = pd.DataFrame(proba, columns=["setosa", "versicolor", "virginica"])
    frame["label"] = y[1::25]
    path = tmp_path / "proba.csv"
    frame.to_csv(path, index=False)
    return path, np.asarray(pd.read_csv(path).iloc[:, :3]), y[1::25]


def test_from_a_predict_proba_row_is_worked_as_probabilities(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.metrics import log_loss

    path, proba, labels = _proba_file(tmp_path)
    for row in range(len(labels)):
        result = run("--from", f"{path}:{row + 2}", "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert result.stderr == "Scores: probabilities (detected; --scores to override)\n"
        data = json.loads(result.stdout)
        assert (data["scores"], data["scores_detected"]) == ("probs", True)
        assert data["probabilities"] == proba[row].tolist()
        want = log_loss([labels[row]], [proba[row]], labels=[0, 1, 2])
        assert data["loss"] == pytest.approx(want, rel=4.5e-16, abs=1e-300)
    # --scores overrides: the same row taken as logits is another loss (as batch's)
    forced = run("--from", f"{path}:2", "--scores", "logits", "--format", "json")
    assert forced.stderr == ""
    data = json.loads(forced.stdout)
    assert (data["scores"], data["scores_detected"]) == ("logits", False)
    import torch

    as_logits = torch.nn.functional.cross_entropy(
        torch.tensor(proba[:1], dtype=torch.float64), torch.tensor(labels[:1])
    ).item()
    assert data["loss"] == pytest.approx(as_logits, rel=1e-14)
    table = run("--from", f"{path}:2")
    assert table.stdout.startswith("Cross-entropy of given probabilities: 3 classes")


def test_from_a_binary_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.metrics import log_loss

    path = tmp_path / "binary.csv"
    path.write_text("p,label\n0.2,0\n0.9,1\n")
    result = run("--from", f"{path}:3", "--scores", "probs", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "Scores: probabilities; one score column: the binary case, scored as [1 - p, p]\n"
    )
    data = json.loads(result.stdout)
    assert data["loss"] == pytest.approx(log_loss([1], [0.9], labels=[0, 1]), rel=1e-15)
    # Not told: a single column of values in [0, 1] is detected as probabilities.
    detected = run("--from", f"{path}:3", "--format", "json")
    assert detected.stderr == (
        "Scores: probabilities (detected; --scores to override); one score column: the"
        " binary case, scored as [1 - p, p]\n"
    )
    assert json.loads(detected.stdout)["loss"] == data["loss"]
    logits = json.loads(run("--from", f"{path}:3", "--scores", "logits", "--format", "json").stdout)
    assert logits["loss"] == pytest.approx(math.log1p(math.exp(-0.9)), rel=1e-15)  # [0, s]


def test_from_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "lp.csv"
    path.write_text("a,b,label\n-0.1,-2.4,0\n0.5,-1,1\n")
    result = run("--from", f"{path}:3", "--scores", "logprobs")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {path}:3:1: log-probability is positive (above the tolerance 0.0001) ('0.5')\n",
    )
    result = run("--probs", "0.5,0.5", "--scores", "probs")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: --scores goes with --from FILE:LINE (for one sample give --probs or --logprobs"
        " instead of --logits)\n",
    )


def test_batch_names_the_scores_in_the_command_for_the_worst_row(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.csv").write_text("a,b,label\n0.5,0.5,0\n0.9,0.1,1\n")
    out = CliRunner().invoke(cli, ["batch", "p.csv", "--scores", "probs"]).stdout
    assert "Study the worst row step by step: xent compute --from p.csv:3 --scores probs\n" in out
