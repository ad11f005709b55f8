"""``xent compute --sigmoid --probs|--logprobs`` and ``--from`` a file of probabilities.

The oracles: PyTorch's ``BCELoss`` (per label, its reductions, its ``weight`` standing in
for ``pos_weight`` where the targets are 0/1, the formula written out in torch where they
are soft, and autograd for dL/dp), scikit-learn's ``log_loss`` label by label, mpmath
from the float inputs taken as exact (each loss within 2 ulp, docs/accuracy.md), and a
one-row file scored by ``xent batch --sigmoid`` (the same bits: one rule in both).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import mpmath as mp
import mpref
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import log_loss
from test_render import check_latex_structure
from test_sigmoid import exact_from_probability

from xentcli.cli.main import cli

ULP = 2  # each loss (docs/accuracy.md)
MEAN_ULP = 3  # a mean of losses each within 2 ulp, rounded once

# Probabilities at several scales (p near 0 and near 1 keep their digits only if
# log(1 - p) is log1p(-p)), hard and soft targets, a pos_weight per label.
P = [0.7, 0.2, 0.9, 1e-12, 0.999999999, 0.5, 0.25]
Z_HARD = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
Z_SOFT = [0.9, 0.1, 0.5, 0.75, 0.3, 1.0, 0.0]
W = [1.0, 2.0, 3.0, 0.5, 1.5, 4.0, 2.5]


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "100", "NO_COLOR": "1"})


def compute_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = run("compute", "--sigmoid", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def items(values: list[float]) -> str:
    return ",".join(repr(v) for v in values)


def floats(values: list[float | str]) -> list[float]:
    return [float(v) for v in values]


@pytest.mark.parametrize("targets", ["hard", "soft"])
def test_losses_against_torch_bceloss_sklearn_and_mpmath(targets: str) -> None:
    z = Z_HARD if targets == "hard" else Z_SOFT
    plain = compute_json("--probs", items(P), "--target", items(z))
    weighted = compute_json("--probs", items(P), "--target", items(z), "--pos-weight", items(W))
    pt, zt, wt = (torch.tensor(v, dtype=torch.float64) for v in (P, z, W))
    # PyTorch's BCELoss, its three reductions (no log reaches its clamp at -100 here).
    for reduction, key in (("none", "losses"), ("mean", "loss"), ("sum", "loss_sum")):
        want = torch.nn.BCELoss(reduction=reduction)(pt, zt)
        np.testing.assert_allclose(plain[key], want.numpy(), rtol=1e-15, atol=0)
    # pos_weight: BCELoss has none. For 0/1 targets it is BCELoss's weight w where z = 1
    # (1 where z = 0); for soft targets the formula written out.
    if targets == "hard":
        weight = torch.where(zt == 1, wt, torch.ones_like(wt))
        for reduction, key in (("none", "losses"), ("sum", "loss_sum")):
            want = torch.nn.BCELoss(weight=weight, reduction=reduction)(pt, zt)
            np.testing.assert_allclose(weighted[key], want.numpy(), rtol=1e-15, atol=0)
    by_hand = -(wt * zt * torch.log(pt) + (1 - zt) * torch.log1p(-pt))
    np.testing.assert_allclose(weighted["losses"], by_hand.numpy(), rtol=1e-15, atol=0)
    assert weighted["loss"] == pytest.approx(by_hand.mean().item(), rel=1e-15)
    # scikit-learn's log_loss, label by label (a soft target as two weighted samples).
    for k, (p, t) in enumerate(zip(P, z, strict=True)):
        want = log_loss([1, 0], [p, p], sample_weight=[t, 1 - t], labels=[0, 1])
        assert plain["losses"][k] == pytest.approx(want, rel=1e-14)
    # mpmath: each loss within 2 ulp, the mean within 3.
    for data, w in ((plain, [1.0] * len(P)), (weighted, W)):
        exact = [exact_from_probability(P[k], z[k], w[k]) for k in range(len(P))]
        for k in range(len(P)):
            assert mpref.ulps(data["losses"][k], exact[k]) <= ULP, k
        with mp.workprec(400):
            assert mpref.ulps(data["loss"], mp.fsum(exact) / len(P)) <= MEAN_ULP


def test_logprobs_against_mpmath_and_torch() -> None:
    """Log-probabilities: log p as given, log(1 - p) by the log1mexp rule; the same
    losses as the probabilities they stand for, to the precision of those."""
    lp = [math.log(p) for p in P] + [-1e-20, -800.0, -math.log(2.0)]
    z = [*Z_SOFT, 0.0, 1.0, 0.5]
    w = [*W, 2.0, 3.0, 0.5]
    data = compute_json("--logprobs", items(lp), "--target", items(z), "--pos-weight", items(w))
    for k in range(len(lp)):
        want = exact_from_probability(lp[k], z[k], w[k], log=True)
        assert mpref.ulps(data["losses"][k], want) <= ULP, k
    # -1e-20: p = 1 - 1e-20 rounds to 1 in float64, so torch's log1p(-p) is -inf; log
    # (1 - p) is log(1e-20) from the log-probability.
    assert data["log_one_minus_sigmoid"][7] == pytest.approx(math.log(1e-20), rel=1e-15)
    assert data["losses"][8] == 2400.0  # 3 x 800: no clamp at 100
    lt, zt, wt = (torch.tensor(v, dtype=torch.float64) for v in (lp[:7], z[:7], w[:7]))
    by_hand = -(wt * zt * lt + (1 - zt) * torch.log1p(-torch.exp(lt)))
    np.testing.assert_allclose(data["losses"][:7], by_hand.numpy(), rtol=1e-9, atol=0)
    assert data["scores"] == "logprobs"
    assert data["scores_given"] == lp
    assert data["log_sigmoid"] == lp


def test_gradient_is_dl_dp_as_torch_autograd_gives_it() -> None:
    for pos_weight in (None, W):
        args = ["--probs", items(P), "--target", items(Z_SOFT)]
        data = compute_json(*args, *(["--pos-weight", items(pos_weight)] if pos_weight else []))
        pt = torch.tensor(P, dtype=torch.float64, requires_grad=True)
        zt = torch.tensor(Z_SOFT, dtype=torch.float64)
        if pos_weight is None:
            torch.nn.BCELoss(reduction="sum")(pt, zt).backward()
        else:
            wt = torch.tensor(pos_weight, dtype=torch.float64)
            (-(wt * zt * torch.log(pt) + (1 - zt) * torch.log1p(-pt))).sum().backward()
        assert pt.grad is not None
        np.testing.assert_allclose(data["gradient"], pt.grad.numpy(), rtol=1e-12, atol=0)
        assert data["gradient_with_respect_to"] == "probabilities"
    logits = compute_json("--logits", "2,-1", "--target", "1,0")
    assert logits["gradient_with_respect_to"] == "logits"
    assert logits["scores"] == "logits"
    assert logits["predicted"] == [1, 0]


def test_probability_0_or_1_is_an_infinite_loss_where_torch_clamps_at_100() -> None:
    p, z = [0.0, 1.0, 0.0, 1.0, -0.0], [1.0, 0.0, 0.0, 1.0, 1.0]
    data = compute_json("--probs", items(p), "--target", items(z))
    assert data["losses"] == ["inf", "inf", 0.0, 0.0, "inf"]
    assert data["loss"] == data["loss_sum"] == "inf"
    assert data["gradient"] == ["-inf", "inf", 1.0, -1.0, "-inf"]  # -1/p, 1/(1 - p)
    assert data["logits"] == ["-inf", "inf", "-inf", "inf", "-inf"]
    clamped = torch.nn.BCELoss(reduction="none")(
        torch.tensor(p, dtype=torch.float64), torch.tensor(z, dtype=torch.float64)
    )
    assert clamped.tolist() == [100.0, 100.0, 0.0, 0.0, 100.0]
    # A zero pos_weight takes the positive term away: 0 log 0 = 0.
    assert compute_json("--probs", "0", "--target", "1", "--pos-weight", "0")["losses"] == [0.0]
    assert compute_json("--logprobs", "-inf,0", "--target", "1,0")["losses"] == ["inf", "inf"]
    table = run("compute", "--sigmoid", "--probs", "0,0.5", "--target", "1,0")
    assert table.exit_code == 0
    assert "0    0  1     -inf           0     inf    -inf          0\n" in table.stdout
    assert "mean loss (PyTorch's reduction='mean', over the labels)  inf nats\n" in table.stdout


def test_predicted_where_the_probability_is_above_one_half() -> None:
    p = [0.5, float(np.nextafter(0.5, 1.0)), 0.9, 0.1]
    assert compute_json("--probs", items(p), "--target", "1,1,1,1")["predicted"] == [0, 1, 1, 0]
    # The float nearest -ln 2 is above it: e^l > 1/2 exactly (mpmath says so).
    lp = [-math.log(2.0), float(np.nextafter(-math.log(2.0), -1.0))]
    with mp.workprec(200):
        want = [int(mp.exp(mp.mpf(v)) > mp.mpf(0.5)) for v in lp]
    assert want == [1, 0]
    assert compute_json("--logprobs", items(lp), "--target", "1,1")["predicted"] == want


TABLE = """\
Sigmoid cross-entropy: 3 labels (binary cross-entropy of the probabilities, per label)

k    p  z  pos_weight    log p  log(1 - p)    loss    dL/dp  predicted
----------------------------------------------------------------------
0  0.7  1           1  -0.3567     -1.2040  0.3567  -1.4286          1
1  0.2  0           2  -1.6094     -0.2231  0.2231   1.2500          0
2  0.9  1           3  -0.1054     -2.3026  0.3161  -3.3333          1

mean loss (PyTorch's reduction='mean', over the labels)  0.29863 nats
sum of the losses (reduction='sum')                     0.89590 nats

Given probabilities: the steps start from p (no sigmoid step). The loss is PyTorch's
BCELoss (with pos_weight as BCEWithLogitsLoss has it) without its clamp of each
log at -100: p = 0 with z > 0 (or p = 1 with z < 1) is an infinite loss.
dL/dp is the gradient with respect to the given probability p (with respect to
the logit log(p / (1 - p)) it implies it would be (1 - z) p - w z (1 - p)).
predicted 1 (p > 0.5): labels 0, 2
"""

ARGS = ["compute", "--sigmoid", "--probs", "0.7,0.2,0.9", "--target", "1,0,1"]


def test_table_explain_markdown_and_json_steps() -> None:
    result = run(*ARGS, "--pos-weight", "1,2,3")
    assert (result.exit_code, result.stdout, result.stderr) == (0, TABLE, "")
    explained = run(*ARGS, "--pos-weight", "1,2,3", "--explain").stdout
    assert explained.startswith(TABLE + "\nStep by step\n")
    assert "   label 2: w = 3, z = 1: L = 0.31608 nats\n" in explained
    assert "   dL/dp = (1 - z) / (1 - p) - w z / p" in explained
    assert explained.endswith("6) Predicted 1 where p > 0.5: [1, 0, 1]\n")
    data = compute_json(*ARGS[2:], "--explain")
    assert data["steps"][-1] == "6) Predicted 1 where p > 0.5: [1, 0, 1]"
    md = run(*ARGS, "--format", "markdown").stdout
    assert "| k | p | z | log p | log(1 - p) | loss | dL/dp | predicted |\n" in md
    assert "| 0 | 0.7 | 1 | -0.3567 | -1.2040 | 0.3567 | -1.4286 | 1 |\n" in md
    assert "Predicted 1 ($p_k > 0.5$): labels 0, 2.\n" in md
    logprobs = run("compute", "--sigmoid", "--logprobs", "-0.5,-2", "--target", "1,0").stdout
    assert "k  log p  z       p  log(1 - p)    loss    dL/dp  predicted\n" in logprobs
    assert "1     -2  0  0.1353     -0.1454  0.1454   1.1565          0\n" in logprobs


def test_latex_compiles(tmp_path: Path) -> None:
    assert shutil.which("pdflatex"), "pdflatex is needed (apt-get install texlive-latex-base)"
    for args in (ARGS, ["compute", "--sigmoid", "--logprobs", "-0.5,-inf", "--target", "1,1"]):
        tex = run(*args, "--format", "latex").stdout
        check_latex_structure(tex)
        (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
        result = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
             "doc.tex"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-2000:]


def _one_row_file(path: Path, scores: list[float]) -> Path:
    names = [f"s{k}" for k in range(len(scores))]
    header = ",".join(names + [f"y_{n}" for n in names])
    path.write_text(f"{header}\n{items(scores)},{items(Z_SOFT[: len(scores)])}\n")
    return path


@pytest.mark.parametrize("kind", ["probs", "logprobs"])
def test_the_same_numbers_as_xent_batch_on_a_one_row_file(kind: str, tmp_path: Path) -> None:
    scores = P if kind == "probs" else [math.log(p) for p in P]
    path = _one_row_file(tmp_path / "row.csv", scores)
    common = ["--sigmoid", "--target-columns", "y_*", "--pos-weight", items(W)]
    batch = run("batch", str(path), *common, "--scores", kind, "--format", "json")
    assert batch.exit_code == 0, batch.stderr
    summary = json.loads(batch.stdout)
    given = compute_json(f"--{kind}", items(scores), "--target", items(Z_SOFT), "--pos-weight",
                         items(W))  # fmt: skip
    assert given["losses"] == summary["label_loss"]
    assert (given["loss"], given["loss_sum"]) == (summary["loss"], summary["loss_sum"])
    read = run("compute", "--from", f"{path}:2", *common, "--scores", kind, "--format", "json")
    assert (read.exit_code, read.stderr) == (0, "")  # given, not detected: nothing to say
    assert json.loads(read.stdout) == given


def read_args(path: Path) -> list[str]:
    return ["compute", "--sigmoid", "--from", f"{path}:2", "--target-columns", "y_*"]


def test_from_detects_probabilities_and_says_so(tmp_path: Path) -> None:
    path = _one_row_file(tmp_path / "row.csv", P)
    args = ["compute", "--sigmoid", "--from", f"{path}:2", "--target-columns", "y_*"]
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "Scores: probabilities (detected; --scores to override)\n"
    data = json.loads(result.stdout)
    assert (data["scores"], data["scores_detected"]) == ("probs", True)
    assert data["losses"] == compute_json("--probs", items(P), "--target", items(Z_SOFT))["losses"]
    # --scores logits overrides: the same numbers worked through as logits.
    logits = json.loads(run(*args, "--scores", "logits", "--format", "json").stdout)
    assert logits["scores"] == "logits"
    assert logits["probabilities"] == [1 / (1 + math.exp(-p)) for p in P]
    # Log-probabilities are never detected (rare labels' logits are negative too).
    logs = _one_row_file(tmp_path / "logs.csv", [-0.5, -2.0])
    read = run(*read_args(logs))
    assert read.stderr == "Scores: logits (detected; --scores to override)\n"
    assert read.stdout.startswith("Sigmoid cross-entropy: 2 labels (binary cross-entropy with")
    as_json = json.loads(run(*read_args(logs), "--format", "json").stdout)
    assert (as_json["scores"], as_json["scores_detected"]) == ("logits", True)
    bad = _one_row_file(tmp_path / "bad.csv", [0.5, 1.5])
    refused = run("compute", "--sigmoid", "--from", f"{bad}:2", "--target-columns", "y_*",
                  "--scores", "probs")  # fmt: skip
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == f"Error: {bad}:2:2: probability is above 1 ('1.5')\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--probs", "0.5,1.5"], "--probs: probability is above 1 at item 1: '1.5'"),
        (["--probs", "-0.1,0.5"], "--probs: probability is negative at item 0: '-0.1'"),
        (["--probs", "0.5,nan"], "--probs: probability is NaN at item 1: 'nan'"),
        (["--probs", "inf,0.5"], "--probs: probability is above 1 at item 0: 'inf'"),
        (["--probs", "-inf,0.5"], "--probs: probability is negative at item 0: '-inf'"),
        (
            ["--logprobs", "-1,0.1"],
            "--logprobs: log-probability is positive (a probability above 1) at item 1: '0.1'",
        ),
        (["--logprobs", "NaN,-1"], "--logprobs: log-probability is NaN at item 0: 'NaN'"),
        (
            ["--logprobs", "-1,1e999"],
            "--logprobs: log-probability is positive (a probability above 1) at item 1: '1e999'",
        ),
        (["--probs", "0.5,0.5", "--target", "1,2"], "--target: targets must be in [0, 1]"),
        (["--probs", "0.5", "--target", "1,0"], "--target: 2 values for 1 label"),
        (
            ["--probs", "0.5,0.5", "--naive"],
            "--naive goes with --logits (it shows sigma(x) taken first, then its log), not --probs",
        ),
    ],
)
def test_bad_values_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    if "--target" not in args:
        args = [*args, "--target", "1,0"]
    result = run("compute", "--sigmoid", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"Error: {message}\n")


def test_no_target_says_what_the_target_is_for() -> None:
    result = run("compute", "--sigmoid", "--logprobs", "-1")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "Error: --sigmoid needs --target: one 0/1 (or soft) value per log-probability\n",
    )
