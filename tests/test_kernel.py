"""The kernel against the independent mpmath reference (tests/mpref.py), family by family.

Every accuracy test states its tolerance in units in the last place (ulp) of float64 at
the exact value. Set XENT_ULP_REPORT=path to append each family's measured maximum there.
"""

from __future__ import annotations

import math
import os
import threading
from fractions import Fraction
from typing import Any

import mpref
import numpy as np
import pytest

from xentcli.core import _blocks as blockrunner
from xentcli.core import _exactsum as exactsum
from xentcli.core import _kernel as kernel
from xentcli.core._kernel import (
    ExactSum,
    cross_entropy,
    log_softmax,
    logsumexp,
    row_losses,
    softmax,
    softmax_steps,
    to_base,
)
from xentcli.errors import InvalidInputError, UndefinedMeanError

LOSS_ULP = 2.0
PROB_ULP = 3.0
LOG_PROB_ULP = 2.0
MEAN_ULP = 2.0
SOFT_ULP = 4.0  # soft targets and label smoothing, per row and mean


def record(family: str, what: str, worst: float) -> None:
    path = os.environ.get("XENT_ULP_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{family}\t{what}\t{worst:.3f}\n")


def worst_ulps(computed, exact) -> float:
    return max((mpref.ulps(float(c), e) for c, e in zip(computed, exact, strict=True)), default=0.0)


def lse_ulps(computed: float, row: list[float], temperature: float) -> float:
    """log-sum-exp = m + log s: error in ulps of the larger of |m| and log s.

    When a negative max and log s cancel, the absolute error of log s is what remains;
    the tolerance is stated relative to the terms, not the (possibly tiny) result.
    """
    exact = mpref.logsumexp(row, temperature)
    m = abs(float(mpref.mp.mpf(max(row)) / temperature))
    scale = max(m, float(mpref.logsumexp(row, temperature) - mpref.mp.mpf(max(row)) / temperature))
    if scale == 0 or not math.isfinite(scale):
        return mpref.ulps(computed, exact)
    return (
        float(abs(mpref.mp.mpf(computed) - exact)) / math.ulp(scale)
        if math.isfinite(computed)
        else mpref.ulps(computed, exact)
    )


def check_rows(
    family: str, y: np.ndarray, labels: np.ndarray, temperature: float = 1.0, prob_rows: int = 8
) -> None:
    """Losses, probabilities, log-probabilities and log-sum-exp of every/some rows."""
    rows = row_losses(y, labels, temperature=temperature)
    exact = [mpref.loss(list(r), int(c), temperature) for r, c in zip(y, labels, strict=True)]
    worst = worst_ulps(rows.loss, exact)
    record(family, "loss", worst)
    assert worst <= LOSS_ULP, family
    steps = softmax_steps(y, temperature=temperature)
    wp = wl = ws = 0.0
    for i in range(min(prob_rows, y.shape[0])):
        row = list(y[i])
        wp = max(wp, worst_ulps(steps.probabilities[i], mpref.probabilities(row, temperature)))
        wl = max(
            wl, worst_ulps(steps.log_probabilities[i], mpref.log_probabilities(row, temperature))
        )
        ws = max(ws, lse_ulps(float(steps.log_sum_exp[i]), row, temperature))
    record(family, "probability", wp)
    record(family, "log-probability", wl)
    record(family, "logsumexp", ws)
    assert wp <= PROB_ULP, family
    assert wl <= LOG_PROB_ULP, family
    assert ws <= LOSS_ULP, family
    # The mean: exact sum of the rows, rounded once; within 2 ulp of the exact mean.
    # (A row loss beyond the float range is inf, and so is the mean: the contract is the
    # mean of the float64 row losses.)
    mean = cross_entropy(y, labels, temperature=temperature)
    if np.isinf(rows.loss).any():
        assert mean == np.inf
        return
    exact_mean = mpref.mean([list(r) for r in y], [int(c) for c in labels], temperature=temperature)
    worst_mean = mpref.ulps(float(mean), exact_mean)
    record(family, "mean", worst_mean)
    assert worst_mean <= MEAN_ULP, family


# ------------------------------------------------------------------ the worked example
def test_seed_example_matches_design() -> None:
    st = softmax_steps([1.2, 2.3, 0.8])
    assert float(st.max) == 2.3
    assert int(st.argmax) == 1
    np.testing.assert_allclose(st.shifted, [-1.1, 0.0, -1.5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(st.exp_shifted, [0.332871083698, 1.0, 0.223130160148], rtol=2e-12)
    assert float(st.sum_exp_shifted) == pytest.approx(1.55600124385, rel=1e-11)
    assert float(st.log_sum_exp_shifted) == pytest.approx(0.442119225143, rel=1e-11)
    np.testing.assert_allclose(
        st.probabilities, [0.213927260672, 0.642673008106, 0.143399731222], rtol=1e-11
    )
    loss = cross_entropy([1.2, 2.3, 0.8], 1)
    assert mpref.ulps(loss, mpref.loss([1.2, 2.3, 0.8], 1)) <= LOSS_ULP
    assert loss == pytest.approx(0.442119225143, rel=1e-11)


# ------------------------------------------------------------------ random logit scales
@pytest.mark.parametrize("k", [2, 3, 10, 37])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 300.0, 1e5, 1e16, 1e300])
def test_random_logits(scale: float, k: int) -> None:
    rng = np.random.default_rng(int(k * 1000 + math.log10(scale) * 7 + 100))
    y = rng.normal(size=(24, k)) * scale
    labels = rng.integers(0, k, size=24)
    labels[:6] = np.argmax(y[:6], axis=1)  # confident, correct rows: tiny losses
    check_rows(f"normal*{scale:g} K={k}", y, labels)


def test_near_ties_at_1e300() -> None:
    """Logits of magnitude 1e300 a few hundred ulps apart: differences of ~1e286."""
    rng = np.random.default_rng(5)
    base = 1e300
    y = base + rng.normal(size=(20, 6)) * base * 2.0**-48
    labels = rng.integers(0, 6, size=20)
    check_rows("1e300 + few ulps", y, labels)


@pytest.mark.parametrize("offset", [1e15, -3e12, 2.0**52])
def test_large_offset_small_spread(offset: float) -> None:
    """Large logits whose differences are moderate: the loss depends on the differences."""
    rng = np.random.default_rng(int(abs(offset)) % 1000)
    y = offset + rng.normal(size=(20, 6)) * 4
    labels = rng.integers(0, 6, size=20)
    check_rows(f"offset {offset:g} + normal*4", y, labels)


def test_wide_spread_inexact_differences() -> None:
    """|y - m| of hundreds with many significant bits: the shift's rounding matters."""
    rng = np.random.default_rng(6)
    y = rng.uniform(-700, 0.7, size=(30, 5))
    y[:, 0] = rng.uniform(0.1, 0.9, size=30) * np.pi
    labels = np.zeros(30, dtype=np.int64)
    check_rows("uniform(-700, 0.7)", y, labels)


# --------------------------------------------------------------------- special cases
@pytest.mark.parametrize(
    ("logits", "label", "expected"),
    [
        ([0.0, -40.0], 0, 4.248354255291589e-18),
        ([-100.0, 100.0, -100.0, -100.0], 1, 4.151689580210213e-87),
        ([7.0], 0, 0.0),
        ([-1e308], 0, 0.0),
        ([1.7e308, -1.7e308], 1, math.inf),
        ([1.7e308, -1.7e308], 0, 0.0),
        ([0.0, -np.inf, 1.0], 1, math.inf),
        ([1e16, 0.0], 1, 1e16),
    ],
)
def test_special_values(logits: list[float], label: int, expected: float) -> None:
    """Compared with mpmath within the contract's bound, not with the last bits of this
    implementation (4.151689580210213e-87 is 1 ulp from the correctly rounded ...212e-87);
    *expected* is a readable check that the reference is the value meant."""
    exact = mpref.loss(logits, label)
    for got in (
        cross_entropy(logits, label),
        cross_entropy([logits], [label], reduction="none")[0],
    ):
        assert mpref.ulps(float(got), exact) <= LOSS_ULP, (got, exact)
    assert mpref.ulps(expected, exact) <= 1.0
    if expected == 0.0 or math.isinf(expected):  # exact zeros and infinities stay exact
        assert cross_entropy(logits, label) == expected


SPECIAL_ROWS = [
    ([0.0, -40.0], 0),
    ([0.0, -40.0], 1),
    ([-100.0, 100.0, -100.0, -100.0], 1),
    ([-100.0, 100.0, -100.0, -100.0], 0),
    ([1.0, 1.0, 1.0], 2),  # ties
    ([5.0, 5.0, -3.0, 5.0], 3),
    ([0.5, 0.5], 0),
    ([3.0, 1e16], 0),  # huge loss
    ([-1e16, 2.5, 1.0], 0),
    ([1.7e308, 1.6e308, -1.7e308], 1),  # y - m near and beyond the float range
    ([1.7e308, 1.6e308, -1.7e308], 2),
    ([-1.7e308, -1.79e308, 1.0], 0),
    ([5e-324, 0.0], 0),  # subnormal differences
    ([5e-324, 0.0], 1),
    ([1e-310, -1e-310, 3e-320], 2),
    ([2.2250738585072014e-308, 2.225073858507201e-308], 1),
    ([0.0, -745.0], 0),  # exp(d) subnormal
    ([0.0, -740.0, -741.5], 0),
    ([1e300, 1e300 * (1 - 2.0**-52)], 1),
    ([0.0, -np.inf, 2.0, -np.inf], 0),  # masked classes
    ([-np.inf, -np.inf, 3.0], 2),
    ([1e17 + 16.0, 1e17, 1e17 - 32.0], 1),
    ([0.1, 0.2, 0.30000000000000004, 0.3], 3),
]


@pytest.mark.parametrize(("logits", "label"), SPECIAL_ROWS)
def test_special_rows_against_reference(logits: list[float], label: int) -> None:
    check_rows(f"special {logits}", np.array([logits]), np.array([label]), prob_rows=1)


def test_masked_classes_have_probability_exactly_zero() -> None:
    y = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, 2.0]])
    q = softmax(y)
    assert q[0, 1] == 0.0
    assert q[1, 0] == 0.0
    assert log_softmax(y)[0, 1] == -np.inf
    losses = cross_entropy(y, [1, 0], reduction="none")
    assert list(losses) == [math.inf, math.inf]
    assert cross_entropy(y, [1, 1]) == math.inf


@pytest.mark.parametrize("k", [2, 3, 16, 17, 31, 40, 300])
def test_predicted_is_the_first_max(k: int) -> None:
    rng = np.random.default_rng(k)
    y = rng.integers(-2, 3, size=(500, k)).astype(np.float64)
    y[0] = 0.0
    y[1, -1] = -np.inf
    rows = row_losses(y, np.zeros(500, dtype=np.int64))
    assert np.array_equal(rows.predicted, np.argmax(y, axis=1))
    assert np.array_equal(softmax_steps(y).argmax, np.argmax(y, axis=1))
    assert rows.predicted[0] == 0


def test_k1_loss_is_exactly_zero() -> None:
    y = np.array([[3.0], [-7.5], [1e300]])
    assert list(cross_entropy(y, [0, 0, 0], reduction="none")) == [0.0, 0.0, 0.0]
    assert list(softmax(y)[:, 0]) == [1.0, 1.0, 1.0]


def test_k100000_one_row() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(size=(1, 100_000)) * 3
    labels = np.array([int(np.argmax(y))])
    d, _ = mpref.shifts(list(y[0]))
    ls = mpref.log_s(d)  # the reference's sum once, for both labels
    for label in (int(labels[0]), 12345):
        got = float(row_losses(y, np.array([label])).loss[0])
        worst = mpref.ulps(got, mpref.neg_log_q([d[label]], ls)[0])
        record("K=100000", "loss", worst)
        assert worst <= LOSS_ULP


@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Two kernel threads whatever the machine: first the count a single-core machine gets
    (1: no threading at all), then two forced; yields the ids of the threads that ran
    blocks, so that a test can check both did."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.delenv("XENT_THREADS", raising=False)
    assert blockrunner.default_threads() == 1  # what a single core would use
    monkeypatch.setattr(blockrunner, "THREADS", 2)
    seen: set[int] = set()
    original = blockrunner._run_list

    def recording(blocks: list[tuple[int, int]], work: Any, catch: bool = False) -> Any:
        seen.add(threading.get_ident())
        return original(blocks, work, catch)

    monkeypatch.setattr(blockrunner, "_run_list", recording)
    return seen


def test_many_blocks_and_threads_give_the_same_rows(two_workers: set[int]) -> None:
    """A batch big enough for several blocks and two threads equals row-by-row results."""
    rng = np.random.default_rng(8)
    y = rng.normal(size=(140_000, 10)) * 4
    labels = rng.integers(0, 10, size=140_000)
    losses = cross_entropy(y, labels, reduction="none")
    assert len(two_workers) == 2  # the batch really ran on two threads
    picks = rng.integers(0, 140_000, size=40)
    for i in picks:
        assert losses[i] == cross_entropy(y[i], int(labels[i]))
    q = softmax(y[:5000])
    assert np.array_equal(q[4321], softmax(y[4321]))


@pytest.mark.parametrize("k", [3, 10, 20, 300])
def test_any_memory_layout_gives_the_same_rows(k: int) -> None:
    """Views (a slice of columns, as the CSV reader hands over; Fortran order; a column
    step) give the bits of a contiguous copy: layout only picks the fastest path."""
    rng = np.random.default_rng(k)
    table = rng.normal(size=(3000, k + 2)) * 5
    table[::7, 1] = table[::7, 2]  # ties: the first max must win in every layout
    labels = rng.integers(0, k, size=3000)
    contiguous = np.ascontiguousarray(table[:, 1 : k + 1])
    expected = row_losses(contiguous, labels)
    stepped = np.repeat(contiguous, 2, axis=1)[:, ::2]
    for view in (table[:, 1 : k + 1], np.asfortranarray(contiguous), stepped):
        got = row_losses(view, labels)
        assert got.loss.tobytes() == expected.loss.tobytes()
        assert np.array_equal(got.predicted, expected.predicted)
        assert got.label_probability.tobytes() == expected.label_probability.tobytes()


# ---------------------------------------------------------------------- temperature
@pytest.mark.parametrize("temperature", [0.3, 7.1, 1e-3, 1e5, 2.0**-600, 3e200])
def test_temperature(temperature: float) -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(size=(16, 5)) * 20
    labels = rng.integers(0, 5, size=16)
    check_rows(f"temperature {temperature:g}", y, labels, temperature=temperature)


@pytest.mark.parametrize("extra", [[], [0.0], [-np.inf, 1e300]])
@pytest.mark.parametrize("temperature", [1e308, 4.0, 1.5, 0.5])
def test_differences_beyond_the_float_range(extra: list[float], temperature: float) -> None:
    """y - m overflows, yet (y - m) / T, and the softmax, may be ordinary numbers."""
    row = [1.7e308, -1.7e308, *extra]
    check_rows(
        f"overflowing y - m, T={temperature:g}",
        np.array([row] * 2),
        np.array([0, 1]),
        temperature=temperature,
        prob_rows=1,
    )


@pytest.mark.parametrize(
    ("row", "kwargs"),
    [
        ([1.7e308, -1.7e308], {"labels": [1], "weights": [1.0, 0.25]}),
        ([1.7e308, -1.7e308, 0.0], {"labels": [1], "weights": [1.0, 0.25, 1.0]}),
        ([1.7e308, -1.7e308], {"targets": [[0.9, 0.1]]}),
        ([1.7e308, -1.7e308, -np.inf], {"targets": [[0.9, 0.1, 0.0]]}),
        ([1.7e308, -1.7e308], {"labels": [0], "label_smoothing": 0.2}),
        (
            [3.884175028014975e307, -9.625828564644879e-142, -1.4002839144766553e254],
            {
                "labels": [2],
                "weights": [1.132586402300188, 2.9967911273012113, 4.092712513436823],
                "label_smoothing": 0.4240558368530386,
            },
        ),
    ],
)
def test_finite_losses_from_infinite_parts(row: list[float], kwargs: dict) -> None:
    """A weight, target or smoothing share below 1 brings an overflowing -log q back."""
    got = float(row_losses([row], **kwargs).loss[0])
    targets = kwargs.get("targets")
    exact = mpref.row_loss(
        row,
        None if targets else kwargs["labels"][0],
        targets=targets[0] if targets else None,
        weights=kwargs.get("weights"),
        label_smoothing=kwargs.get("label_smoothing", 0.0),
    )
    assert math.isfinite(got)
    assert mpref.ulps(got, exact) <= SOFT_ULP


@pytest.mark.parametrize("temperature", [3.0, 1.5, 0.7])
def test_largest_float_difference_under_a_temperature(temperature: float) -> None:
    """(y - m) / T with y - m at the float limit: q * T rounds past the range (was NaN)."""
    y = np.array([[0.0, 1.7976931348623157e308]] * 2)
    check_rows(f"largest float, T={temperature:g}", y, np.array([0, 1]), temperature=temperature)


@pytest.mark.parametrize("temperature", [1.0, 7.0, 2.0**29, 1e307])
@pytest.mark.parametrize("extra", [[], [0.0], [-1e308, -np.inf]])
def test_two_logits_in_the_top_binade(temperature: float, extra: list[float]) -> None:
    """y - m is finite but hi - y rounds past the float range inside the TwoSum (was NaN)."""
    row = [6.403938346442472e307, 1.7976931348623157e308, *extra]
    check_rows(
        f"top binade, T={temperature:g}",
        np.array([row] * 2),
        np.array([0, 1]),
        temperature=temperature,
    )


@pytest.mark.parametrize(
    ("row", "label", "temperature", "expected"),
    [
        ([1.0, 2.0], 0, 1e-320, math.inf),
        ([1.0, -2.0], 0, 1e-320, 0.0),
        ([1.0, -2.0, 0.5], 1, 1e-320, math.inf),
        ([0.0, 1.8e8], 0, 1e-300, math.inf),
        ([0.0, 1.8e8], 1, 1e-300, 0.0),
    ],
)
def test_tiny_temperature_overflows_to_the_right_limit(
    row: list[float], label: int, temperature: float, expected: float
) -> None:
    """logits / T beyond the float range: the loss is inf or exactly 0, never NaN."""
    assert float(cross_entropy([row], [label], temperature=temperature)) == expected


def test_temperature_with_huge_logits() -> None:
    y = np.array([[1.5e308, -1.5e308, 1.4e308], [1e300, 0.0, -1e300]])
    check_rows("temperature 1e-3, huge", y, np.array([2, 1]), temperature=0.5)


# -------------------------------------------------------- weights, ignore, smoothing
def test_weights_and_ignore_index() -> None:
    rng = np.random.default_rng(10)
    k = 6
    y = rng.normal(size=(40, k)) * 5
    labels = rng.integers(0, k, size=40)
    labels[::7] = -100
    w = rng.uniform(0.1, 10, size=k)
    rows = row_losses(y, labels, weights=w, ignore_index=-100)
    exact = [
        mpref.row_loss(list(r), int(c), weights=list(w)) if c != -100 else 0
        for r, c in zip(y, labels, strict=True)
    ]
    worst = worst_ulps(rows.loss, exact)
    record("weights+ignore", "loss", worst)
    assert worst <= LOSS_ULP
    assert list(rows.counted) == [c != -100 for c in labels]
    assert list(rows.weight) == [w[c] if c != -100 else 0.0 for c in labels]
    mean = cross_entropy(y, labels, weights=w, ignore_index=-100)
    exact_mean = mpref.mean(
        [list(r) for r in y], [int(c) for c in labels], weights=list(w), ignore_index=-100
    )
    worst = mpref.ulps(mean, exact_mean)
    record("weights+ignore", "mean", worst)
    assert worst <= MEAN_ULP


@pytest.mark.parametrize("eps", [0.1, 0.37, 0.999])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing(eps: float, weighted: bool) -> None:
    rng = np.random.default_rng(11)
    k = 5
    y = rng.normal(size=(24, k)) * 8
    y[3, 2] = -np.inf
    labels = rng.integers(0, k, size=24)
    labels[3] = 0
    w = list(rng.uniform(0.2, 5, size=k)) if weighted else None
    rows = row_losses(y, labels, weights=w, label_smoothing=eps)
    exact = [
        mpref.row_loss(list(r), int(c), weights=w, label_smoothing=eps)
        for r, c in zip(y, labels, strict=True)
    ]
    assert rows.loss[3] == math.inf  # a masked class has -log q = inf in the uniform term
    keep = [i for i in range(24) if i != 3]
    worst = worst_ulps(rows.loss[keep], [exact[i] for i in keep])
    record(f"smoothing eps={eps} weighted={weighted}", "loss", worst)
    assert worst <= SOFT_ULP
    mean = cross_entropy(y[keep], labels[keep], weights=w, label_smoothing=eps)
    exact_mean = mpref.mean(
        [list(y[i]) for i in keep], [int(labels[i]) for i in keep], weights=w, label_smoothing=eps
    )
    worst = mpref.ulps(mean, exact_mean)
    record(f"smoothing eps={eps} weighted={weighted}", "mean", worst)
    assert worst <= SOFT_ULP


def test_smoothing_with_a_zero_weight_masked_class_is_finite() -> None:
    y = [[0.0, 1.0, -np.inf]]
    loss = cross_entropy(y, [1], weights=[1.0, 2.0, 0.0], label_smoothing=0.2)
    exact = mpref.row_loss(y[0], 1, weights=[1.0, 2.0, 0.0], label_smoothing=0.2)
    exact_mean = exact / 2
    assert mpref.ulps(loss, exact_mean) <= SOFT_ULP


@pytest.mark.parametrize(
    ("weighted", "eps"), [(False, 0.0), (True, 0.0), (False, 0.2), (True, 0.45)]
)
def test_soft_targets(weighted: bool, eps: float) -> None:
    rng = np.random.default_rng(12)
    k = 7
    y = rng.normal(size=(24, k)) * 6
    t = rng.dirichlet(np.ones(k) * 0.5, size=24)
    t[0] = [0, 0, 1, 0, 0, 0, 0]
    y[1, 4] = -np.inf
    t[1, 4] = 0.0
    t[1] /= t[1].sum()
    y[2] *= 1e200
    w = list(rng.uniform(0.2, 5, size=k)) if weighted else None
    rows = row_losses(y, targets=t, weights=w, label_smoothing=eps)
    exact = [
        mpref.row_loss(list(r), targets=list(p), weights=w, label_smoothing=eps)
        for r, p in zip(y, t, strict=True)
    ]
    keep = [i for i in range(24) if not (eps and i == 1)]
    worst = worst_ulps(rows.loss[keep], [exact[i] for i in keep])
    record(f"soft targets eps={eps} weighted={weighted}", "loss", worst)
    assert worst <= SOFT_ULP
    assert np.isnan(rows.label_probability).all()
    assert list(rows.weight) == [1.0] * 24
    mean = cross_entropy(y[keep], targets=t[keep], weights=w, label_smoothing=eps)
    exact_mean = mpref.mean(
        [list(y[i]) for i in keep],
        targets=[list(t[i]) for i in keep],
        weights=w,
        label_smoothing=eps,
    )
    worst = mpref.ulps(mean, exact_mean)
    record(f"soft targets eps={eps} weighted={weighted}", "mean", worst)
    assert worst <= SOFT_ULP


def test_soft_target_on_a_masked_class_is_infinite() -> None:
    assert cross_entropy([[0.0, -np.inf]], targets=[[0.5, 0.5]]) == math.inf
    assert cross_entropy([[0.0, -np.inf]], targets=[[1.0, 0.0]]) == 0.0


def test_soft_targets_mean_divides_by_n_not_by_weights() -> None:
    y = [[0.0, 0.0], [0.0, 0.0]]
    t = [[1.0, 0.0], [0.0, 1.0]]
    w = [2.0, 4.0]
    # Row losses 2 log 2 and 4 log 2; PyTorch's mean is their sum / N = 3 log 2.
    assert cross_entropy(y, targets=t, weights=w) == 3 * math.log(2)
    assert cross_entropy(y, [0, 1], weights=w) == math.log(2)  # labels: / sum of w[i]


# ----------------------------------------------------------------------------- bases
@pytest.mark.parametrize("base", ["2", "10"])
def test_bases(base: str) -> None:
    rng = np.random.default_rng(13)
    y = rng.normal(size=(30, 4)) * 10
    labels = rng.integers(0, 4, size=30)
    got = cross_entropy(y, labels, base=base, reduction="none")
    exact = [
        mpref.in_base(mpref.loss(list(r), int(c)), base) for r, c in zip(y, labels, strict=True)
    ]
    worst = worst_ulps(got, exact)
    record(f"base {base}", "loss", worst)
    assert worst <= LOSS_ULP
    mean = cross_entropy(y, labels, base=base)
    exact_mean = mpref.in_base(mpref.mean([list(r) for r in y], [int(c) for c in labels]), base)
    worst = mpref.ulps(mean, exact_mean)
    record(f"base {base}", "mean", worst)
    assert worst <= MEAN_ULP


def test_to_base_is_correctly_rounded_for_exact_inputs() -> None:
    for x in [1.0, 0.1, 3e-300, 1e300, 7.25]:
        for base in ("2", "10"):
            assert (
                mpref.ulps(float(to_base(x, base)), mpref.in_base(mpref.mp.mpf(x), base))
                <= 0.5 + 1e-9
            )
    assert to_base(np.inf, "2") == np.inf
    assert to_base(2.0, "e") == 2.0
    with pytest.raises(InvalidInputError, match="base"):
        to_base(1.0, "3")


# ---------------------------------------------------------------- means and ExactSum
def test_mean_is_exact_sum_ratio_bit_for_bit() -> None:
    rng = np.random.default_rng(14)
    y = rng.normal(size=(5000, 8)) * 3
    labels = rng.integers(0, 8, size=5000)
    labels[::11] = -1
    w = rng.uniform(0.5, 2, size=8)
    options = {"weights": w, "ignore_index": -1, "label_smoothing": 0.05}
    rows = row_losses(y, labels, **options)
    total, weight = ExactSum(), ExactSum()
    for start in range(0, 5000, 777):
        total.add(rows.loss[start : start + 777])
        weight.add(rows.weight[start : start + 777])
    for base in ("e", "2", "10"):
        assert total.ratio(weight, base) == cross_entropy(y, labels, base=base, **options)
    assert total.value() == cross_entropy(y, labels, reduction="sum", **options)
    order = rng.permutation(5000)
    assert cross_entropy(y[order], labels[order], **options) == cross_entropy(y, labels, **options)


def test_fraction_to_base_matches_ratio() -> None:
    a, b = ExactSum(), ExactSum()
    a.add([0.1, 0.7, 2.5e-3])
    b.add([3.0])
    for base in ("e", "2", "10"):
        assert kernel.fraction_to_base(a.exact() / b.exact(), base) == a.ratio(b, base)
    assert kernel.fraction_to_base(Fraction(10) ** 400, "2") == math.inf


def test_exact_sum_matches_fractions() -> None:
    rng = np.random.default_rng(15)
    values = np.concatenate(
        [
            rng.normal(size=300) * 10.0 ** rng.integers(-300, 300, size=300),
            [
                5e-324,
                -5e-324,
                1e-310,
                1.7976931348623157e308,
                -1.7976931348623157e308,
                0.0,
                -0.0,
                2.0**-1022,
            ],
        ]
    )
    acc = ExactSum()
    acc.add(values)
    exact = sum((Fraction(float(v)) for v in values), Fraction(0))
    assert acc.exact() == exact
    assert acc.value() == float(exact)
    assert acc.count == values.size


def test_exact_sum_chunking_and_order_do_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exactsum, "_EXACT_CHUNK", 7)  # many passes
    rng = np.random.default_rng(16)
    values = rng.normal(size=100) * 1e10
    values[::3] = rng.normal(size=34) * 1e-10
    a, b = ExactSum(), ExactSum()
    a.add(values)
    for part in np.array_split(rng.permutation(values), 9):
        c = ExactSum()
        c.add(part)
        b.merge(c)
    assert a.exact() == b.exact()
    assert a.value() == b.value() == float(sum(Fraction(float(v)) for v in values))


def test_exact_sum_infinities_and_overflow() -> None:
    acc = ExactSum()
    acc.add([1.0, np.inf])
    assert acc.value() == math.inf
    acc.add([-np.inf])
    assert math.isnan(acc.value())
    big = ExactSum()
    big.add([1.7976931348623157e308] * 2)
    assert big.value() == math.inf
    one = ExactSum()
    one.add([2.0])
    assert big.ratio(one) == 1.7976931348623157e308
    empty = ExactSum()
    with pytest.raises(UndefinedMeanError, match="undefined"):
        one.ratio(empty)
    assert empty.value() == 0.0


def test_exact_sum_ratio_is_correctly_rounded() -> None:
    a, b = ExactSum(), ExactSum()
    a.add([1.0, 2.0**-60])
    b.add([3.0])
    assert a.ratio(b) == float((1 + Fraction(1, 2**60)) / 3)
    assert a.ratio(b, "2") == float(
        (1 + Fraction(1, 2**60))
        / 3
        * (Fraction(1.4426950408889634) + Fraction(2.0355273740931033e-17))
    )


def test_sum_reduction_and_none() -> None:
    y = [[0.0, 0.0], [0.0, -40.0]]
    rows = cross_entropy(y, [0, 0], reduction="none")
    for got, row in zip(rows, y, strict=True):  # each within its bound of the exact loss
        assert mpref.ulps(float(got), mpref.loss(row, 0)) <= LOSS_ULP
    # the sum is the exact sum of those row losses, rounded once
    assert cross_entropy(y, [0, 0], reduction="sum") == float(Fraction(rows[0]) + Fraction(rows[1]))
    assert cross_entropy(y[0], 1, reduction="none") == rows[0]


def test_all_ignored_mean_is_undefined() -> None:
    with pytest.raises(UndefinedMeanError, match="undefined: no row counts"):
        cross_entropy([[0.0, 1.0]], [-100], ignore_index=-100)
    assert cross_entropy([[0.0, 1.0]], [-100], ignore_index=-100, reduction="sum") == 0.0
    with pytest.raises(UndefinedMeanError):
        cross_entropy([[0.0, 1.0]], [0], weights=[0.0, 1.0])


def test_zero_weight_row_with_masked_true_class_counts_nothing() -> None:
    rows = row_losses([[0.0, -np.inf], [0.0, 0.0]], [1, 0], weights=[1.0, 0.0])
    assert list(rows.loss) == [0.0, math.log(2)]
    assert list(rows.weight) == [0.0, 1.0]


# ----------------------------------------------------------------------- invalid input
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"logits": [[0.0, np.nan]], "labels": [0]}, "row 0, column 1: logit is NaN"),
        (
            {"logits": [[0.0, 1.0], [np.inf, 1.0]], "labels": [0, 0]},
            r"row 1, column 0: logit is \+inf",
        ),
        (
            {"logits": [[0.0, 1.0], [-np.inf, -np.inf]], "labels": [0, 0]},
            "row 1: every logit of the row is -inf",
        ),
        ({"logits": [-np.inf, -np.inf], "labels": 0}, "every logit of the row is -inf"),
        ({"logits": np.zeros((2, 0)), "labels": [0, 0]}, "a row is empty"),
        ({"logits": np.zeros((0, 3)), "labels": []}, "the batch is empty"),
        ({"logits": [[0.0, 1.0]], "labels": [2]}, r"row 0: label out of range \[0, 2\) \(2\)"),
        ({"logits": [[0.0, 1.0]], "labels": [-1]}, r"label out of range \[0, 2\) \(-1\)"),
        ({"logits": [[0.0, 1.0]], "labels": [0.5]}, "row 0: label is not an integer"),
        ({"logits": [[0.0, 1.0]], "labels": [np.nan]}, "label is not an integer"),
        ({"logits": [[0.0, 1.0]], "labels": [0, 1]}, "expected 1 labels"),
        ({"logits": [[0.0, 1.0]], "labels": ["a"]}, "labels must be integers"),
        (
            {"logits": [[0.0, 1.0]], "targets": [[-0.5, 1.5]]},
            "row 0, column 0: target must be a finite probability >= 0",
        ),
        (
            {"logits": [[0.0, 1.0], [0.0, 1.0]], "targets": [[0.5, 0.5], [0.5, 0.6]]},
            r"row 1: targets do not sum to 1 \(tolerance 0.0001\)",
        ),
        ({"logits": [[0.0, 1.0]], "targets": [[0.5, np.nan]]}, "column 1: target must be"),
        ({"logits": [[0.0, 1.0]], "targets": [[0.5, 0.5, 0.0]]}, "targets: expected shape"),
        ({"logits": [[0.0, 1.0]]}, "give exactly one of labels and targets"),
        ({"logits": [[0.0, 1.0]], "labels": [0], "targets": [[1.0, 0.0]]}, "exactly one"),
        (
            {"logits": [[0.0, 1.0]], "labels": [0], "label_smoothing": 1.5},
            r"label_smoothing must be in \[0, 1\]",
        ),
        ({"logits": [[0.0, 1.0]], "labels": [0], "label_smoothing": -0.1}, "label_smoothing"),
        ({"logits": [[0.0, 1.0]], "labels": [0], "label_smoothing": np.nan}, "label_smoothing"),
        (
            {"logits": [[0.0, 1.0]], "labels": [0], "temperature": 0.0},
            "temperature must be a positive finite number",
        ),
        ({"logits": [[0.0, 1.0]], "labels": [0], "temperature": -2.0}, "temperature"),
        ({"logits": [[0.0, 1.0]], "labels": [0], "temperature": np.inf}, "temperature"),
        ({"logits": [[0.0, 1.0]], "labels": [0], "weights": [1.0]}, "weights: expected 2"),
        (
            {"logits": [[0.0, 1.0]], "labels": [0], "weights": [1.0, -1.0]},
            r"column 1: weight must be finite and >= 0 \(-1.0\)",
        ),
        ({"logits": [[0.0, 1.0]], "labels": [0], "reduction": "avg"}, "reduction must be"),
        ({"logits": [[0.0, 1.0]], "labels": [0], "base": "3"}, "base must be"),
        ({"logits": np.zeros((1, 2, 2)), "labels": [0]}, "must be 1-D or 2-D"),
    ],
)
def test_invalid_input(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        cross_entropy(**kwargs)
    assert isinstance(info.value, ValueError)


def test_error_locates_the_first_bad_cell_across_blocks() -> None:
    y = np.zeros((20_000, 3))
    y[17_001, 2] = np.nan
    y[17_003, 0] = np.inf
    with pytest.raises(InvalidInputError, match="row 17001, column 2: logit is NaN") as info:
        cross_entropy(y, np.zeros(20_000, dtype=np.int64))
    assert (info.value.row, info.value.column, info.value.field) == (17001, 2, "logit")


def test_error_is_the_first_one_with_two_threads(two_workers: set[int]) -> None:
    y = np.zeros((400_000, 3))
    y[280_000, 1] = np.nan  # block 12 (thread 0); the +inf is in block 11 (thread 1)
    y[250_000, 2] = np.inf
    with pytest.raises(InvalidInputError, match=r"row 250000, column 2: logit is \+inf"):
        row_losses(y, np.zeros(400_000, dtype=np.int64))
    assert len(two_workers) == 2


def test_ignore_index_allows_its_negative_label() -> None:
    assert cross_entropy([[0.0, 0.0], [0.0, 1.0]], [0, -100], ignore_index=-100) == math.log(2)
    with pytest.raises(InvalidInputError, match="label out of range"):
        cross_entropy([[0.0, 0.0]], [-100], ignore_index=-1)


def test_check_false_gives_the_same_numbers() -> None:
    rng = np.random.default_rng(17)
    y = rng.normal(size=(100, 4))
    labels = rng.integers(0, 4, size=100)
    a = row_losses(y, labels)
    b = row_losses(y, labels, check=False)
    assert np.array_equal(a.loss, b.loss)
    t = rng.dirichlet(np.ones(4), size=100)
    assert np.array_equal(row_losses(y, targets=t).loss, row_losses(y, targets=t, check=False).loss)
    assert cross_entropy(y, labels, check=False) == cross_entropy(y, labels)


def test_logsumexp_and_shapes() -> None:
    assert float(logsumexp([1000.0, 1000.0])) == 1000.6931471805599
    assert logsumexp(np.zeros((3, 4))).shape == (3,)
    assert softmax(np.zeros(4)).shape == (4,)
    st = softmax_steps(np.zeros((2, 3)))
    assert st.max.shape == (2,)
    assert st.shifted_lo.shape == (2, 3)
    assert st.shifted.shape == (2, 3)
    assert float(logsumexp([1e308, 1e308], temperature=0.5)) == math.inf


# ------------------------------------------------------------ the metrics' inputs
def _ranked_rows(k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows with ties (rounded logits) and masked classes, and labels."""
    rng = np.random.default_rng(seed)
    y = np.round(rng.normal(size=(n, k)) * 3, 1)
    y[rng.random((n, k)) < 0.1] = -np.inf
    y[:, 0] = np.where(np.isinf(y).all(axis=1), 0.0, y[:, 0])
    return y, rng.integers(0, k, size=n)


@pytest.mark.parametrize(("k", "temperature"), [(1, 1.0), (3, 1.0), (17, 0.7), (1000, 3.0)])
def test_metric_inputs_against_their_definitions(k: int, temperature: float) -> None:
    """The label's rank (a loop over the classes written here, ties to the lower index),
    the top probability (within PROB_ULP of mpmath) and sum_k q_k**2 (mpmath; a plain
    sum of K squares: within 8 K ulp) of row_losses(metric_inputs=True)."""
    y, labels = _ranked_rows(k, 60, k)
    rows = row_losses(y, labels, temperature=temperature, metric_inputs=True)
    assert rows.label_rank is not None
    assert rows.max_probability is not None
    assert rows.sum_squared_probabilities is not None
    for i in range(len(y)):
        mine = y[i, labels[i]]
        rank = sum(y[i, j] > mine or (y[i, j] == mine and j < labels[i]) for j in range(k))
        assert rows.label_rank[i] == rank
        q = mpref.probabilities(y[i].tolist(), temperature)
        assert mpref.ulps(float(rows.max_probability[i]), max(q)) <= PROB_ULP
        squares = sum(p * p for p in q)
        assert mpref.ulps(float(rows.sum_squared_probabilities[i]), squares) <= 8 * k


def test_metric_inputs_do_not_depend_on_the_blocks(two_workers: set[int]) -> None:
    """The same bits for a row whether it comes alone (a one-row block, which numpy would
    sum pairwise), in a small batch, or in a batch of many blocks on two threads."""
    y, labels = _ranked_rows(300, 4000, 5)
    y[:, 1:] = np.random.default_rng(6).normal(size=(4000, 299)) * 2  # many terms count
    whole = row_losses(y, labels, metric_inputs=True)
    assert len(two_workers) == 2
    single = [(i, i + 1) for i in range(0, 4000, 97)]
    for start, stop in [*single, (100, 103), (3999, 4000), (500, 1500)]:
        part = row_losses(y[start:stop], labels[start:stop], metric_inputs=True)
        for name in ("label_rank", "max_probability", "sum_squared_probabilities"):
            assert getattr(part, name).tobytes() == getattr(whole, name)[start:stop].tobytes()


def test_metric_inputs_with_weights_smoothing_and_ignored_rows() -> None:
    """The options that change the loss leave the softmax facts as they are."""
    y, labels = _ranked_rows(6, 200, 3)
    labels[::5] = -100
    plain = row_losses(y, np.where(labels < 0, 0, labels), metric_inputs=True)
    rows = row_losses(
        y, labels, weights=np.arange(1.0, 7.0), label_smoothing=0.1, ignore_index=-100,
        metric_inputs=True,
    )  # fmt: skip
    keep = labels >= 0
    for name in ("label_rank", "max_probability", "sum_squared_probabilities"):
        assert getattr(rows, name)[keep].tobytes() == getattr(plain, name)[keep].tobytes()


def test_metric_inputs_are_left_out_where_the_kernel_has_none() -> None:
    """Soft targets, two classes (the binary path), given probabilities and the exact path
    leave them None (the metrics compute theirs), and so does the default."""
    y, labels = _ranked_rows(4, 10, 1)
    q = softmax(y)
    cases = [
        row_losses(y, labels),
        row_losses(y, targets=q, metric_inputs=True),
        row_losses(y[:, :2], labels % 2, metric_inputs=True),
        row_losses(q, labels, scores="probs", metric_inputs=True),
        row_losses(y, labels, exact=True, metric_inputs=True),
    ]
    for rows in cases:
        assert rows.label_rank is None
        assert rows.max_probability is None
        assert rows.sum_squared_probabilities is None
