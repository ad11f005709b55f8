"""``xent batch --group-by COLUMN``: every figure per value of a column, beside the total.

Oracle: a pandas groupby with scikit-learn's metrics (and the calibration definitions
written out here) on each group, with and without sample weights.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.special
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, top_k_accuracy_score
from test_cli_batch import run

K = 5
GROUPS = ("de", "en", "fr", "zh")


def _frame(n: int = 400, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    logits = rng.normal(scale=2.0, size=(n, K))
    language = rng.choice(GROUPS, n, p=[0.1, 0.5, 0.25, 0.15])
    # The model is better on English: the slices must differ.
    logits[np.arange(n), labels] += np.where(language == "en", 3.0, 0.5)
    frame = pd.DataFrame({f"l{c}": logits[:, c] for c in range(K)})
    frame["label"] = labels
    frame["w"] = np.round(rng.lognormal(size=n), 3)
    frame["language"] = language
    return frame


def _json(*args: str) -> dict:
    outcome = run(["batch", *args, "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


def _ece(confidence: np.ndarray, right: np.ndarray, w: np.ndarray, bins: int = 15) -> float:
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [abs((w * (confidence - right))[index == b].sum()) for b in range(bins)]
    return float(sum(gaps) / w.sum())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[str, pd.DataFrame]:
    frame = _frame()
    path = tmp_path_factory.mktemp("slices") / "preds.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    return str(path), frame


@pytest.mark.parametrize("weighted", [False, True])
def test_each_group_agrees_with_a_pandas_groupby_and_scikit_learn(data, weighted):
    path, frame = data
    args = ["--group-by", "language", "--top-k", "1,2", "--logit-columns", "l0,l1,l2,l3,l4"]
    if weighted:
        args += ["--weight-column", "w"]
    report = _json(path, *args)
    groups = report["groups"]
    assert [g["group"] for g in groups] == sorted(GROUPS)
    assert report["group_by"] == "language"
    scores = [f"l{c}" for c in range(K)]
    for g, (name, part) in zip(groups, frame.groupby("language"), strict=True):
        assert g["group"] == name
        logits = part[scores].to_numpy()
        labels = part["label"].to_numpy()
        w = part["w"].to_numpy() if weighted else np.ones(len(part))
        q = scipy.special.softmax(logits, axis=1)
        classes = list(range(K))
        assert g["rows"] == len(part)
        assert g["loss"] == pytest.approx(log_loss(labels, q, sample_weight=w, labels=classes))
        predicted = logits.argmax(axis=1)
        assert g["accuracy"] == pytest.approx(accuracy_score(labels, predicted, sample_weight=w))
        assert g["brier"] == pytest.approx(
            brier_score_loss(labels, q, sample_weight=w, labels=classes), rel=1e-12
        )
        assert g["top_k_accuracy"]["2"] == pytest.approx(
            top_k_accuracy_score(labels, q, k=2, sample_weight=w, labels=classes)
        )
        right = (predicted == labels).astype(float)
        assert g["ece"] == pytest.approx(_ece(q.max(axis=1), right, w), rel=1e-12)
        assert g["calibration"]["ece"] == g["ece"]
        assert sum(c["rows"] for c in g["per_class"]) == len(part)
    # The groups partition the total.
    assert sum(g["rows"] for g in groups) == report["rows"]
    assert sum(g["loss_sum"] for g in groups) == pytest.approx(report["loss_sum"])
    english = next(g for g in groups if g["group"] == "en")
    assert english["accuracy"] > max(g["accuracy"] for g in groups if g["group"] != "en")


def test_a_group_is_the_report_of_its_rows_alone_whatever_the_chunking(data, tmp_path):
    path, frame = data
    args = ["--group-by", "language", "--weight-column", "w"]
    whole = _json(path, *args)
    assert _json(path, *args, "--chunk-rows", "11") == whole
    french = frame[frame["language"] == "fr"]
    alone = tmp_path / "fr.csv"
    french.to_csv(alone, index=False, float_format="%.17g")
    mine = next(g for g in whole["groups"] if g["group"] == "fr")
    theirs = _json(str(alone), *args)
    for key in ("loss", "loss_sum", "accuracy", "brier", "top_k_accuracy", "calibration", "ci"):
        assert mine[key] == theirs[key], key
    # Other formats: the same groups (a Parquet column of integers is read as their text).
    frame.to_parquet(tmp_path / "preds.parquet", row_group_size=70)
    parquet = _json(str(tmp_path / "preds.parquet"), *args)
    for g, h in zip(parquet["groups"], whole["groups"], strict=True):
        assert g["group"] == h["group"]
        assert g["loss"] == h["loss"]
        assert g["calibration"] == h["calibration"]
    numbered = frame.assign(
        language=frame["language"].map({"de": 49, "en": 44, "fr": 33, "zh": 86})
    )
    numbered.to_parquet(tmp_path / "numbered.parquet")
    names = [g["group"] for g in _json(str(tmp_path / "numbered.parquet"), *args)["groups"]]
    assert names == ["33", "44", "49", "86"]


def test_groups_survive_save_state_and_merge(data, tmp_path):
    _, frame = data
    args = ["--group-by", "language", "--weight-column", "w"]
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    frame.iloc[:150].to_csv(first, index=False, float_format="%.17g")
    frame.iloc[150:].to_csv(second, index=False, float_format="%.17g")
    for part in (first, second):
        out = run(["batch", str(part), *args, "--save-state", f"{part}.state", "--format", "csv"])
        assert out.code == 0, out.stderr
    merged = run(["merge", f"{first}.state", f"{second}.state", "--format", "json"])
    assert merged.code == 0, merged.stderr
    assert json.loads(merged.stdout) == _json(str(first), str(second), *args)
    plain = run(["batch", str(first), "--weight-column", "w", "--save-state", f"{first}.plain",
                 "--logit-columns", "l0,l1,l2,l3,l4", "--format", "csv"])  # fmt: skip
    assert plain.code == 0, plain.stderr
    mixed = run(["merge", f"{first}.state", f"{first}.plain"])
    assert mixed.code == 1
    assert "group_by" in mixed.stderr


def test_the_table_and_the_csv_have_a_line_per_group(data):
    path, _ = data
    table = run(["batch", path, "--group-by", "language", "--weight-column", "w"])
    assert table.code == 0, table.stderr
    assert "Per language (--group-by language; 4 groups; weighted means)" in table.stdout
    lines = table.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Per language"))
    assert [line.split()[0] for line in lines[start + 3 : start + 7]] == list(GROUPS)
    csv = run(["batch", path, "--group-by", "language", "--weight-column", "w", "--format", "csv"])
    csv = csv.stdout.splitlines()
    assert csv[0].endswith(",group")
    assert [line.rsplit(",", 1)[1] for line in csv[2:]] == ["", *GROUPS]


def test_the_group_limit_names_the_row_that_crosses_it(tmp_path, monkeypatch):
    from xentcli.batch import groups

    path = tmp_path / "many.csv"
    lines = ["a,b,label,g", *(f"{i % 3},1,{i % 2},g{i % 7}" for i in range(40))]
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(groups, "MAX_GROUPS", 5)
    out = run(["batch", str(path), "--group-by", "g", "--chunk-rows", "3"])
    assert out.code == 1
    assert out.stderr.startswith(f"Error: {path}:7:g: more than 5 groups in the --group-by column")
    assert out.stderr.count("\n") == 1


def test_the_real_limit_is_1000(tmp_path):
    from xentcli.batch.groups import MAX_GROUPS

    assert MAX_GROUPS == 1000
    path = tmp_path / "ids.csv"
    path.write_text("a,b,label,id\n" + "".join(f"0,1,1,row{i}\n" for i in range(1001)))
    out = run(["batch", str(path), "--group-by", "id"])
    assert out.code == 1
    assert out.stderr.startswith(f"Error: {path}:1002:id: more than 1000 groups")


def test_bad_group_cells_and_columns(tmp_path, data):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label,g\n1,2,0,x\n0,1,1, \n")
    out = run(["batch", str(path), "--group-by", "g"])
    assert out.code == 1
    assert out.stderr.startswith(f"Error: {path}:3:4: empty group cell")
    out = run(["batch", data[0], "--group-by", "lang"])
    assert out.code == 2
    assert "'lang'" in out.stderr
    assert "did you mean 'language'" in out.stderr
    out = run(["batch", data[0], "--group-by", "language", "--weight-column", "language"])
    assert out.code == 1
    assert "also the group column" in out.stderr or "also the weight column" in out.stderr


def test_a_state_whose_group_disagrees_is_refused(data, tmp_path):
    path, _ = data
    state = tmp_path / "s.state"
    out = run(["batch", path, "--group-by", "language", "--save-state", str(state)])
    assert out.code == 0, out.stderr
    document = json.loads(state.read_text())
    document["components"]["groups"]["groups"][1][1]["options"]["label_smoothing"] = 0.1
    state.write_text(json.dumps(document))
    out = run(["merge", str(state)])
    assert out.code == 1
    assert "components.groups.groups[1]: other options than the run's" in out.stderr
    document["components"]["groups"]["column"] = "domain"
    state.write_text(json.dumps(document))
    out = run(["merge", str(state)])
    assert out.code == 1
    assert "not the groups of options.group_by" in out.stderr
