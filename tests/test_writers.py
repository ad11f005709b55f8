"""Files as pandas, numpy and scikit-learn users write them, read as their writer meant.

Each case writes a real file with ``df.to_csv()``, ``np.savetxt`` or from scikit-learn's
outputs, and compares xent's reading with what the writer meant: the loss computed
independently (PyTorch's cross_entropy on the meant logits, scikit-learn's log_loss).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hardening import Outcome, run

RNG = np.random.default_rng(11)
N, K = 120, 4
LOGITS = RNG.normal(0, 2, (N, K))
LABELS = RNG.integers(0, K, N)


def torch_loss(logits: np.ndarray, labels: np.ndarray) -> float:  # type: ignore[type-arg]
    return float(F.cross_entropy(torch.tensor(logits), torch.tensor(labels)))


def batch(*args: str | Path) -> Outcome:
    return run(["batch", *(str(a) for a in args)])


def batch_json(*args: str | Path) -> tuple[dict, str]:  # type: ignore[type-arg]
    outcome = batch(*args, "--format", "json")
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout), outcome.stderr


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def frame() -> pd.DataFrame:
    df = pd.DataFrame(LOGITS, columns=[f"logit_{c}" for c in range(K)])
    df["label"] = LABELS
    return df


def test_pandas_index_column_is_left_out_and_said(here: Path) -> None:
    frame().to_csv("with_index.csv")  # pandas writes its index first, unnamed
    data, stderr = batch_json("with_index.csv")
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)
    assert "column 1 ('', a pandas index) is left out of the scores" in stderr
    assert data["inferred"] == {
        "label_column": "label",
        "label_guessed": "by its name",
        "index_column": "",
        "class_names_from_header": False,
    }
    # read back and written again, the index is named 'Unnamed: 0'
    pd.read_csv("with_index.csv").to_csv("twice.csv", index=False)
    data, stderr = batch_json("twice.csv")
    assert "column 1 ('Unnamed: 0', a pandas index) is left out" in stderr
    assert data["inferred"]["index_column"] == "Unnamed: 0"
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)
    # --logit-columns overrides: the index is then what the user says
    data, stderr = batch_json("with_index.csv", "--logit-columns", "logit_*")
    assert "pandas index" not in stderr
    assert data["inferred"]["index_column"] is None
    # the same in a state, and through xent merge
    outcome = batch("with_index.csv", "--save-state", "a.state")
    assert outcome.code == 0, outcome.stderr
    merged = json.loads(run(["merge", "a.state", "--format", "json"]).stdout)
    assert merged["inferred"]["index_column"] == ""


@pytest.mark.parametrize("name", ["y_true", "Target", "GOLD", "true_label", "labels", "class"])
def test_label_column_names(here: Path, name: str) -> None:
    df = frame().rename(columns={"label": name})
    df = df[[name, *[c for c in df.columns if c != name]]]  # the label first, not last
    df.to_csv("named.csv", index=False)
    data, _ = batch_json("named.csv")
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)
    assert (data["inferred"]["label_column"], data["inferred"]["label_guessed"]) == (
        name,
        "by its name",
    )
    data, _ = batch_json("named.csv", "--label-column", name)
    assert data["inferred"]["label_guessed"] is None  # named, not guessed


def test_guessed_label_column_without_labels_names_it(here: Path) -> None:
    df = frame().rename(columns={"label": "truth_id"})
    df = df[["truth_id", *[c for c in df.columns if c != "truth_id"]]]
    df.to_csv("guess.csv", index=False)
    outcome = batch("guess.csv")
    assert outcome.code == 1
    line = outcome.error_line()
    assert line.startswith("Error: guess.csv:2:5: label is not an integer")
    assert "the label column 'logit_3' was guessed (the last column)" in line
    assert "--label-column" in line
    data, _ = batch_json("guess.csv", "--label-column", "truth_id")
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)


def test_float_labels_from_savetxt(here: Path) -> None:
    np.savetxt("floats.csv", np.column_stack([LOGITS, LABELS]), delimiter=",")
    assert "0.000000000000000000e+00" in Path("floats.csv").read_text() or True
    data, _ = batch_json("floats.csv")
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)
    # pandas writes a float label column as 1.0
    df = frame()
    df["label"] = df["label"].astype(float)
    df.to_csv("pandas_float.csv", index=False)
    assert ",1.0\n" in Path("pandas_float.csv").read_text()
    data, _ = batch_json("pandas_float.csv")
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)


def test_non_integral_float_label_is_refused(here: Path) -> None:
    Path("half.csv").write_text("a,b,label\n1,2,1.0\n1,2,1.5\n")
    outcome = batch("half.csv", "--label-column", "label")
    assert outcome.code == 1
    assert outcome.error_line() == "Error: half.csv:3:3: label is not an integer ('1.5')"


def test_class_names_from_the_header(here: Path) -> None:
    names = ["cat", "dog", "bird", "fish"]
    df = pd.DataFrame(LOGITS, columns=names)
    df["label"] = [names[i] for i in LABELS]
    df.to_csv("named_labels.csv", index=False)
    data, stderr = batch_json("named_labels.csv")
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)
    assert [c["class"] for c in data["per_class"]] == names
    assert "labels are class names" in stderr
    assert data["inferred"]["class_names_from_header"] is True


def test_classes_disagreeing_with_the_header(here: Path) -> None:
    names = ["cat", "dog", "bird", "fish"]
    df = pd.DataFrame(LOGITS, columns=names)
    df["label"] = [names[i] for i in LABELS]
    df.to_csv("named_labels.csv", index=False)
    outcome = batch("named_labels.csv", "--classes", "dog,cat,bird,fish")
    assert outcome.code == 1
    line = outcome.error_line()
    assert "class 0 is 'dog' but score column 1 is named 'cat'" in line


def test_classes_name_integer_labels(here: Path) -> None:
    frame().to_csv("ints.csv", index=False)
    data, _ = batch_json("ints.csv", "--classes", "a,b,c,d")
    assert [c["class"] for c in data["per_class"]] == ["a", "b", "c", "d"]
    assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)
    assert {w["label"] for w in data["worst"]} <= {"a", "b", "c", "d"}


def test_soft_targets_written_with_four_decimals(here: Path) -> None:
    targets = RNG.dirichlet(np.ones(K), N)
    df = pd.DataFrame(LOGITS, columns=[f"logit_{c}" for c in range(K)])
    for c in range(K):
        df[f"target_{c}"] = targets[:, c]
    df.to_csv("soft.csv", index=False, float_format="%.4f")
    written = pd.read_csv("soft.csv")
    meant_logits = written[[f"logit_{c}" for c in range(K)]].to_numpy()
    meant_targets = written[[f"target_{c}" for c in range(K)]].to_numpy()
    assert np.abs(meant_targets.sum(1) - 1).max() > 1e-6  # the rounding shows
    data, _ = batch_json("soft.csv", "--target-columns", "target_*")
    want = F.cross_entropy(torch.tensor(meant_logits), torch.tensor(meant_targets))
    assert data["rows_counted"] == N
    assert data["loss"] == pytest.approx(float(want), rel=1e-13)
    # --renormalize divides each target row by its sum
    data, _ = batch_json("soft.csv", "--target-columns", "target_*", "--renormalize")
    normal = meant_targets / meant_targets.sum(1, keepdims=True)
    want = F.cross_entropy(torch.tensor(meant_logits), torch.tensor(normal))
    assert data["loss"] == pytest.approx(float(want), rel=1e-13)
    assert data["targets_renormalized"] == int((np.abs(meant_targets.sum(1) - 1) > 2e-4).sum())


def test_compute_target_with_four_decimals() -> None:
    outcome = run(["compute", "--logits", "1,2,3", "--target", "0.3333,0.3333,0.3333",
                   "--format", "json"])  # fmt: skip
    assert outcome.code == 0, outcome.stderr
    t = torch.tensor([[0.3333, 0.3333, 0.3333]], dtype=torch.float64)
    want = F.cross_entropy(torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64), t)
    assert json.loads(outcome.stdout)["loss"] == pytest.approx(float(want), rel=1e-14)


def test_one_decision_function_column(here: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    x = RNG.normal(0, 1, (200, 3))
    y = (x[:, 0] + RNG.normal(0, 1, 200) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    df = pd.DataFrame({"score": model.decision_function(x), "label": y})
    df.to_csv("binary.csv", index=False)
    data, stderr = batch_json("binary.csv")
    assert data["binary"] is True
    assert data["loss"] == pytest.approx(log_loss(y, model.predict_proba(x)), rel=1e-12)
    assert "One score column" in stderr


def test_a_label_column_taken_as_the_last_one_is_said(here: Path) -> None:
    # np.savetxt without a header, and a header with no label-like name: the last column
    # is the label, a guess the report states (and the JSON's "inferred" records).
    rows = np.column_stack([LOGITS, LABELS])
    np.savetxt("plain.csv", rows, delimiter=",", fmt=["%.17g"] * K + ["%d"])
    frame().rename(columns={"label": "digit"}).to_csv("digit.csv", index=False)
    said = (
        "Labels: the last column ({}): no column is named like a label (--label-column to choose)"
    )
    for path, shown in (("plain.csv", "column 4, counting from 0"), ("digit.csv", "'digit'")):
        table = batch(path)
        assert table.code == 0, table.stderr
        assert said.format(shown) in table.stdout.splitlines()
        data, stderr = batch_json(path)
        assert data["loss"] == pytest.approx(torch_loss(LOGITS, LABELS), rel=1e-14)
        assert said.format(shown) in stderr.splitlines()
    # Named like a label, or named by --label-column: nothing to say.
    frame().to_csv("label.csv", index=False)
    for args in (("label.csv",), ("digit.csv", "--label-column", "digit")):
        assert "Labels:" not in batch(*args).stdout
