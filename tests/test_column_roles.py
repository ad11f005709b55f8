"""Score columns inferred from a header are never a weight, an id or a group in disguise.

Without --logit-columns, a column named like sample weights, row ids or a grouping of the
rows (docs/input-formats.md lists the names) is refused with exit 2 and the option that
reads it; a column of text in the scores says which option reads it. Oracles: PyTorch's
cross_entropy and scikit-learn's log_loss on the columns the test chose itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hardening import assert_clean_error, run
from sklearn.metrics import log_loss

LOGITS = np.array([[1.0, 2.0], [3.0, 1.0], [0.5, -0.25]])
LABELS = np.array([0, 1, 1])
WEIGHTS = np.array([0.5, 2.0, 1.0])
SOURCES = np.array(["tablet", "scanner", "tablet"])


def _frame(extra: str, values: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"a": LOGITS[:, 0], "b": LOGITS[:, 1], "label": LABELS})
    frame[extra] = values
    return frame


def _csv(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _torch_mean(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels)))


WEIGHTS_TEXT, IDS, GROUPS = "sample weights", "row ids", "a grouping of the rows"


@pytest.mark.parametrize(
    ("name", "role", "fix"),
    [
        ("weight", WEIGHTS_TEXT, "--weight-column weight, or "),
        ("Sample_Weight", WEIGHTS_TEXT, "--weight-column Sample_Weight, or "),
        ("id", IDS, ""),
        ("row_id", IDS, ""),
        ("fold", GROUPS, "--group-by fold, or "),
        ("source", GROUPS, "--group-by source, or "),
    ],
)
def test_a_numeric_column_named_like_no_score_is_refused(tmp_path, name, role, fix):
    path = _csv(tmp_path, _frame(name, np.array([17, 18, 19])))
    line = assert_clean_error(run(["batch", path]), 2)
    assert line == (
        f"Error: {path}: column {name!r} is named like {role}, not a score: give "
        f"{fix}--logit-columns to choose the score columns"
    )


def test_the_digits_slices_example_names_its_weight_column():
    outcome = run(["batch", "examples/digits_slices.csv"])
    assert assert_clean_error(outcome, 2) == (
        "Error: examples/digits_slices.csv: column 'weight' is named like sample weights, not"
        " a score: give --weight-column weight, or --logit-columns to choose the score columns"
    )
    # Its documented commands still read it (README's figures come from test_readme).
    for options in (["--weight-column", "weight", "--logit-columns", "logit_*"],
                    ["--weight-column", "weight", "--group-by", "source"]):  # fmt: skip
        assert run(["batch", "examples/digits_slices.csv", *options]).code == 0


def test_a_column_given_its_role_is_left_out_of_the_scores(tmp_path):
    frame = _frame("weight", WEIGHTS)
    frame["source"] = SOURCES
    path = _csv(tmp_path, frame)
    outcome = run(
        ["batch", path, "--weight-column", "weight", "--group-by", "source", "--format", "json"]
    )
    assert outcome.code == 0, outcome.stderr
    got = json.loads(outcome.stdout)
    probs = torch.softmax(torch.tensor(LOGITS), dim=1).numpy()
    want = log_loss(LABELS, probs, sample_weight=WEIGHTS)
    assert got["loss"] == pytest.approx(want, rel=1e-14)


def test_logit_columns_may_name_a_column_called_weight(tmp_path):
    path = _csv(tmp_path, _frame("weight", np.array([0.25, -1.0, 2.0])))
    outcome = run(["batch", path, "--logit-columns", "a,b,weight", "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    scores = np.column_stack([LOGITS, [0.25, -1.0, 2.0]])
    assert json.loads(outcome.stdout)["loss"] == pytest.approx(
        _torch_mean(scores, LABELS), rel=1e-14
    )


def test_classes_may_be_called_like_a_group(tmp_path):
    frame = pd.DataFrame({"tablet": LOGITS[:, 0], "source": LOGITS[:, 1], "label": LABELS})
    path = _csv(tmp_path, frame)
    outcome = run(["batch", path, "--classes", "tablet,source", "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["loss"] == pytest.approx(
        _torch_mean(LOGITS, LABELS), rel=1e-14
    )


def test_compare_offers_its_id_column(tmp_path):
    path = _csv(tmp_path, _frame("id", np.array([17, 18, 19])))
    line = assert_clean_error(run(["compare", path, path]), 2)
    assert line == (
        f"Error: {path}: column 'id' is named like row ids, not a score: give --id-column id,"
        " or --logit-columns to choose the score columns"
    )
    assert run(["compare", path, path, "--id-column", "id"]).code == 0


def test_text_in_an_inferred_score_column_says_which_option_reads_it(tmp_path):
    path = _csv(tmp_path, _frame("device", SOURCES))
    line = assert_clean_error(run(["batch", path]), 1)
    assert line == (
        f"Error: {path}:2:4: logit is not a number; column 'device' holds text: --group-by"
        " device, or --logit-columns to choose the score columns ('tablet')"
    )


@pytest.mark.parametrize(
    ("cells", "where"), [(["1.5", "2", "tablet"], "4:4"), (["tablet", "2", "1"], "2:4")]
)
def test_text_in_one_cell_is_a_bad_cell_only(tmp_path, cells, where):
    # The hint needs a column of text: the first two data rows' cells, not a typo in one.
    path = _csv(tmp_path, _frame("device", np.array(cells, dtype=object)))
    line = assert_clean_error(run(["batch", path]), 1)
    assert line == f"Error: {path}:{where}: logit is not a number ('tablet')"


def test_given_logit_columns_get_no_hint(tmp_path):
    path = _csv(tmp_path, _frame("device", SOURCES))
    line = assert_clean_error(run(["batch", path, "--logit-columns", "a,b,device"]), 1)
    assert line == f"Error: {path}:2:4: logit is not a number ('tablet')"


@pytest.mark.parametrize("suffix", ["parquet", "arrow", "jsonl"])
def test_every_format_that_names_its_columns(tmp_path, suffix):
    def write(frame: pd.DataFrame, name: str) -> str:
        path = tmp_path / f"{name}.{suffix}"
        if suffix == "parquet":
            frame.to_parquet(path, index=False)
        elif suffix == "arrow":
            frame.to_feather(path)
        else:
            frame.to_json(path, orient="records", lines=True)
        return str(path)

    weighted = write(_frame("sample_weight", WEIGHTS), "w")
    assert assert_clean_error(run(["batch", weighted]), 2) == (
        f"Error: {weighted}: column 'sample_weight' is named like sample weights, not a score:"
        " give --weight-column sample_weight, or --logit-columns to choose the score columns"
    )
    outcome = run(["batch", weighted, "--weight-column", "sample_weight", "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    texts = write(_frame("device", SOURCES), "t")
    line = assert_clean_error(run(["batch", texts]), 1)
    assert line.startswith(f"Error: {texts}: column 'device' holds text (")
    assert line.endswith(
        "), not numbers: --group-by device, or --logit-columns to choose the score columns"
    )
