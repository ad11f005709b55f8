"""exact=True: every result correctly rounded (within 0.5 ulp of the mpmath reference),
the same bits whatever np.exp and np.log return, and the slow path exercised.

The families are those of tests/test_kernel.py; the oracle is tests/mpref.py (mpmath).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import mpref
import numpy as np
import pytest
from test_kernel import SPECIAL_ROWS

from xentcli.core import _exact_kernel as exact_kernel
from xentcli.core import _ziv as ziv
from xentcli.core._kernel import (
    cross_entropy,
    log_softmax,
    logsumexp,
    row_losses,
    softmax,
    softmax_steps,
)

HALF = 0.5  # correctly rounded: within half an ulp (exact ties cannot occur)


def worst(computed, exact) -> float:
    return max((mpref.ulps(float(c), e) for c, e in zip(computed, exact, strict=True)), default=0.0)


def check_exact(
    y: np.ndarray, labels: np.ndarray, temperature: float = 1.0, probs: int = 4
) -> None:
    rows = row_losses(y, labels, temperature=temperature, exact=True)
    exact = [mpref.loss(list(r), int(c), temperature) for r, c in zip(y, labels, strict=True)]
    assert worst(rows.loss, exact) <= HALF
    steps = softmax_steps(y[:probs], temperature=temperature, exact=True)
    for i in range(min(probs, y.shape[0])):
        row = list(y[i])
        assert worst(steps.probabilities[i], mpref.probabilities(row, temperature)) <= HALF
        assert worst(steps.log_probabilities[i], mpref.log_probabilities(row, temperature)) <= HALF
        assert mpref.ulps(float(steps.log_sum_exp[i]), mpref.logsumexp(row, temperature)) <= HALF
        assert rows.label_probability[i] == steps.probabilities[i][labels[i]]
    if np.isinf(rows.loss).any():
        return
    mean = cross_entropy(y, labels, temperature=temperature, exact=True)
    exact_mean = mpref.mean([list(r) for r in y], [int(c) for c in labels], temperature=temperature)
    assert mpref.ulps(mean, exact_mean) <= HALF


@pytest.mark.parametrize("k", [2, 3, 10, 37])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 300.0, 1e5, 1e16, 1e300])
def test_random_logits(scale: float, k: int) -> None:
    rng = np.random.default_rng(int(k * 1000 + math.log10(scale) * 7 + 100))
    y = rng.normal(size=(24, k)) * scale
    labels = rng.integers(0, k, size=24)
    labels[:6] = np.argmax(y[:6], axis=1)
    check_exact(y, labels)


def test_hard_families() -> None:
    rng = np.random.default_rng(5)
    check_exact(1e300 + rng.normal(size=(20, 6)) * 1e300 * 2.0**-48, rng.integers(0, 6, 20))
    for offset in (1e15, -3e12, 2.0**52):
        check_exact(offset + rng.normal(size=(12, 6)) * 4, rng.integers(0, 6, 12))
    y = rng.uniform(-700, 0.7, size=(30, 5))
    y[:, 0] = rng.uniform(0.1, 0.9, size=30) * np.pi
    check_exact(y, np.zeros(30, dtype=np.int64))
    y = rng.uniform(-760, -690, size=(20, 4))  # subnormal probabilities
    y[:, 0] = 0.0
    check_exact(y, rng.integers(0, 4, 20), probs=20)


@pytest.mark.parametrize(("logits", "label"), SPECIAL_ROWS)
def test_special_rows(logits: list[float], label: int) -> None:
    check_exact(np.array([logits]), np.array([label]), probs=1)


@pytest.mark.parametrize("temperature", [0.3, 7.1, 1e-3, 1e5, 2.0**-600, 3e200])
def test_temperature(temperature: float) -> None:
    rng = np.random.default_rng(9)
    check_exact(rng.normal(size=(16, 5)) * 20, rng.integers(0, 5, 16), temperature)


@pytest.mark.parametrize("temperature", [1e308, 4.0, 1.5, 0.5])
def test_differences_beyond_the_float_range(temperature: float) -> None:
    y = np.array([[1.7e308, -1.7e308, 0.0]] * 2)
    check_exact(y, np.array([0, 1]), temperature, probs=1)


def test_k100000_one_row() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(size=(1, 100_000)) * 3
    d, _ = mpref.shifts(list(y[0]))
    ls = mpref.log_s(d)
    for label in (int(np.argmax(y)), 12345):
        got = float(row_losses(y, np.array([label]), exact=True).loss[0])
        assert mpref.ulps(got, mpref.neg_log_q([d[label]], ls)[0]) <= HALF


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.999])
@pytest.mark.parametrize("weighted", [False, True])
def test_weights_and_smoothing(eps: float, weighted: bool) -> None:
    rng = np.random.default_rng(11)
    k = 5
    y = rng.normal(size=(24, k)) * 8
    labels = rng.integers(0, k, size=24)
    w = list(rng.uniform(0.2, 5, size=k)) if weighted else None
    rows = row_losses(y, labels, weights=w, label_smoothing=eps, exact=True)
    exact = [
        mpref.row_loss(list(r), int(c), weights=w, label_smoothing=eps)
        for r, c in zip(y, labels, strict=True)
    ]
    assert worst(rows.loss, exact) <= HALF
    mean = cross_entropy(y, labels, weights=w, label_smoothing=eps, exact=True)
    exact_mean = mpref.mean([list(r) for r in y], [int(c) for c in labels], weights=w,
                            label_smoothing=eps)  # fmt: skip
    assert mpref.ulps(mean, exact_mean) <= HALF


@pytest.mark.parametrize(("weighted", "eps"), [(False, 0.0), (True, 0.0), (True, 0.45)])
def test_soft_targets(weighted: bool, eps: float) -> None:
    rng = np.random.default_rng(12)
    k = 7
    y = rng.normal(size=(24, k)) * 6
    t = rng.dirichlet(np.ones(k) * 0.5, size=24)
    t[0] = [0, 0, 1, 0, 0, 0, 0]
    y[2] *= 1e200
    w = list(rng.uniform(0.2, 5, size=k)) if weighted else None
    rows = row_losses(y, targets=t, weights=w, label_smoothing=eps, exact=True)
    exact = [
        mpref.row_loss(list(r), targets=list(p), weights=w, label_smoothing=eps)
        for r, p in zip(y, t, strict=True)
    ]
    assert worst(rows.loss, exact) <= HALF
    mean = cross_entropy(y, targets=t, weights=w, label_smoothing=eps, exact=True)
    exact_mean = mpref.mean([list(r) for r in y], targets=[list(p) for p in t], weights=w,
                            label_smoothing=eps)  # fmt: skip
    assert mpref.ulps(mean, exact_mean) <= HALF


@pytest.mark.parametrize("base", ["2", "10"])
def test_bases(base: str) -> None:
    rng = np.random.default_rng(13)
    y = rng.normal(size=(30, 4)) * 10
    labels = rng.integers(0, 4, size=30)
    got = cross_entropy(y, labels, base=base, reduction="none", exact=True)
    exact = [
        mpref.in_base(mpref.loss(list(r), int(c)), base) for r, c in zip(y, labels, strict=True)
    ]
    assert worst(got, exact) <= HALF
    mean = cross_entropy(y, labels, base=base, exact=True)
    exact_mean = mpref.in_base(mpref.mean([list(r) for r in y], [int(c) for c in labels]), base)
    assert mpref.ulps(mean, exact_mean) <= HALF


def test_masked_and_ignored() -> None:
    y = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, 2.0], [0.0, 0.0, 0.0]])
    q = softmax(y, exact=True)
    assert q[0, 1] == 0.0
    assert q[1, 0] == 0.0
    assert log_softmax(y, exact=True)[0, 1] == -np.inf
    assert list(cross_entropy(y, [1, 0, 0], reduction="none", exact=True))[:2] == [math.inf] * 2
    got = cross_entropy(y, [-100, 1, -100], ignore_index=-100, exact=True)
    assert got == float(mpref.mean([list(y[1])], [1]))
    assert float(logsumexp([1000.0, 1000.0], exact=True)) == 1000.6931471805599


# ------------------------------------------------------------------- portability
def _perturbed(fn, direction: float):
    def f(x, *args, **kwargs):
        out = fn(x, *args, **kwargs)
        return np.nextafter(out, direction * np.inf)

    return f


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_same_bits_whatever_libm_returns(monkeypatch: pytest.MonkeyPatch, direction: float) -> None:
    """np.exp, np.log, np.log1p, np.expm1 one ulp off: bit-identical exact results."""
    rng = np.random.default_rng(30)
    y = rng.normal(size=(300, 7)) * 5
    y[::7, 3] = -np.inf
    labels = rng.integers(0, 7, size=300)
    t = rng.dirichlet(np.ones(7), size=300)
    t[:, 3] = 0.0
    t /= t.sum(axis=1, keepdims=True)

    def everything():
        return [
            row_losses(y, labels, exact=True).loss,
            row_losses(
                y,
                labels,
                weights=np.arange(1.0, 8.0),
                label_smoothing=0.1,
                temperature=0.7,
                exact=True,
            ).loss,
            row_losses(y, targets=t, exact=True).loss,
            np.array([cross_entropy(y, labels, exact=True)]),
            softmax(y, exact=True),
            log_softmax(y, exact=True),
            logsumexp(y, exact=True),
            softmax_steps(y, exact=True).exp_shifted,
        ]

    before = everything()
    for name in ("exp", "log", "log1p", "expm1"):
        monkeypatch.setattr(np, name, _perturbed(getattr(np, name), direction))
    after = everything()
    for a, b in zip(before, after, strict=True):
        assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ the slow path
def test_slow_path_agrees_with_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force every row through decimal (no rounding certain): the same bits, all correct."""
    rng = np.random.default_rng(31)
    y = rng.normal(size=(12, 5)) * 6
    y[3, 1] = -np.inf
    labels = rng.integers(0, 5, size=12)
    fast = row_losses(y, labels, weights=[1.0, 2.0, 0.5, 1.0, 3.0], exact=True)
    fast_q = softmax(y, exact=True)
    fast_lse = logsumexp(y, exact=True)
    real = ziv.round_checked

    def never_sure(*args, **kwargs):
        value, ok = real(*args, **kwargs)
        return value, np.zeros_like(ok)

    monkeypatch.setattr(exact_kernel.xb, "round_checked", never_sure)
    monkeypatch.setattr(exact_kernel.xb, "_rounded_check", never_sure, raising=False)
    before = ziv.SLOW_ROWS[0]
    slow = row_losses(y, labels, weights=[1.0, 2.0, 0.5, 1.0, 3.0], exact=True)
    assert ziv.SLOW_ROWS[0] > before
    assert np.array_equal(fast.loss, slow.loss)
    assert np.array_equal(softmax(y, exact=True), fast_q)
    assert np.array_equal(logsumexp(y, exact=True), fast_lse)


def test_slow_mean_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(32)
    y = rng.normal(size=(10, 4)) * 3
    labels = rng.integers(0, 4, size=10)
    fast = cross_entropy(y, labels, exact=True)
    monkeypatch.setattr(exact_kernel, "mean", lambda *args, **kwargs: None)
    assert cross_entropy(y, labels, exact=True) == fast
    assert mpref.ulps(fast, mpref.mean([list(r) for r in y], [int(c) for c in labels])) <= HALF


def test_slow_path_is_rare() -> None:
    """On ordinary data almost no row needs decimal (expected about 1 in 10**6)."""
    rng = np.random.default_rng(33)
    y = rng.normal(size=(20_000, 10)) * 3
    labels = rng.integers(0, 10, size=20_000)
    before = ziv.SLOW_ROWS[0]
    row_losses(y, labels, exact=True)
    softmax(y[:2000], exact=True)
    assert ziv.SLOW_ROWS[0] - before <= 2


# ----------------------------------------------------------------------- commands
def test_compute_exact_against_mpmath() -> None:
    from test_cli_batch import ok

    row = [-100.0, 100.0, -100.0, -100.0]
    data = json.loads(
        ok(
            [
                "compute",
                "--logits",
                "-100,100,-100,-100",
                "--label",
                "1",
                "--exact",
                "--format",
                "json",
            ]
        ).stdout
    )
    assert data["loss"] == 4.151689580210212e-87  # the float nearest log1p(3 e**-200)
    assert mpref.ulps(data["loss"], mpref.loss(row, 1)) <= HALF
    assert worst(data["probabilities"], mpref.probabilities(row)) <= HALF
    assert worst(data["log_probabilities"], mpref.log_probabilities(row)) <= HALF
    bits = json.loads(
        ok(
            [
                "compute",
                "--logits",
                "1.2,2.3,0.8",
                "--label",
                "0",
                "--exact",
                "--base",
                "2",
                "--temperature",
                "0.7",
                "--format",
                "json",
            ]
        ).stdout
    )
    exact_bits = mpref.in_base(mpref.loss([1.2, 2.3, 0.8], 0, 0.7), "2")
    assert mpref.ulps(bits["loss"], exact_bits) <= HALF


def test_batch_exact_against_mpmath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_cli_batch import ok, random_data, write_table

    monkeypatch.chdir(tmp_path)
    logits, labels = random_data(n=40)
    labels[4] = -100
    write_table(tmp_path / "a.csv", logits, labels)
    args = ["batch", "a.csv", "--ignore-index", "-100", "--exact", "--chunk-rows", "7"]
    data = json.loads(ok([*args, "--format", "json"]).stdout)
    keep = [i for i in range(40) if labels[i] != -100]
    exact_mean = mpref.mean([list(logits[i]) for i in keep], [int(labels[i]) for i in keep])
    assert mpref.ulps(data["loss"], exact_mean) <= HALF
    ok([*args, "--base", "2", "--per-row", "rows.csv"])
    with (tmp_path / "rows.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    for i in keep:
        exact = mpref.in_base(mpref.loss(list(logits[i]), int(labels[i])), "2")
        assert mpref.ulps(float(rows[i][5]), exact) <= HALF
        q = mpref.probabilities(list(logits[i]))[int(labels[i])]
        assert mpref.ulps(float(rows[i][4]), q) <= HALF


@pytest.mark.parametrize(
    ("logits", "label", "expected"),
    [
        ([0.0, -40.0], 0, 4.248354255291589e-18),
        ([-100.0, 100.0, -100.0, -100.0], 1, 4.151689580210212e-87),
        ([1e16, 0.0], 1, 1e16),
        ([3.0, 1e16], 0, 9999999999999998.0),  # the exact loss is a midpoint plus e**-1e16
        ([1.2, 2.3, 0.8], 1, 0.44211922514309726),
    ],
)
def test_correctly_rounded_values_can_be_pinned(
    logits: list[float], label: int, expected: float
) -> None:
    """Correct rounding is unique: these digits hold on every machine (README's table)."""
    assert mpref.ulps(expected, mpref.loss(logits, label)) <= HALF
    assert cross_entropy(logits, label, exact=True) == expected
    assert cross_entropy([logits], [label], reduction="none", exact=True)[0] == expected


def test_readme_table_shows_the_correctly_rounded_losses() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "| `[0, -40]`, 0 | 4.248354255291589e-18 |" in readme
    assert "| `[-100, 100, -100, -100]`, 1 | 4.151689580210212e-87 |" in readme
