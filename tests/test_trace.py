"""The trace of one sample against an independent mpmath reference.

Tolerances are stated in units in the last place (ulp) of the reference value.
"""

from __future__ import annotations

import dataclasses
import math

import mpmath
import pytest

from xentcli.compute.trace import build_trace
from xentcli.errors import InvalidInputError

# 400 digits: enough that 1 - q for q = 1 - 4e-87 keeps all its own digits. Set per
# call (workdps), never globally: other test modules use mpmath too.
DPS = 400
INF = math.inf


def ulps(value: float, reference: mpmath.mpf | float) -> float:
    """Distance of *value* from *reference* in ulps of the reference (as a float)."""
    with mpmath.workdps(DPS):
        return _ulps(value, reference)


def _ulps(value: float, reference: mpmath.mpf | float) -> float:
    ref = float(reference)
    if math.isinf(ref) or math.isinf(value):
        return 0.0 if value == ref else math.inf
    scale = math.ulp(ref) if ref != 0 else math.ulp(0.0)
    return float(abs(mpmath.mpf(value) - mpmath.mpf(reference)) / scale)


# ----------------------------------------------------------------------- reference
def reference(case: dict[str, object]) -> dict[str, object]:
    """Loss, gradient, unshifted sum and 1 - q_i of *case*, in mpmath."""
    with mpmath.workdps(DPS):
        return _reference(case)


def _reference(case: dict[str, object]) -> dict[str, object]:
    logits = [mpmath.mpf(v) for v in case["logits"]]  # type: ignore[attr-defined]
    k = len(logits)
    temperature = mpmath.mpf(case.get("temperature", 1.0))  # type: ignore[arg-type]
    smoothing = mpmath.mpf(case.get("label_smoothing", 0.0))  # type: ignore[arg-type]
    weights = case.get("weights") or [1.0] * k
    log_base = {"e": mpmath.mpf(1), "2": mpmath.log(2), "10": mpmath.log(10)}[
        case.get("base", "e")  # type: ignore[index]
    ]
    if case.get("targets") is not None:
        target = [mpmath.mpf(t) for t in case["targets"]]  # type: ignore[attr-defined]
    else:
        target = [mpmath.mpf(int(c == case["label"])) for c in range(k)]
    target = [(1 - smoothing) * t + smoothing / k for t in target]
    coefficient = [mpmath.mpf(w) * t for w, t in zip(weights, target, strict=True)]  # type: ignore[call-overload]

    def loss(*ys: mpmath.mpf) -> mpmath.mpf:
        z = [y / temperature for y in ys]
        total = mpmath.fsum(mpmath.exp(v) for v in z if v != -mpmath.inf)
        lse = mpmath.log(total)
        terms = (a * (lse - v) for a, v in zip(coefficient, z, strict=True) if a != 0)
        return mpmath.fsum(terms) / log_base

    z = [y / temperature for y in logits]
    total = mpmath.fsum(mpmath.exp(v) for v in z if v != -mpmath.inf)
    q = [mpmath.exp(v) / total if v != -mpmath.inf else mpmath.mpf(0) for v in z]
    big_a = mpmath.fsum(coefficient)
    scale = temperature * log_base
    gradient = [(qc * big_a - a) / scale for qc, a in zip(q, coefficient, strict=True)]
    out: dict[str, object] = {
        "loss": loss(*logits),
        "gradient": gradient,
        "sum": total,
        "q": q,
        "loss_fn": loss,
        "coefficient": coefficient,
    }
    if case.get("label") is not None:
        i = case["label"]
        out["one_minus_q"] = mpmath.fsum(q[c] for c in range(k) if c != i)
    return out


CASES = {
    "seed": {"logits": [1.2, 2.3, 0.8], "label": 1},
    "confident": {"logits": [0.0, -40.0], "label": 0},
    "very confident": {"logits": [-100.0, 100.0, -100.0, -100.0], "label": 1},
    "wrong and sure": {"logits": [30.0, -5.0, 2.5], "label": 1},
    "huge logits": {"logits": [1000.0, 1001.0, 1002.0], "label": 0},
    "masked class": {"logits": [1.0, -INF, 0.5], "label": 2},
    "weights": {"logits": [1.2, 2.3, 0.8], "label": 0, "weights": [0.5, 2.0, 3.0]},
    "smoothing": {"logits": [1.2, 2.3, 0.8], "label": 1, "label_smoothing": 0.1},
    "weights and smoothing": {
        "logits": [0.3, -1.7, 2.9, 0.0],
        "label": 3,
        "weights": [1.0, 0.25, 4.0, 2.0],
        "label_smoothing": 0.2,
    },
    "soft targets": {"logits": [1.2, 2.3, 0.8], "targets": [0.1, 0.8, 0.1]},
    "soft targets, weights, smoothing": {
        "logits": [2.0, -1.0, 0.5],
        "targets": [0.0, 0.25, 0.75],
        "weights": [3.0, 1.0, 0.5],
        "label_smoothing": 0.05,
    },
    "temperature": {"logits": [1.2, 2.3, 0.8], "label": 2, "temperature": 0.5},
    "bits": {"logits": [1.2, 2.3, 0.8], "label": 1, "base": "2"},
    "bans and temperature": {
        "logits": [4.0, 1.0, -2.0],
        "label": 0,
        "base": "10",
        "temperature": 3.0,
    },
    "one class": {"logits": [7.5], "label": 0},
}


def trace_of(case: dict[str, object]):  # type: ignore[no-untyped-def]
    kwargs = {key: value for key, value in case.items() if key not in ("logits", "label")}
    return build_trace(case["logits"], case.get("label"), **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- tests
def test_seed_example_values():
    t = build_trace([1.2, 2.3, 0.8], 1)
    # The seed worked example's values (docs/architecture.md) to 12 significant digits.
    assert t.max == 2.3
    assert t.argmax == 1
    assert [round(v, 12) for v in t.exp_shifted] == [0.332871083698, 1.0, 0.223130160148]
    assert round(t.sum_exp_shifted, 11) == 1.55600124385
    assert round(t.log_sum_exp_shifted, 12) == 0.442119225143
    assert [round(v, 12) for v in t.probabilities] == [
        0.213927260672,
        0.642673008106,
        0.143399731222,
    ]
    assert t.sum_exp is not None
    assert round(t.sum_exp, 10) == 15.5198403060
    assert ulps(t.loss, mpmath.mpf("0.44211922514309726")) <= 2
    assert t.loss == t.loss_nats
    assert t.units == "nats"
    assert t.targets == (0.0, 1.0, 0.0)
    assert t.classes == ("0", "1", "2")
    assert t.contributions == (0.0, t.loss, 0.0)


@pytest.mark.parametrize("name", list(CASES))
def test_loss_and_gradient_against_mpmath(name):
    case = CASES[name]
    t = trace_of(case)
    ref = reference(case)
    smoothed_or_soft = "targets" in case or "label_smoothing" in case
    assert ulps(t.loss, ref["loss"]) <= (4 if smoothed_or_soft else 2) + (
        2 if case.get("base", "e") != "e" else 0
    )
    for c, (got, want) in enumerate(zip(t.gradient, ref["gradient"], strict=True)):  # type: ignore[call-overload]
        # q_c A - a_c cancels when q_c A ~ a_c: measure the error against the larger term.
        term = max(
            abs(float(ref["q"][c] * mpmath.fsum(ref["coefficient"]))),  # type: ignore[index]
            abs(float(ref["coefficient"][c])),
        )  # type: ignore[index]
        scale = (
            case.get("temperature", 1.0)
            * {"e": 1, "2": math.log(2), "10": math.log(10)}[case.get("base", "e")]
        )  # type: ignore[index, operator]
        tolerance = 8 * math.ulp(max(term / scale, abs(float(want)), 1e-300))
        assert abs(got - float(want)) <= tolerance, (c, got, float(want))
    if "one_minus_q" in ref:
        assert ulps(t.one_minus_q, ref["one_minus_q"]) <= 4


def test_gradient_formula_is_the_derivative_of_the_loss():
    # The reference gradient (q A - a) / (T ln b) against mpmath's numerical derivative of
    # the reference loss, so that the formula itself is checked, not only its float form.
    case = CASES["soft targets, weights, smoothing"] | {"temperature": 1.7, "base": "2"}
    ref = reference(case)
    loss = ref["loss_fn"]
    point = [mpmath.mpf(v) for v in case["logits"]]  # type: ignore[attr-defined]
    for c in range(len(point)):

        def along(x, c=c):  # type: ignore[no-untyped-def]
            moved = list(point)
            moved[c] = x
            return loss(*moved)  # type: ignore[operator]

        with mpmath.workdps(DPS):
            derivative = mpmath.diff(along, point[c])
            assert abs(derivative - ref["gradient"][c]) < mpmath.mpf(10) ** -40  # type: ignore[index]
    t = trace_of(case)
    assert t.gradient == pytest.approx([float(g) for g in ref["gradient"]], rel=1e-14, abs=1e-300)  # type: ignore[attr-defined]


def test_plain_label_gradient_is_q_minus_onehot_and_sums_to_zero():
    t = build_trace([1.2, 2.3, 0.8], 1)
    assert t.gradient[0] == t.probabilities[0]
    assert t.gradient[2] == t.probabilities[2]
    assert ulps(t.gradient[1], -mpmath.mpf(t.one_minus_q)) == 0  # type: ignore[arg-type]
    assert abs(math.fsum(t.gradient)) <= 4 * math.ulp(1.0)


def test_weighted_gradient_is_w_i_times_q_minus_onehot():
    t = build_trace([1.2, 2.3, 0.8], 0, weights=[0.5, 2.0, 3.0])
    assert t.gradient[1] == pytest.approx(0.5 * t.probabilities[1], rel=1e-15)
    assert t.loss == pytest.approx(0.5 * 1.542119225143097, rel=1e-15)
    assert t.coefficients == (0.5, 0.0, 0.0)


def test_confident_prediction_keeps_the_tiny_loss_and_one_minus_q():
    t = build_trace([0.0, -40.0], 0)
    assert t.probabilities[0] == 1.0  # q_0 itself rounds to 1 in float64
    assert ulps(t.loss, mpmath.log1p(mpmath.exp(-40))) <= 2
    assert t.loss == pytest.approx(4.248354255291589e-18, rel=1e-15)
    assert t.one_minus_q == pytest.approx(4.248354255291589e-18, rel=1e-15)
    assert t.gradient[0] == pytest.approx(-4.248354255291589e-18, rel=1e-15)
    assert t.gradient[1] == pytest.approx(4.248354255291589e-18, rel=1e-15)
    very = build_trace([-100.0, 100.0, -100.0, -100.0], 1)
    assert very.loss == pytest.approx(4.151689580210213e-87, rel=1e-15)


def test_unshifted_sum_is_none_when_float64_cannot_hold_it():
    assert build_trace([1000.0, 1001.0, 1002.0], 0).sum_exp is None
    assert build_trace([709.0, 709.5], 0).sum_exp is None  # e^709 fits, the sum does not
    assert build_trace([-800.0, -801.0], 0).sum_exp is None  # underflows to 0
    fits = build_trace([700.0, 1.0], 0).sum_exp
    assert fits is not None
    assert ulps(fits, mpmath.exp(700) + mpmath.e) <= 4


def test_perplexity_is_e_to_the_loss_in_nats_whatever_the_base():
    nats = build_trace([1.2, 2.3, 0.8], 1)
    bits = build_trace([1.2, 2.3, 0.8], 1, base="2")
    bans = build_trace([1.2, 2.3, 0.8], 1, base="10")
    assert nats.perplexity == pytest.approx(math.exp(nats.loss), rel=1e-15)
    assert bits.perplexity == nats.perplexity == bans.perplexity
    assert bits.units == "bits"
    assert bans.units == "bans"
    assert bits.loss == pytest.approx(nats.loss / math.log(2), rel=1e-15)
    assert bans.loss == pytest.approx(nats.loss / math.log(10), rel=1e-15)
    assert bits.loss_nats == nats.loss


def test_smoothing_target_row_and_contributions():
    t = build_trace([1.2, 2.3, 0.8], 1, label_smoothing=0.3)
    assert t.targets == pytest.approx([0.1, 0.8, 0.1], rel=1e-15)
    assert math.fsum(t.contributions) == pytest.approx(t.loss, rel=1e-15)
    assert all(c > 0 for c in t.contributions)


def test_soft_targets_are_kept_as_given_and_as_used():
    t = build_trace([1.2, 2.3, 0.8], targets=[0.1, 0.8, 0.1], label_smoothing=0.1)
    assert t.targets_given == (0.1, 0.8, 0.1)
    assert t.targets == pytest.approx([0.1233333333333333, 0.7533333333333333, 0.1233333333333333])
    assert t.label is None
    assert t.one_minus_q is None


def test_temperature_divides_the_logits_and_the_gradient():
    t = build_trace([1.2, 2.3, 0.8], 1, temperature=2.0)
    assert t.scaled == (0.6, 1.15, 0.4)
    assert t.temperature == 2.0
    plain = build_trace([0.6, 1.15, 0.4], 1)
    assert t.loss == plain.loss
    assert t.gradient == pytest.approx([g / 2 for g in plain.gradient], rel=1e-15)


def test_masked_class_has_probability_zero_and_contributes_nothing():
    t = build_trace([1.0, -INF, 0.5], 2)
    assert t.probabilities[1] == 0.0
    assert t.exp_shifted[1] == 0.0
    assert t.log_probabilities[1] == -INF
    assert t.contributions[1] == 0.0
    assert t.gradient[1] == 0.0


def test_true_class_at_minus_inf_has_infinite_loss():
    t = build_trace([0.0, -INF], 1)
    assert t.loss == INF
    assert t.perplexity == INF
    assert t.contributions == (0.0, INF)
    assert t.one_minus_q == 1.0
    assert t.gradient == (1.0, -1.0)


def test_one_class_loses_nothing():
    t = build_trace([7.5], 0)
    assert t.loss == 0.0
    assert t.gradient == (0.0,)
    assert t.probabilities == (1.0,)


# ------------------------------------------------------------------------------ naive
def test_naive_overflows_to_nan_for_large_logits():
    t = build_trace([1000.0, 1001.0, 1002.0], 0)
    assert t.naive.exp == (INF, INF, INF)
    assert t.naive.sum_exp == INF
    assert t.naive.overflow
    assert t.naive.nan
    assert not t.naive.underflow
    assert math.isnan(t.naive.loss)
    assert t.loss == pytest.approx(2.4076059644443806, rel=1e-15)  # the stable one is fine


def test_naive_loses_a_confident_loss_to_zero():
    t = build_trace([0.0, -40.0], 0)
    assert t.naive.sum_exp == 1.0
    assert t.naive.probabilities[0] == 1.0
    assert t.naive.loss == 0.0
    assert math.copysign(1.0, t.naive.loss) == 1.0
    assert not t.naive.overflow
    assert not t.naive.nan
    assert t.loss > 0


def test_naive_underflows_for_very_negative_logits():
    t = build_trace([-800.0, -801.0], 1)
    assert t.naive.sum_exp == 0.0
    assert t.naive.underflow
    assert t.naive.nan
    assert t.loss == pytest.approx(1.3132616875182228, rel=1e-15)


def test_naive_agrees_with_stable_on_the_seed():
    t = build_trace([1.2, 2.3, 0.8], 1)
    assert t.naive.loss == pytest.approx(t.loss, rel=1e-15)
    assert t.naive.probabilities == pytest.approx(t.probabilities, rel=1e-15)
    assert t.naive.sum_exp == pytest.approx(15.5198403060, rel=1e-11)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"logits": [1.0, math.nan], "label": 0}, "logit", "NaN"),
        ({"logits": [1.0, INF], "label": 0}, "logit", r"\+inf"),
        ({"logits": [-INF, -INF], "label": 0}, "logit", "-inf"),
        ({"logits": [1.0, 2.0], "label": 2}, "label", "out of range"),
        ({"logits": [1.0, 2.0], "label": -1}, "label", "out of range"),
        ({"logits": [1.0, 2.0], "targets": [0.5]}, "target", "expected 2 target values"),
        ({"logits": [1.0, 2.0], "targets": [0.5, 0.6]}, "target", "sum to 1"),
        ({"logits": [1.0, 2.0], "targets": [1.5, -0.5]}, "target", ">= 0"),
        ({"logits": [1.0, 2.0], "label": 0, "weights": [1.0]}, "weight", "expected 2 weights"),
        ({"logits": [1.0, 2.0], "label": 0, "classes": ["a"]}, "class", "class names"),
    ],
)
def test_invalid_input_names_the_faulty_field(kwargs, field, text):
    logits = kwargs.pop("logits")
    label = kwargs.pop("label", None)
    with pytest.raises(InvalidInputError, match=text) as info:
        build_trace(logits, label, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"label": 0, "targets": [0.5, 0.5]}, "at most one"),
        ({"label": 0, "label_smoothing": 1.5}, "label_smoothing"),
        ({"label": 0, "temperature": 0.0}, "temperature"),
        ({"label": 0, "base": "3"}, "base"),
    ],
)
def test_invalid_options(kwargs, text):
    label = kwargs.pop("label", None)
    with pytest.raises(InvalidInputError, match=text):
        build_trace([1.0, 2.0], label, **kwargs)


def test_trace_is_frozen():
    t = build_trace([1.2, 2.3, 0.8], 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.loss = 0.0  # type: ignore[misc]
    assert t.num_classes == 3
    assert t.effective_weights == (1.0, 1.0, 1.0)
    assert t.log_base == 1.0
