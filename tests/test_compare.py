"""``xent compare A B``: two models on the same rows.

Oracles: each side's figures are ``xent batch`` on that file alone (a separate run); the
McNemar p-value is ``scipy.stats.binomtest``; the paired interval is computed here with
numpy from the per-row losses of PyTorch's ``cross_entropy``; its coverage is checked by
simulation. The two models are real classifiers trained in the test on scikit-learn's
digits: a logistic regression and a small random forest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import percentiles
import pytest
from hardening import assert_clean_error, leftovers, run

from xentcli.batch.compare import mcnemar_exact

sklearn = pytest.importorskip("sklearn")
torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")


@pytest.fixture(scope="module")
def two_models(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    linear = LogisticRegression(max_iter=300).fit(x_train, y_train)
    forest = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(
        x_train, y_train
    )
    logits_a = linear.decision_function(x_test)
    # the forest gives probabilities; their logs are logits (a -inf for a zero probability)
    with np.errstate(divide="ignore"):
        logits_b = np.log(forest.predict_proba(x_test))
    logits_b = np.maximum(logits_b, -30.0)  # keep every loss finite for the interval
    directory = tmp_path_factory.mktemp("compare")
    paths = []
    for name, logits in (("linear.csv", logits_a), ("forest.csv", logits_b)):
        lines = [",".join([*(f"logit_{k}" for k in range(10)), "label"])]
        lines += [
            ",".join([*map(repr, map(float, row)), str(int(t))])
            for row, t in zip(logits, y_test, strict=True)
        ]
        (directory / name).write_text("\n".join(lines) + "\n")
        paths.append(directory / name)
    return paths[0], paths[1], logits_a, logits_b, y_test


def compare(*args: str) -> dict:
    outcome = run(["compare", *args, "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


def batch(*args: str) -> dict:
    outcome = run(["batch", *args, "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


def row_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return torch.nn.functional.cross_entropy(
        torch.tensor(logits, dtype=torch.float64), torch.tensor(labels), reduction="none"
    ).numpy()


def test_each_side_is_xent_batch_on_that_file(two_models) -> None:
    a, b, *_ = two_models
    got = compare(str(a), str(b))
    alone = {}
    for side, path in (("a", a), ("b", b)):
        alone[side] = batch(str(path))
        for key in ("rows", "loss", "loss_sum", "perplexity", "accuracy", "per_class", "brier"):
            assert got[side][key] == alone[side][key], (side, key)
    assert got["difference"]["brier"] == alone["b"]["brier"] - alone["a"]["brier"]
    ece = [alone[s]["calibration"]["ece"] for s in ("a", "b")]
    assert got["difference"]["ece"] == ece[1] - ece[0]


def test_difference_interval_and_mcnemar_against_independent_computations(two_models) -> None:
    a, b, logits_a, logits_b, labels = two_models
    got = compare(str(a), str(b), "--ci", "0.9")
    # the files hold the repr of each float: the same values as the arrays
    d = row_losses(logits_b, labels) - row_losses(logits_a, labels)
    n = len(d)
    assert math.isclose(got["difference"]["loss"], d.mean(), rel_tol=1e-12)
    half = NormalDist().inv_cdf(0.95) * d.std(ddof=1) / math.sqrt(n)
    low, high = got["difference"]["loss_ci"]
    assert math.isclose(low, d.mean() - half, rel_tol=1e-9)
    assert math.isclose(high, d.mean() + half, rel_tol=1e-9)
    right_a = logits_a.argmax(axis=1) == labels
    right_b = logits_b.argmax(axis=1) == labels
    m = got["mcnemar"]
    assert m["both_right"] == int((right_a & right_b).sum())
    assert m["only_a"] == int((right_a & ~right_b).sum())
    assert m["only_b"] == int((~right_a & right_b).sum())
    assert m["both_wrong"] == int((~right_a & ~right_b).sum())
    discordant = m["only_a"] + m["only_b"]
    expected = scipy_stats.binomtest(m["only_b"], discordant, 0.5).pvalue
    assert math.isclose(m["p_value"], expected, rel_tol=1e-12)
    assert math.isclose(
        got["difference"]["accuracy"], right_b.mean() - right_a.mean(), abs_tol=1e-15
    )
    # regressions are sorted by the rise of the loss, and are rises
    changes = [r["change"] for r in got["regressions"]]
    assert changes == sorted(changes, reverse=True)
    assert all(c > 0 for c in changes)
    assert math.isclose(changes[0], d.max(), rel_tol=1e-12)


@pytest.mark.parametrize(
    ("only_a", "only_b"),
    [(10, 2), (3, 3), (0, 7), (600, 650), (4000, 4100), (70000, 73000), (150000, 150500)],
)
def test_mcnemar_exact_matches_scipy(only_a: int, only_b: int) -> None:
    expected = scipy_stats.binomtest(only_b, only_a + only_b, 0.5).pvalue
    assert math.isclose(mcnemar_exact(only_a, only_b), expected, rel_tol=1e-9)


def test_paired_interval_covers_the_true_difference() -> None:
    """Over 300 seeded datasets with a known mean difference, the 95 % interval covers it
    93-97 % of the time (normal approximation from the exact sums)."""
    from xentcli.batch._types import Chunk
    from xentcli.batch.compare import CompareOptions, PairedComparison

    rng = np.random.default_rng(7)
    true_logits = np.array([1.0, 0.0, -1.0])
    # the true expected loss difference, by a large Monte Carlo sample of the same model
    covered = 0
    trials = 300
    n = 200
    big = 400_000
    labels_big = rng.integers(0, 3, big)
    noise_a = rng.normal(0, 1.0, (big, 3))
    noise_b = rng.normal(0, 1.5, (big, 3))
    truth = float(
        (
            row_losses(true_logits + noise_b, labels_big)
            - row_losses(true_logits + noise_a, labels_big)
        ).mean()
    )
    for trial in range(trials):
        labels = rng.integers(0, 3, n)
        a = true_logits + rng.normal(0, 1.0, (n, 3))
        b = true_logits + rng.normal(0, 1.5, (n, 3))
        pair = PairedComparison(3, compare=CompareOptions(worst=0, ci=0.95))
        lines = np.arange(2, n + 2)
        pair.add(Chunk("a", a, labels, None, lines), Chunk("b", b, labels, None, lines))
        low, high = pair.summary().loss_ci
        covered += low <= truth <= high
        del trial
    assert 0.93 <= covered / trials <= 0.97, covered / trials


def test_parquet_against_csv_pairs_by_position(two_models, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b, logits_a, _, labels = two_models
    pq.write_table(pa.table({"logits": list(logits_a), "label": labels}), tmp_path / "a.parquet")
    got = compare(str(tmp_path / "a.parquet"), str(b))
    direct = compare(str(a), str(b))
    assert got["difference"] == direct["difference"]
    assert got["regressions"][0]["a"].startswith(f"{tmp_path / 'a.parquet'}:row ")


def test_gate_fails_when_b_is_worse_and_passes_the_other_way(two_models) -> None:
    a, b, *_ = two_models
    worse_first = compare(str(a), str(b))["difference"]["loss"] > 0
    worse, better = (a, b) if not worse_first else (b, a)
    outcome = run(["compare", str(worse), str(better), "--fail-if-worse"])
    assert outcome.code == 0, outcome.stderr
    outcome = run(["compare", str(better), str(worse), "--fail-if-worse"])
    assert outcome.code == 3, outcome.stderr
    assert "worse" in outcome.stdout
    # a margin beyond the difference lets it pass
    difference = compare(str(better), str(worse))["difference"]["loss"]
    outcome = run(
        ["compare", str(better), str(worse), "--fail-if-worse", "--margin", repr(difference * 2)]
    )
    assert outcome.code == 0


# -------------------------------------------------------------------------- bad input


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return path


def check(tmp_path: Path, args: list[str], code: int, where: str | None, *contains: str) -> None:
    before = {p.name for p in tmp_path.iterdir()}
    outcome = run(["compare", *args])
    assert_clean_error(outcome, code, where=where, contains=contains)
    assert leftovers(tmp_path, before) == set()


def test_different_row_counts_name_where_the_shorter_ends(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", ["1,0,0", "0,1,1", "2,0,0"])
    b = write(tmp_path / "b.csv", ["1,0,0", "0,1,1"])
    check(tmp_path, [str(a), str(b)], 1, str(b), f"ends at {b}:3", f"{a}:4 has no partner")


def test_label_disagreement_names_both_places(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", ["1,0,0", "0,1,1", "2,0,0"])
    b = write(tmp_path / "b.csv", ["1,0,0", "0,1,0", "2,0,0"])
    check(tmp_path, [str(a), str(b)], 1, f"{a}:3", f"{b}:3", "1 vs 0")


def test_different_numbers_of_classes(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", ["1,0,0"])
    b = tmp_path / "b.csv"
    b.write_text("a,b,c,label\n1,0,0,0\n")
    check(tmp_path, [str(a), str(b)], 1, str(b), "3 classes")


def test_bad_cell_on_either_side_and_skip_skips_the_pair(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", ["1,0,0", "0,x,1", "2,0,0"])
    b = write(tmp_path / "b.csv", ["1,0,0", "0,1,1", "2,0,1"])
    check(tmp_path, [str(a), str(b)], 1, f"{a}:3:2", "not a number")
    b2 = write(tmp_path / "b2.csv", ["1,0,0", "0,1,1", "2,0,0"])
    got = compare(str(a), str(b2), "--on-error", "skip")
    assert got["rows"] == 2
    assert got["difference"]["rows_unpaired"] == 1
    assert got["a"]["rows_skipped"] == 1


# ----------------------------------------------------------------- --id-column (a join)


def write_with_ids(path: Path, logits: np.ndarray, labels: np.ndarray, ids: list[str]) -> Path:
    k = logits.shape[1]
    lines = [",".join(["id", *(f"logit_{j}" for j in range(k)), "label"])]
    lines += [
        ",".join([name, *map(repr, map(float, row)), str(int(t))])
        for name, row, t in zip(ids, logits, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_id_column_join_of_a_shuffled_file_gives_the_figures_by_position(
    two_models, tmp_path: Path
) -> None:
    """The oracle: the same rows in the same order compared by position (no ids)."""
    a, b, logits_a, logits_b, labels = two_models
    n = len(labels)
    ids = [f"r{i:04d}" for i in range(n)]
    perm = np.random.default_rng(3).permutation(n)
    a_ids = write_with_ids(tmp_path / "a_ids.csv", logits_a, labels, ids)
    b_shuffled = write_with_ids(
        tmp_path / "b_shuffled.csv", logits_b[perm], labels[perm], [ids[i] for i in perm]
    )
    boot = ("--bootstrap", "30", "--seed", "4")
    by_position = compare(str(a), str(b), "--worst", "3", *boot)
    joined = compare(str(a_ids), str(b_shuffled), "--id-column", "id", "--worst", "3", *boot)
    assert joined["rows"] == by_position["rows"] == n
    # the ids sort in the files' first order, so a pair's rank among them is its position:
    # the same weights, the same bits (however B is shuffled)
    boot_joined = joined["difference"]["bootstrap"]
    boot_position = by_position["difference"]["bootstrap"]
    assert boot_joined.pop("keyed_by") == "id"
    assert boot_position.pop("keyed_by") == "position"
    assert boot_joined == boot_position
    assert joined["mcnemar"] == by_position["mcnemar"]
    for key in ("loss", "loss_ci", "accuracy", "accuracy_ci", "perplexity_ratio"):
        assert joined["difference"][key] == by_position["difference"][key], key
    assert joined["difference"]["id_column"] == "id"
    assert joined["per_class"] == by_position["per_class"]
    for side, path in (("a", a_ids), ("b", b_shuffled)):
        alone = batch(str(path), "--logit-columns", "logit_*")
        for key in ("rows", "loss", "loss_sum", "perplexity", "accuracy", "per_class"):
            assert joined[side][key] == alone[key], (side, key)
            assert joined[side][key] == by_position[side][key], (side, key)
    # the changed rows are the same rows, each named at its own line in the shuffled B
    line_in_b = {int(i): line for line, i in enumerate(perm, start=2)}
    for kind in ("regressions", "improvements"):
        for got, want in zip(joined[kind], by_position[kind], strict=True):
            for key in ("label", "predicted_a", "predicted_b", "loss_a", "loss_b", "change"):
                assert got[key] == want[key], (kind, key)
            row = int(want["a"].rsplit(":", 1)[1]) - 2  # 0-based row of the original files
            assert got["a"] == f"{a_ids}:{row + 2}"
            assert got["b"] == f"{b_shuffled}:{line_in_b[row]}"


def test_id_column_joins_parquet_with_csv(two_models, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b, logits_a, logits_b, labels = two_models
    n = len(labels)
    perm = np.random.default_rng(5).permutation(n)
    # integer ids in Parquet match the same digits in a CSV cell
    pq.write_table(
        pa.table({"id": perm, "logits": list(logits_a[perm]), "label": labels[perm]}),
        tmp_path / "a.parquet",
    )
    b_ids = write_with_ids(tmp_path / "b_ids.csv", logits_b, labels, [str(i) for i in range(n)])
    joined = compare(str(tmp_path / "a.parquet"), str(b_ids), "--id-column", "id")
    by_position = compare(str(a), str(b))
    for key in ("loss", "loss_ci", "accuracy", "accuracy_ci"):
        assert joined["difference"][key] == by_position["difference"][key], key
    assert joined["mcnemar"] == by_position["mcnemar"]
    top = joined["regressions"][0]
    original = int(by_position["regressions"][0]["a"].rsplit(":", 1)[1]) - 2
    assert top["a"] == f"{tmp_path / 'a.parquet'}:row {int(np.nonzero(perm == original)[0][0]) + 1}"
    assert top["b"] == f"{b_ids}:{original + 2}"


def write_ids(path: Path, rows: list[str]) -> Path:
    path.write_text("id,a,b,label\n" + "\n".join(rows) + "\n")
    return path


def test_id_column_missing_in_one_file_names_the_file_and_the_column(tmp_path: Path) -> None:
    """A column option naming no column of a file: a usage error (exit 2), as in xent
    batch (docs/errors.md); tests/test_compare_reading.py has the other column options."""
    a = write_ids(tmp_path / "a.csv", ["x1,1,0,0", "x2,0,1,1"])
    b = write(tmp_path / "b.csv", ["1,0,0", "0,1,1"])
    check(tmp_path, [str(a), str(b), "--id-column", "id"], 2, str(b), "id column", "'id'")


def test_repeated_id_names_the_first_and_the_repeat(tmp_path: Path) -> None:
    a = write_ids(tmp_path / "a.csv", ["x1,1,0,0", "x2,0,1,1", "x3,2,0,0"])
    b = write_ids(tmp_path / "b.csv", ["x3,1,0,0", "x2,0,1,1", "x5,0,0,1", "x2,2,0,1"])
    check(tmp_path, [str(a), str(b), "--id-column", "id"], 1, f"{b}:5", "'x2'", f"first at {b}:3")


def test_id_in_one_file_only_is_an_error_or_with_skip_unpaired(tmp_path: Path) -> None:
    a = write_ids(tmp_path / "a.csv", ["x1,1,0,0", "x2,0,1,1", "x3,2,0,0"])
    b = write_ids(tmp_path / "b.csv", ["x3,1,0,0", "x9,0,1,1", "x1,2,0,0"])
    check(tmp_path, [str(a), str(b), "--id-column", "id"], 1, f"{a}:3", "'x2'", f"not in {b}")
    check(tmp_path, [str(b), str(a), "--id-column", "id"], 1, f"{b}:3", "'x9'", f"not in {a}")
    got = compare(str(a), str(b), "--id-column", "id", "--on-error", "skip")
    assert got["rows"] == 2
    assert got["difference"]["rows_unpaired"] == 2
    # the pairs are x1 and x3: B - A from their row losses (PyTorch)
    la = row_losses(np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([0, 0]))
    lb = row_losses(np.array([[2.0, 0.0], [1.0, 0.0]]), np.array([0, 0]))
    assert math.isclose(got["difference"]["loss"], float((lb - la).mean()), rel_tol=1e-12)


def test_id_column_with_skip_pairs_the_rows_around_a_bad_cell(tmp_path: Path) -> None:
    a = write_ids(tmp_path / "a.csv", ["x1,1,0,0", "x2,0,y,1", "x3,2,0,0", "x4,0,1,1"])
    b = write_ids(tmp_path / "b.csv", ["x4,0,3,1", "x3,1,0,0", "x2,0,1,1", "x1,2,0,0"])
    got = compare(str(a), str(b), "--id-column", "id", "--on-error", "skip")
    assert got["rows"] == 3
    assert got["difference"]["rows_unpaired"] == 1  # x2's partner in B
    la = row_losses(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]), np.array([0, 0, 1]))
    lb = row_losses(np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]]), np.array([0, 0, 1]))
    assert math.isclose(got["difference"]["loss"], float((lb - la).mean()), rel_tol=1e-12)


def test_labels_must_agree_per_id(tmp_path: Path) -> None:
    a = write_ids(tmp_path / "a.csv", ["x1,1,0,0", "x2,0,1,1", "x3,2,0,0"])
    b = write_ids(tmp_path / "b.csv", ["x3,1,0,1", "x2,0,1,1", "x1,2,0,0"])
    check(tmp_path, [str(a), str(b), "--id-column", "id"], 1, f"{a}:4", f"{b}:2", "0 vs 1")


def test_id_column_refuses_files_past_the_stated_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xentcli.batch import idjoin

    monkeypatch.setattr(idjoin, "MAX_ROWS", 2)
    a = write_ids(tmp_path / "a.csv", ["x1,1,0,0", "x2,0,1,1", "x3,2,0,0"])
    check(tmp_path, [str(a), str(a), "--id-column", "id"], 1, str(a), "3 rows", "at most 2")


def test_id_column_refuses_numpy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.zeros((3, 2)))
    np.save(tmp_path / "y.npy", np.zeros(3, dtype=np.int64))
    args = [str(tmp_path / "s.npy"), str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy")]
    check(tmp_path, [*args, "--id-column", "id"], 2, None, "--id-column reads CSV", "not npy")


def test_id_column_joins_json_lines_with_npz(two_models, tmp_path: Path) -> None:
    """The oracle: the CSV files compared by position. A is JSON Lines (integer ids, a
    blank line), B an .npz, shuffled, whose id array holds the same ids as text."""
    a, b, logits_a, logits_b, labels = two_models
    n = len(labels)
    perm = np.random.default_rng(8).permutation(n)
    lines = [
        json.dumps({"id": i * 3, "logits": row.tolist(), "label": int(t)})
        for i, (row, t) in enumerate(zip(logits_a, labels, strict=True))
    ]
    lines.insert(4, "")
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    ids = np.array([str(i * 3) for i in perm])
    np.savez(tmp_path / "b.npz", logits=logits_b[perm], labels=labels[perm], id=ids)
    by_position = compare(str(a), str(b))
    joined = compare(str(tmp_path / "a.jsonl"), str(tmp_path / "b.npz"), "--id-column", "id")
    assert joined["rows"] == n
    for key in ("loss", "loss_ci", "accuracy", "accuracy_ci"):
        assert joined["difference"][key] == by_position["difference"][key], key
    assert joined["mcnemar"] == by_position["mcnemar"]
    assert joined["per_class"] == by_position["per_class"]
    # the worst row is named at its line of the JSON Lines file (the blank line counts)
    row = int(by_position["regressions"][0]["a"].rsplit(":", 1)[1]) - 2
    line = row + 1 + (row >= 4)
    assert joined["regressions"][0]["a"] == f"{tmp_path / 'a.jsonl'}:{line}"


def test_id_column_errors_of_json_lines_and_npz(tmp_path: Path) -> None:
    rows = [{"id": f"x{i}", "logits": [0.5 * i, 0.0], "label": i % 2} for i in range(4)]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    (tmp_path / "a.jsonl").write_text(text)
    del rows[2]["id"]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a, b = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
    check(tmp_path, [a, b, "--id-column", "id"], 1, f"{b}:3", "no id (field 'id')")
    scores = np.zeros((4, 2))
    np.savez(tmp_path / "no_ids.npz", logits=scores, labels=np.arange(4) % 2)
    no_ids = str(tmp_path / "no_ids.npz")
    check(tmp_path, [a, no_ids, "--id-column", "id"], 1, no_ids, "no array named 'id'")
    np.savez(tmp_path / "flat.npz", logits=scores, labels=np.arange(4) % 2, id=np.zeros((4, 2)))
    flat = str(tmp_path / "flat.npz")
    check(tmp_path, [a, flat, "--id-column", "id"], 1, flat, "needs a 1-D array")


# ------------------------------------------------------------- --bootstrap (paired)
def test_paired_bootstrap_replicates_are_the_weighted_differences(two_models) -> None:
    """Each replicate's B - A is the weighted mean difference computed here (PyTorch's row
    losses, numpy's weighted accuracy and Brier) with the pair's Poisson weights: the
    same weight for a row on both sides, keyed by the pair's number alone."""
    from xentcli.batch.compare import PAIR_SOURCE
    from xentcli.batch.metrics._bootstrap import poisson_weights

    a, b, logits_a, logits_b, labels = two_models
    got = compare(str(a), str(b), "--bootstrap", "40", "--seed", "5", "--ci", "0.9")
    boot = got["difference"]["bootstrap"]
    assert (boot["replicates"], boot["seed"], boot["level"]) == (40, 5, 0.9)
    assert boot["keyed_by"] == "position"
    n = len(labels)
    w = poisson_weights(5, PAIR_SOURCE, np.arange(1, n + 1), 40)
    d = row_losses(logits_b, labels) - row_losses(logits_a, labels)
    q_a = scipy_special.softmax(logits_a, axis=1)
    q_b = scipy_special.softmax(logits_b, axis=1)
    onehot = np.eye(10)[labels]
    right = (logits_b.argmax(1) == labels).astype(float) - (logits_a.argmax(1) == labels)
    brier = ((q_b - onehot) ** 2).sum(1) - ((q_a - onehot) ** 2).sum(1)
    for name, per_row in (("loss", d), ("accuracy", right), ("brier", brier)):
        replicates = (w * per_row[:, None]).sum(0) / w.sum(0)
        expected = percentiles.interval(replicates, 0.9)
        np.testing.assert_allclose(boot[name], expected, rtol=1e-9, atol=1e-12, err_msg=name)
    # each side's replicates: that side's weighted mean loss
    for side, logits in (("a", logits_a), ("b", logits_b)):
        loss = row_losses(logits, labels)
        expected = percentiles.interval((w * loss[:, None]).sum(0) / w.sum(0), 0.9)
        np.testing.assert_allclose(boot[side]["loss"], expected, rtol=1e-9)
    assert got["difference"]["loss_ci"] != boot["loss"]  # the normal interval is kept


def compare_chunked(a: Path, b: Path, rows_a: int, rows_b: int, **options: object) -> dict:
    """``compare_files`` with chunks of *rows_a* rows in A and *rows_b* in B (the pairs are
    then cut to fit: the results prepared in the readers' threads are cut with them)."""
    import dataclasses

    import xentcli.batch.reader as reader
    from xentcli.batch.accumulator import BatchOptions
    from xentcli.batch.compare import CompareOptions, compare_files
    from xentcli.batch.reader import ReadOptions

    opened = reader.open_table

    def sized(path: str, read_options: ReadOptions, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        rows = rows_a if path == str(a) else rows_b
        return opened(path, dataclasses.replace(read_options, chunk_rows=rows), *args, **kwargs)

    batch_options = BatchOptions(ignore_index=options.pop("ignore_index", None))  # type: ignore[arg-type]
    reader.open_table = sized
    try:
        summary = compare_files(
            str(a), str(b), ReadOptions(ignore_index=batch_options.ignore_index), batch_options,
            CompareOptions(**options),  # type: ignore[arg-type]
        )  # fmt: skip
    finally:
        reader.open_table = opened
    return summary.to_json()


@pytest.mark.parametrize("ignore_index", [None, 3])
def test_the_whole_report_is_the_same_bits_whatever_the_chunking(two_models, ignore_index) -> None:
    """Different chunk sizes on each side and in both: every figure the same bits (the
    paired bootstrap too); another seed: other bits. With an ignored class, the cut
    results skip its rows: the figures from the row losses are the same bits (Brier and
    calibration are not compared there: ``xent batch --ignore-index`` itself gives them
    within an ulp of each other under other chunkings)."""
    a, b, *_ = two_models

    def run_with(rows_a: int, rows_b: int, seed: int = 11) -> dict:
        got = compare_chunked(
            a, b, rows_a, rows_b, worst=3, bootstrap=30, seed=seed, ignore_index=ignore_index
        )
        if ignore_index is None:
            return got
        boot = got["difference"]["bootstrap"]
        return {
            "sides": [{k: got[s][k] for k in ("rows_ignored", "loss", "accuracy")} for s in "ab"],
            "difference": {k: got["difference"][k] for k in ("loss", "loss_ci", "accuracy")},
            "bootstrap": {k: boot[k] for k in ("loss", "accuracy", "top_5_accuracy")},
            **{k: got[k] for k in ("mcnemar", "per_class", "regressions", "improvements")},
        }

    reference = run_with(1 << 16, 1 << 16)
    if ignore_index is None:
        boot = reference["difference"]["bootstrap"]
    else:
        boot = reference["bootstrap"]
        assert reference["sides"][0]["rows_ignored"] > 0
    assert boot["loss"] is not None
    for rows_a, rows_b in ((7, 7), (7, 13), (100, 3)):
        assert run_with(rows_a, rows_b) == reference, (rows_a, rows_b)
    other = run_with(1 << 16, 1 << 16, seed=12)
    other_boot = other["difference"]["bootstrap"] if ignore_index is None else other["bootstrap"]
    assert other_boot["loss"] != boot["loss"]


def test_the_two_readers_share_the_parsing_threads(two_models) -> None:
    """Read side by side, each text reader takes half of one reader's parsing threads
    and block size (the memory benchmark's reason; benchmarks/RESULTS.md)."""
    from xentcli.batch import reader

    a, *_ = two_models
    with reader.open_table(str(a)) as alone:
        assert (alone.parsers, alone.block_bytes) == (reader.PARSERS, reader.BLOCK_BYTES)
    with reader.open_table(str(a), readers=2) as half:
        assert half.parsers == max(1, reader.PARSERS // 2)
        assert half.block_bytes == reader.BLOCK_BYTES // 2


def test_paired_bootstrap_intervals_cover_the_true_differences() -> None:
    """200 seeded datasets of 150 pairs with known population differences (mean loss and
    accuracy, by a 400,000-row sample of the same two models): the 90 % paired bootstrap
    intervals (100 replicates) cover them 86-94 % of the time. The two models' outputs
    are correlated, so the paired interval is far narrower than one side's: the check
    that both sides draw the same weights."""
    from xentcli.batch.compare import PAIR_SOURCE
    from xentcli.batch.metrics import BootstrapState, metric_rows, paired_difference

    def row_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:  # scipy's
        return scipy_special.logsumexp(logits, axis=1) - logits[np.arange(len(labels)), labels]

    rng = np.random.default_rng(17)
    centre = np.array([1.0, 0.0, -1.0])

    def models(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels = rng.integers(0, 3, n)
        shared = rng.normal(0, 1.0, (n, 3))
        return centre + shared, centre + shared + rng.normal(0, 0.5, (n, 3)), labels

    big_a, big_b, big_labels = models(400_000)
    truth_loss = float((row_losses(big_b, big_labels) - row_losses(big_a, big_labels)).mean())
    truth_accuracy = float(
        (big_b.argmax(1) == big_labels).mean() - (big_a.argmax(1) == big_labels).mean()
    )
    trials, n = 200, 150
    keys = np.arange(1, n + 1)
    covered = np.zeros(2)
    widths = []
    for trial in range(trials):
        a, b, labels = models(n)
        states = []
        for logits in (a, b):
            rows = metric_rows(
                logits,
                labels,
                logits.argmax(1),
                keys,
                loss=row_losses(logits, labels),
                loss_weight=np.ones(n),
            )
            state = BootstrapState(100, trial, (1,), 1)
            state.update(rows, PAIR_SOURCE)
            states.append(state)
        difference = paired_difference(states[0], states[1], 0.9).intervals
        for i, (name, truth) in enumerate((("loss", truth_loss), ("accuracy", truth_accuracy))):
            low, high = difference[name]
            covered[i] += low <= truth <= high
        side_low, side_high = states[0].summary(0.9).intervals["loss"]
        widths.append((difference["loss"][1] - difference["loss"][0]) / (side_high - side_low))
    coverage = covered / trials
    assert ((coverage >= 0.86) & (coverage <= 0.94)).all(), coverage
    assert np.median(widths) < 0.5, np.median(widths)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bootstrap", "-1"], "--bootstrap"),
        (["--bootstrap", "10001"], "--bootstrap"),
        (["--bootstrap", "x"], "--bootstrap"),
        (["--bootstrap", "10", "--seed", "-1"], "--seed"),
        (["--bootstrap", "10", "--ci", "0"], "--bootstrap needs intervals"),
    ],
)
def test_bad_bootstrap_options_are_usage_errors(two_models, args, message) -> None:
    a, b, *_ = two_models
    outcome = run(["compare", str(a), str(b), *args])
    assert outcome.code == 2, outcome.stderr
    assert message in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_paired_bootstrap_in_the_table_and_csv(two_models) -> None:
    a, b, *_ = two_models
    args = ["compare", str(a), str(b), "--bootstrap", "20", "--seed", "3"]
    table = run(args)
    assert table.code == 0, table.stderr
    assert "Paired bootstrap: 95 % intervals of B - A (20 replicates" in table.stdout
    data = compare(str(a), str(b), "--bootstrap", "20", "--seed", "3")["difference"]["bootstrap"]
    csv_out = run([*args, "--format", "csv"])
    header, *lines = csv_out.stdout.splitlines()
    assert header.endswith(",bootstrap_low,bootstrap_high")
    by_name = {line.split(",")[0]: line.split(",") for line in lines}
    for name in ("loss", "accuracy", "brier", "ece"):
        assert [float(v) for v in by_name[name][-2:]] == data[name], name
