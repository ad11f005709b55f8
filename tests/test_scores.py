"""Probabilities and log-probabilities as scores (``--scores``, ``scores=``).

Oracles: scikit-learn's ``log_loss`` on a real classifier's ``predict_proba`` (and the
logits path on its ``decision_function``), mpmath for row values, PyTorch's
``nll_loss``/``cross_entropy`` for weights, ignore index, smoothing and soft targets.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hardening import Outcome, run
from mpref import ulps

from xentcli import cross_entropy
from xentcli.errors import InvalidInputError


def batch(*args: str | Path) -> Outcome:
    return run(["batch", *(str(a) for a in args)])


def batch_json(*args: str | Path) -> dict:  # type: ignore[type-arg]
    outcome = batch(*args, "--format", "json")
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)  # type: ignore[no-any-return]


def ulp_distance(a: float, b: float) -> float:
    return abs(a - b) / math.ulp(b)


@pytest.fixture(scope="module")
def classifier() -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """predict_proba and decision_function of a logistic regression on the digits."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16, y, test_size=300, random_state=0)
    model = LogisticRegression(max_iter=300).fit(x_train, y_train)
    return model.predict_proba(x_test), model.decision_function(x_test), y_test


def test_predict_proba_is_detected_and_equals_sklearn_log_loss(
    tmp_path: Path,
    classifier: tuple[np.ndarray, np.ndarray, np.ndarray],  # type: ignore[type-arg]
) -> None:
    from sklearn.metrics import log_loss

    proba, scores, y = classifier
    frame = pd.DataFrame(proba, columns=[f"p{c}" for c in range(10)])
    frame["label"] = y
    frame.to_csv(tmp_path / "proba.csv", index=False)
    data = batch_json(tmp_path / "proba.csv")
    assert (data["scores"], data["scores_detected"]) == ("probs", True)
    want = log_loss(y, proba)
    assert ulp_distance(data["loss"], want) <= 2
    # the same through the Python API, and through the logits of the same model
    assert ulp_distance(cross_entropy(proba, y, scores="probs"), want) <= 2
    logits = pd.DataFrame(scores)
    logits["label"] = y
    logits.to_csv(tmp_path / "logits.csv", index=False)
    from_logits = batch_json(tmp_path / "logits.csv")
    assert from_logits["scores"] == "logits"
    assert from_logits["loss"] == pytest.approx(want, rel=1e-12)
    # log-probabilities: log of predict_proba
    logp = pd.DataFrame(np.log(proba))
    logp["label"] = y
    logp.to_csv(tmp_path / "logp.csv", index=False)
    from_logp = batch_json(tmp_path / "logp.csv")
    assert from_logp["scores"] == "logprobs"
    assert from_logp["loss"] == pytest.approx(want, rel=1e-12)
    assert from_logp["accuracy"] == data["accuracy"] == np.mean(proba.argmax(1) == y)


def test_issue_example_probabilities_are_not_logits(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("0.1,0.7,0.2,1\n0.3,0.3,0.4,2\n")
    outcome = batch(tmp_path / "p.csv")
    assert outcome.code == 0
    assert "Scores: probabilities (detected; --scores to override)" in outcome.stdout
    assert re.search(r"Mean loss +0\.636483 nats", outcome.stdout)
    forced = batch_json(tmp_path / "p.csv", "--scores", "logits")
    assert (forced["scores"], forced["scores_detected"]) == ("logits", False)
    assert round(forced["loss"], 4) == 0.9005


def _row_values() -> list[float]:
    rng = np.random.default_rng(7)
    values = list(rng.uniform(0, 1, 40))
    values += [1.0, 1 - 2**-53, 1 - 1e-12, 0.5, 1e-300, 5e-324, 2.2250738585072014e-308]
    values += list(10.0 ** rng.uniform(-300, 0, 20))
    return [float(v) for v in values]


def test_row_loss_is_minus_log_p_within_two_ulp() -> None:
    values = _row_values()
    p = np.array([[v, 0.0] for v in values])
    got = cross_entropy(p, np.zeros(len(values), dtype=int), scores="probs", renormalize=False,
                        sum_tolerance=1.0, reduction="none")  # fmt: skip
    for value, loss in zip(values, got, strict=True):
        with mp.workprec(200):
            exact = -mp.log(mp.mpf(value))
        assert ulps(float(loss), exact) <= 2, value
    # log-probabilities are taken as given: the loss is exactly -log p
    lp = np.log(np.array(values))
    got = cross_entropy(np.stack([lp, np.full_like(lp, -np.inf)], 1), np.zeros(len(lp), int),
                        scores="logprobs", sum_tolerance=1e300, reduction="none")  # fmt: skip
    assert np.array_equal(got, -lp)


def test_zero_probability_of_the_label_is_inf_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.csv").write_text("a,b,label\n0.5,0.5,0\n1,0,1\n0.25,0.75,1\n")
    outcome = batch("p.csv")
    assert outcome.code == 0
    assert re.search(r"Mean loss +inf nats", outcome.stdout)
    assert "Infinite loss: 1 row where the true class has probability 0 (p.csv:3)" in (
        outcome.stdout
    )
    data = batch_json("p.csv")
    assert data["loss"] == "inf"
    assert data["rows_infinite"] == 1
    assert data["infinite_rows"] == [{"file": "p.csv", "line": 3}]


def test_infinite_loss_under_label_smoothing_or_soft_targets_names_its_true_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The true class has probability 0.5; class c has 0. Smoothing gives c the target
    # share 0.1 / 3 > 0, so its -log 0 = inf makes the loss inf: not the true class.
    monkeypatch.chdir(tmp_path)
    Path("p.csv").write_text("a,b,c,label\n0.5,0.5,0,0\n0.25,0.5,0.25,1\n")
    assert "Infinite loss" not in batch("p.csv").stdout  # unsmoothed: finite
    outcome = batch("p.csv", "--label-smoothing", "0.1")
    assert outcome.code == 0
    assert re.search(r"Mean loss +inf nats", outcome.stdout)
    assert (
        "Infinite loss: 1 row where a class has probability 0 and label smoothing gives it"
        " a share of the target (p.csv:2)"
    ) in outcome.stdout.replace("\n", " ")
    assert "the true class has probability 0" not in outcome.stdout
    # the same with logits: class c masked (-inf), merged states included
    Path("l.csv").write_text("a,b,c,label\n1,2,-inf,0\n0.5,1,2,1\n")
    logits = batch("l.csv", "--label-smoothing", "0.1").stdout.replace("\n", " ")
    assert "where a class has probability 0 and label smoothing" in logits
    # soft targets: a class with target 0.2 has probability 0
    Path("s.csv").write_text("a,b,c,t0,t1,t2\n1,2,-inf,0.5,0.3,0.2\n0.5,1,2,0,1,0\n")
    args = ("s.csv", "--target-columns", "t0,t1,t2", "--logit-columns", "a,b,c")
    soft = batch(*args).stdout.replace("\n", " ")
    assert "Infinite loss: 1 row where a class with a target above 0 has probability 0" in soft
    assert batch_json(*args)["infinite_rows"] == [{"file": "s.csv", "line": 2}]


@pytest.mark.parametrize("scores", ["probs", "logprobs"])
def test_smoothed_or_soft_loss_of_a_zero_probability_is_inf_without_a_warning(scores) -> None:
    # (pytest turns warnings into errors: numpy's "invalid value" was printed to users)
    q = np.array([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25]])
    given = (
        q if scores == "probs" else np.log(np.where(q > 0, q, 1.0)) + np.where(q > 0, 0, -np.inf)
    )
    got = cross_entropy(given, np.array([0, 1]), scores=scores, label_smoothing=0.1,
                        reduction="none")  # fmt: skip
    p = 0.9 * np.eye(3)[1] + 0.1 / 3
    assert got[0] == np.inf
    assert got[1] == pytest.approx(-(p * np.log(q[1])).sum(), rel=1e-15)
    soft = cross_entropy(given, targets=np.array([[0.5, 0.3, 0.2], [0, 1, 0]]), scores=scores,
                         reduction="none")  # fmt: skip
    assert soft[0] == np.inf
    assert soft[1] == pytest.approx(-np.log(0.5), rel=1e-15)


def test_clip_reproduces_sklearn_and_keras(tmp_path: Path) -> None:
    import torch
    from sklearn.metrics import log_loss

    (tmp_path / "p.csv").write_text("a,b,label\n1,0,1\n0.25,0.75,1\n")
    eps = float(np.finfo(np.float64).eps)
    sk = batch_json(tmp_path / "p.csv", "--clip", repr(eps))
    want = log_loss([1, 1], [[1.0, 0.0], [0.25, 0.75]], labels=[0, 1])
    assert ulp_distance(sk["loss"], want) <= 2
    assert round(sk["worst"][0]["loss"], 2) == 36.04
    keras = batch_json(tmp_path / "p.csv", "--clip", "1e-7", "--renormalize")
    # Keras's categorical_crossentropy on probabilities: normalise, clip to [1e-7, 1 - 1e-7]
    out = torch.tensor([[1.0, 0.0], [0.25, 0.75]], dtype=torch.float64)
    out = (out / out.sum(1, keepdim=True)).clamp(1e-7, 1 - 1e-7)
    keras_loss = float(-(torch.log(out[:, 1])).mean())
    assert keras["loss"] == pytest.approx(keras_loss, rel=1e-15)
    assert round(keras["worst"][0]["loss"], 2) == 16.12
    assert batch(tmp_path / "p.csv", "--clip", "1e-7", "--scores", "logits").code == 2
    # A temperature has no place in the clipped log-loss: it was ignored, silently.
    refused = (
        "Error: --clip reproduces a library's clipped log-loss, which has no temperature:"
        " give --clip or --temperature, not both\n"
    )
    for command in (["batch"], ["compare", str(tmp_path / "p.csv")]):
        both = run([*command, str(tmp_path / "p.csv"), "--clip", "1e-7", "--temperature", "2"])
        assert (both.code, both.stdout, both.stderr) == (2, "", refused)
    with pytest.raises(InvalidInputError, match="give clip or temperature, not both"):
        cross_entropy([[0.25, 0.75]], [1], scores="probs", clip=1e-7, temperature=2.0)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_probs_follow_pytorch(smoothing: float, weighted: bool) -> None:
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(3)
    n, k = 50, 5
    p = rng.dirichlet(np.ones(k), n)
    y = rng.integers(0, k, n)
    y[:5] = -100
    w = rng.uniform(0.5, 2, k) if weighted else None
    logq = torch.log(torch.tensor(p))
    tw = None if w is None else torch.tensor(w)
    if smoothing:
        want = F.cross_entropy(logq, torch.tensor(y), weight=tw, ignore_index=-100,
                               label_smoothing=smoothing)  # fmt: skip
    else:
        want = F.nll_loss(logq, torch.tensor(y), weight=tw, ignore_index=-100)
    got = cross_entropy(p, y, scores="probs", weights=w, ignore_index=-100,
                        label_smoothing=smoothing)  # fmt: skip
    assert got == pytest.approx(float(want), rel=1e-13)
    got_lp = cross_entropy(np.log(p), y, scores="logprobs", weights=w, ignore_index=-100,
                           label_smoothing=smoothing)  # fmt: skip
    assert got_lp == pytest.approx(float(want), rel=1e-13)
    # soft targets: the mean divides by N, weights or not
    t = rng.dirichlet(np.ones(k), n)
    want_soft = F.cross_entropy(logq, torch.tensor(t), weight=tw, label_smoothing=smoothing)
    got_soft = cross_entropy(p, targets=t, scores="probs", weights=w, label_smoothing=smoothing)
    assert got_soft == pytest.approx(float(want_soft), rel=1e-13)


def test_probability_rows_in_batch_match_the_api(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(4), 200)
    y = rng.integers(0, 4, 200)
    frame = pd.DataFrame(p)
    frame["label"] = y
    frame.to_csv(tmp_path / "p.csv", index=False)
    for extra in (
        [],
        ["--weights", "1,2,3,0.5"],
        ["--label-smoothing", "0.2"],
        ["--temperature", "2"],
    ):
        data = batch_json(tmp_path / "p.csv", *extra)
        kwargs: dict = {}  # type: ignore[type-arg]
        if extra and extra[0] == "--weights":
            kwargs["weights"] = [1, 2, 3, 0.5]
        elif extra and extra[0] == "--label-smoothing":
            kwargs["label_smoothing"] = 0.2
        elif extra:
            kwargs["temperature"] = 2.0
        assert data["loss"] == cross_entropy(p, y, scores="probs", **kwargs), extra


def test_temperature_on_probabilities_is_softmax_of_log_p_over_t() -> None:
    import torch
    import torch.nn.functional as F

    p = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    want = F.cross_entropy(torch.log(torch.tensor(p)) / 2.0, torch.tensor([1, 2]))
    got = cross_entropy(p, [1, 2], scores="probs", temperature=2.0)
    assert got == pytest.approx(float(want), rel=1e-14)


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("-0.1,0.6,0.5", 1, "probability is negative ('-0.1')"),
        ("1.5,0,0", 1, "probability is above 1 ('1.5')"),
        ("nan,0.5,0.5", 1, "probability is NaN ('nan')"),
        ("0.2,0.3,0.4", None, "probabilities sum to 0.9, not 1 (tolerance 0.00015"),
        ("0,0,0", None, "every probability of the row is 0"),
    ],
)
def test_bad_probabilities(tmp_path: Path, row: str, column: int | None, reason: str) -> None:
    (tmp_path / "p.csv").write_text(f"a,b,c,label\n{row},1\n")
    outcome = batch(tmp_path / "p.csv", "--scores", "probs")
    assert outcome.code == 1
    place = f"{tmp_path}/p.csv:2:{column}:" if column else f"{tmp_path}/p.csv:2:"
    line = outcome.error_line()
    assert line.startswith(f"Error: {place} {reason}"), line
    assert "detected" not in line
    assert outcome.stdout == ""


def test_renormalize_accepts_and_counts(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("a,b,c,label\n0.2,0.3,0.4,1\n0.2,0.3,0.5,2\n")
    data = batch_json(tmp_path / "p.csv", "--scores", "probs", "--renormalize")
    assert data["rows_renormalized"] == 1
    want = (-math.log(0.3 / 0.9) - math.log(0.5)) / 2
    assert data["loss"] == pytest.approx(want, rel=1e-15)
    (tmp_path / "z.csv").write_text("a,b,c,label\n0,0,0,1\n")
    outcome = batch(tmp_path / "z.csv", "--scores", "probs", "--renormalize")
    assert outcome.code == 1
    assert "every probability of the row is 0" in outcome.error_line()


def test_positive_log_probability(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("a,b,label\n0.5,-1,1\n")
    outcome = batch(tmp_path / "p.csv", "--scores", "logprobs")
    assert outcome.code == 1
    assert outcome.error_line().startswith(
        f"Error: {tmp_path}/p.csv:2:1: log-probability is positive"
    )


def test_files_detected_differently_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a,b,label\n0.25,0.75,1\n")
    (tmp_path / "b.csv").write_text("a,b,label\n2.5,-1,1\n")
    outcome = batch(tmp_path / "a.csv", tmp_path / "b.csv")
    assert outcome.code == 2
    line = outcome.error_line()
    assert "holds probabilities but" in line
    assert "logits (detected)" in line
    assert "--scores" in line
    assert batch(tmp_path / "a.csv", tmp_path / "b.csv", "--scores", "logits").code == 0


def test_later_row_breaking_the_detected_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xentcli.batch import reader

    monkeypatch.setattr(reader, "BLOCK_BYTES", 64)  # detection sees the first block only
    rows = "".join("0.25,0.75,1\n" for _ in range(5))
    (tmp_path / "p.csv").write_text(f"a,b,label\n{rows}1.5,-0.5,0\n")
    outcome = batch(tmp_path / "p.csv", "--chunk-rows", "2")
    assert outcome.code == 1
    line = outcome.error_line()
    assert line.startswith(f"Error: {tmp_path}/p.csv:7:1: probability is above 1")
    assert "detected as probabilities" in line
    assert "--scores" in line


def test_api_errors_name_the_row() -> None:
    with pytest.raises(InvalidInputError, match=r"row 1, column 0: probability is negative"):
        cross_entropy([[0.5, 0.5], [-0.5, 1.5]], [0, 1], scores="probs")
    with pytest.raises(InvalidInputError, match="scores must be"):
        cross_entropy([[0.5, 0.5]], [0], scores="odds")  # type: ignore[arg-type]


def test_one_score_column_is_binary(tmp_path: Path) -> None:
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(1)
    s = rng.normal(0, 3, 100)
    y = rng.integers(0, 2, 100)
    np.savetxt(tmp_path / "s.csv", np.stack([s, y], 1), delimiter=",", header="score,label",
               comments="", fmt=["%.17g", "%d"])  # fmt: skip
    data = batch_json(tmp_path / "s.csv")
    assert (data["scores"], data["binary"]) == ("logits", True)
    assert data["loss"] == cross_entropy(np.stack([np.zeros(100), s], 1), y)
    p = 1 / (1 + np.exp(-s))
    np.savetxt(tmp_path / "p.csv", np.stack([p, y], 1), delimiter=",", header="p1,label",
               comments="", fmt=["%.17g", "%d"])  # fmt: skip
    probs = batch_json(tmp_path / "p.csv", "--scores", "probs")
    assert probs["binary"] is True
    assert probs["loss"] == pytest.approx(log_loss(y, p), rel=1e-13)
    outcome = batch(tmp_path / "p.csv", "--scores", "probs")
    assert "One score column: a binary classifier, the probability p of class 1" in outcome.stdout
    # predict_proba[:, 1] written alone is detected (it was scored as a logit, silently
    # wrong: every value in [0, 1] read as the logit [0, p]).
    detected = batch_json(tmp_path / "p.csv")
    assert (detected["scores"], detected["scores_detected"], detected["binary"]) == (
        "probs",
        True,
        True,
    )
    assert detected["loss"] == probs["loss"]
    outcome = batch(tmp_path / "p.csv")
    assert "Scores: probabilities (detected; --scores to override)" in outcome.stdout
    told = batch_json(tmp_path / "p.csv", "--scores", "logits")
    assert told["loss"] == cross_entropy(np.stack([np.zeros(100), p], 1), y)
    # Log-probabilities of class 1 are not told from a rare class's logits: logits.
    (tmp_path / "lp.csv").write_text("lp,label\n-0.1,1\n-2.5,0\n-0.7,1\n")
    assert batch_json(tmp_path / "lp.csv")["scores"] == "logits"


def test_one_score_column_with_one_class_present(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("score,label\n0.5,0\n-2,0\n")
    data = batch_json(tmp_path / "s.csv")
    assert data["binary"] is True
    assert data["loss"] == cross_entropy([[0.0, 0.5], [0.0, -2.0]], [0, 0])
    assert [c["rows"] for c in data["per_class"]] == [2, 0]


# ------------------------------------- scores all in [0, 1] that are not probabilities
def _rounded_proba_file(tmp_path: Path, proba: np.ndarray, y: np.ndarray, name: str) -> Path:  # type: ignore[type-arg]
    """predict_proba written as people often write it: to two decimals (pandas'
    float_format), so that rows sum to 0.97-1.03, past the tolerance."""
    frame = pd.DataFrame(proba, columns=[f"p{c}" for c in range(proba.shape[1])])
    frame["label"] = y
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.round(2).to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, float_format="%.2f")
    return path


def _scores_of(path: Path) -> np.ndarray:  # type: ignore[type-arg]
    """The score columns of such a file, as pandas reads it back."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return frame.drop(columns="label").to_numpy()


def _unit_interval_note(path: Path) -> str:
    """The note, computed here from the file: the range of its rows' sums."""
    sums = [math.fsum(row) for row in _scores_of(path)]
    return (
        f"{path}: every score of the first rows is in [0, 1], but rows sum to"
        f" {min(sums):.6g} to {max(sums):.6g}, not 1 within 0.0005: read as logits. If they"
        " are probabilities, give --scores probs (with --sum-tolerance or --renormalize)"
    )


@pytest.mark.parametrize("name", ["rounded.csv", "rounded.parquet"])
def test_scores_in_the_unit_interval_read_as_logits_are_said(
    tmp_path: Path,
    classifier: tuple[np.ndarray, np.ndarray, np.ndarray],  # type: ignore[type-arg]
    name: str,
) -> None:
    """Rounded probabilities are not detected as probabilities (their rows are off by
    more than the tolerance): read as logits, as the rule says, but never in silence,
    whatever the output format; with --scores probs --renormalize they are scored as
    scikit-learn scores them."""
    from sklearn.metrics import log_loss

    proba, _, y = classifier
    path = _rounded_proba_file(tmp_path, proba, y, name)
    note = _unit_interval_note(path)
    for fmt in ("table", "json"):
        outcome = batch(path, "--format", fmt)
        assert outcome.code == 0
        assert outcome.stderr.splitlines() == [note], fmt
    given = batch(path, "--scores", "probs", "--renormalize", "--format", "json")
    assert given.code == 0
    assert note not in given.stderr
    p = _scores_of(path)
    expected = log_loss(y, p / p.sum(axis=1, keepdims=True), labels=range(10))
    assert ulp_distance(json.loads(given.stdout)["loss"], expected) <= 4


def test_compare_says_the_same_of_each_file(
    tmp_path: Path,
    classifier: tuple[np.ndarray, np.ndarray, np.ndarray],  # type: ignore[type-arg]
) -> None:
    proba, _, y = classifier
    a = _rounded_proba_file(tmp_path, proba, y, "a.csv")
    b = _rounded_proba_file(tmp_path, proba, y, "b.csv")
    outcome = run(["compare", str(a), str(b), "--format", "json"])
    assert outcome.code == 0
    assert outcome.stderr.splitlines() == [_unit_interval_note(a), _unit_interval_note(b)]


@pytest.mark.parametrize(
    "args",
    [
        ["examples/digits.csv"],  # logits, most outside [0, 1]
        ["examples/digits_proba.csv"],  # probabilities within the tolerance
        ["examples/digits_multilabel_proba.csv", "--sigmoid", "--target-columns", "y_*"],
    ],
    ids=["logits", "probabilities", "sigmoid probabilities"],
)
def test_no_note_where_the_kind_is_clear(args: list[str]) -> None:
    outcome = batch(*args, "--format", "json")
    assert outcome.code == 0
    assert "every score of the first rows" not in outcome.stderr


def test_compute_from_says_it_too(
    tmp_path: Path,
    classifier: tuple[np.ndarray, np.ndarray, np.ndarray],  # type: ignore[type-arg]
) -> None:
    """The study command of such a file reads it as batch does, and says so alike."""
    proba, _, y = classifier
    path = _rounded_proba_file(tmp_path, proba, y, "rounded.csv")
    outcome = run(["compute", "--from", f"{path}:2", "--format", "json"])
    assert outcome.code == 0
    assert outcome.stderr.splitlines() == [
        "Scores: logits (detected; --scores to override)",
        _unit_interval_note(path),
    ]
