"""Every numeric field of ``xent compute --format json`` against mpmath, within its bound.

The README promises every intermediate value at full precision. Each field the JSON
carries (max, shifted, exp_shifted, sum_exp_shifted, log_sum_exp_shifted, log_sum_exp,
sum_exp, probabilities, log_probabilities, gradient, loss, perplexity, contributions,
one_minus_q) is compared with its exact value (tests/mpfields.py, built on tests/mpref.py)
within the bound that docs/accuracy.md states for it, through the real command line, over
hard families: the
logits of issue 18 (``0.1234567890123,-700.123456789,-3.3,-650.1``, whose shifts have
many significant bits that ``exp`` amplifies), huge and tiny logits, ``-inf`` masks,
temperatures from 1e-300 to 1e5, weights, smoothing, soft targets and bases.

Every finite temperature T > 0 is valid input: tiny ones must give the right values,
never a refusal (exit 2).
"""

from __future__ import annotations

import json
import math
from typing import Any

import mpfields
import numpy as np
import pytest
from hardening import run

ISSUE = [0.1234567890123, -700.123456789, -3.3, -650.1]
TEMPERATURES = [1.0, 1e-300, 1e-6, 1e-3, 0.37, 3.0, 1e5]


def compute_json(
    logits: list[float],
    label: int | None = None,
    *,
    targets: list[float] | None = None,
    weights: list[float] | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    base: str = "e",
) -> dict[str, Any]:
    """``xent compute ... --format json`` (logits written with repr: exact round trip)."""
    args = ["compute", f"--logits={','.join(repr(float(v)) for v in logits)}"]
    if targets is None:
        args.append(f"--label={label}")
    else:
        args.append(f"--target={','.join(repr(float(v)) for v in targets)}")
    if weights is not None:
        args.append(f"--weights={','.join(repr(float(v)) for v in weights)}")
    args += [
        f"--label-smoothing={label_smoothing!r}",
        f"--temperature={temperature!r}",
        f"--base={base}",
        "--format=json",
    ]
    outcome = run(args)
    assert outcome.code == 0, f"exit {outcome.code}: {outcome.stderr}"
    assert outcome.stderr == ""
    return json.loads(outcome.stdout)


def check(logits: list[float], label: int | None = None, **options: Any) -> dict[str, Any]:
    """Run the command and assert every field is within its bound of the exact value."""
    data = compute_json(logits, label, **options)
    bad = mpfields.out_of_bounds(data, logits, label, **options)
    assert not bad, f"fields beyond their bound (error, bound in ulp): {bad}"
    return data


# ------------------------------------------------------------------------ the families
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("label", range(4))
def test_issue_logits_every_field(label: int, temperature: float) -> None:
    check(ISSUE, label, temperature=temperature)


def test_issue_logits_exp_shifted_is_full_precision() -> None:
    """exp(-700.2469...) needs the low part of the shift: without it, ~260 ulp off."""
    data = check(ISSUE, 0)
    exact = mpfields.reference(ISSUE, 0)["exp_shifted"]
    assert mpfields.mpref.ulps(data["exp_shifted"][1], exact[1]) <= mpfields.EXP_ULP
    assert mpfields.mpref.ulps(data["exp_shifted"][3], exact[3]) <= mpfields.EXP_ULP


HARD_ROWS = [
    ([1.2, 2.3, 0.8], 1),  # the seed example
    ([1e300, 1e300 * (1 - 2.0**-52), -1e300], 1),  # huge, near ties
    ([1.7e308, 1.6e308, -1.7e308], 1),  # y - m beyond the float range
    ([1.7e308, 1.6e308, -1.7e308], 2),
    ([3.0, 1e16], 0),  # a huge loss
    ([1e5 + 0.1, 1e5, 1e5 - 3.7], 2),  # large offset, small spread
    ([5e-324, 0.0], 0),  # subnormal differences
    ([1e-310, -1e-310, 3e-320], 2),
    ([0.0, -745.0], 0),  # exp(d) subnormal
    ([0.0, -740.0, -741.5], 1),
    ([0.0, -40.0], 0),  # a confident, correct prediction: loss 4.2e-18
    ([-100.0, 100.0, -100.0, -100.0], 1),
    ([700.0, 709.0, 1.0], 0),  # sum_exp near the top of the float range
    ([0.0, -math.inf, 2.0, -math.inf], 0),  # masked classes
    ([-math.inf, -math.inf, 3.0], 2),
    ([0.0, -math.inf, 1.0], 1),  # the true class is masked: the loss is +inf
]


@pytest.mark.parametrize("temperature", [1.0, 1e-3, 2.5])
@pytest.mark.parametrize(("logits", "label"), HARD_ROWS, ids=[str(r) for r in HARD_ROWS])
def test_hard_rows_every_field(logits: list[float], label: int, temperature: float) -> None:
    check(logits, label, temperature=temperature)


@pytest.mark.parametrize("temperature", [1.0, 1e-3, 0.3])
def test_wide_inexact_shifts_every_field(temperature: float) -> None:
    """|y - m| of hundreds with every bit significant: exp amplifies a dropped low part."""
    rng = np.random.default_rng(18)
    for _ in range(12):
        y = rng.uniform(-700, 0.7, size=5)
        y[0] = rng.uniform(0.1, 0.9) * np.pi
        check([float(v) for v in y], int(rng.integers(0, 5)), temperature=temperature)


@pytest.mark.parametrize("base", ["e", "2", "10"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5]])
def test_options_every_field(
    base: str, label_smoothing: float, weights: list[float] | None
) -> None:
    options: dict[str, Any] = {"weights": weights, "label_smoothing": label_smoothing, "base": base}
    check([1.2, 2.3, 0.8], 0, temperature=0.7, **options)
    check([1.2, -30.0, 0.8], None, targets=[0.1, 0.8, 0.1], **options)
    if weights is not None:
        options["weights"] = [*weights, 3.0]
    check(ISSUE, None, targets=[0.25, 0.0, 0.75, 0.0], temperature=3.0, **options)


def test_soft_target_on_masked_classes() -> None:
    check([0.0, -math.inf, 2.0], None, targets=[0.5, 0.0, 0.5])
    data = check([0.0, -math.inf, 2.0], None, targets=[0.5, 0.25, 0.25])
    assert data["loss"] == "inf"


# ------------------------------------------------------------------- tiny temperatures
TINY = [1e-300, 1e-6, 1e-3, 5e-324, 1e-320]


@pytest.mark.parametrize("temperature", TINY)
@pytest.mark.parametrize(
    ("logits", "label"),
    [([1.0, 2.0], 0), ([1.0, -2.0], 0), ([1.0, 1.0 + 2.0**-52], 1), (ISSUE, 2), ([0.5, 0.25], 1)],
)
def test_tiny_temperature_is_computed_not_refused(
    logits: list[float], label: int, temperature: float
) -> None:
    """Every finite T > 0 is valid: exit 0 and the right values, never a usage error."""
    data = check(logits, label, temperature=temperature)
    assert data["temperature"] == temperature


def test_tiny_temperature_limits() -> None:
    # (m - y_i) / T beyond the float range: +inf; the label at the max: exactly 0.
    assert compute_json([1.0, 2.0], 0, temperature=1e-320)["loss"] == "inf"
    assert compute_json([1.0, -2.0], 0, temperature=1e-320)["loss"] == 0.0
    # Within the range, 1/T large but finite: the loss is (m - y_i) / T exactly rounded.
    data = compute_json([1.0, 2.0], 0, temperature=1e-300)
    exact = mpfields.reference([1.0, 2.0], 0, temperature=1e-300)["loss"]
    assert mpfields.mpref.ulps(data["loss"], exact) <= 0.5


def test_bounds_are_stated_in_the_docs() -> None:
    """docs/accuracy.md states the bound of every field this file checks."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "accuracy.md").read_text(encoding="utf-8")
    for field in [
        "max", "shifted", "exp_shifted", "sum_exp_shifted", "log_sum_exp_shifted",
        "log_sum_exp", "sum_exp", "probabilities", "log_probabilities", "gradient",
        "loss", "perplexity", "contributions", "one_minus_q",
    ]:  # fmt: skip
        assert f"`{field}`" in text, field
