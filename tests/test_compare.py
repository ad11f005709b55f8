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
import pytest
from hardening import assert_clean_error, leftovers, run

from xentcli.batch.compare import mcnemar_exact

sklearn = pytest.importorskip("sklearn")
torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")


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
    for side, path in (("a", a), ("b", b)):
        alone = batch(str(path))
        for key in ("rows", "loss", "loss_sum", "perplexity", "accuracy", "per_class"):
            assert got[side][key] == alone[key], (side, key)


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


@pytest.mark.parametrize(("only_a", "only_b"), [(10, 2), (3, 3), (0, 7), (600, 650), (4000, 4100)])
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
