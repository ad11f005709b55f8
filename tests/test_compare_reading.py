"""``xent compare``: how the two files are read (issue 14: each side is ``xent batch`` on
that file alone).

Oracles: ``xent batch`` on each file alone (a separate run, with the same small blocks),
and a direct numpy computation from the values as written in the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hardening import assert_clean_error, leftovers, run

K = 4
N = 300
TOLERANCE = "1e-6"


def write_probs(
    path: Path, probs: np.ndarray, labels: np.ndarray, digits: int, targets: np.ndarray | None
) -> np.ndarray:
    """Write *probs* with *digits* decimals (and the labels, or the soft targets with 3);
    return the probabilities as written (the oracle reads what the tool reads)."""
    header = [f"p{k}" for k in range(K)]
    header += [f"t{k}" for k in range(K)] if targets is not None else ["label"]
    lines = [",".join(header)]
    for i, row in enumerate(probs):
        cells = [f"{x:.{digits}f}" for x in row]
        cells += [f"{x:.3f}" for x in targets[i]] if targets is not None else [str(labels[i])]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return np.array([[float(f"{x:.{digits}f}") for x in row] for row in probs])


def sides(tmp_path: Path, soft: bool) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """A and B: rows of probabilities, some not summing to 1 (a third of A's rows scaled by
    1.3, half of B's by 0.7); A written with 17 decimals, B with 3, so that the two files'
    lines differ in length and their blocks end at different rows: the pairing cuts the
    chunks into pieces."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, K, N)
    targets = None
    if soft:
        raw = rng.integers(1, 9, (N, K)).astype(float)
        targets = raw / raw.sum(axis=1, keepdims=True)
        targets[::4] *= 0.9  # these rows of targets do not sum to 1 either
    pa = rng.uniform(0.05, 1, (N, K))
    pa /= pa.sum(axis=1, keepdims=True)
    pa[::3] *= 1.3
    pb = rng.uniform(0.05, 1, (N, K))
    pb /= pb.sum(axis=1, keepdims=True)
    pb[::2] *= 0.7
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    written = {
        "a": write_probs(a, pa, labels, 17, targets),
        "b": write_probs(b, pb, labels, 3, targets),
        "labels": labels,
    }
    if targets is not None:
        written["targets"] = np.array([[float(f"{x:.3f}") for x in row] for row in targets])
    return a, b, written


def as_json(*args: str) -> dict:
    outcome = run([*args, "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft-targets"])
@pytest.mark.parametrize("block_bytes", [None, 700], ids=["one-block", "blocks-of-700-bytes"])
def test_renormalize_counts_each_row_once_whatever_the_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, soft: bool, block_bytes: int | None
) -> None:
    """The defect: with blocks that end at different rows in A and B, each piece of a cut
    chunk carried the whole chunk's count of renormalized rows (788 rows of B's 300
    counted). Each side must be xent batch on that file alone, and the counts those of
    the rows as written."""
    from xentcli.batch import reader

    if block_bytes is not None:
        monkeypatch.setattr(reader, "BLOCK_BYTES", block_bytes)
    a, b, written = sides(tmp_path, soft)
    if block_bytes is not None:
        # the premise: read side by side, A's and B's chunks end at different rows
        columns = {"logit_columns": ["p*"], "target_columns": ["t*"]} if soft else {}
        read = reader.ReadOptions(scores="probs", renormalize=True, **columns)  # type: ignore[arg-type]
        ends = []
        for path in (a, b):
            with reader.open_table(str(path), read, readers=2) as table:
                ends.append(np.cumsum([len(c.lines) for c in table.chunks()]))
        assert len(ends[0]) > 3
        assert not np.array_equal(ends[0], ends[1])
    options = ["--scores", "probs", "--renormalize", "--sum-tolerance", TOLERANCE]
    if soft:
        options += ["--logit-columns", "p*", "--target-columns", "t*"]
    got = as_json("compare", str(a), str(b), *options)
    for side, path in (("a", a), ("b", b)):
        alone = as_json("batch", str(path), *options)
        for key in (
            "rows",
            "rows_renormalized",
            "targets_renormalized",
            "loss",
            "loss_sum",
            "perplexity",
            "accuracy",
            "per_class",
            "brier",
        ):
            assert got[side][key] == alone[key], (side, key)
        # numpy, from the values as written
        probs = written[side]
        totals = probs.sum(axis=1)
        assert got[side]["rows_renormalized"] == int((np.abs(totals - 1) > 1e-6).sum())
        q = probs / totals[:, None]
        if soft:
            t = written["targets"]
            t_totals = t.sum(axis=1)
            off = int((np.abs(t_totals - 1) > 1e-6).sum())
            assert got[side]["targets_renormalized"] == off > 0
            loss = -((t / t_totals[:, None]) * np.log(q)).sum(axis=1)
        else:
            assert got[side]["targets_renormalized"] == 0
            loss = -np.log(q[np.arange(N), written["labels"]])
        np.testing.assert_allclose(got[side]["loss"], loss.mean(), rtol=1e-12)
    assert got["a"]["rows_renormalized"] == N // 3
    assert got["b"]["rows_renormalized"] > N // 2  # B's three decimals put more rows off


OPTIONS = [
    ("--label-column", "nosuch"),
    ("--label-column", "9"),
    ("--logit-columns", "a,zz"),
    ("--logit-columns", "x*"),
    ("--target-columns", "t0,t1"),
]


@pytest.mark.parametrize("option", OPTIONS, ids=[" ".join(o) for o in OPTIONS])
def test_a_column_option_naming_no_column_is_a_usage_error_as_in_batch(
    tmp_path: Path, option: tuple[str, str]
) -> None:
    """docs/errors.md: a column option naming no column of the file exits 2 (it exited 1
    in xent compare); the same line as xent batch on that file."""
    a = tmp_path / "a.csv"
    a.write_text("a,b,label\n1,0,0\n0,1,1\n")
    b = tmp_path / "b.csv"
    b.write_text("a,b,label\n2,0,0\n0,2,1\n")
    before = {p.name for p in tmp_path.iterdir()}
    alone = run(["batch", str(a), *option])
    line = assert_clean_error(alone, 2, where=str(a))
    got = run(["compare", str(a), str(b), *option])
    assert assert_clean_error(got, 2, where=str(a)) == line
    assert leftovers(tmp_path, before) == set()


def test_a_column_missing_in_b_only_names_b(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("a,b,y\n1,0,0\n0,1,1\n")
    b = tmp_path / "b.csv"
    b.write_text("a,b,label\n2,0,0\n0,2,1\n")
    got = run(["compare", str(a), str(b), "--label-column", "y"])
    assert_clean_error(got, 2, where=str(b), contains=("label column", "no column 'y'"))


@pytest.mark.parametrize("block_bytes", [None, 300], ids=["one-block", "blocks-of-300-bytes"])
def test_changed_rows_are_the_largest_changes_and_of_equal_ones_the_earliest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None
) -> None:
    """Rows repeating five patterns: the changes take five values, each many times. The
    rows listed are the largest rises (falls), and of equal changes the earliest rows,
    whatever the blocks (oracle: numpy's log-sum-exp and a sort by change, then line)."""
    from scipy.special import logsumexp

    from xentcli.batch import reader

    if block_bytes is not None:
        monkeypatch.setattr(reader, "BLOCK_BYTES", block_bytes)
    patterns_a = np.array(
        [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 3.0], [1, 2, 3]]
    )
    patterns_b = np.array(
        [[0.0, 0.0, 2.0], [0.0, 3.0, 0.0], [0.5, 0.5, 0.5], [0.0, 2.0, 1.0], [3, 2, 1]]
    )
    labels_of = np.array([0, 1, 2, 2, 0])
    rng = np.random.default_rng(3)
    which = rng.integers(0, 5, 120)
    logits_a, logits_b, labels = patterns_a[which], patterns_b[which], labels_of[which]
    for path, logits in ((tmp_path / "a.csv", logits_a), (tmp_path / "b.csv", logits_b)):
        lines = ["x,y,z,label"]
        lines += [",".join([*map(str, row), str(t)]) for row, t in zip(logits, labels, strict=True)]
        path.write_text("\n".join(lines) + "\n")
    worst = 7
    got = as_json(
        "compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--worst", str(worst)
    )
    rows = np.arange(len(labels))

    def loss(logits: np.ndarray) -> np.ndarray:
        return logsumexp(logits, axis=1) - logits[rows, labels]

    change = loss(logits_b) - loss(logits_a)
    for key, sign in (("regressions", 1.0), ("improvements", -1.0)):
        order = np.lexsort((rows, -sign * change))  # largest first, then the earliest row
        expected = [int(i) for i in order if sign * change[i] > 1e-12][:worst]
        assert [r["a"] for r in got[key]] == [f"{tmp_path / 'a.csv'}:{i + 2}" for i in expected]
        assert [r["b"] for r in got[key]] == [f"{tmp_path / 'b.csv'}:{i + 2}" for i in expected]
        np.testing.assert_allclose([r["change"] for r in got[key]], change[expected], rtol=1e-12)
