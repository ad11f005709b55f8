"""xent's emulations of each library's cross-entropy, against the libraries themselves.

PyTorch, scikit-learn and SciPy are installed by the test extra and are the oracles for
their rows. Keras (TensorFlow) and optax (JAX) are not installed: their rows are checked
against the documented formulas, written here again independently:

- Keras 3, ``keras/src/backend/tensorflow/nn.py``: ``categorical_crossentropy`` with
  ``from_logits=False`` divides the output by its sum, clips it to ``[epsilon,
  1 - epsilon]`` (``keras.backend.epsilon() = 1e-7``) and returns ``-sum(target *
  log(output))``; with ``from_logits=True`` it is ``tf.nn.softmax_cross_entropy_with_logits``,
  ``-sum(labels * log_softmax(logits))``; ``SparseCategoricalCrossentropy`` is the same on
  one-hot labels; the default reduction ``"sum_over_batch_size"`` divides the weighted
  sum by the number of rows; everything in ``floatx() = float32``.
- optax, ``optax/losses/_classification.py``: ``softmax_cross_entropy_with_integer_labels``
  is ``log(sum(exp(logits - max))) - (logits[label] - max)``; ``softmax_cross_entropy`` is
  ``-sum(labels * log_softmax(logits))``; ``smooth_labels(labels, alpha)`` is
  ``(1 - alpha) * labels + alpha / K``; float32 under JAX's default.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import torch
from sklearn.metrics import log_loss

from xentcli.core import framework_rows

F32 = np.float32


def by_name(rows, name):  # type: ignore[no-untyped-def]
    found = [r for r in rows if r.name == name]
    assert len(found) == 1, [r.name for r in rows]
    return found[0]


def cases(seed: int, n: int = 30):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    for i in range(n):
        k = int(rng.integers(2, 8))
        rows = int(rng.integers(1, 6))
        scale = [1.0, 10.0, 50.0, 1000.0][i % 4]
        y = rng.normal(0, scale, (rows, k))
        labels = rng.integers(0, k, rows)
        yield y, labels, rng


HARD = [
    (np.array([[0.0, -40.0]]), np.array([0])),
    (np.array([[0.0, -40.0]]), np.array([1])),
    (np.array([[1000.0, 1000.5, -3.0]]), np.array([1])),
    (np.array([[-100.0, 100.0, -100.0, -100.0]]), np.array([1])),
    (np.array([[1.2, 2.3, 0.8]]), np.array([1])),
]


def close(got: float, want: float, rel: float, abs_: float = 0.0) -> bool:
    return abs(got - want) <= rel * abs(want) + abs_


@pytest.mark.parametrize(("dtype", "rel"), [(torch.float64, 4e-15), (torch.float32, 4e-6)])
def test_pytorch_labels_weights_smoothing(dtype: torch.dtype, rel: float) -> None:
    name = "PyTorch float64" if dtype == torch.float64 else "PyTorch float32"
    all_cases = [*[(y, lab, None) for y, lab in HARD], *[(y, lab, r) for y, lab, r in cases(1)]]
    for number, (y, labels, rng) in enumerate(all_cases):
        k = y.shape[1]
        weights = None if rng is None or number % 2 else rng.uniform(0.1, 3.0, k)
        eps = 0.0 if rng is None or number % 3 == 0 else float(rng.uniform(0, 0.3))
        got = by_name(framework_rows(y, labels, weights=weights, label_smoothing=eps), name)
        want = torch.nn.functional.cross_entropy(
            torch.tensor(y, dtype=dtype),
            torch.tensor(labels),
            weight=None if weights is None else torch.tensor(weights, dtype=dtype),
            label_smoothing=eps,
        ).item()
        assert close(got.mean(), want, rel, 1e-300), (number, got.mean(), want)
    # A confident prediction's loss is lost exactly as in PyTorch.
    assert by_name(framework_rows([[0.0, -40.0]], [0]), name).mean() == 0.0


@pytest.mark.parametrize(("dtype", "rel"), [(torch.float64, 4e-15), (torch.float32, 4e-6)])
def test_pytorch_soft_targets_with_weights(dtype: torch.dtype, rel: float) -> None:
    name = "PyTorch float64" if dtype == torch.float64 else "PyTorch float32"
    for y, _, rng in cases(2):
        p = rng.dirichlet(np.ones(y.shape[1]), y.shape[0])
        weights = rng.uniform(0.1, 3.0, y.shape[1])
        got = by_name(framework_rows(y, targets=p, weights=weights), name)
        want = torch.nn.functional.cross_entropy(
            torch.tensor(y, dtype=dtype),
            torch.tensor(p, dtype=dtype),
            weight=torch.tensor(weights, dtype=dtype),
        ).item()
        assert close(got.mean(), want, rel), (got.mean(), want)


def test_sklearn_log_loss_clips_and_weights() -> None:
    for number, (y, labels, rng) in enumerate([*[(y, lab, None) for y, lab in HARD], *cases(3)]):
        k = y.shape[1]
        weights = None if rng is None or number % 2 else rng.uniform(0.1, 3.0, k)
        got = by_name(framework_rows(y, labels, weights=weights), "scikit-learn")
        probabilities = scipy.special.softmax(y, axis=1)
        want = log_loss(
            labels,
            probabilities,
            labels=list(range(k)),
            sample_weight=None if weights is None else weights[labels],
        )
        assert close(got.mean(), want, 1e-13), (number, got.mean(), want)
    # The clip bounds the loss by -log(eps) = 36.04 and from below by eps.
    worst = by_name(framework_rows([[0.0, -40.0]], [1]), "scikit-learn").mean()
    assert worst == log_loss([1], [[1.0, 0.0]], labels=[0, 1]) == pytest.approx(36.0437, 1e-5)


def test_scipy_logsumexp_minus_the_label_logit() -> None:
    for y, labels, _ in [*[(y, lab, None) for y, lab in HARD], *cases(4)]:
        got = by_name(framework_rows(y, labels), "SciPy")
        want = scipy.special.logsumexp(y, axis=1) - y[np.arange(len(y)), labels]
        np.testing.assert_allclose(got.loss, want, rtol=1e-15, atol=1e-300)


def keras_documented(y, target, from_logits, sample_weight):  # type: ignore[no-untyped-def]
    y32 = y.astype(F32)
    target = target.astype(F32)
    if from_logits:
        log_q = scipy.special.log_softmax(y32, axis=-1).astype(F32)
        rows = -(target * log_q).sum(axis=-1)
    else:
        output = scipy.special.softmax(y32, axis=-1).astype(F32)
        output = output / output.sum(axis=-1, keepdims=True)
        output = np.clip(output, F32(1e-7), F32(1) - F32(1e-7))
        rows = -(target * np.log(output)).sum(axis=-1)
    return float((rows.astype(np.float64) * sample_weight).sum() / len(y))


@pytest.mark.parametrize("from_logits", [True, False])
def test_keras_against_its_documented_formula(from_logits: bool) -> None:
    kind = "logits" if from_logits else "probabilities"
    for number, (y, labels, rng) in enumerate([*[(y, lab, None) for y, lab in HARD], *cases(5)]):
        k = y.shape[1]
        weights = None if rng is None or number % 2 else rng.uniform(0.1, 3.0, k)
        eps = 0.0 if rng is None or number % 3 == 0 else float(rng.uniform(0, 0.3))
        onehot = np.eye(k)[labels]
        sample_weight = np.ones(len(y)) if weights is None else weights[labels]
        rows = framework_rows(y, labels, weights=weights, label_smoothing=eps)
        smoothed = (1 - eps) * onehot + eps / k
        want = keras_documented(y, smoothed, from_logits, sample_weight)
        got = by_name(rows, f"Keras categorical, {kind}").mean()
        assert close(got, want, 4e-6, 1e-7 if from_logits else 0.0), (number, got, want)
        if not eps:
            assert close(by_name(rows, f"Keras sparse, {kind}").mean(), want, 4e-6, 1e-7)
    if not from_logits:
        # The clip: the loss never exceeds -log(1e-7) = 16.12 nor goes below 1.19e-7.
        assert by_name(
            framework_rows([[0.0, -40.0]], [1]), "Keras categorical, probabilities"
        ).mean() == pytest.approx(16.1181, 1e-5)
        assert by_name(
            framework_rows([[0.0, -40.0]], [0]), "Keras categorical, probabilities"
        ).mean() == pytest.approx(1.19209e-7, 1e-5)


def test_optax_against_its_documented_formula() -> None:
    for number, (y, labels, rng) in enumerate([*[(y, lab, None) for y, lab in HARD], *cases(6)]):
        k = y.shape[1]
        eps = 0.0 if rng is None or number % 2 == 0 else float(rng.uniform(0, 0.3))
        got = by_name(framework_rows(y, labels, label_smoothing=eps), "optax (JAX)")
        y32 = y.astype(F32)
        if eps:
            labels_smooth = (1 - eps) * np.eye(k)[labels] + eps / k
            rows = -(labels_smooth.astype(F32) * scipy.special.log_softmax(y32, axis=-1)).sum(-1)
            assert got.function == "optax.softmax_cross_entropy"
        else:
            shifted = y32 - y32.max(axis=-1, keepdims=True)
            rows = np.log(np.exp(shifted).sum(-1)) - shifted[np.arange(len(y)), labels]
            assert got.function == "optax.softmax_cross_entropy_with_integer_labels"
        np.testing.assert_allclose(got.loss, rows.astype(np.float64), rtol=4e-6, atol=1e-6)


def test_fairseq_smoothing_spreads_over_the_other_classes() -> None:
    # fairseq's label_smoothed_nll_loss: eps_i = eps / (K - 1),
    # loss = (1 - eps - eps_i) * nll + eps_i * sum_k(-log q_k); against PyTorch's log_softmax.
    for y, labels, rng in cases(7):
        k = y.shape[1]
        eps = float(rng.uniform(0.01, 0.3))
        got = by_name(framework_rows(y, labels, label_smoothing=eps), "eps/(K-1) smoothing")
        lq = torch.log_softmax(torch.tensor(y), dim=-1).numpy()
        nll = -lq[np.arange(len(y)), labels]
        eps_i = eps / (k - 1)
        want = (1 - eps - eps_i) * nll + eps_i * -lq.sum(-1)
        np.testing.assert_allclose(got.loss, want, rtol=1e-13)
        np.testing.assert_allclose(got.exact, want, rtol=1e-12)
    assert not [r for r in framework_rows([[1.0, 2.0]], [0]) if r.name == "eps/(K-1) smoothing"]


def test_exact_values_are_xents() -> None:
    from xentcli.core import cross_entropy

    rows = framework_rows([[0.0, -40.0]], [0])
    for r in rows:
        assert r.exact_mean() == cross_entropy([[0.0, -40.0]], [0])


# ------------------------------------------------------------------ through the CLI
def _cli(*args: str) -> str:
    from click.testing import CliRunner

    from xentcli.cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_compute_json_frameworks() -> None:
    import json

    data = json.loads(
        _cli("compute", "--logits", "0,-40", "--label", "0", "--frameworks", "--format", "json")
    )
    functions = {f["function"]: f for f in data["frameworks"]}
    assert set(functions) >= {
        "torch.nn.functional.cross_entropy (float64)",
        "torch.nn.functional.cross_entropy (float32)",
        "keras.losses.CategoricalCrossentropy(from_logits=True)",
        "keras.losses.CategoricalCrossentropy(from_logits=False)",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=False)",
        "optax.softmax_cross_entropy_with_integer_labels",
        "sklearn.metrics.log_loss",
        "scipy.special.logsumexp",
    }
    for f in data["frameworks"]:
        assert set(f) >= {"name", "function", "value", "note"}
    y = torch.tensor([[0.0, -40.0]], dtype=torch.float64)
    torch_value = torch.nn.functional.cross_entropy(y, torch.tensor([0])).item()
    assert functions["torch.nn.functional.cross_entropy (float64)"]["value"] == torch_value
    assert functions["sklearn.metrics.log_loss"]["value"] == log_loss(
        [0], scipy.special.softmax(y.numpy(), axis=1), labels=[0, 1]
    )
    assert data["loss"] == 4.248354255291589e-18


def test_compute_table_lists_each_convention_and_one_csv_table() -> None:
    out = _cli("compute", "--logits", "1.2,2.3,0.8", "--label", "1", "--frameworks")
    assert "What each library returns for this sample" in out
    assert "sklearn.metrics.log_loss: probabilities clipped" in out
    from click.testing import CliRunner

    from xentcli.cli.main import cli

    bad = CliRunner().invoke(
        cli,
        [
            "compute",
            "--logits",
            "1,2",
            "--label",
            "0",
            "--frameworks",
            "--dtype",
            "float16",
            "--format",
            "csv",
        ],
    )
    assert bad.exit_code == 2
    assert "--frameworks and --dtype are two CSV tables" in bad.output
    unlabelled = CliRunner().invoke(cli, ["compute", "--logits", "1,2", "--frameworks"])
    assert unlabelled.exit_code == 2
    assert "give --label or --target" in unlabelled.output


def test_batch_means_use_each_librarys_denominator(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    rng = np.random.default_rng(21)
    y = rng.normal(0, 3, (200, 4))
    labels = rng.integers(0, 4, 200)
    weights = np.array([0.5, 2.0, 1.0, 3.0])
    path = tmp_path / "p.csv"
    lines = ["a,b,c,d,label"] + [
        ",".join(repr(float(v)) for v in row) + f",{lab}"
        for row, lab in zip(y, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    data = json.loads(
        _cli("batch", str(path), "--frameworks", "--weights", "0.5,2,1,3", "--format", "json")
    )
    got = {f["name"]: f["value"] for f in data["frameworks"]}
    w = torch.tensor(weights)
    want64 = torch.nn.functional.cross_entropy(torch.tensor(y), torch.tensor(labels), weight=w)
    assert close(got["PyTorch float64"], want64.item(), 4e-15)
    want32 = torch.nn.functional.cross_entropy(
        torch.tensor(y, dtype=torch.float32), torch.tensor(labels), weight=w.float()
    )
    assert close(got["PyTorch float32"], want32.item(), 4e-6)
    want_sk = log_loss(
        labels, scipy.special.softmax(y, axis=1), labels=[0, 1, 2, 3], sample_weight=weights[labels]
    )
    assert close(got["scikit-learn"], want_sk, 1e-13)
    # Keras: sum of weighted rows / N, not / sum of weights.
    keras = keras_documented(y, np.eye(4)[labels], True, weights[labels])
    assert close(got["Keras categorical, logits"], keras, 4e-6)
    assert not close(keras, want64.item(), 1e-3)
    assert close(
        got["SciPy"],
        float(np.mean(scipy.special.logsumexp(y, axis=1) - y[np.arange(200), labels])),
        1e-14,
    )
    # --format csv: the same table, a line per library, full precision.
    import csv
    import io

    from click.testing import CliRunner

    from xentcli.cli.main import cli

    table = _cli("batch", str(path), "--frameworks", "--weights", "0.5,2,1,3", "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(table)))
    assert list(lines[0]) == ["name", "function", "value", "exact", "dtype", "note"]
    assert {line["name"]: float(line["value"]) for line in lines} == got
    assert close(float(lines[0]["exact"]), want64.item(), 4e-15)
    both = CliRunner().invoke(
        cli, ["batch", str(path), "--frameworks", "--dtype", "float16", "--format", "csv"]
    )
    assert (both.exit_code, both.output) == (
        2,
        "Error: --frameworks and --dtype are two CSV tables: give one of them with --format csv\n",
    )
