"""``xent batch --weight-column NAME``: every mean weighted by the rows' sample weights.

Oracles: scikit-learn's metrics with ``sample_weight`` (log loss, accuracy, Brier, top-k,
confusion matrix, precision/recall/F1), PyTorch's per-row losses for the product with
class weights, the calibration definitions written out here, and repeated rows (a row of
integer weight n is n copies of it: a weight that is ignored fails that test).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import scipy.special
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from test_cli_batch import run

K = 4


def _data(n: int = 240, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    logits = rng.normal(scale=2.0, size=(n, K))
    logits[np.arange(n), labels] += 1.5  # a classifier that is right more often than not
    weights = np.round(rng.lognormal(sigma=1.0, size=n), 3)
    weights[::17] = 0.0  # rows that count for nothing
    return logits, labels, weights


def _csv(path: Path, logits: np.ndarray, labels: np.ndarray, weights: np.ndarray, **extra) -> str:
    columns = [f"l{c}" for c in range(K)]
    lines = [",".join([*columns, "label", "w", *extra])]
    for i in range(len(labels)):
        cells = [repr(float(v)) for v in logits[i]] + [str(int(labels[i])), repr(float(weights[i]))]
        cells += [str(values[i]) for values in extra.values()]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _json(*args: str) -> dict:
    outcome = run(["batch", *args, "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


@pytest.fixture(scope="module")
def weighted(tmp_path_factory) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    logits, labels, weights = _data()
    path = _csv(tmp_path_factory.mktemp("w") / "w.csv", logits, labels, weights)
    return path, logits, labels, weights


def test_every_mean_agrees_with_scikit_learn(weighted):
    path, logits, labels, w = weighted
    data = _json(path, "--weight-column", "w", "--top-k", "1,2")
    q = scipy.special.softmax(logits, axis=1)
    classes = list(range(K))
    assert data["loss"] == pytest.approx(log_loss(labels, q, sample_weight=w, labels=classes))
    assert data["weight_sum"] == pytest.approx(w.sum(), rel=1e-15)
    assert data["sample_weights"]["sum"] == pytest.approx(w.sum(), rel=1e-15)
    assert data["sample_weights"]["effective_rows"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    predicted = logits.argmax(axis=1)
    assert data["accuracy"] == pytest.approx(accuracy_score(labels, predicted, sample_weight=w))
    # Brier: the sum over classes (scikit-learn's multiclass score is that sum too).
    onehot = np.eye(K)[labels]
    assert data["brier"] == pytest.approx(
        brier_score_loss(labels, q, sample_weight=w, labels=classes), rel=1e-12
    )
    assert data["brier"] == pytest.approx(np.average(((q - onehot) ** 2).sum(axis=1), weights=w))
    for k in (1, 2):
        expected = top_k_accuracy_score(labels, q, k=k, sample_weight=w, labels=classes)
        assert data["top_k_accuracy"][str(k)] == pytest.approx(expected, rel=1e-12)
    matrix = confusion_matrix(labels, predicted, sample_weight=w, labels=classes)
    assert np.allclose(np.array(data["confusion"]), matrix, rtol=1e-13, atol=0)
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            labels, predicted, sample_weight=w, average=average, zero_division=0
        )
        got = data["classification"][average]
        assert [got["precision"], got["recall"], got["f1"]] == pytest.approx([p, r, f])
    per_class = data["per_class"]
    for c in range(K):
        mine = labels == c
        assert per_class[c]["accuracy"] == pytest.approx(
            accuracy_score(labels[mine], predicted[mine], sample_weight=w[mine])
        )
        assert per_class[c]["sample_weight"] == pytest.approx(w[mine].sum(), rel=1e-15)
        assert per_class[c]["rows"] == int(mine.sum())  # rows stay rows


def test_calibration_is_weighted_by_its_definition(weighted):
    path, logits, labels, w = weighted
    data = _json(path, "--weight-column", "w", "--bins", "10")
    q = scipy.special.softmax(logits, axis=1)
    confidence = q.max(axis=1)
    right = (logits.argmax(axis=1) == labels).astype(float)
    index = np.minimum((confidence * 10).astype(int), 9)
    ece, mce = 0.0, 0.0
    for b in range(10):
        inside = index == b
        mass = w[inside].sum()
        got = data["calibration"]["bins"][b]
        assert got["rows"] == int(inside.sum())
        if mass == 0:
            assert got["accuracy"] is None
            continue
        gap = abs((w[inside] * confidence[inside]).sum() - (w[inside] * right[inside]).sum())
        ece += gap / w.sum()
        mce = max(mce, gap / mass)
        assert got["confidence"] == pytest.approx(np.average(confidence[inside], weights=w[inside]))
        assert got["accuracy"] == pytest.approx(np.average(right[inside], weights=w[inside]))
        assert got["weight"] == pytest.approx(mass)
    assert data["calibration"]["ece"] == pytest.approx(ece, rel=1e-12)
    assert data["calibration"]["mce"] == pytest.approx(mce, rel=1e-12)
    # Equal-mass bins hold equal weight: within the stated bound of the exact rule.
    order = np.argsort(confidence, kind="stable")
    before = np.cumsum(w[order]) - w[order]
    target = np.minimum(np.floor(before * 10 / w.sum()), 9).astype(int)
    exact = 0.0
    for b in range(10):
        inside = order[target == b]
        exact += abs((w[inside] * (confidence[inside] - right[inside])).sum()) / w.sum()
    cal = data["calibration"]
    assert abs(cal["ece_equal_mass"] - exact) <= cal["ece_equal_mass_bound"] + 1e-12


def test_with_class_weights_the_product_as_pytorch_weighs_a_row(weighted):
    torch = pytest.importorskip("torch")
    path, logits, labels, w = weighted
    class_weights = [1.0, 2.0, 0.5, 3.0]
    data = _json(path, "--weight-column", "w", "--weights", "1,2,0.5,3")
    rows = torch.nn.functional.cross_entropy(
        torch.tensor(logits),
        torch.tensor(labels),
        weight=torch.tensor(class_weights, dtype=torch.float64),
        reduction="none",
    ).numpy()
    denominator = (np.array(class_weights)[labels] * w).sum()
    assert data["loss"] == pytest.approx((rows * w).sum() / denominator, rel=1e-13)
    assert data["weight_sum"] == pytest.approx(denominator, rel=1e-15)
    # The other means divide by the sample weights alone (class weights are the loss's).
    predicted = logits.argmax(axis=1)
    assert data["accuracy"] == pytest.approx(accuracy_score(labels, predicted, sample_weight=w))


def test_integer_weights_are_repeated_rows(tmp_path):
    """A row of weight n is n copies of it, to the bit: a weight ignored fails here."""
    logits, labels, _ = _data(90, seed=5)
    counts = np.random.default_rng(0).integers(0, 4, labels.size)  # 0 to 3, non-uniform
    weighted = _csv(tmp_path / "w.csv", logits, labels, counts.astype(float))
    repeat = np.repeat(np.arange(labels.size), counts)
    copies = _csv(tmp_path / "c.csv", logits[repeat], labels[repeat], np.ones(repeat.size))
    a = _json(weighted, "--weight-column", "w", "--bins", "7", "--top-k", "1,2")
    b = _json(copies, "--logit-columns", "l0,l1,l2,l3", "--bins", "7", "--top-k", "1,2")
    for key in ("loss", "loss_sum", "weight_sum", "accuracy", "brier", "top_k_accuracy"):
        assert a[key] == b[key], key
    assert a["calibration"]["ece"] == b["calibration"]["ece"]
    assert a["calibration"]["mce"] == b["calibration"]["mce"]
    assert a["confusion"] == b["confusion"]
    assert a["classification"] == b["classification"]
    assert [c["loss"] for c in a["per_class"]] == [c["loss"] for c in b["per_class"]]
    assert [c["accuracy"] for c in a["per_class"]] == [c["accuracy"] for c in b["per_class"]]
    unweighted = _json(weighted, "--logit-columns", "l0,l1,l2,l3")
    assert unweighted["loss"] != a["loss"]
    assert unweighted["accuracy"] != a["accuracy"]


def test_same_bits_whatever_the_chunking_format_and_merge(weighted, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, logits, labels, w = weighted
    args = ["--weight-column", "w", "--worst", "0"]
    whole = _json(path, *args)
    assert _json(path, *args, "--chunk-rows", "7") == whole
    columns = {f"l{c}": logits[:, c] for c in range(K)}
    table = pa.table({**columns, "label": labels, "w": w})
    pq.write_table(table, tmp_path / "w.parquet", row_group_size=50)
    parquet = _json(str(tmp_path / "w.parquet"), *args)
    jsonl = tmp_path / "w.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({**{k: float(v[i]) for k, v in columns.items()}, "label": int(labels[i]),
                        "w": float(w[i])}) + "\n"
            for i in range(labels.size)
        )
    )  # fmt: skip
    np.savez(tmp_path / "w.npz", logits=logits, labels=labels, w=w)
    npz = _json(str(tmp_path / "w.npz"), *args)
    for other in (parquet, _json(str(jsonl), *args), npz):
        for key in ("loss", "accuracy", "brier", "calibration", "confusion", "ci", "per_class"):
            assert other[key] == whole[key], key
    # Two saved halves merge into the whole (the sums carry the weights).
    lines = Path(path).read_text().splitlines()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("\n".join(lines[:100]) + "\n")
    second.write_text("\n".join([lines[0], *lines[100:]]) + "\n")
    for part in (first, second):
        out = run(["batch", str(part), *args, "--save-state", f"{part}.state", "--format", "csv"])
        assert out.code == 0, out.stderr
    merged = json.loads(
        run(["merge", f"{first}.state", f"{second}.state", "--format", "json"]).stdout
    )
    both = _json(str(first), str(second), *args)
    assert merged == both
    assert merged["loss"] == whole["loss"]
    assert merged["brier"] == whole["brier"]
    unweighted = run(
        [
            "batch",
            str(first),
            "--logit-columns",
            "l0,l1,l2,l3",
            "--worst",
            "0",
            "--save-state",
            str(tmp_path / "u.state"),
        ]
    )
    assert unweighted.code == 0
    mixed = run(["merge", f"{first}.state", str(tmp_path / "u.state")])
    assert mixed.code == 1
    assert "sample_weight_column" in mixed.stderr


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("-1", "weight is negative"),
        ("nan", "weight is not finite"),
        ("inf", "weight is not finite"),
        ("", "empty weight cell"),
        ("heavy", "weight is not a number"),
    ],
)
def test_a_bad_weight_is_one_line_with_its_place(tmp_path, cell, reason):
    path = tmp_path / "bad.csv"
    path.write_text(f"a,b,label,w\n1,2,0,1.5\n0,1,1,{cell}\n")
    out = run(["batch", str(path), "--weight-column", "w"])
    assert out.code == 1
    assert out.stderr == f"Error: {path}:3:4: {reason} ({cell!r})\n" or (
        out.stderr.startswith(f"Error: {path}:3:4: {reason}") and out.stderr.count("\n") == 1
    )


def test_bad_weights_in_parquet_name_the_row_and_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for value, reason in ((None, "is missing"), (-2.0, "weight is negative")):
        table = pa.table({"a": [1.0, 0.0], "b": [0.0, 1.0], "label": [0, 1], "w": [1.0, value]})
        pq.write_table(table, tmp_path / "bad.parquet")
        out = run(["batch", str(tmp_path / "bad.parquet"), "--weight-column", "w"])
        assert out.code == 1, out.stderr
        assert out.stderr.startswith(f"Error: {tmp_path / 'bad.parquet'}:row 2:w: ")
        assert reason in out.stderr
        assert out.stderr.count("\n") == 1


def test_a_missing_weight_column_and_conflicts_are_usage_errors(weighted, tmp_path):
    path = weighted[0]
    out = run(["batch", path, "--weight-column", "weight"])
    assert out.code == 2
    assert path in out.stderr
    assert "'weight'" in out.stderr
    assert out.stderr.count("\n") == 1
    out = run(["batch", path, "--weight-column", "label"])
    assert out.code == 1
    assert "also the label column" in out.stderr
    out = run(["batch", path, "--weight-column", "w", "--bootstrap", "20"])
    assert out.code == 2
    assert "--bootstrap" in out.stderr
    np.save(tmp_path / "s.npy", np.zeros((2, 2)))
    out = run(["batch", str(tmp_path / "s.npy"), "--weight-column", "w"])
    assert out.code == 1
    assert ".npz" in out.stderr


def test_the_table_says_what_the_means_divide_by(weighted):
    out = run(["batch", weighted[0], "--weight-column", "w"])
    assert out.code == 0, out.stderr
    assert "Sample weights: column 'w', sum " in out.stdout
    assert "every mean divides by the sum of the weights" in out.stdout
    assert "(weighted; " in out.stdout


def _coverage(make, truth: float, trials: int = 400) -> float:
    hits = 0
    for seed in range(trials):
        low, high = make(np.random.default_rng(seed))
        hits += low <= truth <= high
    return hits / trials


def test_weighted_intervals_cover_by_simulation():
    """The ratio estimator's normal interval (loss, Brier) and Wilson at Kish's effective
    sample size (accuracy) cover a weighted population mean 93-97 % of the time."""
    from xentcli.batch.metrics._intervals import LossMomentsState, wilson_proportion

    n = 300

    def mean_interval(rng):
        x = rng.gamma(4.0, 0.25, n)  # E x = 1 whatever the weight (a loss-like skew)
        s = rng.lognormal(sigma=0.5, size=n)
        state = LossMomentsState()
        state.add(x * s, s)
        return state.interval(0.95)

    assert 0.93 <= _coverage(mean_interval, 1.0) <= 0.97

    def accuracy_interval(rng):
        right = rng.random(n) < 0.8
        s = rng.lognormal(sigma=0.8, size=n)
        p = float(Fraction(float((s * right).sum())) / Fraction(float(s.sum())))
        return wilson_proportion(p, s.sum() ** 2 / (s**2).sum(), 0.95)

    assert 0.93 <= _coverage(accuracy_interval, 0.8) <= 0.97
    assert math.isfinite(mean_interval(np.random.default_rng(1))[1])
