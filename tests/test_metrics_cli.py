"""``xent batch``'s metric options end to end: the figures reach the JSON, the table and
the CSV, and every bad option is one line with exit 2 and no output file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.special
from test_cli_batch import EXAMPLES, load_digits_example, run

DIGITS = str(EXAMPLES / "digits.csv")


def test_json_has_every_metric_and_agrees_with_a_direct_computation() -> None:
    outcome = run(["batch", DIGITS, "--format", "json", "--top-k", "1,2,5", "--bins", "10"])
    assert outcome.code == 0, outcome.stderr
    data = json.loads(outcome.stdout)
    logits, labels = load_digits_example()
    q = scipy.special.softmax(logits, axis=1)
    brier = ((q - np.eye(10)[labels]) ** 2).sum(axis=1).mean()
    assert data["brier"] == pytest.approx(brier, rel=1e-12)
    ranks = (logits > logits[np.arange(labels.size), labels][:, None]).sum(axis=1)
    assert data["top_k_accuracy"] == {str(k): float(np.mean(ranks < k)) for k in (1, 2, 5)}
    assert data["top_k_accuracy"]["1"] == data["accuracy"]
    cal = data["calibration"]
    assert cal["n_bins"] == 10
    assert len(cal["bins"]) == 10
    assert sum(b["rows"] for b in cal["bins"]) == labels.size
    assert np.array(data["confusion"]).sum(axis=1).tolist() == np.bincount(labels).tolist()
    assert data["ci"]["level"] == 0.95
    low, high = data["ci"]["loss"]
    assert low < data["loss"] < high


def test_table_and_csv_show_the_metrics() -> None:
    table = run(["batch", DIGITS, "--top-k", "1,3"]).stdout
    for text in (
        "Top-3 accuracy",
        "Brier score",
        "ECE (15 equal-width bins)",
        "MCE",
        "Reliability",
        "Confusion matrix",
        "Precision",
    ):
        assert text in table
    header = run(["batch", DIGITS, "--format", "csv", "--top-k", "1,3"]).stdout.splitlines()[0]
    assert header.endswith(",brier,ece,ece_equal_mass,mce,top_3_accuracy")


def test_ci_zero_turns_the_intervals_off() -> None:
    data = json.loads(run(["batch", DIGITS, "--format", "json", "--ci", "0"]).stdout)
    assert data["ci"] is None
    assert "[" not in run(["batch", DIGITS, "--ci", "0"]).stdout.splitlines()[3]


def test_bootstrap_in_the_json_and_the_same_bits_whatever_the_chunking() -> None:
    args = ["batch", DIGITS, "--format", "json", "--bootstrap", "40", "--seed", "9"]
    first = json.loads(run(args).stdout)["ci"]["bootstrap"]
    again = json.loads(run([*args, "--chunk-rows", "7"]).stdout)["ci"]["bootstrap"]
    assert first == again
    assert first["replicates"] == 40
    assert first["seed"] == 9


BAD = [
    (["--top-k", "0"], "--top-k"),
    (["--top-k", "11"], "--top-k: 11 is not between 1 and the number of classes (10)"),
    (["--top-k", "1,x"], "--top-k"),
    (["--top-k", "1,,5"], "--top-k"),
    (["--bins", "0"], "--bins"),
    (["--ci", "1.5"], "--ci"),
    (["--ci", "-0.1"], "--ci"),
    (["--ci", "nan"], "--ci"),
    (["--bootstrap", "-1"], "--bootstrap"),
    (["--bootstrap", "10", "--ci", "0"], "--bootstrap needs intervals"),
    (["--seed", "-3"], "--seed"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_metric_options_exit_2_in_one_line(tmp_path: Path, args: list[str], message: str):
    state = tmp_path / "state.json"
    outcome = run(["batch", DIGITS, "--save-state", str(state), *args])
    assert outcome.code == 2, outcome.stderr
    assert message in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert outcome.stdout == ""
    assert not state.exists()


@pytest.mark.parametrize("k", [3, 12])
def test_ignored_rows_leave_every_figure_the_same_bits_whatever_the_chunking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    # Issue 13's contract with --ignore-index: a chunk holding an ignored row is cut down
    # to its counted rows, a chunk without one is not; the Brier terms and confidences of
    # the same row must not depend on which of the two it was in (they did, in the last
    # place: the cut rows were summed in another memory order).
    from test_cli_batch import write_table

    from xentcli.batch import reader

    # 9 rows: a row's last bit still shows in the means (seed 0 and 2 showed it)
    for seed in (0, 2):
        rng = np.random.default_rng(seed)
        logits = rng.normal(scale=2.0, size=(9, k))
        labels = rng.integers(0, k, size=9)
        labels[[1, 6]] = -100
        path = write_table(tmp_path / "p.csv", logits, labels)
        args = ["batch", str(path), "--ignore-index", "-100", "--format", "json"]
        whole = json.loads(run([*args, "--chunk-rows", "1000"]).stdout)
        for chunk in ("1", "2", "3", "4"):
            assert json.loads(run([*args, "--chunk-rows", chunk]).stdout) == whole, chunk
        for parsers in (1, 2):  # reading threads and tiny blocks (lines cut anywhere)
            monkeypatch.setattr(reader, "PARSERS", parsers)
            monkeypatch.setattr(reader, "BLOCK_BYTES", 200)
            assert json.loads(run(args).stdout) == whole, parsers
            monkeypatch.undo()
    # the figures themselves, against a direct computation on the counted rows
    keep = labels != -100
    q = scipy.special.softmax(logits[keep], axis=1)
    brier = ((q - np.eye(k)[labels[keep]]) ** 2).sum(axis=1).mean()
    assert whole["brier"] == pytest.approx(brier, rel=1e-13)
    assert whole["rows_counted"] == 7
