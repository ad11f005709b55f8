"""``xent batch --exact``, ``xent merge`` and the Dask engine: every mean and sum (of all
rows, of a file, of a class) the float64 nearest the exact mean of the exact row losses,
decided in one pass when the streamed bound allows it, else by reading the rows again.

The oracle is tests/mpref.py (mpmath at 2300 bits where it matters). The crafted files
put every figure on a float64 midpoint plus an amount far below any double-double
bound: the losses are ``a + log1p(exp(-a))`` with ``a`` of 800 and 900, whose
``exp(-a)`` underflows, so the one-pass test cannot decide and the second pass must.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import mpmath as mp
import mpref
import numpy as np
import pytest
from test_cli_batch import ok, random_data, run, write_table

from xentcli.batch import exact_mean
from xentcli.batch.accumulator import BatchAccumulator, BatchOptions
from xentcli.batch.state_file import loads
from xentcli.errors import StateError

U = 2.0**-43  # the ulp of 800 and of 900


def nearest(computed: float, exact: mp.mpf) -> bool:
    """Whether *computed* is the float64 nearest *exact* (strictly nearer than both
    neighbours: the exact values here are never midpoints)."""
    with mp.workprec(mpref.WIDE):
        here = abs(mp.mpf(computed) - exact)
        return all(
            here < abs(mp.mpf(math.nextafter(computed, toward)) - exact)
            for toward in (math.inf, -math.inf)
        )


def crafted(folder: Path) -> tuple[list[str], dict[str, list[tuple[list[float], int]]]]:
    """Two files whose means and sums (per file, per class, pooled) are each a float64
    midpoint plus about exp(-800): the float nearest is the one above."""
    rows = {
        "f1.csv": [([0.0, 800.0], 0), ([0.0, 800.0 + U], 0)],  # class 0, mean 800 + U/2
        "f2.csv": [([900.0, 0.0], 1), ([900.0 + U, 0.0], 1), ([1.0, 2.0], -100)],
    }
    for name, content in rows.items():
        lines = ["a,b,label", *(f"{r[0]!r},{r[1]!r},{c}" for r, c in content)]
        (folder / name).write_text("\n".join(lines) + "\n")
    return list(rows), rows


def exact_figures(rows: dict[str, list[tuple[list[float], int]]]) -> dict[str, mp.mpf]:
    """Every figure of the crafted files from mpmath, in nats."""
    losses: dict[str, list[tuple[mp.mpf, int]]] = {
        name: [(mpref.loss(r, c), c) for r, c in content if c != -100]
        for name, content in rows.items()
    }
    everything = [x for content in losses.values() for x in content]
    with mp.workprec(mpref.WIDE):
        out = {"loss_sum": mp.fsum(x for x, _ in everything)}
        out["loss"] = out["loss_sum"] / len(everything)
        for name, content in losses.items():
            out[f"file {name}"] = mp.fsum(x for x, _ in content) / len(content)
        for c in (0, 1):
            mine = [x for x, cls in everything if cls == c]
            out[f"class {c} sum"] = mp.fsum(mine)
            out[f"class {c}"] = out[f"class {c} sum"] / len(mine)
    return out


def figures(document: dict) -> dict[str, float]:
    out = {"loss": document["loss"], "loss_sum": document["loss_sum"]}
    for f in document["files"]:
        out[f"file {Path(f['path']).name}"] = f["loss"]
    for c in document["per_class"]:
        out[f"class {c['index']}"] = c["loss"]
        out[f"class {c['index']} sum"] = c["loss_sum"]
    return out


def test_figures_on_a_rounding_boundary_are_decided_by_a_second_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    names, rows = crafted(tmp_path)
    exact = exact_figures(rows)
    args = ["batch", *names, "--ignore-index", "-100", "--format", "json"]
    before = exact_mean.SECOND_PASSES[0]
    got = ok([*args, "--exact"])
    assert exact_mean.SECOND_PASSES[0] == before + 1
    assert "read again" in got.stderr
    document = json.loads(got.stdout)
    assert document["loss"] == 850 + 2 * U / 2
    assert document["loss_sum"] == 3400 + 2 * U * 2
    for name, value in figures(document).items():
        assert nearest(value, exact[name]), name
    # The default path rounds the sum of the rounded losses: each figure is a tie there
    # and goes to even, the float below (so these files do test the second pass).
    default = figures(json.loads(ok(args).stdout))
    assert all(not nearest(default[name], exact[name]) for name in exact)
    # The same bits whatever the chunking, in bits too (each figure / ln 2, rounded once).
    assert ok([*args, "--exact", "--chunk-rows", "1"]).stdout == got.stdout
    bits = figures(json.loads(ok([*args, "--exact", "--base", "2"]).stdout))
    for name, value in bits.items():
        assert nearest(value, mpref.in_base(exact[name], "2")), name
    # A file of the sums: --reduction sum reports the sums, also decided.
    summed = json.loads(ok([*args, "--exact", "--reduction", "sum"]).stdout)
    assert nearest(summed["loss"], exact["loss_sum"])


def test_standard_input_cannot_be_read_twice(tmp_path: Path) -> None:
    names, _ = crafted(tmp_path)
    text = (tmp_path / names[0]).read_bytes()
    got = run(["batch", "-", "--exact"], input=text)
    assert got.code == 1
    assert got.stderr.count("\n") == 1
    assert "standard input cannot be read again" in got.stderr
    # Off the boundary, standard input is read once as always.
    assert run(["batch", "-", "--exact"], input=b"a,b,label\n0,1.5,0\n").code == 0


@pytest.mark.parametrize("chunk", ["1", "7", "65536"])
def test_random_rows_one_pass_same_bits_every_chunking(tmp_path: Path, chunk: str) -> None:
    logits, labels = random_data(n=60, k=5, seed=3)
    labels[[4, 9]] = -100
    write_table(tmp_path / "r.csv", logits, labels)
    args = ["batch", str(tmp_path / "r.csv"), "--exact", "--ignore-index", "-100"]
    args += ["--weights", "1,3,0.7,2,1.1", "--format", "json", "--chunk-rows", chunk]
    before = exact_mean.SECOND_PASSES[0]
    document = json.loads(ok(args).stdout)
    assert exact_mean.SECOND_PASSES[0] == before  # ordinary data: one pass
    keep = [i for i in range(60) if labels[i] != -100]
    weights = [1, 3, 0.7, 2, 1.1]
    exact = mpref.mean([list(logits[i]) for i in keep], [int(labels[i]) for i in keep],
                       weights=weights)  # fmt: skip
    assert nearest(document["loss"], exact)
    for c in range(5):
        mine = [i for i in keep if labels[i] == c]
        class_mean = mpref.mean([list(logits[i]) for i in mine], [c] * len(mine), weights=weights)
        assert nearest(document["per_class"][c]["loss"], class_mean)


# ------------------------------------------------------------------------- merging
def states(tmp_path: Path, exact: tuple[bool, bool]) -> list[str]:
    names, _ = crafted(tmp_path)
    out = []
    for name, flag in zip(names, exact, strict=True):
        path = str(tmp_path / f"{name}.state")
        extra = ["--exact"] if flag else []
        ok(["batch", str(tmp_path / name), "--ignore-index", "-100", "--save-state", path, *extra])
        out.append(path)
    return out


def test_merge_refuses_exact_and_default_states(tmp_path: Path) -> None:
    a, b = states(tmp_path, (True, False))
    for first, second in ((a, b), (b, a)):
        got = run(["merge", first, second])
        assert got.code == 1
        assert got.stderr.count("\n") == 1
        assert first in got.stderr
        assert second in got.stderr
        assert "--exact" in got.stderr


def test_merge_of_exact_states(tmp_path: Path) -> None:
    logits, labels = random_data(n=30, k=3, seed=8)
    write_table(tmp_path / "x.csv", logits[:12], labels[:12])
    write_table(tmp_path / "y.csv", logits[12:], labels[12:])
    paths = [str(tmp_path / n) for n in ("x.csv", "y.csv")]
    saved = []
    for path in paths:
        ok(["batch", path, "--exact", "--save-state", path + ".state"])
        saved.append(path + ".state")
    state = json.loads(Path(saved[0]).read_text())
    assert state["options"]["exact"] is True
    assert "class_errors" in state["exact"]
    merged = ok(["merge", *saved, "--format", "json"]).stdout
    assert merged == ok(["batch", *paths, "--exact", "--format", "json"]).stdout
    exact = mpref.mean([list(r) for r in logits], [int(c) for c in labels])
    assert nearest(json.loads(merged)["loss"], exact)
    # On a boundary the states cannot decide: refused, never a doubtful figure.
    got = run(["merge", *states(tmp_path, (True, True))])
    assert got.code == 1
    assert got.stderr.count("\n") == 1
    assert "one run" in got.stderr


def test_state_of_exact_is_checked() -> None:
    acc = BatchAccumulator(3, BatchOptions(exact=True))
    acc.update(np.array([[1.2, 2.3, 0.8], [0.1, 0.2, 0.3]]), np.array([1, 2]))
    state = acc.to_state()
    assert loads(json.dumps(state)).summary().loss == acc.summary().loss
    missing = {k: v for k, v in state.items() if k != "exact"}
    with pytest.raises(StateError, match="exact"):
        loads(json.dumps(missing))
    state["files"][0]["loss_error"]["sum"] = "-0x1"
    with pytest.raises(StateError, match="negative"):
        loads(json.dumps(state))


def test_exact_takes_two_columns_of_probabilities_not_one() -> None:
    acc = BatchAccumulator(2, BatchOptions(exact=True, scores="probs"))
    acc.update(np.array([[0.1, 0.9], [0.5, 0.5]]), np.array([1, 0]))
    with mp.workprec(mpref.WIDE):
        exact = (-mp.log(mp.mpf(0.9)) - mp.log(mp.mpf(0.5))) / 2
    assert nearest(acc.summary().loss, exact)
    with pytest.raises(ValueError, match="one column of probabilities"):
        BatchAccumulator(2, BatchOptions(exact=True, scores="probs", binary=True))


# ------------------------------------------------------------------------- Dask
def test_dask_engine_gives_one_process_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    names, _ = crafted(tmp_path)
    args = ["batch", *names, "--ignore-index", "-100", "--exact", "--format", "json"]
    local = ok(args).stdout
    dask = ["--engine", "dask", "--scheduler", "synchronous", "--part-bytes", "20"]
    assert ok([*args, *dask]).stdout == local


def test_dask_dataframe_second_pass() -> None:
    import dask.dataframe as dd
    import pandas as pd

    from xentcli.batch import engine

    frame = pd.DataFrame({"a": [0.0, 0.0, 1.0], "b": [800.0, 800.0 + U, 0.0], "label": [0, 0, 1]})
    rows = [([0.0, 800.0], 0), ([0.0, 800.0 + U], 0), ([1.0, 0.0], 1)]
    exact = mpref.mean([r for r, _ in rows], [c for _, c in rows])
    got = engine.score(dd.from_pandas(frame, npartitions=2), exact=True, scheduler="synchronous")
    assert nearest(got.loss, exact)


def test_exact_takes_probabilities_naming_what_it_refuses(tmp_path: Path) -> None:
    """(tests/test_exact_given.py checks --exact on probabilities against mpmath.)"""
    path = tmp_path / "p.csv"
    path.write_text("a,b,label\n0.2,0.8,1\n0.5,0.5,0\n")
    got = ok(["batch", str(path), "--exact", "--format", "json"])
    with mp.workprec(mpref.WIDE):
        assert nearest(json.loads(got.stdout)["loss"], -(mp.log(0.8) + mp.log(0.5)) / 2)
    got = run(["batch", str(path), "--exact", "--temperature", "2"])
    assert got.code == 2
    assert "--exact: probabilities with --temperature" in got.stderr
    assert "p.csv holds probabilities (detected" in got.stderr


@pytest.mark.parametrize("option", ["--weight-column", "--group-by"])
def test_exact_refuses_sample_weights_and_groups(tmp_path: Path, option: str) -> None:
    path = tmp_path / "g.csv"
    path.write_text("a,b,w,label\n0,1.5,2,0\n1,0,1,1\n")
    got = run(["batch", str(path), "--exact", option, "w", "--logit-columns", "a,b"])
    assert got.code == 2
    assert f"--exact is not available with {option}" in got.stderr


def test_compare_refuses_exact_rather_than_ignore_it(tmp_path: Path) -> None:
    logits, labels = random_data(n=10, k=3, seed=2)
    a = write_table(tmp_path / "a.csv", logits, labels)
    got = run(["compare", str(a), str(a), "--exact"])
    assert got.code == 2
    assert "--exact is not available in xent compare" in got.stderr


def test_integer_decision_agrees_with_the_rational_one() -> None:
    """certain_quotient's integer test (nats) gives certain_ratio's answer: random sums,
    bounds and denominators, and sums put on a half-way point on purpose."""
    from fractions import Fraction

    from xentcli.core import ExactSum, certain_quotient, certain_ratio, row_floor

    rng = np.random.default_rng(4)
    decided = 0
    for trial in range(400):
        total, error, weight = ExactSum(), ExactSum(), ExactSum()
        total.add(rng.normal(size=5) * 10.0 ** rng.integers(-3, 4))
        if trial % 4 == 0:  # a half-way point of the quotient, plus a tiny amount
            value = float(total.exact())
            half = (Fraction(value) + Fraction(math.nextafter(value, math.inf))) / 2
            total = ExactSum()
            total.add([float(half), float(half - Fraction(float(half)))])
        error.add(np.abs(rng.normal(size=5)) * 2.0 ** -int(rng.integers(50, 80)))
        rows = int(rng.integers(0, 100))
        weight.add_ones(int(rng.integers(1, 9)))
        for denominator in (None, weight):
            expected = certain_ratio(
                total.exact(),
                error.exact() + row_floor(rows),
                None if denominator is None else denominator.exact(),
            )
            assert certain_quotient(total, error, rows, denominator) == expected
            decided += expected is not None
    assert 100 < decided < 800  # both outcomes were exercised


def test_mean_at_the_top_of_the_float_range() -> None:
    """A mean just above the largest float (found by the class-order property): decided
    against the overflow threshold, not a crash."""
    from xentcli import cross_entropy

    row = [-1.7976931348623157e308, 0.0]
    assert nearest(cross_entropy([row], [0], exact=True), mpref.mean([row], [0]))
