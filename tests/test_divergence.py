"""Entropy and KL divergence of soft targets against an independent mpmath reference.

The reference takes the float64 targets and logits as exact values and evaluates
H(p) = -sum p log p and KL(p || q) = sum p (log p - log q) with a few hundred bits, q the
exact softmax (tests/mpref.py). Bounds: 4 ulp of float64 at the exact value.
"""

from __future__ import annotations

import math

import mpmath as mp
import mpref
import numpy as np
import pytest

from xentcli.core import cross_entropy, entropy, kl_divergence

ULP = 4


def exact_entropy(p: list[float]) -> mp.mpf:
    with mp.workprec(mpref.PREC):
        return -mp.fsum(mp.mpf(x) * mp.log(mp.mpf(x)) for x in p if x > 0)


def exact_kl(logits: list[float], p: list[float], temperature: float = 1.0) -> mp.mpf:
    log_q = mpref.log_probabilities(logits, temperature)
    with mp.workprec(mpref.WIDE):
        total = []
        for x, lq in zip(p, log_q, strict=True):
            if x == 0:
                continue
            if lq == -mp.inf:
                return mp.inf
            total.append(mp.mpf(x) * (mp.log(mp.mpf(x)) - lq))
        return mp.fsum(total)


def _rows(rng: np.random.Generator, n: int, k: int, closeness: float) -> tuple:
    """Logits and targets near their softmax: a relative perturbation of *closeness*."""
    y = rng.normal(0, 3, (n, k))
    q = np.exp(y - y.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    p = q * (1 + closeness * rng.uniform(-1, 1, (n, k)))
    p /= p.sum(axis=1, keepdims=True)
    # On a grid of 2**-52, so that the last class takes exactly what the others leave:
    # the float64 targets then sum to exactly 1, as a distribution's should.
    p = np.round(p * 2.0**52) / 2.0**52
    p[:, -1] = 0.0
    p[:, -1] = 1.0 - p.sum(axis=1)
    assert (p.sum(axis=1) == 1.0).all()
    return y, p


@pytest.mark.parametrize("closeness", [1.0, 1e-2, 1e-5, 1e-9, 1e-13])
def test_kl_and_entropy_within_4_ulp(closeness: float) -> None:
    rng = np.random.default_rng(int(-math.log10(closeness)) + 7)
    y, p = _rows(rng, 40, 5, closeness)
    kl = kl_divergence(y, p)
    h = entropy(p)
    for i in range(len(y)):
        assert mpref.ulps(float(kl[i]), exact_kl(list(y[i]), list(p[i]))) <= ULP, (i, kl[i])
        assert mpref.ulps(float(h[i]), exact_entropy(list(p[i]))) <= ULP


def test_tiny_kl_keeps_its_digits() -> None:
    # q and p agree to 12 digits: KL ~ 1e-25, where sum p (log p - log q) in float64
    # (scipy.special.rel_entr, or H subtracted from the loss) returns rounding noise.
    y, p = _rows(np.random.default_rng(3), 20, 4, 1e-12)
    kl = kl_divergence(y, p)
    assert (kl > 0).all()
    assert (kl < 1e-20).all()
    naive = (p * (np.log(p) - np.log(np.exp(y) / np.exp(y).sum(1, keepdims=True)))).sum(1)
    assert any(abs(n - float(k)) > 1e-3 * float(k) for n, k in zip(naive, kl, strict=True))
    for i in range(len(y)):
        assert mpref.ulps(float(kl[i]), exact_kl(list(y[i]), list(p[i]))) <= ULP


def test_hard_cases() -> None:
    cases = [
        ([0.0, -40.0], [1.0, 0.0]),  # KL = the loss, 4.2e-18
        ([1000.0, 1001.0, -np.inf], [0.3, 0.7, 0.0]),  # masked class without target
        ([0.0, 1e-9, 0.0], [1 / 3, 1 / 3, 1 - 2 / 3]),
        ([-700.0, 0.0, 3.0], [1e-300, 0.25, 0.75 - 1e-300]),
        ([30.0, -30.0], [5e-324, 1.0]),
        ([1e300, -1e300], [0.5, 0.5]),
    ]
    for y, p in cases:
        got = float(kl_divergence(y, p))
        assert mpref.ulps(got, exact_kl(y, p)) <= ULP, (y, p, got)
        assert mpref.ulps(float(entropy(p)), exact_entropy(p)) <= ULP


def test_below_the_resolution_the_error_is_absolute() -> None:
    # q and p equal to 30 digits: log p - log q is below what double-double resolves,
    # and the documented bound is an absolute 1e-29 (tiny against any loss).
    for y, p in [([5e-324, 0.0], [0.5, 0.5]), ([0.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 - 2 / 3])]:
        assert abs(float(kl_divergence(y, p)) - float(exact_kl(y, p))) < 1e-29


def test_masked_class_with_target_is_infinite() -> None:
    assert float(kl_divergence([0.0, -np.inf], [0.5, 0.5])) == math.inf


@pytest.mark.parametrize("temperature", [0.3, 2.5])
def test_temperature(temperature: float) -> None:
    y, p = _rows(np.random.default_rng(11), 10, 6, 0.1)
    kl = kl_divergence(y, p, temperature=temperature)
    for i in range(len(y)):
        exact = exact_kl(list(y[i]), list(p[i]), temperature)
        assert mpref.ulps(float(kl[i]), exact) <= ULP


def test_entropy_plus_kl_is_the_loss() -> None:
    y, p = _rows(np.random.default_rng(5), 30, 7, 1.0)
    loss = cross_entropy(y, targets=p, reduction="none")
    np.testing.assert_allclose(entropy(p) + kl_divergence(y, p), loss, rtol=1e-14)


def test_against_scipy() -> None:
    from scipy.special import entr, rel_entr, softmax

    y, p = _rows(np.random.default_rng(9), 25, 5, 1.0)
    np.testing.assert_allclose(entropy(p), entr(p).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(
        kl_divergence(y, p), rel_entr(p, softmax(y, axis=1)).sum(axis=1), rtol=1e-12
    )


# ------------------------------------------------------------------ through the CLI
def _cli(*args: str) -> str:
    from click.testing import CliRunner

    from xentcli.cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_compute_json_entropy_and_kl() -> None:
    import json

    y, p = [-1.0, 2.0, 3.0], [0.1, 0.2, 0.7]
    for base in ("e", "2"):
        data = json.loads(
            _cli(
                "compute",
                "--logits",
                "-1,2,3",
                "--target",
                "0.1,0.2,0.7",
                "--base",
                base,
                "--format",
                "json",
            )
        )
        h, kl = exact_entropy(p), exact_kl(y, p)
        assert mpref.ulps(data["entropy"], mpref.in_base(h, base)) <= ULP
        assert mpref.ulps(data["kl_divergence"], mpref.in_base(kl, base)) <= ULP


def test_compute_table_and_explain_show_the_identity() -> None:
    out = _cli("compute", "--logits", "-1,2,3", "--target", "0.1,0.2,0.7", "--explain")
    assert "entropy of the target H(p)             0.80182 nats" in out
    assert "KL divergence KL(p || q)               0.12474 nats" in out
    assert "H(p) + KL(p || q) = L                  0.92656 nats" in out
    assert "Entropy and KL divergence" in out
    assert "L = H(p) + KL(p || q) = 0.80182 + 0.12474 = 0.92656 nats" in out
    # A one-hot label has no entropy to show.
    assert "H(p)" not in _cli("compute", "--logits", "-1,2,3", "--label", "2")


def test_batch_means_of_entropy_and_kl() -> None:
    import json
    import tempfile
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "digits_distill.csv"
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    y, p = table[:60, :10], table[:60, 10:]
    text = "\n".join(path.read_text().splitlines()[:61])

    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "d.csv"
        small.write_text(text + "\n")
        data = json.loads(
            _cli("batch", str(small), "--target-columns", "target_*", "--format", "json")
        )
    with mp.workprec(mpref.WIDE):
        h = mp.fsum(exact_entropy(list(r)) for r in p) / len(p)
        kl = mp.fsum(exact_kl(list(a), list(b)) for a, b in zip(y, p, strict=True)) / len(p)
    assert mpref.ulps(data["entropy"], h) <= ULP
    assert mpref.ulps(data["kl_divergence"], kl) <= ULP


def test_saved_states_merge_the_entropy_and_kl_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    from pathlib import Path

    lines = (Path(__file__).resolve().parent.parent / "examples" / "digits_distill.csv").read_text()
    header, *rows = lines.splitlines()
    parts = [tmp_path / "a.csv", tmp_path / "b.csv"]
    parts[0].write_text("\n".join([header, *rows[:40]]) + "\n")
    parts[1].write_text("\n".join([header, *rows[40:90]]) + "\n")
    both = tmp_path / "both.csv"
    both.write_text("\n".join([header, *rows[:90]]) + "\n")
    states = []
    for part in parts:
        state = tmp_path / f"{part.stem}.state"
        _cli("batch", str(part), "--target-columns", "target_*", "--save-state", str(state))
        states.append(str(state))
    merged = json.loads(_cli("merge", *states, "--format", "json"))
    whole = json.loads(_cli("batch", str(both), "--target-columns", "target_*", "--format", "json"))
    assert merged["entropy"] == whole["entropy"]
    assert merged["kl_divergence"] == whole["kl_divergence"]
    assert whole["entropy"] + whole["kl_divergence"] == pytest.approx(whole["loss"], rel=1e-14)
