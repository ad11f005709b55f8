"""The sigmoid (binary, multi-label) cross-entropy against mpmath and PyTorch.

mpmath evaluates L = -(p z log sigma(x) + (1 - z) log(1 - sigma(x))) with a few hundred
bits from the float64 inputs taken as exact; PyTorch's BCEWithLogitsLoss (pos_weight,
reductions) and BCELoss (its log clamped at -100) are the framework oracles.
"""

from __future__ import annotations

import json
import math

import mpmath as mp
import mpref
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xentcli.cli.main import cli
from xentcli.core import bce_with_logits

ULP = 2


def exact(x: float, z: float, p: float = 1.0) -> mp.mpf:
    with mp.workprec(400):
        xm, zm, pm = mp.mpf(x), mp.mpf(z), mp.mpf(p)
        log_sig = -mp.log1p(mp.exp(-xm))
        log_one_minus = -mp.log1p(mp.exp(xm))
        return -(pm * zm * log_sig + (1 - zm) * log_one_minus)


def cases(seed: int, n: int = 400):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [
            rng.normal(0, 3, n),
            rng.normal(0, 40, n // 4),
            rng.uniform(-800, 800, n // 4),
            [0.0, 1e-300, -1e-300, 36.0, -36.0, 709.0, -745.0, 800.0, -800.0, 1e-8, -1e-8],
        ]
    )
    hard = rng.integers(0, 2, x.size).astype(float)
    soft = rng.uniform(0, 1, x.size)
    return x, hard, soft


@pytest.mark.parametrize("kind", ["hard", "soft", "pos_weight"])
def test_within_2_ulp_of_mpmath(kind: str) -> None:
    x, hard, soft = cases(1)
    z = hard if kind == "hard" else soft
    p = np.random.default_rng(2).uniform(0.1, 5.0, x.size) if kind == "pos_weight" else None
    got = bce_with_logits(x, z, p).loss
    worst = 0.0
    for i in range(x.size):
        want = exact(float(x[i]), float(z[i]), 1.0 if p is None else float(p[i]))
        worst = max(worst, mpref.ulps(float(got[i]), want))
    assert worst <= ULP


def test_against_pytorch_with_pos_weight_and_reductions() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 4, (20, 3))
    z = rng.integers(0, 2, (20, 3)).astype(float)
    p = np.array([0.5, 2.0, 3.0])
    ours = bce_with_logits(x, z, p)
    # PyTorch forms (1 - z) x + ... , which cancels for z = 0 and x < 0: its value is
    # good to about an ulp of |x|, not of the loss (xent's is, see above).
    slack = 4 * np.finfo(float).eps * (np.abs(x) + 1)
    for reduction, value in (
        ("none", ours.loss),
        ("mean", ours.loss.mean()),
        ("sum", ours.loss.sum()),
    ):
        want = torch.nn.functional.binary_cross_entropy_with_logits(
            torch.tensor(x), torch.tensor(z), pos_weight=torch.tensor(p), reduction=reduction
        ).numpy()
        tolerance = {"none": slack, "mean": slack.mean(), "sum": slack.sum()}[reduction]
        assert np.all(np.abs(value - want) <= tolerance)
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(
        xt, torch.tensor(z), pos_weight=torch.tensor(p), reduction="sum"
    ).backward()
    np.testing.assert_allclose(ours.gradient, xt.grad.numpy(), rtol=1e-13, atol=4e-16 * p.max())


def test_steps_sigmoid_and_logs() -> None:
    x = np.array([-800.0, -3.0, 0.0, 2.0, 40.0])
    r = bce_with_logits(x, np.ones_like(x))
    for i, v in enumerate(x):
        with mp.workprec(400):
            sig = 1 / (1 + mp.exp(-mp.mpf(v)))
            assert mpref.ulps(float(r.sigmoid[i]), sig) <= 2
            assert mpref.ulps(float(r.log_sigmoid[i]), mp.log(sig)) <= 2
            assert mpref.ulps(float(r.log_one_minus[i]), -mp.log1p(mp.exp(mp.mpf(v)))) <= 2


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_compute_sigmoid_json_and_naive() -> None:
    data = json.loads(
        _cli(
            "compute",
            "--sigmoid",
            "--logits",
            "2.0,-1.0,0.5,-800",
            "--target",
            "1,0,1,1",
            "--naive",
            "--format",
            "json",
        )
    )
    x = [2.0, -1.0, 0.5, -800.0]
    z = [1.0, 0.0, 1.0, 1.0]
    for k in range(4):
        assert mpref.ulps(data["losses"][k], exact(x[k], z[k])) <= ULP
    with mp.workprec(400):
        mean = mp.fsum(exact(a, b) for a, b in zip(x, z, strict=True)) / 4
    assert mpref.ulps(data["loss"], mean) <= ULP
    assert data["losses"][3] == 800.0
    naive = data["naive"]
    assert naive["losses"][3] == "inf"  # log(sigma(-800)) = log(0)
    clamped = torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(torch.tensor(x, dtype=torch.float64)),
        torch.tensor(z, dtype=torch.float64),
        reduction="none",
    )
    assert naive["bce_loss_clamped"][3] == clamped[3].item() == 100.0
    np.testing.assert_allclose(naive["bce_loss_clamped"], clamped.numpy(), rtol=1e-12)


def test_compute_sigmoid_table_explain_and_pos_weight() -> None:
    out = _cli(
        "compute",
        "--sigmoid",
        "--logits",
        "2.0,-1.0,0.5",
        "--target",
        "1,0,1",
        "--pos-weight",
        "1,1,3",
        "--explain",
    )
    assert "sigma(x)" in out
    assert "Step by step" in out
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64),
        torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64),
        pos_weight=torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64),
    ).item()
    assert f"{want:.5g}" in out


def test_sigmoid_markdown_latex_and_usage_errors() -> None:
    args = ["compute", "--sigmoid", "--logits", "2.0,-1.0", "--target", "1,0"]
    md = _cli(*args, "--format", "markdown")
    assert "softplus" in md
    assert "| 0 | 2 | 1 | 0.8808 |" in md
    tex = _cli(*args, "--format", "latex")
    assert tex.startswith("\\documentclass{article}")
    assert tex.rstrip().endswith("\\end{document}")
    for extra, message in (
        (["--label", "0"], "--label and --target"),
        (["--weights", "1,2"], "use --pos-weight"),
        (["--pos-weight", "1"], "--pos-weight: 1 value"),
    ):
        result = CliRunner().invoke(cli, [*args, *extra])
        assert result.exit_code == 2, result.output
        assert message in result.output
    result = CliRunner().invoke(
        cli, ["compute", "--logits", "1,2", "--target", "1,0.5", "--sigmoid"]
    )
    assert result.exit_code == 0
    no_sigmoid = CliRunner().invoke(
        cli, ["compute", "--logits", "1,2", "--label", "0", "--pos-weight", "2,2"]
    )
    assert no_sigmoid.exit_code == 2
    assert "--pos-weight goes with --sigmoid" in no_sigmoid.output


# -- probabilities and log-probabilities (xent batch --sigmoid --scores probs|logprobs) ------


def mp_log1mexp(lp: mp.mpf) -> mp.mpf:
    """log(1 - e^l) in mpmath: each form where its argument keeps its digits at 400 bits
    (1 - e^l is 1 to 400 bits for l < -280, its log1p is not)."""
    return mp.log1p(-mp.exp(lp)) if lp < -1 else mp.log(-mp.expm1(lp))


def exact_from_probability(p: float, z: float, w: float = 1.0, log: bool = False) -> mp.mpf:
    """-(w z log p + (1 - z) log(1 - p)) from the float p (or the float log p) taken as
    exact; 0 log 0 = 0, and an infinite term where the other factor is not 0."""
    with mp.workprec(400):
        zm, wm = mp.mpf(z), mp.mpf(w)
        if log:
            lp = mp.mpf(p) if p != -math.inf else None
            pm = mp.mpf(0) if lp is None else mp.exp(lp)
        else:
            pm = mp.mpf(p)
            lp = mp.log(pm) if pm > 0 else None
        # 1 - p from the float p: log1p(-p), or -expm1(l) from the float l (both exact
        # in the argument, where 1 - p at 400 bits would not be for p near 2^-1074).
        if log:
            lq = None if lp == 0 else (mp_log1mexp(lp) if lp is not None else mp.mpf(0))
        else:
            lq = mp.log1p(-pm) if pm < 1 else None
        total = mp.mpf(0)
        for weight, value in ((wm * zm, lp), (1 - zm, lq)):
            if weight == 0:
                continue
            if value is None:
                return mp.inf
            total -= weight * value
        return total


def probability_cases(seed: int, n: int = 300) -> np.ndarray:
    """Probabilities at every scale: near 0 (down to the subnormals), near 1 (down to
    1 - 2^-53), around 1/2, and the ends."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.uniform(0, 1, n),
            10.0 ** rng.uniform(-320, -1, n // 3),
            1.0 - 10.0 ** rng.uniform(-16, -1, n // 3),
            [1e-300, 5e-324, 2.0**-1022, 1.0 - 2.0**-53, 1.0 - 2.0**-52, 0.5, 2.0**-54],
            [np.nextafter(0.5, 0.0), np.nextafter(0.5, 1.0), 1e-10, 1.0 - 1e-10],
        ]
    )


def _targets_and_weights(
    rng: np.random.Generator, kind: str, n: int
) -> tuple[np.ndarray, np.ndarray | None]:  # type: ignore[type-arg]
    """0/1 targets ("hard"), soft ones, or soft ones with a pos_weight per row."""
    z = rng.integers(0, 2, n).astype(float) if kind == "hard" else rng.uniform(0, 1, n)
    return z, (rng.uniform(0.1, 5.0, n) if kind == "pos_weight" else None)


def _worst_ulps(got, p, z, w, log: bool = False) -> float:  # type: ignore[no-untyped-def]
    """The largest distance in ulps of the losses *got* from mpmath's, row by row."""
    return max(
        mpref.ulps(
            float(got[i]),
            exact_from_probability(
                float(p[i]), float(z[i]), 1.0 if w is None else float(w[i]), log=log
            ),
        )
        for i in range(p.size)
    )


@pytest.mark.parametrize("kind", ["hard", "soft", "pos_weight"])
def test_bce_with_probs_within_2_ulp_of_mpmath(kind: str) -> None:
    from xentcli.core import bce_with_probs

    p = probability_cases(4)
    rng = np.random.default_rng(5)
    z, w = _targets_and_weights(rng, kind, p.size)
    assert _worst_ulps(bce_with_probs(p, z, w).loss, p, z, w) <= ULP


@pytest.mark.parametrize("kind", ["hard", "soft", "pos_weight"])
def test_bce_with_logprobs_within_2_ulp_of_mpmath(kind: str) -> None:
    from xentcli.core import bce_with_logprobs

    rng = np.random.default_rng(6)
    lp = np.concatenate(
        [
            -(10.0 ** rng.uniform(-300, 3, 400)),
            -rng.uniform(0, 2, 200),
            [0.0, -0.0, -1e-300, -5e-324, -1e-20, -math.log(2.0), -745.0, -800.0],
            [np.nextafter(-math.log(2.0), 0.0), np.nextafter(-math.log(2.0), -1.0)],
        ]
    )
    z, w = _targets_and_weights(rng, kind, lp.size)
    assert _worst_ulps(bce_with_logprobs(lp, z, w).loss, lp, z, w, log=True) <= ULP


def test_log1mexp_within_2_ulp_of_mpmath() -> None:
    from xentcli.core import log1mexp

    rng = np.random.default_rng(7)
    lp = np.concatenate(
        [-(10.0 ** rng.uniform(-300, 2.8, 500)), [-1e-300, -math.log(2.0), -700.0, -1e-16]]
    )
    got = log1mexp(lp)
    for value, mine in zip(lp.tolist(), got.tolist(), strict=True):
        with mp.workprec(400):
            assert mpref.ulps(mine, mp_log1mexp(mp.mpf(value))) <= ULP
    assert log1mexp([0.0])[0] == -math.inf
    assert log1mexp([-math.inf])[0] == 0.0


def test_bce_with_probs_against_pytorch() -> None:
    """torch.nn.functional.binary_cross_entropy in float64 (away from 0 and 1, where its
    clamp of the log at -100 does not act); pos_weight written out by hand in torch."""
    from xentcli.core import bce_with_logprobs, bce_with_probs

    rng = np.random.default_rng(8)
    p = rng.uniform(0.001, 0.999, (40, 3))
    for z in (rng.integers(0, 2, p.shape).astype(float), rng.uniform(0, 1, p.shape)):
        pt, zt = torch.tensor(p), torch.tensor(z)
        want = torch.nn.functional.binary_cross_entropy(pt, zt, reduction="none").numpy()
        # torch computes log(1 - p) with 1 - p rounded: good to a few ulp of the loss here.
        np.testing.assert_allclose(bce_with_probs(p, z).loss, want, rtol=1e-13, atol=0)
        np.testing.assert_allclose(bce_with_logprobs(np.log(p), z).loss, want, rtol=1e-13)
        w = np.array([0.5, 2.0, 3.0])
        by_hand = -(torch.tensor(w) * zt * torch.log(pt) + (1 - zt) * torch.log1p(-pt))
        np.testing.assert_allclose(bce_with_probs(p, z, w).loss, by_hand.numpy(), rtol=1e-14)
        mean = torch.nn.functional.binary_cross_entropy(pt, zt, reduction="mean").item()
        assert bce_with_probs(p, z).loss.mean() == pytest.approx(mean, rel=1e-14)


def test_probability_0_or_1_is_an_infinite_loss_unless_its_weight_is_0() -> None:
    """PyTorch's BCELoss clamps each log at -100 (a loss of 100); xent does not."""
    from xentcli.core import bce_with_logprobs, bce_with_probs

    p = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    z = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    got = bce_with_probs(p, z).loss
    assert got.tolist() == [math.inf, math.inf, 0.0, 0.0, math.inf, math.inf]
    assert (
        bce_with_logprobs(np.log(p + 0.0, where=p > 0, out=np.full(6, -math.inf)), z).loss.tolist()
        == got.tolist()
    )
    clamped = torch.nn.functional.binary_cross_entropy(
        torch.tensor(p), torch.tensor(z), reduction="none"
    )
    assert clamped.tolist()[:2] == [100.0, 100.0]  # what xent does not copy
    # pos_weight 0 silences the positive term: 0 log 0 = 0.
    assert bce_with_probs([0.0], [1.0], [0.0]).loss.tolist() == [0.0]


def test_predicted_1_where_the_probability_is_above_one_half() -> None:
    from xentcli.core import sigmoid_predicted

    half = 0.5
    p = np.array([np.nextafter(half, 0.0), half, np.nextafter(half, 1.0)])
    assert sigmoid_predicted(p, "probs").tolist() == [False, False, True]
    assert sigmoid_predicted(np.array([-1e-300, 0.0, 1e-300]), "logits").tolist() == [
        False,
        False,
        True,
    ]
    # A log-probability l: e^l > 1/2 decided exactly (mpmath), at the floats around -ln 2.
    lp = -math.log(2.0)
    around = [np.nextafter(lp, -1.0), lp, np.nextafter(lp, 0.0), -0.5, -1.0]
    with mp.workprec(200):
        want = [mp.exp(mp.mpf(float(v))) > mp.mpf(0.5) for v in around]
    assert sigmoid_predicted(np.array(around), "logprobs").tolist() == want
    assert want[:3] == [False, True, True]


def test_invalid_probabilities_are_refused() -> None:
    from xentcli.core import bce_with_logprobs, bce_with_probs
    from xentcli.errors import InvalidInputError

    for bad in (1.2, -0.1, math.nan):
        with pytest.raises(InvalidInputError, match=r"probabilities must be in \[0, 1\]"):
            bce_with_probs([bad], [1.0])
    for bad in (0.3, math.nan, math.inf):
        with pytest.raises(InvalidInputError, match="log-probabilities must be <= 0"):
            bce_with_logprobs([bad], [1.0])
    with pytest.raises(InvalidInputError, match=r"targets must be in \[0, 1\]"):
        bce_with_probs([0.5], [1.5])


@pytest.mark.parametrize("function", ["bce_with_logits", "bce_with_probs", "bce_with_logprobs"])
def test_python_pos_weight_is_checked_as_the_commands_check_it(function: str) -> None:
    # The commands refused a negative, infinite or NaN --pos-weight; the functions took
    # it and gave a negative (or nan) loss.
    import xentcli.core as core
    from xentcli.errors import InvalidInputError

    loss = getattr(core, function)
    scores = {"bce_with_logits": [[0.5, -1.0]], "bce_with_probs": [[0.6, 0.3]]}.get(
        function, [[math.log(0.6), math.log(0.3)]]
    )
    for bad in ([-1.0, 1.0], [math.inf, 1.0], [math.nan, 1.0]):
        with pytest.raises(InvalidInputError, match="pos_weight must be finite numbers >= 0"):
            loss(scores, [[1.0, 0.0]], bad)
    with pytest.raises(InvalidInputError, match="pos_weight: 3 values for 2 labels"):
        loss(scores, [[1.0, 0.0]], [1.0, 2.0, 3.0])
    got = loss(scores, [[1.0, 0.0]], [0.0, 2.0]).loss  # a zero weight: the positive term goes
    assert got[0, 0] == 0.0
