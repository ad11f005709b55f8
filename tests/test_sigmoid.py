"""The sigmoid (binary, multi-label) cross-entropy against mpmath and PyTorch.

mpmath evaluates L = -(p z log sigma(x) + (1 - z) log(1 - sigma(x))) with a few hundred
bits from the float64 inputs taken as exact; PyTorch's BCEWithLogitsLoss (pos_weight,
reductions) and BCELoss (its log clamped at -100) are the framework oracles.
"""

from __future__ import annotations

import json

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
