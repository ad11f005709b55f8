"""``xent batch`` output held to independent oracles: mpmath and PyTorch, never the kernel.

The other batch tests compare the command with ``xentcli.core.cross_entropy`` (the
reader's job is to hand the kernel the right rows); here every number the user reads is
compared with tests/mpref.py (exact) and with ``torch.nn.functional.cross_entropy``: the
JSON mean, the per-class means, the worst rows, and the ``--per-row`` file's loss and
probability columns, for class weights, ``--ignore-index``, label smoothing, temperature
and soft targets. Small temperatures get a tight bound on each row loss (see
:func:`row_loss_bound`), where the kernel's exact shift is what keeps the error at half
an ulp.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import mpfields
import mpmath as mp
import mpref
import numpy as np
import pytest
from hardening import run

torch = pytest.importorskip("torch", reason="torch is in the test extra (the PyTorch oracle)")
F = torch.nn.functional

ISSUE = [0.1234567890123, -700.123456789, -3.3, -650.1]
LOSS_ULP = 2.0  # a row loss with a label (docs/accuracy.md)
SOFT_ULP = 4.0  # with smoothing or soft targets
PROB_ULP = 3.0
MEAN_ULP = 2.0  # the mean of row losses within 2 ulp each, rounded once


def rows_of(
    seed: int, n: int = 30, k: int = 4, *, masked: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Hard rows: wide inexact spreads, the issue's logits, a masked class (if *masked*)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(-700, 0.7, size=(n, k))
    y[:, 0] = rng.uniform(0.1, 0.9, size=n) * np.pi
    y[: n // 3] = rng.normal(size=(n // 3, k)) * 3  # ordinary logits
    y[n // 3] = ISSUE[:k]
    if masked:  # (with smoothing, a masked class makes the loss +inf: tested elsewhere)
        y[n // 3 + 1, 2] = -np.inf
    labels = rng.integers(0, k, size=n)
    labels[n // 3 + 1] = 0  # its true class is not the masked one
    return y, labels


def write_csv(path: Path, y: np.ndarray, labels: np.ndarray | None, targets: Any = None) -> None:
    k = y.shape[1]
    header = [f"l{j}" for j in range(k)]
    header += [f"t{j}" for j in range(k)] if targets is not None else ["label"]
    lines = [",".join(header)]
    for i in range(y.shape[0]):
        cells = [repr(float(v)) for v in y[i]]
        if targets is not None:
            cells += [repr(float(v)) for v in targets[i]]
        else:
            assert labels is not None
            cells.append(str(int(labels[i])))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def batch(path: Path, *options: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The JSON summary and the ``--per-row`` rows of ``xent batch PATH OPTIONS``."""
    per_row = path.with_suffix(".rows.csv")
    outcome = run(["batch", str(path), "--format", "json", "--per-row", str(per_row), *options])
    assert outcome.code == 0, outcome.stderr
    rows = list(csv.DictReader(io.StringIO(per_row.read_text(encoding="utf-8"))))
    return json.loads(outcome.stdout), rows


def number(value: Any) -> float:
    return float(value)  # a JSON number, or "inf" written as a string


def row_loss_bound(exact: mp.mpf, logits: list[float], temperature: float, weight: float) -> float:
    """The bound of a plain (label, no smoothing) row loss: see mpfields.plain_loss_bound.

    About half an ulp at a small temperature, where the exact shift of the label's logit
    dominates the loss; never more than :data:`LOSS_ULP`.
    """
    d, _ = mpref.shifts(logits, temperature)
    return mpfields.plain_loss_bound(exact, mpref.log_s(d), weight)


def torch_mean(
    y: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    targets: np.ndarray | None = None,
    weights: list[float] | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
) -> float:
    # A masked class (-inf) with target 0: PyTorch's 0 * -inf is NaN where xent (and the
    # definition) take 0 log 0 = 0; a very negative finite logit has the same softmax.
    logits = torch.tensor(np.where(y == -np.inf, -1e4, y), dtype=torch.float64) / temperature
    target = (
        torch.tensor(targets, dtype=torch.float64)
        if targets is not None
        else torch.tensor(labels, dtype=torch.int64)
    )
    kwargs: dict[str, Any] = {"label_smoothing": label_smoothing}
    if weights is not None:
        kwargs["weight"] = torch.tensor(weights, dtype=torch.float64)
    if ignore_index is not None:
        kwargs["ignore_index"] = ignore_index
    return float(F.cross_entropy(logits, target, **kwargs))


# ------------------------------------------------------------------ labels and options
CASES = [
    pytest.param({}, id="plain"),
    pytest.param({"temperature": 1e-3}, id="T=1e-3"),
    pytest.param({"temperature": 3.0}, id="T=3"),
    pytest.param({"temperature": 1e-6}, id="T=1e-6"),
    pytest.param({"weights": [1.0, 2.5, 0.5, 0.0]}, id="weights"),
    pytest.param({"weights": [1.0, 2.5, 0.5, 3.0], "temperature": 1e-3}, id="weights-T=1e-3"),
    pytest.param({"ignore_index": 1}, id="ignore-index"),
    pytest.param({"ignore_index": 2, "weights": [1.0, 2.5, 0.5, 3.0]}, id="ignore-weights"),
    pytest.param({"label_smoothing": 0.1}, id="smoothing"),
    pytest.param(
        {"label_smoothing": 0.2, "weights": [1.0, 2.5, 0.5, 3.0], "temperature": 0.7},
        id="smoothing-weights-T",
    ),
]


def cli_options(options: dict[str, Any]) -> list[str]:
    out = []
    if "weights" in options:
        out += ["--weights", ",".join(repr(w) for w in options["weights"])]
    if "ignore_index" in options:
        out += ["--ignore-index", str(options["ignore_index"])]
    if "label_smoothing" in options:
        out += ["--label-smoothing", repr(options["label_smoothing"])]
    if "temperature" in options:
        out += ["--temperature", repr(options["temperature"])]
    return out


@pytest.mark.parametrize("options", CASES)
def test_labels_against_mpmath_and_torch(tmp_path: Path, options: dict[str, Any]) -> None:
    y, labels = rows_of(3, masked="label_smoothing" not in options)
    path = tmp_path / "p.csv"
    write_csv(path, y, labels)
    data, per_row = batch(path, *cli_options(options), "--worst", "5")
    weights = options.get("weights")
    ignore = options.get("ignore_index")
    eps = options.get("label_smoothing", 0.0)
    temperature = options.get("temperature", 1.0)
    logits = [[float(v) for v in row] for row in y]
    counted = [ignore is None or int(c) != ignore for c in labels]

    exact_rows = [
        mpref.row_loss(
            logits[i],
            int(labels[i]),
            weights=weights,
            label_smoothing=eps,
            temperature=temperature,
        )
        for i in range(len(logits))
    ]

    # --per-row: every row's loss and the probability of its label, in input order.
    assert [int(r["line"]) for r in per_row] == list(range(2, len(logits) + 2))
    for i, r in enumerate(per_row):
        if not counted[i]:
            assert r["loss"] == "" or math.isnan(float(r["loss"])), r
            continue
        bound = (
            SOFT_ULP
            if eps
            else row_loss_bound(
                exact_rows[i],
                logits[i],
                temperature,
                1.0 if weights is None else weights[int(labels[i])],
            )
        )
        err = mpref.ulps(float(r["loss"]), exact_rows[i])
        assert err <= bound, (
            f"line {r['line']}: {r['loss']} is {err:.3f} ulp off (bound {bound:.3f})"
        )
        q = mpref.probabilities(logits[i], temperature)[int(labels[i])]
        assert mpref.ulps(float(r["probability"]), q) <= PROB_ULP, r

    # The JSON mean, exact...
    exact_mean = mpref.mean(
        logits,
        [int(c) for c in labels],
        weights=weights,
        ignore_index=ignore,
        label_smoothing=eps,
        temperature=temperature,
    )
    assert mpref.ulps(number(data["loss"]), exact_mean) <= MEAN_ULP
    # ... and PyTorch's (float64; its own rounding is a few ulp).
    want = torch_mean(
        y,
        labels,
        weights=weights,
        ignore_index=ignore,
        label_smoothing=eps,
        temperature=temperature,
    )
    assert number(data["loss"]) == pytest.approx(want, rel=1e-12)
    assert data["rows_counted"] == sum(counted)

    # Per class: the mean over the class's counted rows, divided by their weights.
    for entry in data["per_class"]:
        c = int(entry["class"])
        members = [i for i in range(len(logits)) if counted[i] and int(labels[i]) == c]
        assert entry["rows"] == len(members)
        if not members:
            assert entry["loss"] is None
            continue
        w = 1.0 if weights is None else weights[c]
        if w == 0:
            continue  # 0 / 0: undefined, whatever the class holds
        with mp.workprec(mpref.WIDE):
            class_mean = mp.fsum(exact_rows[i] for i in members) / (mp.mpf(w) * len(members))
        assert mpref.ulps(number(entry["loss"]), class_mean) <= MEAN_ULP, entry

    # The worst rows: the highest exact losses, each with its loss and probability.
    order = sorted((i for i in range(len(logits)) if counted[i]), key=lambda i: (-exact_rows[i], i))
    assert [w["line"] for w in data["worst"]] == [i + 2 for i in order[:5]]
    for w in data["worst"]:
        i = w["line"] - 2
        assert w["label"] == int(labels[i])
        assert mpref.ulps(number(w["loss"]), exact_rows[i]) <= (SOFT_ULP if eps else LOSS_ULP)
        q = mpref.probabilities(logits[i], temperature)[int(labels[i])]
        assert mpref.ulps(number(w["probability"]), q) <= PROB_ULP


@pytest.mark.parametrize("k", [2, 5])  # K = 2 has its own fast path in the kernel
@pytest.mark.parametrize("temperature", [1e-3, 2.0**-20])
def test_small_temperature_row_losses_are_within_half_an_ulp(
    tmp_path: Path, temperature: float, k: int
) -> None:
    """At a small T the loss is the exact shift plus a small log s, rounded once."""
    rng = np.random.default_rng(11)
    y = rng.normal(size=(200, k)) * 3
    labels = rng.integers(0, k, size=200)
    path = tmp_path / "t.csv"
    write_csv(path, y, labels)
    _, per_row = batch(path, "--temperature", repr(temperature))
    worst = 0.0
    for i, r in enumerate(per_row):
        logits = [float(v) for v in y[i]]
        exact = mpref.loss(logits, int(labels[i]), temperature)
        err = mpref.ulps(float(r["loss"]), exact)
        bound = row_loss_bound(exact, logits, temperature, 1.0)
        assert err <= bound, f"line {r['line']}: {err:.3f} ulp (bound {bound:.3f})"
        worst = max(worst, err)
    assert worst > 0.25  # the rows are hard enough for the bound to mean something


# ------------------------------------------------------------------------- soft targets
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="plain"),
        pytest.param({"temperature": 3.0}, id="T=3"),
        pytest.param({"temperature": 1e-3}, id="T=1e-3"),
        pytest.param({"weights": [1.0, 2.5, 0.5, 3.0]}, id="weights"),
        pytest.param({"label_smoothing": 0.1, "temperature": 0.5}, id="smoothing-T"),
    ],
)
def test_soft_targets_against_mpmath_and_torch(tmp_path: Path, options: dict[str, Any]) -> None:
    y, _ = rows_of(5, n=24, masked="label_smoothing" not in options)
    rng = np.random.default_rng(6)
    raw = rng.integers(0, 5, size=y.shape).astype(np.float64)
    raw[:, 1] += 1  # no all-zero row
    raw[y == -np.inf] = 0.0  # no target on a masked class
    targets = raw / raw.sum(axis=1, keepdims=True)
    path = tmp_path / "s.csv"
    write_csv(path, y, None, targets)
    k = y.shape[1]
    data, per_row = batch(
        path, "--target-columns", ",".join(f"t{j}" for j in range(k)), *cli_options(options)
    )
    weights = options.get("weights")
    eps = options.get("label_smoothing", 0.0)
    temperature = options.get("temperature", 1.0)
    logits = [[float(v) for v in row] for row in y]
    tlist = [[float(v) for v in row] for row in targets]
    exact_rows = [
        mpref.row_loss(
            logits[i],
            targets=tlist[i],
            weights=weights,
            label_smoothing=eps,
            temperature=temperature,
        )
        for i in range(len(logits))
    ]
    for i, r in enumerate(per_row):
        assert mpref.ulps(float(r["loss"]), exact_rows[i]) <= SOFT_ULP, r
        # The row's "label" is the argmax of its target (the first on ties); its
        # probability is the softmax of the logits / T at that class.
        c = int(np.argmax(targets[i]))
        assert int(r["label"]) == c
        q = mpref.probabilities(logits[i], temperature)[c]
        assert mpref.ulps(float(r["probability"]), q) <= PROB_ULP, (r, float(q))
    # The mean divides by N, not by the weights (PyTorch's documented behaviour).
    exact_mean = mpref.mean(
        logits, targets=tlist, weights=weights, label_smoothing=eps, temperature=temperature
    )
    assert mpref.ulps(number(data["loss"]), exact_mean) <= MEAN_ULP
    want = torch_mean(
        y, targets=targets, weights=weights, label_smoothing=eps, temperature=temperature
    )
    assert number(data["loss"]) == pytest.approx(want, rel=1e-12)
    for w in data["worst"]:
        i = w["line"] - 2
        q = mpref.probabilities(logits[i], temperature)[int(np.argmax(targets[i]))]
        assert mpref.ulps(number(w["probability"]), q) <= PROB_ULP


def test_soft_target_probability_honours_the_temperature(tmp_path: Path) -> None:
    """Issue 18's example: logits [2, 0], target (1, 0), T = 3: q = 0.6608, not 0.8808."""
    path = tmp_path / "s.csv"
    path.write_text("a,b,ta,tb\n2,0,1,0\n", encoding="utf-8")
    data, per_row = batch(path, "--target-columns", "ta,tb", "--temperature", "3")
    exact = 1 / (1 + mp.exp(mp.mpf(-2) / 3))
    assert mpref.ulps(float(per_row[0]["probability"]), exact) <= PROB_ULP
    assert mpref.ulps(number(data["worst"][0]["probability"]), exact) <= PROB_ULP
    assert float(per_row[0]["probability"]) == pytest.approx(0.6608, abs=5e-5)  # not 0.8808


# ------------------------------------------------------------------- base and reduction
@pytest.mark.parametrize("base", ["2", "10"])
def test_bases_and_sum_against_mpmath(tmp_path: Path, base: str) -> None:
    y, labels = rows_of(8, n=20)
    path = tmp_path / "b.csv"
    write_csv(path, y, labels)
    logits = [[float(v) for v in row] for row in y]
    data, per_row = batch(path, "--base", base, "--reduction", "sum")
    exact_rows = [mpref.row_loss(logits[i], int(labels[i])) for i in range(len(logits))]
    with mp.workprec(mpref.WIDE):
        total = mpref.in_base(mp.fsum(exact_rows), base)
    assert mpref.ulps(number(data["loss"]), total) <= MEAN_ULP
    for i, r in enumerate(per_row):
        assert mpref.ulps(float(r["loss"]), mpref.in_base(exact_rows[i], base)) <= LOSS_ULP + 1


# ---------------------------------------------------------------------- xent compute
@pytest.mark.parametrize(
    "options",
    [
        {"weights": [1.0, 2.0, 0.5], "temperature": 2.0},
        {"label_smoothing": 0.1, "weights": [1.0, 2.0, 0.5]},
        {"label_smoothing": 0.3, "temperature": 0.25},
    ],
)
def test_compute_options_against_torch(options: dict[str, Any]) -> None:
    """The row loss ``xent compute`` prints for each option is PyTorch's (reduction none)."""
    y = np.array([[1.2, 2.3, 0.8]])
    args = ["compute", "--logits", "1.2,2.3,0.8", "--label", "0", "--format", "json"]
    args += cli_options(options)
    outcome = run(args)
    assert outcome.code == 0, outcome.stderr
    got = json.loads(outcome.stdout)["loss"]
    kwargs: dict[str, Any] = {"reduction": "none"}
    if "weights" in options:
        kwargs["weight"] = torch.tensor(options["weights"], dtype=torch.float64)
    kwargs["label_smoothing"] = options.get("label_smoothing", 0.0)
    logits = torch.tensor(y, dtype=torch.float64) / options.get("temperature", 1.0)
    want = float(F.cross_entropy(logits, torch.tensor([0]), **kwargs)[0])
    assert got == pytest.approx(want, rel=1e-13)
