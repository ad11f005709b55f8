"""Parquet, Arrow/Feather, NumPy and JSON Lines files: the same bits as the same rows in CSV.

The oracle for every format is the delimited-text reader on the same values (a separate
parser, itself checked against mpmath elsewhere), and the loss is checked against
PyTorch's ``cross_entropy`` on the arrays as written (an independent implementation).
Bad files get one line naming the file, the row (``row N``, counted from 1) or line, and
the column, with exit 1.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hardening import assert_clean_error, leftovers, run

ROWS, K = 300, 7


def outputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(ROWS, K))
    logits[5, 2] = -np.inf  # a masked class
    logits[9] = np.round(logits[9], 1)
    labels = rng.integers(0, K, size=ROWS)
    labels[5] = 0
    return logits, labels


def names() -> list[str]:
    return [f"logit_{k}" for k in range(K)]


def write_csv(path: Path, logits: np.ndarray, labels: np.ndarray) -> Path:
    lines = [",".join([*names(), "label"])]
    lines += [
        ",".join([*map(repr, map(float, row)), str(int(y))])
        for row, y in zip(logits, labels, strict=False)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def table_of(logits: np.ndarray, labels: np.ndarray) -> pa.Table:
    columns = {name: logits[:, k] for k, name in enumerate(names())}
    columns["label"] = labels
    return pa.table(columns)


def list_table(logits: np.ndarray, labels: np.ndarray) -> pa.Table:
    return pa.table({"logits": list(logits), "label": labels})


def json_report(*args: str) -> dict:
    outcome = run(["batch", *args, "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


def torch_mean(logits: np.ndarray, labels: np.ndarray) -> float:
    torch = pytest.importorskip("torch")
    return float(
        torch.nn.functional.cross_entropy(
            torch.tensor(logits, dtype=torch.float64), torch.tensor(labels)
        )
    )


def writers(tmp_path: Path, logits: np.ndarray, labels: np.ndarray) -> dict[str, list[str]]:
    """The same outputs in every format, as ``xent batch`` arguments."""
    pq.write_table(table_of(logits, labels), tmp_path / "columns.parquet", row_group_size=64)
    pq.write_table(list_table(logits, labels), tmp_path / "lists.parquet", row_group_size=50)
    feather.write_feather(table_of(logits, labels), tmp_path / "columns.feather", chunksize=100)
    np.save(tmp_path / "scores.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    np.savez(tmp_path / "outputs.npz", logits=logits, labels=labels)
    with open(tmp_path / "rows.jsonl", "w") as out:
        for row, y in zip(logits, labels, strict=False):
            values = [v if math.isfinite(v) else None for v in row.tolist()]
            out.write(json.dumps({"id": "x", "logits": values, "label": int(y)}) + "\n")
    return {
        "parquet columns": [str(tmp_path / "columns.parquet")],
        "parquet list": [str(tmp_path / "lists.parquet")],
        "feather": [str(tmp_path / "columns.feather")],
        "npy pair": [str(tmp_path / "scores.npy"), "--labels", str(tmp_path / "labels.npy")],
        "npz": [str(tmp_path / "outputs.npz")],
    }


def test_every_format_gives_the_bits_of_the_csv(tmp_path: Path) -> None:
    logits, labels = outputs()
    expected = json_report(str(write_csv(tmp_path / "same.csv", logits, labels)))
    assert math.isclose(expected["loss"], torch_mean(logits, labels), rel_tol=1e-14)
    for kind, args in writers(tmp_path, logits, labels).items():
        got = json_report(*args)
        for key in ("rows", "loss", "loss_sum", "accuracy", "perplexity", "loss_quantiles"):
            assert got[key] == expected[key], (kind, key)
        assert [c["loss"] for c in got["per_class"]] == [c["loss"] for c in expected["per_class"]]
        # the worst rows are the same rows: CSV line N is row N - 1 (the header is line 1)
        assert [w["line"] for w in got["worst"]] == [w["line"] - 1 for w in expected["worst"]]
        assert [w["loss"] for w in got["worst"]] == [w["loss"] for w in expected["worst"]]


def test_jsonl_gives_the_bits_of_the_csv_with_line_numbers(tmp_path: Path) -> None:
    logits, labels = outputs(1)
    logits[5, 2] = -1e300  # JSON has no -inf; a huge negative logit instead
    expected = json_report(str(write_csv(tmp_path / "same.csv", logits, labels)))
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wt") as out:
        for row, y in zip(logits, labels, strict=False):
            out.write(json.dumps({"logits": row.tolist(), "label": int(y), "note": "ok"}) + "\n")
    got = json_report(str(path))
    assert got["loss"] == expected["loss"]
    assert got["accuracy"] == expected["accuracy"]
    # JSON Lines have lines, not a header: line N of the CSV is line N - 1 here
    assert [w["line"] for w in got["worst"]] == [w["line"] - 1 for w in expected["worst"]]


def test_jsonl_columns_by_name_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "named.ndjson"
    path.write_text('{"a": 1.0, "b": 2.0, "gold": 1}\n\n{"a": 0.5, "b": -1.0, "gold": 0}\n')
    got = json_report(str(path), "--label-column", "gold")
    assert got["rows"] == 2
    expected = torch_mean(np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([1, 0]))
    assert math.isclose(got["loss"], expected, rel_tol=1e-15)


def test_parquet_from_pandas_with_class_names_and_index(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    logits, labels = outputs(2)
    classes = [f"c{k}" for k in range(K)]
    frame = pd.DataFrame(logits, columns=classes)
    frame["label"] = [classes[y] for y in labels]
    frame.index = frame.index + 1000  # not a RangeIndex from 0: pandas writes it as a column
    frame.to_parquet(tmp_path / "named.parquet")
    got = json_report(str(tmp_path / "named.parquet"))
    assert math.isclose(got["loss"], torch_mean(logits, labels), rel_tol=1e-14)
    assert [c["class"] for c in got["per_class"]] == classes


def test_directory_of_shards_reads_like_the_files(tmp_path: Path) -> None:
    logits, labels = outputs(3)
    shards = tmp_path / "shards"
    shards.mkdir()
    pq.write_table(table_of(logits[:100], labels[:100]), shards / "part-0.parquet")
    pq.write_table(table_of(logits[100:], labels[100:]), shards / "part-1.parquet")
    (shards / "README.md").write_text("not data")
    got = json_report(str(shards))
    assert [f["path"] for f in got["files"]] == [
        str(shards / "part-0.parquet"),
        str(shards / "part-1.parquet"),
    ]
    assert math.isclose(got["loss"], torch_mean(logits, labels), rel_tol=1e-14)


def test_float16_and_float32_npy_are_scored_as_written(tmp_path: Path) -> None:
    logits, labels = outputs(4)
    for dtype in (np.float16, np.float32):
        written = logits.astype(dtype)
        np.save(tmp_path / "s.npy", written)
        np.save(tmp_path / "l.npy", labels.astype(np.int32))
        got = json_report(str(tmp_path / "s.npy"), "--labels", str(tmp_path / "l.npy"))
        exact = torch_mean(written.astype(np.float64), labels)
        assert math.isclose(got["loss"], exact, rel_tol=1e-14)


# ----------------------------------------------------------------------- bad input


def check_error(tmp_path: Path, args: list[str], where: str, *contains: str) -> None:
    before = {p.name for p in tmp_path.iterdir()}
    outcome = run(["batch", *args])
    assert_clean_error(outcome, 1, where=where, contains=contains)
    assert leftovers(tmp_path, before) == set()


def test_parquet_list_of_the_wrong_length_in_row_17(tmp_path: Path) -> None:
    logits, labels = outputs()
    rows = [list(r) for r in logits]
    rows[16] = rows[16][:-1]
    path = tmp_path / "short.parquet"
    pq.write_table(pa.table({"logits": rows, "label": labels}), path, row_group_size=10)
    check_error(tmp_path, [str(path)], f"{path}:row 17:logits", "6 values, not 7")


def test_parquet_null_score(tmp_path: Path) -> None:
    logits, labels = outputs()
    column = pa.array([None if i == 41 else v for i, v in enumerate(logits[:, 3].tolist())])
    table = table_of(logits, labels).set_column(3, "logit_3", column)
    path = tmp_path / "null.parquet"
    pq.write_table(table, path)
    check_error(tmp_path, [str(path)], f"{path}:row 42:logit_3", "missing")


def test_parquet_null_score_skipped_and_counted(tmp_path: Path) -> None:
    logits, labels = outputs()
    column = pa.array([None if i == 41 else v for i, v in enumerate(logits[:, 3].tolist())])
    path = tmp_path / "null.parquet"
    pq.write_table(table_of(logits, labels).set_column(3, "logit_3", column), path)
    got = json_report(str(path), "--on-error", "skip")
    assert got["rows_skipped"] == 1
    assert got["rows_counted"] == ROWS - 1
    keep = np.arange(ROWS) != 41
    assert math.isclose(got["loss"], torch_mean(logits[keep], labels[keep]), rel_tol=1e-14)
    # The warning names the row as the error does (a Parquet file has rows, not lines).
    warned = run(["batch", str(path), "--on-error", "skip", "--format", "json"])
    assert warned.stderr.splitlines()[0] == (f"Warning: skipped 1 bad row (first: {path}:row 42)")


def test_truncated_parquet(tmp_path: Path) -> None:
    logits, labels = outputs()
    path = tmp_path / "cut.parquet"
    pq.write_table(table_of(logits, labels), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    check_error(tmp_path, [str(path)], str(path), "not a readable parquet file")


def test_npy_of_strings_or_3d(tmp_path: Path) -> None:
    np.save(tmp_path / "text.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    np.save(tmp_path / "l.npy", np.array([0, 1]))
    labels = ["--labels", str(tmp_path / "l.npy")]
    check_error(
        tmp_path,
        [str(tmp_path / "text.npy"), *labels],
        str(tmp_path / "text.npy"),
        "floating point",
    )
    check_error(tmp_path, [str(tmp_path / "cube.npy"), *labels], str(tmp_path / "cube.npy"), "2-D")


def test_npy_labels_shorter_than_scores(tmp_path: Path) -> None:
    logits, labels = outputs()
    np.save(tmp_path / "s.npy", logits)
    np.save(tmp_path / "l.npy", labels[:-3])
    check_error(
        tmp_path,
        [str(tmp_path / "s.npy"), "--labels", str(tmp_path / "l.npy")],
        str(tmp_path / "s.npy"),
        f"has {ROWS - 3} rows",
    )


def test_npy_label_out_of_range_names_its_row(tmp_path: Path) -> None:
    logits, labels = outputs()
    labels[122] = K
    np.save(tmp_path / "s.npy", logits)
    np.save(tmp_path / "l.npy", labels)
    check_error(
        tmp_path,
        [str(tmp_path / "s.npy"), "--labels", str(tmp_path / "l.npy")],
        f"{tmp_path / 's.npy'}:row 123:l.npy",
        "out of range",
    )


def test_jsonl_line_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"logits": [1, 2], "label": 0}\n{"logits": [1, 2], "label": 1\n')
    check_error(tmp_path, [str(path)], f"{path}:2", "not a json object")


def test_jsonl_line_without_the_label_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"logits": [1, 2], "label": 0}\n\n{"logits": [1, 2]}\n')
    check_error(tmp_path, [str(path)], f"{path}:3:label", "no field 'label'")


def test_npz_without_labels_names_the_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", logits=np.zeros((2, 2)), y=np.zeros(2))
    check_error(tmp_path, [str(tmp_path / "x.npz")], str(tmp_path / "x.npz"), "--labels-key")
    got = json_report(str(tmp_path / "x.npz"), "--labels-key", "y")
    assert math.isclose(got["loss"], math.log(2), rel_tol=1e-15)


def test_reading_parquet_or_npy_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow's to_numpy and pa.array import pandas (seconds); the readers avoid them."""
    import subprocess
    import sys

    logits, labels = outputs()
    pq.write_table(list_table(logits, labels), tmp_path / "l.parquet")
    pq.write_table(table_of(logits, labels), tmp_path / "c.parquet")
    np.save(tmp_path / "s.npy", logits)
    np.save(tmp_path / "y.npy", labels)
    code = (
        "import sys\n"
        "from xentcli.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('pandas' in sys.modules, 'pyarrow.compute' in sys.modules)\n"
    )
    for args in (
        [str(tmp_path / "l.parquet")],
        [str(tmp_path / "c.parquet")],
        [str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")],
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, "batch", *args, "--format", "csv"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.splitlines()[-1] == "False False", (args, done.stderr)


def test_npy_read_by_rows_fortran_order_and_truncation(tmp_path: Path) -> None:
    logits, labels = outputs(5)
    np.save(tmp_path / "f.npy", np.asfortranarray(logits))  # read whole, not by rows
    np.save(tmp_path / "l.npy", labels)
    got = json_report(str(tmp_path / "f.npy"), "--labels", str(tmp_path / "l.npy"))
    assert math.isclose(got["loss"], torch_mean(logits, labels), rel_tol=1e-14)
    np.save(tmp_path / "c.npy", logits)
    data = (tmp_path / "c.npy").read_bytes()
    (tmp_path / "c.npy").write_bytes(data[: len(data) - 8 * K * 3])  # three rows cut off
    check_error(
        tmp_path,
        [str(tmp_path / "c.npy"), "--labels", str(tmp_path / "l.npy")],
        str(tmp_path / "c.npy"),
        "truncated",
    )


def test_probabilities_in_every_format_are_detected_and_scored_as_log_loss(tmp_path: Path) -> None:
    """A predict_proba output is never scored as logits: detected in Parquet, Arrow, NumPy
    and JSON Lines as in CSV, and the mean is scikit-learn's log_loss."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(11)
    probs = rng.dirichlet(np.ones(K), size=ROWS)
    labels = rng.integers(0, K, size=ROWS)
    expected = sklearn_metrics.log_loss(labels, probs, labels=list(range(K)))
    pq.write_table(table_of(probs, labels), tmp_path / "p.parquet")
    pq.write_table(list_table(probs, labels), tmp_path / "pl.parquet")
    feather.write_feather(table_of(probs, labels), tmp_path / "p.feather")
    np.save(tmp_path / "p.npy", probs)
    np.save(tmp_path / "y.npy", labels)
    with open(tmp_path / "p.jsonl", "w") as out:
        for row, y in zip(probs, labels, strict=True):
            out.write(json.dumps({"probs": row.tolist(), "label": int(y)}) + "\n")
    for args in (
        [str(tmp_path / "p.parquet")],
        [str(tmp_path / "pl.parquet")],
        [str(tmp_path / "p.feather")],
        [str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy")],
        [str(tmp_path / "p.jsonl")],
    ):
        got = json_report(*args)
        assert got["scores"] == "probs", args
        assert got["scores_detected"] is True
        assert abs(got["loss"] - expected) <= 4 * math.ulp(expected), args
    # a bad probability names its row and column (a file holding one is not detected as
    # probabilities, as in CSV: --scores says what it holds)
    bad = probs.copy()
    bad[40, 2] = 1.5
    pq.write_table(table_of(bad, labels), tmp_path / "bad.parquet")
    check_error(
        tmp_path,
        [str(tmp_path / "bad.parquet"), "--scores", "probs"],
        f"{tmp_path / 'bad.parquet'}:row 41:logit_2",
        "above 1",
    )
    # given explicitly, the same file is read as logits
    assert json_report(str(tmp_path / "p.parquet"), "--scores", "logits")["scores"] == "logits"


def test_a_wide_parquet_file_gives_the_bits_of_the_csv(tmp_path: Path) -> None:
    """130 columns (more than WIDE_PARQUET: read a row group 100 columns at a time) in
    row groups of 60 rows: the figures and places of the same outputs as CSV; a null
    score is named by its row and column."""
    from xentcli.batch._formats import WIDE_PARQUET

    k = WIDE_PARQUET + 30
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 3, size=(250, k))
    labels = rng.integers(0, k, size=250)
    columns = [f"logit_{j}" for j in range(k)]
    lines = [",".join([*columns, "label"])]
    lines += [
        ",".join([*map(repr, row.tolist()), str(y)]) for row, y in zip(logits, labels, strict=True)
    ]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")
    table = pa.table({**{c: logits[:, j] for j, c in enumerate(columns)}, "label": labels})
    pq.write_table(table, tmp_path / "wide.parquet", row_group_size=60)
    expected = json_report(str(tmp_path / "wide.csv"))
    got = json_report(str(tmp_path / "wide.parquet"))
    for key in ("rows", "loss", "loss_sum", "accuracy", "per_class", "brier", "confusion"):
        assert got[key] == expected[key], key
    assert got["calibration"]["ece"] == expected["calibration"]["ece"]
    assert [w["line"] for w in got["worst"]] == [w["line"] - 1 for w in expected["worst"]]
    scores = logits.tolist()
    scores[130][k - 1] = None  # row 131, in the second pass over the third row group
    holes = {c: [row[j] for row in scores] for j, c in enumerate(columns)}
    pq.write_table(
        pa.table({**holes, "label": labels}), tmp_path / "hole.parquet", row_group_size=60
    )
    outcome = run(["batch", str(tmp_path / "hole.parquet")])
    assert_clean_error(outcome, 1, where=f"{tmp_path / 'hole.parquet'}:row 131:logit_{k - 1}")


def test_float32_mixed_and_integer_columns_give_the_bits_of_the_csv(tmp_path: Path) -> None:
    """Score columns as models write them: float32 (widened exactly), float32 and float64
    side by side, integers; in Parquet and Feather, the CSV's figures for the same values."""
    logits, labels = outputs(8)
    narrow = logits.astype(np.float32)
    integers = np.round(np.where(np.isfinite(logits), logits, -50)).astype(np.int64)
    cases = {
        "float32": [pa.array(narrow[:, k]) for k in range(K)],
        "mixed": [pa.array(narrow[:, k] if k % 2 else logits[:, k]) for k in range(K)],
        "int64": [pa.array(integers[:, k]) for k in range(K)],
    }
    widened = {
        "float32": narrow.astype(np.float64),
        "mixed": np.where(np.arange(K) % 2, narrow.astype(np.float64), logits),
        "int64": integers.astype(np.float64),
    }
    for kind, arrays in cases.items():
        csv = write_csv(tmp_path / f"{kind}.csv", widened[kind], labels)
        expected = json_report(str(csv))
        assert math.isclose(expected["loss"], torch_mean(widened[kind], labels), rel_tol=1e-14)
        table = pa.table({**dict(zip(names(), arrays, strict=True)), "label": labels})
        pq.write_table(table, tmp_path / f"{kind}.parquet", row_group_size=70)
        feather.write_feather(table, tmp_path / f"{kind}.feather", chunksize=90)
        for path in (tmp_path / f"{kind}.parquet", tmp_path / f"{kind}.feather"):
            got = json_report(str(path))
            for key in ("rows", "loss", "loss_sum", "accuracy", "per_class", "loss_quantiles"):
                assert got[key] == expected[key], (kind, path.name, key)
            assert [w["line"] for w in got["worst"]] == [w["line"] - 1 for w in expected["worst"]]


def test_nan_null_and_inf_in_float32_columns_are_told_apart(tmp_path: Path) -> None:
    """A NaN, a null and a +inf in float32 columns of one row group: each its own message
    at its row and column (a null is missing, not NaN); skipped, the rest is scored."""
    logits, labels = outputs(9)
    narrow = logits.astype(np.float32)
    narrow[5, 2] = 0.0  # (outputs() masks one class: not wanted here)
    columns = {name: narrow[:, k].tolist() for k, name in enumerate(names())}
    columns["logit_2"][10] = float("nan")
    columns["logit_4"][20] = None
    columns["logit_1"][30] = float("inf")
    table = pa.table(
        {**{n: pa.array(v, pa.float32()) for n, v in columns.items()}, "label": labels}
    )
    path = tmp_path / "holes.parquet"
    pq.write_table(table, path, row_group_size=100)
    check_error(tmp_path, [str(path)], f"{path}:row 11:logit_2", "logit is NaN")
    got = json_report(str(path), "--on-error", "skip")
    assert [(s["line"], s["column"]) for s in got["skipped"]] == [
        (11, "logit_2"),
        (21, "logit_4"),
        (31, "logit_1"),
    ]
    assert [s["error"].split(": ", 1)[1] for s in got["skipped"]] == [
        "logit is NaN ('nan')",
        "logit_4 is missing (null)",
        "logit is +inf ('inf')",
    ]
    keep = ~np.isin(np.arange(ROWS), [10, 20, 30])
    expected = torch_mean(narrow[keep].astype(np.float64), labels[keep])
    assert math.isclose(got["loss"], expected, rel_tol=1e-14)


def test_indented_json_is_json_dumps_text() -> None:
    """The report's JSON, written piece by piece, is json.dumps's text to the byte."""
    from xentcli.text import dumps

    value = {
        "matrix": np.arange(12).reshape(3, 4).tolist(),
        "mixed": [1, 2.5, True, None, "x", [np.int64(3)], {"a": []}],
        "empty": {},
        "inf": float("inf"),
    }
    plain = {**value, "mixed": [1, 2.5, True, None, "x", [3], {"a": []}], "inf": "inf"}
    assert dumps(value) == json.dumps(plain, indent=2)
    assert dumps(value, indent=None) == json.dumps(plain)
