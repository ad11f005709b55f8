"""``xent batch --sigmoid``: multi-label files against PyTorch, mpmath and scikit-learn.

The mean is PyTorch's ``binary_cross_entropy_with_logits(reduction='mean')`` (over rows
and labels, with ``pos_weight``) in float64, and the exact value from mpmath (each
element's loss from the float64 inputs taken as exact, summed with 400 bits); the
exact-match ratio, per-label accuracies and the Hamming loss are scikit-learn's
``accuracy_score`` (on multi-label data: the subset accuracy) and ``hamming_loss``.
"""

from __future__ import annotations

import json
from pathlib import Path

import mpmath as mp
import mpref
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, hamming_loss
from test_cli_batch import ok, run

from xentcli.batch import reader

# Each element's loss is within 2 ulp of its exact value (tests/test_sigmoid.py), the
# sum of them exact and the mean rounded once: a sum of positive terms each within 2 ulp
# is within 2 ulp of its own size, plus the final rounding.
MEAN_ULP = 3


def write(
    path: Path,
    x: np.ndarray,
    z: np.ndarray,
    *,
    names: list[str] | None = None,
    cell: dict[tuple[int, int], str] | None = None,
) -> Path:
    """A CSV of logits ``logit_<name>`` then targets ``y_<name>``; *cell* overrides
    cells as text ((row, column) -> text, 0-based data rows)."""
    n, labels = x.shape
    names = names or [str(k) for k in range(labels)]
    lines = [",".join([f"logit_{m}" for m in names] + [f"y_{m}" for m in names])]
    for i in range(n):
        cells = [repr(float(v)) for v in x[i]] + [repr(float(v)) for v in z[i]]
        for (row, column), text in (cell or {}).items():
            if row == i:
                cells[column] = text
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def data(n: int = 50, labels: int = 3, seed: int = 0, soft: bool = False):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (n, labels))
    x[0, 0], x[1, 1 % labels] = -800.0, 40.0  # sigma underflows; a confident positive
    z = rng.uniform(0, 1, (n, labels)) if soft else rng.integers(0, 2, (n, labels)) * 1.0
    return x, z


def batch_json(path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    out = ok(
        ["batch", str(path), "--sigmoid", "--target-columns", "y_*", "--format", "json", *args]
    )
    return json.loads(out.stdout)


def exact_sum(x: np.ndarray, z: np.ndarray, p: np.ndarray | None) -> mp.mpf:
    with mp.workprec(400):
        total = mp.mpf(0)
        for (i, k), xv in np.ndenumerate(x):
            xm, zm = mp.mpf(float(xv)), mp.mpf(float(z[i, k]))
            pm = mp.mpf(1 if p is None else float(p[k]))
            total += pm * zm * mp.log1p(mp.exp(-xm)) + (1 - zm) * mp.log1p(mp.exp(xm))
        return total


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("pos_weight", [None, (0.5, 2.0, 3.0)])
def test_mean_and_label_losses_against_pytorch_and_mpmath(
    work: Path, soft: bool, pos_weight: tuple[float, ...] | None
) -> None:
    x, z = data(soft=soft)
    args = [] if pos_weight is None else ["--pos-weight", ",".join(map(str, pos_weight))]
    got = batch_json(write(work / "m.csv", x, z), *args)
    p = None if pos_weight is None else np.array(pos_weight)
    # PyTorch's formula cancels where z = 0 and x < 0: good to an ulp of |x| there.
    slack = 4 * np.finfo(float).eps * (np.abs(x) + 1)
    torch_p = None if p is None else torch.tensor(p)
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(z), pos_weight=torch_p, reduction="mean"
    ).item()
    assert abs(got["loss"] - want) <= slack.mean()
    n, labels = x.shape
    assert mpref.ulps(got["loss"], exact_sum(x, z, p) / (n * labels)) <= MEAN_ULP
    assert mpref.ulps(got["loss_sum"], exact_sum(x, z, p)) <= MEAN_ULP
    per_label = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(z), pos_weight=torch_p, reduction="none"
    ).mean(dim=0)
    for k in range(labels):
        assert abs(got["label_loss"][k] - per_label[k].item()) <= slack[:, k].mean()
        column = exact_sum(x[:, [k]], z[:, [k]], None if p is None else p[[k]])
        assert mpref.ulps(got["label_loss"][k], column / n) <= MEAN_ULP
    assert got["sigmoid"] is True
    assert got["rows"] == n
    assert got["elements"] == n * labels
    assert got["label_positives"] == pytest.approx(z.sum(axis=0).tolist(), rel=1e-15)


def test_exact_match_and_accuracy_against_scikit_learn(work: Path) -> None:
    x, z = data(n=80, labels=4, seed=3)
    x[5, 2] = 0.0  # sigma(0) = 0.5: predicted 0 (the threshold is strict)
    got = batch_json(write(work / "m.csv", x, z))
    predicted = (x > 0).astype(int)
    assert got["exact_match"] == accuracy_score(z.astype(int), predicted)
    assert got["exact_matches"] == int((predicted == z).all(axis=1).sum())
    assert got["hamming_loss"] == pytest.approx(hamming_loss(z.astype(int), predicted), abs=1e-15)
    for k in range(4):
        assert got["label_accuracy"][k] == accuracy_score(z[:, k], predicted[:, k])
    assert got["label_predicted_positives"] == predicted.sum(axis=0).tolist()
    assert got["soft_targets"] == 0


def test_soft_targets_have_a_loss_but_no_accuracy(work: Path) -> None:
    x, z = data(soft=True)
    outcome = ok(
        ["batch", str(write(work / "m.csv", x, z)), "--sigmoid", "--target-columns", "y_*"]
    )
    assert "no exact match or accuracy" in outcome.stdout
    got = batch_json(work / "m.csv")
    assert got["exact_match"] is None
    assert got["label_accuracy"] is None
    assert got["hamming_loss"] is None
    assert got["soft_targets"] == z.size


def test_worst_rows_are_the_highest_row_means(work: Path) -> None:
    x, z = data(n=30, seed=5)
    got = batch_json(write(work / "m.csv", x, z), "--worst", "3")
    losses = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(z), reduction="none"
    ).mean(dim=1)
    order = np.argsort(-losses.numpy(), kind="stable")[:3]
    assert [w["line"] for w in got["worst"]] == (order + 2).tolist()  # header is line 1
    for w, i in zip(got["worst"], order, strict=True):
        assert w["loss"] == pytest.approx(losses[i].item(), rel=1e-12)
        assert w["wrong_labels"] == int(((x[i] > 0) != (z[i] == 1)).sum())


def test_same_bits_whatever_the_chunking(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, z = data(n=200, labels=5, seed=7)
    x[:, 1] *= 100  # a wide range of exponents in the exact sums
    path = write(work / "m.csv", x, z)
    whole = batch_json(path, "--pos-weight", "1,2,3,0.5,1", "--base", "2")
    for chunk in ("1", "3", "64"):
        again = batch_json(
            path, "--pos-weight", "1,2,3,0.5,1", "--base", "2", "--chunk-rows", chunk
        )
        assert again == whole
    # Small blocks, and only the precise reader (row-major arrays instead of the fast
    # parser's column-major ones).
    monkeypatch.setattr(reader, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(reader.Table, "_fast", lambda self, *a: None)
    monkeypatch.setattr(reader.Table, "_fast_wide", lambda self, *a: None)
    assert batch_json(path, "--pos-weight", "1,2,3,0.5,1", "--base", "2") == whole


def test_reduction_sum_and_one_label(work: Path) -> None:
    x, z = data(n=20, labels=1, seed=2)
    got = batch_json(write(work / "m.csv", x, z), "--reduction", "sum")
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(z), reduction="sum"
    ).item()
    assert got["reduction"] == "sum"
    assert got["loss"] == got["loss_sum"]
    assert abs(got["loss"] - want) <= 4 * np.finfo(float).eps * (np.abs(x) + 1).sum()


def test_several_files_pool_their_rows(work: Path) -> None:
    x, z = data(n=40, seed=4)
    write(work / "a.csv", x[:15], z[:15])
    write(work / "b.csv", x[15:], z[15:])
    write(work / "all.csv", x, z)
    both = json.loads(
        ok(
            ["batch", "a.csv", "b.csv", "--sigmoid", "--target-columns", "y_*", "--format", "json"]
        ).stdout
    )
    whole = batch_json(Path("all.csv"))
    assert both["loss"] == whole["loss"]
    assert both["label_loss"] == whole["label_loss"]
    assert [f["rows"] for f in both["files"]] == [15, 25]


def test_parquet_and_jsonl_read_alike(work: Path) -> None:
    import pandas as pd

    x, z = data(n=30, seed=6)
    csv = batch_json(write(work / "m.csv", x, z))
    frame = pd.read_csv(work / "m.csv")
    frame.to_parquet(work / "m.parquet")
    records = frame.to_dict("records")  # json writes floats exactly (pandas rounds them)
    (work / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for name in ("m.parquet", "m.jsonl"):
        got = batch_json(work / name)
        for key in ("loss", "label_loss", "exact_match", "label_accuracy", "hamming_loss"):
            assert got[key] == csv[key], (name, key)
    frame.loc[3, "y_1"] = 2.0
    frame.to_parquet(work / "bad.parquet")
    outcome = run(["batch", "bad.parquet", "--sigmoid", "--target-columns", "y_*"])
    assert outcome.code == 1
    assert "bad.parquet:row 4:y_1: target must be a number in [0, 1]" in outcome.stderr


BAD_CELLS = [
    ((1, 4), "1.5", "m.csv:3:5: target is above 1"),
    ((1, 4), "-0.1", "m.csv:3:5: target is negative"),
    ((1, 4), "nan", "m.csv:3:5: target is not finite"),
    ((2, 0), "nan", "m.csv:4:1: logit is NaN"),
    ((2, 1), "-inf", "m.csv:4:2: logit is -inf"),
    ((2, 1), "inf", "m.csv:4:2: logit is +inf"),
    ((0, 5), "", "m.csv:2:6: empty target cell"),
]


@pytest.mark.parametrize(("at", "text", "message"), BAD_CELLS)
def test_bad_cells_are_located(work: Path, at: tuple[int, int], text: str, message: str) -> None:
    x, z = data(n=6)
    write(work / "m.csv", x, z, cell={at: text})
    outcome = run(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*"])
    assert outcome.code == 1, outcome.stdout
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith(f"Error: {message}"), outcome.stderr


def test_targets_need_not_sum_to_one_and_bad_rows_can_be_skipped(work: Path) -> None:
    x = np.zeros((4, 3))
    z = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    write(work / "m.csv", x, z, cell={(2, 4): "7"})
    outcome = run(
        [
            "batch",
            "m.csv",
            "--sigmoid",
            "--target-columns",
            "y_*",
            "--on-error",
            "skip",
            "--format",
            "json",
            "--scores",  # every score is 0: --scores auto would read probabilities
            "logits",
        ]
    )
    assert outcome.code == 0, outcome.stderr
    got = json.loads(outcome.stdout)
    assert got["rows"] == 3
    assert got["rows_skipped"] == 1
    assert "skipped 1 bad row (first: m.csv:4)" in outcome.stderr
    assert got["files"][0]["rows_skipped"] == 1
    assert got["skipped"][0]["line"] == 4
    assert got["skipped"][0]["error"].startswith("m.csv:4:5: target is above 1")
    assert got["loss"] == pytest.approx(np.log(2.0), rel=1e-15)  # every logit 0


USAGE = [
    (["--label-smoothing", "0.1"], "--label-smoothing cannot be used with --sigmoid"),
    (["--weights", "1,2,3"], "--weights cannot be used with --sigmoid"),
    (["--temperature", "2"], "--temperature cannot be used with --sigmoid"),
    (["--scores", "token-logprobs"], "--scores token-logprobs cannot be used with --sigmoid"),
    (["--top-k", "2"], "--top-k cannot be used with --sigmoid"),
    (["--ci", "0.9"], "--ci cannot be used with --sigmoid"),
    (["--bins", "10"], "--bins cannot be used with --sigmoid"),
    (["--save-state", "s.json"], "--save-state cannot be used with --sigmoid"),
    (["--frameworks"], "--frameworks cannot be used with --sigmoid"),
    (["--dtype", "float16"], "--dtype cannot be used with --sigmoid"),
    (["--engine", "dask"], "--engine dask does not read --sigmoid files"),
    (["--renormalize"], "--renormalize cannot be used with --sigmoid"),
    (["--weight-column", "y_0"], "--weight-column cannot be used with --sigmoid"),
    (["--classes", "a,b,c"], "--classes cannot be used with --sigmoid"),
    (["--pos-weight", "1,2"], "--pos-weight: 2 values for 3 labels"),
]


@pytest.mark.parametrize(("args", "message"), USAGE)
def test_options_without_meaning_are_usage_errors(
    work: Path, args: list[str], message: str
) -> None:
    x, z = data(n=4)
    write(work / "m.csv", x, z)
    outcome = run(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", *args])
    assert outcome.code == 2
    assert message in outcome.stderr, outcome.stderr
    assert not (work / "s.json").exists()


def test_target_columns_are_required_and_pos_weight_needs_sigmoid(work: Path) -> None:
    x, z = data(n=4)
    write(work / "m.csv", x, z)
    outcome = run(["batch", "m.csv", "--sigmoid"])
    assert outcome.code == 2
    assert "--sigmoid needs --target-columns" in outcome.stderr
    outcome = run(["batch", "m.csv", "--target-columns", "y_*", "--pos-weight", "1,1,1"])
    assert outcome.code == 2
    assert "--pos-weight goes with --sigmoid" in outcome.stderr
    outcome = run(
        [
            "batch",
            "m.csv",
            "--sigmoid",
            "--target-columns",
            "y_*",
            "--logit-columns",
            "logit_0,logit_1",
        ]
    )
    assert outcome.code == 1
    assert "m.csv: 3 target columns for 2 logit columns" in outcome.stderr


def test_the_study_command_reads_the_worst_row_alike(work: Path) -> None:
    import shlex

    x, z = data(n=12, seed=8, soft=True)  # soft targets: the row need not sum to 1
    write(work / "m.csv", x, z)
    args = ["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", "--pos-weight", "2,1,1"]
    table = ok(args).stdout
    command = table.split("Study the worst row step by step: ")[1].strip()
    words = shlex.split(command)
    assert words[:4] == ["xent", "compute", "--sigmoid", "--from"]
    row = json.loads(ok([*words[1:], "--format", "json"]).stdout)
    worst = json.loads(ok([*args, "--format", "json"]).stdout)["worst"][0]
    assert row["loss"] == pytest.approx(worst["loss"], rel=1e-14)
    i = worst["line"] - 2
    assert row["targets"] == z[i].tolist()
    assert row["pos_weight"] == [2.0, 1.0, 1.0]


def test_per_row_losses_within_2_ulp_of_mpmath_and_as_pytorch(work: Path) -> None:
    import csv
    import io

    x, z = data(n=25, labels=3, seed=9)
    z[4, 1] = 0.25  # a soft target: no count of wrong labels for that row
    p = np.array([0.5, 2.0, 3.0])
    write(work / "m.csv", x, z)
    args = ["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", "--pos-weight", "0.5,2,3"]
    ok([*args, "--per-row", "rows.csv", "--chunk-rows", "4"])
    rows = list(csv.DictReader(io.StringIO((work / "rows.csv").read_text())))
    assert [int(r["line"]) for r in rows] == list(range(2, 27))
    torch_losses = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(z), pos_weight=torch.tensor(p), reduction="none"
    ).numpy()
    slack = 4 * np.finfo(float).eps * (np.abs(x) + 1)
    for i, row in enumerate(rows):
        for k in range(3):
            got = float(row[f"loss_logit_{k}"])
            assert mpref.ulps(got, exact_sum(x[[i], k : k + 1], z[[i], k : k + 1], p[[k]])) <= 2
            assert abs(got - torch_losses[i, k]) <= slack[i, k]
        assert float(row["loss"]) == pytest.approx(torch_losses[i].mean(), rel=1e-14)
        wrong = int(((x[i] > 0) != (z[i] == 1)).sum())
        assert row["wrong_labels"] == ("" if i == 4 else str(wrong))


def test_per_row_file_is_whole_or_absent(work: Path) -> None:
    x, z = data(n=30)
    write(work / "m.csv", x, z, cell={(25, 3): "2"})
    (work / "rows.csv").write_text("old\n")
    outcome = run(
        [
            "batch",
            "m.csv",
            "--sigmoid",
            "--target-columns",
            "y_*",
            "--per-row",
            "rows.csv",
            "--chunk-rows",
            "2",
        ]
    )
    assert outcome.code == 1
    assert "m.csv:27:4: target is above 1" in outcome.stderr
    assert (work / "rows.csv").read_text() == "old\n"  # the failed run left it as it was
    outcome = run(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", "--per-row", "m.csv"])
    assert outcome.code == 2
    assert "is the input file" in outcome.stderr


def test_an_option_not_read_is_refused_even_without_a_reason(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xentcli.cli import batch_sigmoid

    # As for an option added to xent batch later: not in the list of refusals.
    monkeypatch.delitem(batch_sigmoid._REFUSED, "top_k")
    x, z = data(n=4)
    write(work / "m.csv", x, z)
    outcome = run(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", "--top-k", "2"])
    assert outcome.code == 2
    assert "--top-k cannot be used with --sigmoid (not available there)" in outcome.stderr


def test_every_row_skipped_leaves_the_mean_undefined(work: Path) -> None:
    x, z = data(n=3)
    write(work / "m.csv", x, z, cell={(0, 3): "2", (1, 3): "2", (2, 3): "-1"})
    args = ["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", "--on-error", "skip"]
    table = ok(args).stdout
    assert "undefined: no row was read" in table
    outcome = ok([*args, "--format", "json"])
    got = json.loads(outcome.stdout)
    assert got["loss"] is None
    assert got["label_loss"] == [None, None, None]
    assert got["exact_match"] is None
    assert got["rows_skipped"] == 3
    assert "the mean loss is undefined" in outcome.stderr


# -- probabilities and log-probabilities: --scores, and its detection ------------------------


def probabilities(n: int = 60, labels: int = 3, seed: int = 11):  # type: ignore[no-untyped-def]
    """Sigmoid probabilities away from 0 and 1 (PyTorch's clamp does not act) and 0/1
    targets drawn from them."""
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-rng.normal(0, 2, (n, labels))))
    p = np.clip(p, 0.001, 0.999)
    z = (rng.random((n, labels)) < p).astype(float)
    return p, z


def test_a_probability_file_is_detected_and_scored_as_pytorch_and_scikit_learn(
    work: Path,
) -> None:
    """The issue's case: the mean of BCELoss on the probabilities, not of
    BCEWithLogitsLoss on them read as logits (0.65 instead of 0.47 there)."""
    from sklearn.metrics import log_loss

    p, z = probabilities()
    path = write(work / "m.csv", p, z)
    outcome = ok(["batch", str(path), "--sigmoid", "--target-columns", "y_*", "--format", "json"])
    got = json.loads(outcome.stdout)
    assert got["scores"] == "probs"
    assert got["scores_detected"] is True
    assert outcome.stderr == "Scores: probabilities (detected; --scores to override)\n"
    want = torch.nn.functional.binary_cross_entropy(
        torch.tensor(p), torch.tensor(z), reduction="mean"
    ).item()
    assert got["loss"] == pytest.approx(want, rel=1e-13)
    for k in range(p.shape[1]):
        assert got["label_loss"][k] == pytest.approx(
            log_loss(z[:, k], p[:, k], labels=[0, 1]), rel=1e-13
        )
    predicted = (p > 0.5).astype(float)
    assert got["exact_match"] == accuracy_score(z, predicted)
    assert got["hamming_loss"] == pytest.approx(hamming_loss(z, predicted), rel=1e-15)
    assert got["label_predicted_positives"] == predicted.sum(axis=0).astype(int).tolist()
    assert got["rows_infinite"] == 0
    assert got["infinite_rows"] == []


def test_the_table_says_what_the_scores_are_and_how_to_study_the_worst_row(work: Path) -> None:
    p, z = probabilities(n=20)
    path = write(work / "m.csv", p, z)
    table = ok(["batch", str(path), "--sigmoid", "--target-columns", "y_*"]).stdout
    assert "Scores: probabilities (detected; --scores to override)\n" in table
    assert "(binary cross-entropy of the probabilities, per label)" in table
    assert "Predicted 1                           where the label's probability is > 0.5" in table
    # Detected: xent compute --sigmoid --from detects them alike, no --scores needed.
    study = table.split("Study the worst row step by step: ")[1]
    assert study.startswith(f"xent compute --sigmoid --from {path}:")
    assert study.endswith(" --target-columns 'y_*'\n")
    given = ok(["batch", str(path), "--sigmoid", "--target-columns", "y_*", "--scores", "probs"])
    assert "Scores: probabilities\n" in given.stdout
    assert given.stdout.endswith(" --target-columns 'y_*' --scores probs\n")
    csv_out = ok(
        ["batch", str(path), "--sigmoid", "--target-columns", "y_*", "--format", "csv"]
    ).stdout
    lines = csv_out.splitlines()
    assert lines[0].endswith(",exact_match,scores")
    assert all(line.endswith(",probs") for line in lines[1:])


def test_pos_weight_with_probabilities_as_written_out_in_torch(work: Path) -> None:
    p, z = probabilities(seed=12)
    z[3, 1] = 0.25  # a soft target
    w = np.array([0.5, 2.0, 3.0])
    path = write(work / "m.csv", p, z)
    got = batch_json(path, "--pos-weight", "0.5,2,3", "--scores", "probs")
    pt, zt, wt = torch.tensor(p), torch.tensor(z), torch.tensor(w)
    by_hand = -(wt * zt * torch.log(pt) + (1 - zt) * torch.log1p(-pt))
    assert got["loss"] == pytest.approx(by_hand.mean().item(), rel=1e-14)
    for k in range(3):
        assert got["label_loss"][k] == pytest.approx(by_hand[:, k].mean().item(), rel=1e-14)
    assert got["scores_detected"] is False


def test_scores_logits_overrides_the_detection_and_logits_are_not_detected_as_probabilities(
    work: Path,
) -> None:
    p, z = probabilities(n=30, seed=13)
    path = write(work / "m.csv", p, z)
    outcome = ok(["batch", str(path), "--sigmoid", "--target-columns", "y_*", "--format", "json",
                  "--scores", "logits"])  # fmt: skip
    got = json.loads(outcome.stdout)
    assert (got["scores"], got["scores_detected"]) == ("logits", False)
    assert outcome.stderr == ""
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(p), torch.tensor(z), reduction="mean"
    ).item()
    assert got["loss"] == pytest.approx(want, rel=1e-14)
    # Logits with one value outside [0, 1] in the first rows: logits (detected); the
    # JSON says so, stderr says nothing of the historical default.
    x, z = data(n=30)
    outcome = ok(["batch", str(write(work / "x.csv", x, z)), "--sigmoid", "--target-columns",
                  "y_*", "--format", "json"])  # fmt: skip
    got = json.loads(outcome.stdout)
    assert (got["scores"], got["scores_detected"]) == ("logits", True)
    assert outcome.stderr == ""
    table = ok(["batch", "x.csv", "--sigmoid", "--target-columns", "y_*"]).stdout
    assert "Scores: logits (detected; --scores to override)\n" in table
    assert "Study the worst row step by step: xent compute --sigmoid --from" in table
    # Negative logits only (a rare label) are not taken for log-probabilities.
    got = batch_json(write(work / "neg.csv", -np.abs(x) - 0.1, z))
    assert (got["scores"], got["scores_detected"]) == ("logits", True)


def test_log_probabilities_are_scored_as_their_probabilities(work: Path) -> None:
    p, z = probabilities(seed=14)
    w = ["--pos-weight", "1,2,0.5"]
    from_probs = batch_json(write(work / "p.csv", p, z), *w)
    from_logs = batch_json(write(work / "l.csv", np.log(p), z), *w, "--scores", "logprobs")
    assert from_logs["scores"] == "logprobs"
    assert from_logs["loss"] == pytest.approx(from_probs["loss"], rel=1e-14)
    assert from_logs["label_loss"] == pytest.approx(from_probs["label_loss"], rel=1e-14)
    assert from_logs["exact_match"] == from_probs["exact_match"]
    assert from_logs["label_predicted_positives"] == from_probs["label_predicted_positives"]


def test_extreme_probabilities_against_mpmath(work: Path) -> None:
    """p = 1e-300 and 1 - 2^-53 (the float below 1), as probabilities and as their logs:
    the mean within 3 ulp of the exact one, where 1 - p rounded would lose it all."""
    one_below = 1.0 - 2.0**-53
    p = np.array([[1e-300, one_below], [one_below, 1e-300], [0.5, 2.0**-1074], [0.25, 0.75]])
    z = np.array([[0.0, 1.0], [0.0, 1.0], [0.3, 0.0], [1.0, 0.0]])

    def exact(log: bool) -> mp.mpf:
        with mp.workprec(400):
            total = mp.mpf(0)
            for (i, k), value in np.ndenumerate(p):
                pm, zm = mp.mpf(float(value)), mp.mpf(float(z[i, k]))
                lp = mp.log(pm)
                if log:  # the float log p, taken as exact
                    lp = mp.mpf(float(np.log(value)))
                    pm = mp.exp(lp)
                total -= zm * lp + (1 - zm) * mp.log1p(-pm)
            return total / p.size

    got = batch_json(write(work / "p.csv", p, z), "--scores", "probs")
    assert mpref.ulps(got["loss"], exact(False)) <= MEAN_ULP
    assert got["loss"] * p.size > 690  # -log(1e-300) = 690.8: beyond PyTorch's clamp at 100
    logs = batch_json(write(work / "l.csv", np.log(p), z), "--scores", "logprobs")
    assert mpref.ulps(logs["loss"], exact(True)) <= MEAN_ULP


def test_probability_0_for_a_positive_target_is_an_infinite_loss(work: Path) -> None:
    p = np.array([[0.2, 0.9], [0.0, 0.5], [1.0, 0.5], [0.0, 1.0]])
    z = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    path = write(work / "m.csv", p, z)
    outcome = ok(["batch", str(path), "--sigmoid", "--target-columns", "y_*", "--format", "json"])
    got = json.loads(outcome.stdout)
    assert got["loss"] == "inf"
    assert got["rows_infinite"] == 2
    assert [r["line"] for r in got["infinite_rows"]] == [3, 4]
    assert got["label_loss"][0] == "inf"
    assert got["label_loss"][1] == pytest.approx(-(np.log(0.9) + 2 * np.log(0.5)) / 4)
    infinite = (
        f"Infinite loss: 2 rows where a label's probability is 0 with a target > 0,"
        f" or 1 with a target < 1 ({path}:3, {path}:4)"
    )
    assert infinite in outcome.stderr.splitlines()
    assert infinite in ok(["batch", str(path), "--sigmoid", "--target-columns", "y_*"]).stdout
    # Row 4: p = 0 with target 0 and p = 1 with target 1 (0 log 0 = 0).
    assert got["worst"][-1]["loss"] == 0.0
    # A log-probability -inf is p = 0: the same figures.
    with np.errstate(divide="ignore"):
        logs = batch_json(write(work / "l.csv", np.log(p), z), "--scores", "logprobs")
    assert logs["loss"] == "inf"
    assert logs["rows_infinite"] == 2
    assert logs["label_loss"][1] == got["label_loss"][1]


BAD_SCORES = [
    (["--scores", "probs"], "1.2", "m.csv:3:2: probability is above 1 ('1.2')"),
    (["--scores", "probs"], "-0.1", "m.csv:3:2: probability is negative ('-0.1')"),
    (["--scores", "probs"], "nan", "m.csv:3:2: probability is NaN ('nan')"),
    (
        ["--scores", "logprobs"],
        "0.3",
        "m.csv:3:2: log-probability is positive (a probability above 1) ('0.3')",
    ),
    (["--scores", "logprobs"], "inf", "m.csv:3:2: log-probability is positive"),
]


@pytest.mark.parametrize(("args", "text", "message"), BAD_SCORES)
def test_bad_probabilities_are_located(
    work: Path, args: list[str], text: str, message: str
) -> None:
    p, z = probabilities(n=6, labels=2)
    scores = np.log(p) if "logprobs" in args else p
    write(work / "m.csv", scores, z, cell={(1, 1): text})
    outcome = run(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", *args])
    assert outcome.code == 1, outcome.stdout
    assert outcome.stdout == ""
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith(f"Error: {message}"), outcome.stderr
    skipped = run(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", *args,
                   "--on-error", "skip", "--format", "json"])  # fmt: skip
    assert skipped.code == 0, skipped.stderr
    got = json.loads(skipped.stdout)
    assert (got["rows"], got["rows_skipped"]) == (5, 1)
    assert got["skipped"][0]["error"].startswith(message)


def test_a_bad_probability_after_the_detection_says_how_it_was_detected(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, z = probabilities(n=200, labels=2)
    write(work / "m.csv", p, z, cell={(150, 0): "1.5"})
    monkeypatch.setattr(reader, "BLOCK_BYTES", 1000)  # the first rows only are the sample
    outcome = run(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*"])
    assert outcome.code == 1
    assert outcome.stderr == (
        "Error: m.csv:152:1: probability is above 1 (the scores were detected as"
        " probabilities from the first rows; --scores logits|probs|logprobs says what they"
        " are) ('1.5')\n"
    )


def test_files_holding_different_kinds_are_a_usage_error(work: Path) -> None:
    p, z = probabilities(n=10)
    x, _ = data(n=10)
    write(work / "p.csv", p, z)
    write(work / "x.csv", x, z)
    outcome = run(["batch", "p.csv", "x.csv", "--sigmoid", "--target-columns", "y_*"])
    assert outcome.code == 2
    assert outcome.stderr == (
        "Error: p.csv holds probabilities but x.csv holds logits (detected):"
        " give --scores logits|probs|logprobs\n"
    )


def test_parquet_probabilities_are_detected_too(work: Path) -> None:
    import pandas as pd

    p, z = probabilities(n=25, seed=15)
    csv = batch_json(write(work / "m.csv", p, z))
    pd.read_csv(work / "m.csv").to_parquet(work / "m.parquet")
    got = batch_json(work / "m.parquet")
    assert (got["scores"], got["scores_detected"]) == ("probs", True)
    assert got["loss"] == csv["loss"]
    frame = pd.read_csv(work / "m.csv")
    frame.loc[3, "logit_1"] = 1.5
    frame.to_parquet(work / "bad.parquet")
    outcome = run(["batch", "bad.parquet", "--sigmoid", "--target-columns", "y_*", "--scores",
                   "probs"])  # fmt: skip
    assert outcome.code == 1
    assert outcome.stderr == "Error: bad.parquet:row 4:logit_1: probability is above 1 (1.5)\n"


def test_compute_sigmoid_from_a_probability_file_works_the_row_through_as_probabilities(
    work: Path,
) -> None:
    """xent compute --sigmoid --from detects probabilities as xent batch --sigmoid does,
    says so, and scores the row as batch scored it (the worst row's loss to the bit), not
    as sigma(p); --scores logits says they are logits, and xent batch's study line
    carries it when it was given."""
    import shlex

    p, z = probabilities(n=12, seed=16)
    write(work / "m.csv", p, z)
    table = ok(["batch", "m.csv", "--sigmoid", "--target-columns", "y_*"]).stdout
    command = table.split("Study the worst row step by step: ")[1].strip()
    outcome = run([*shlex.split(command)[1:], "--format", "json"])
    assert outcome.code == 0
    assert outcome.stderr == "Scores: probabilities (detected; --scores to override)\n"
    row = json.loads(outcome.stdout)
    assert (row["scores"], row["scores_detected"]) == ("probs", True)
    worst = batch_json(work / "m.csv")["worst"][0]
    assert command.split(" --from ")[1].startswith(f"m.csv:{worst['line']} ")
    assert row["loss"] == worst["loss"]
    args = ["batch", "m.csv", "--sigmoid", "--target-columns", "y_*", "--scores", "logits"]
    table = ok(args).stdout
    command = table.split("Study the worst row step by step: ")[1].strip()
    assert command.endswith(" --scores logits")
    row = json.loads(ok([*shlex.split(command)[1:], "--format", "json"]).stdout)
    worst = json.loads(ok([*args, "--format", "json"]).stdout)["worst"][0]
    assert row["loss"] == pytest.approx(worst["loss"], rel=1e-14)
