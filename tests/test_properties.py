"""Properties of the kernel, checked with hypothesis (modest example counts).

Tolerances are in ulps of float64; where a property is exact (same bits), it says so.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import mpref
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xentcli.core._kernel import (
    ExactSum,
    cross_entropy,
    log_softmax,
    row_losses,
    softmax,
    softmax_steps,
    to_base,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_float = st.floats(allow_nan=False, allow_infinity=False, width=64)
#: Logits from every corner of float64: huge, tiny, subnormal, ties, and masked classes.
any_logit = st.one_of(
    any_float,
    st.floats(-50, 50),
    st.sampled_from(
        [
            0.0,
            -0.0,
            1.0,
            -1.0,
            5e-324,
            -np.inf,
            1.7976931348623157e308,
            -1.7976931348623157e308,
            1e300,
            -1e300,
            40.0,
            -40.0,
        ]
    ),
)


@st.composite
def rows(draw: st.DrawFn, max_k: int = 6, max_n: int = 4) -> np.ndarray:
    k = draw(st.integers(1, max_k))
    n = draw(st.integers(1, max_n))
    y = draw(hnp.arrays(np.float64, (n, k), elements=any_logit))
    for i in range(n):  # a row of only -inf is invalid input
        if np.all(y[i] == -np.inf):
            y[i, draw(st.integers(0, k - 1))] = draw(any_float)
    return y


#: Dyadic logits (multiples of 2**-20 below 2**20): adding an integer shift is exact.
dyadic = st.integers(-(2**40), 2**40).map(lambda i: i * 2.0**-20)


def ulp_gap(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / math.ulp(max(abs(a), abs(b)))


@SETTINGS
@given(rows(), st.data())
def test_any_float64_input_within_ulps_of_the_reference(y: np.ndarray, data: st.DataObject) -> None:
    """The issue's accuracy contract on arbitrary float64 logits: loss 2 ulp, q 3 ulp."""
    n, k = y.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    got = row_losses(y, labels)
    steps = softmax_steps(y)
    for i in range(n):
        row = list(y[i])
        assert mpref.ulps(float(got.loss[i]), mpref.loss(row, int(labels[i]))) <= 2.0
        exact_q = mpref.probabilities(row)
        for c in range(k):
            assert mpref.ulps(float(steps.probabilities[i, c]), exact_q[c]) <= 3.0
    assert (got.loss >= 0).all()


@SETTINGS
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=dyadic),
    st.integers(-(2**20), 2**20),
)
def test_shift_invariance_is_exact(y: np.ndarray, shift: int) -> None:
    """Adding a constant that keeps the logits exact changes nothing: the same bits."""
    moved = y + shift
    assert np.array_equal(moved - shift, y)  # the shift was exact
    assert np.array_equal(softmax(moved), softmax(y))
    assert np.array_equal(log_softmax(moved), log_softmax(y))
    labels = np.zeros(y.shape[0], dtype=np.int64)
    assert np.array_equal(row_losses(moved, labels).loss, row_losses(y, labels).loss)


@SETTINGS
@given(rows(), st.data())
def test_exact_is_the_same_bits_whatever_the_order_of_the_classes(
    y: np.ndarray, data: st.DataObject
) -> None:
    """Permuting the classes (and the labels with them) permutes the correctly rounded
    results, bit for bit: the rounding is unique, whatever order the sums take."""
    n, k = y.shape
    order = np.array(data.draw(st.permutations(range(k))))
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    inverse = np.argsort(order)
    moved = y[:, order]
    assert np.array_equal(
        row_losses(moved, inverse[labels], exact=True).loss,
        row_losses(y, labels, exact=True).loss,
    )
    assert np.array_equal(softmax(moved, exact=True), softmax(y, exact=True)[:, order])
    if np.isfinite(row_losses(y, labels, exact=True).loss).all():
        assert cross_entropy(moved, inverse[labels], exact=True) == cross_entropy(
            y, labels, exact=True
        )


@SETTINGS
@given(rows(max_k=12))
def test_probabilities_sum_to_one(y: np.ndarray) -> None:
    """Each q is within 3 ulp, so the exact sum of the q is within 3 * 2**-52 of 1."""
    q = softmax(y)
    for row in q:
        total = sum((Fraction(float(v)) for v in row), Fraction(0))
        assert abs(total - 1) <= 3 * Fraction(2) ** -52
        assert (row >= 0).all()


@SETTINGS
@given(rows(), st.data())
def test_loss_is_minus_log_q_of_the_label(y: np.ndarray, data: st.DataObject) -> None:
    """loss = -log q_label, the same bits as the log-softmax entry, and >= 0."""
    n, k = y.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    loss = row_losses(y, labels).loss
    lq = log_softmax(y)
    assert np.array_equal(loss, -lq[np.arange(n), labels])
    assert (loss >= 0).all()


@SETTINGS
@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.floats(-1e6, 1e6)
    ),
    st.integers(-8, 8),
    st.data(),
)
def test_temperature_is_division_of_the_logits(
    y: np.ndarray, power: int, data: st.DataObject
) -> None:
    """With T a power of two, y / T is exact: same bits as dividing first."""
    n, k = y.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    t = 2.0**power
    assert np.array_equal(
        cross_entropy(y, labels, temperature=t, reduction="none"),
        cross_entropy(y / t, labels, reduction="none"),
    )
    assert np.array_equal(softmax(y, temperature=t), softmax(y / t))


@SETTINGS
@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(1, 3), st.integers(2, 5)), elements=st.floats(-30, 30)
    ),
    st.floats(0.05, 20),
    st.data(),
)
def test_any_temperature_within_ulps_of_the_reference(
    y: np.ndarray, t: float, data: st.DataObject
) -> None:
    n, k = y.shape
    labels = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    got = cross_entropy(y, labels, temperature=t, reduction="none")
    for i in range(n):
        assert mpref.ulps(float(got[i]), mpref.loss(list(y[i]), labels[i], t)) <= 2.0


@SETTINGS
@given(rows(), st.sampled_from(["2", "10"]), st.data())
def test_bases_are_consistent(y: np.ndarray, base: str, data: st.DataObject) -> None:
    n, k = y.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    nats = cross_entropy(y, labels, reduction="none")
    other = cross_entropy(y, labels, reduction="none", base=base)
    assert np.array_equal(other, to_base(nats, base))  # per row: the same conversion
    mean = cross_entropy(y, labels)
    mean_b = cross_entropy(y, labels, base=base)
    # The mean in bits is rounded once from the exact mean; converting the rounded nats
    # adds at most one more rounding.
    if math.isfinite(mean):
        assert ulp_gap(mean_b, float(to_base(mean, base))) <= 1.0
    else:
        assert mean_b == mean


@SETTINGS
@given(rows(), st.data(), st.booleans())
def test_one_hot_targets_equal_labels(y: np.ndarray, data: st.DataObject, weighted: bool) -> None:
    n, k = y.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    onehot = np.eye(k)[labels]
    by_label = row_losses(y, labels).loss
    by_target = row_losses(y, targets=onehot).loss
    assert np.array_equal(by_label, by_target)  # the same bits
    if weighted:
        w = np.array(data.draw(st.lists(st.floats(0.1, 10), min_size=k, max_size=k)))
        a = row_losses(y, labels, weights=w).loss
        b = row_losses(y, targets=onehot, weights=w).loss
        for x, z in zip(a, b, strict=True):
            assert x == z or ulp_gap(x, z) <= 2.0


@SETTINGS
@given(st.lists(any_float, max_size=60), st.lists(st.integers(0, 60), max_size=6), st.randoms())
def test_exact_sum_is_independent_of_chunking_and_order(
    values: list[float], cuts: list[int], rnd
) -> None:
    whole = ExactSum()
    whole.add(values)
    shuffled = list(values)
    rnd.shuffle(shuffled)
    parts = ExactSum()
    bounds = [0, *sorted(min(c, len(values)) for c in cuts), len(values)]
    for a, b in itertools.pairwise(bounds):
        piece = ExactSum()
        piece.add(np.array(shuffled[a:b], dtype=np.float64))
        parts.merge(piece)
    exact = sum((Fraction(v) for v in values), Fraction(0))
    assert whole.exact() == parts.exact() == exact
    try:
        expected = float(exact)
    except OverflowError:  # beyond the largest float plus half an ulp: rounds to inf
        expected = math.inf if exact > 0 else -math.inf
    assert whole.value() == parts.value() == expected


@SETTINGS
@given(rows(max_n=8), st.data())
def test_mean_is_invariant_under_row_permutation(y: np.ndarray, data: st.DataObject) -> None:
    n, k = y.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(st.floats(0.5, 2), min_size=k, max_size=k)))
    order = np.array(data.draw(st.permutations(range(n))))
    a = cross_entropy(y, labels, weights=w)
    b = cross_entropy(y[order], labels[order], weights=w)
    assert a == b or (math.isnan(a) and math.isnan(b))


@SETTINGS
@given(rows(), st.data())
def test_exact_is_correctly_rounded_on_any_float64_input(
    y: np.ndarray, data: st.DataObject
) -> None:
    """exact=True on arbitrary float64 logits: every loss, q and log q within half an ulp."""
    n, k = y.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    got = row_losses(y, labels, exact=True)
    steps = softmax_steps(y, exact=True)
    for i in range(n):
        row = list(y[i])
        assert mpref.ulps(float(got.loss[i]), mpref.loss(row, int(labels[i]))) <= 0.5
        exact_q = mpref.probabilities(row)
        exact_lq = mpref.log_probabilities(row)
        for c in range(k):
            assert mpref.ulps(float(steps.probabilities[i, c]), exact_q[c]) <= 0.5
            assert mpref.ulps(float(steps.log_probabilities[i, c]), exact_lq[c]) <= 0.5


@SETTINGS
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=dyadic),
    st.integers(-(2**20), 2**20),
    st.sampled_from([1.0, 0.3, 7.0]),
)
def test_exact_shift_invariance_to_the_bit(y: np.ndarray, shift: int, temperature: float) -> None:
    """Correctly rounded results depend only on the exact values: an exact shift of the
    logits changes no bit of the probabilities, log-probabilities or losses, at any
    temperature (the default kernel's guarantee holds at T = 1 only by construction)."""
    moved = y + shift
    assert np.array_equal(moved - shift, y)
    t = {"temperature": temperature, "exact": True}
    assert np.array_equal(softmax(moved, **t), softmax(y, **t))
    assert np.array_equal(log_softmax(moved, **t), log_softmax(y, **t))
    labels = np.zeros(y.shape[0], dtype=np.int64)
    assert np.array_equal(row_losses(moved, labels, **t).loss, row_losses(y, labels, **t).loss)
