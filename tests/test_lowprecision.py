"""The loss in float32, float16 and bfloat16, against ml_dtypes and PyTorch.

ml_dtypes (the numpy dtypes JAX uses) is the oracle for the rounding to each format and
for the step-by-step computation in it (its arithmetic rounds every result to the
format); PyTorch's CPU ``cross_entropy`` in float16 and bfloat16 lands on the same
part of the format's grid as xent's step-by-step value (its kernel rounds differently,
so the two are compared within a few of the format's units, not bit for bit).
"""

from __future__ import annotations

import json
import math

import ml_dtypes
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xentcli.cli.main import cli
from xentcli.compute.lowprecision import low_precision
from xentcli.compute.trace import build_trace
from xentcli.core import round_to, spacing

NUMPY = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
TORCH = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
def test_rounding_matches_ml_dtypes(name: str) -> None:
    rng = np.random.default_rng(1)
    # float32 values (ml_dtypes casts float64 through float32), over the whole range,
    # ties included, subnormals, overflow.
    x = (
        np.concatenate(
            [
                rng.normal(0, 1, 2000),
                rng.normal(0, 1e4, 500),
                10.0 ** rng.uniform(-45, 38, 2000) * rng.choice([-1, 1], 2000),
                [1 + 2**-8, 1 + 3 * 2**-8, 65520.0, 65519.0, 3.4e38, 1e-40, 2**-133, 2**-134],
            ]
        )
        .astype(np.float32)
        .astype(np.float64)
    )
    with np.errstate(over="ignore"):
        want = x.astype(NUMPY[name]).astype(np.float64)
    np.testing.assert_array_equal(round_to(x, name), want)


def test_spacing_is_the_formats_ulp() -> None:
    assert spacing(36.04, "bfloat16") == 0.25
    assert spacing(36.04, "float16") == 2.0**-5
    for name in ("float16", "bfloat16"):
        for x in (0.3, 1.0, 7.5, 1000.0):
            v = np.array(x, dtype=NUMPY[name])
            nxt = (
                np.nextafter(v, np.array(np.inf, dtype=NUMPY[name])) if name == "float16" else None
            )
            if nxt is not None:
                assert spacing(float(v), name) == float(nxt) - float(v)


def _rows(seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    for i in range(40):
        k = int(rng.integers(2, 7))
        y = rng.normal(0, [1.0, 5.0, 20.0, 60.0][i % 4], k)
        yield [float(v) for v in y], int(rng.integers(0, k))


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_torch_cpu_value(name: str) -> None:
    for y, label in [([0.0, -36.04], 1), ([0.0, -40.0], 0), *_rows(2)]:
        r = low_precision(build_trace(y, label), name)
        want = torch.nn.functional.cross_entropy(
            torch.tensor([y], dtype=TORCH[name]), torch.tensor([label])
        ).item()
        # The rounded logits alone move the loss by up to |y| / 2 units of the format.
        units = 4 + max(abs(v) for v in y) / (2 * max(want, 1e-3))
        assert abs(r.loss - want) <= units * spacing(want, name), (y, label, r.loss, want)
    # The confident loss is lost in both; the loss near 36 sits on the grid in both.
    lost = torch.nn.functional.cross_entropy(
        torch.tensor([[0.0, -40.0]], dtype=TORCH[name]), torch.tensor([0])
    )
    assert lost.item() == low_precision(build_trace([0.0, -40.0], 0), name).loss == 0.0


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
def test_steps_against_ml_dtypes(name: str) -> None:
    d = NUMPY[name]
    for y, label in [([1.2, 2.3, 0.8], 1), ([0.0, -36.04], 1), *_rows(3)]:
        r = low_precision(build_trace(y, label), name)
        with np.errstate(all="ignore"):
            yd = np.array(y).astype(d)
            m = yd.max()
            shifted = yd - m
            e = np.exp(shifted)
            s = np.array(e.astype(np.float32).sum(dtype=np.float32)).astype(d)
            log_s = np.log(s)
            loss = (m - yd[label]) + log_s
        values = {step.name: step.value for step in r.steps}

        def near(got: tuple[float, ...], want: np.ndarray, units: float = 1.0) -> bool:
            return all(
                abs(g - float(w)) <= units * spacing(float(w), name) or g == float(w)
                for g, w in zip(got, np.atleast_1d(want), strict=True)
            )

        assert values["y (logits in the format)"] == tuple(float(v) for v in yd)
        assert values["y_k - m"] == tuple(float(v) for v in shifted)
        assert near(values["exp(y_k - m)"], e, 2)
        assert near(values["log s"], log_s, 2)
        assert near(values["L = (m - y_i) + log s"], loss, 2), (y, label)


def test_bfloat16_loss_near_36_moves_in_steps_of_a_quarter() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "compute",
            "--logits",
            "0,-36.04",
            "--label",
            "1",
            "--dtype",
            "bfloat16",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["dtype"]
    assert data["name"] == "bfloat16"
    assert data["loss"] == 36.0
    assert data["loss_spacing"] == 0.25
    assert set(data) >= {"name", "loss", "naive_loss", "steps"}
    marks = {s["name"]: s["marks"] for s in data["steps"]}
    assert "grid" in marks["L = (m - y_i) + log s"]
    assert "cancellation" in marks["log s"]


def test_float16_naive_overflows_and_the_confident_loss_is_lost() -> None:
    r = low_precision(build_trace([12.0, 0.0], 1), "float16")
    assert math.isinf(r.naive_steps[0].value[0])  # e^12 > 65504
    assert "overflow" in r.naive_steps[0].marks
    assert math.isfinite(r.loss)
    lost = low_precision(build_trace([0.0, -40.0], 0), "bfloat16")
    assert lost.loss == 0.0
    assert "lost" in lost.steps[-1].marks


def test_table_output_and_usage_errors() -> None:
    out = CliRunner().invoke(
        cli, ["compute", "--logits", "1.2,2.3,0.8", "--label", "1", "--dtype", "float16"]
    )
    assert out.exit_code == 0
    assert "In float16 (each step rounded to float16" in out.stdout
    bad = CliRunner().invoke(
        cli, ["compute", "--logits", "1,2", "--target", "0.5,0.5", "--dtype", "float16"]
    )
    assert bad.exit_code == 2


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_batch_rows_against_ml_dtypes_and_the_counts(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from xentcli.core import low_precision_rows

    d = NUMPY[name]
    rng = np.random.default_rng(5)
    y = rng.normal(0, 8, (300, 4))
    labels = rng.integers(0, 4, 300)
    with np.errstate(all="ignore"):
        yd = y.astype(np.float32).astype(d)  # the logits are float32-representable below
    y = yd.astype(np.float64)
    rows = low_precision_rows(y, labels, name)
    with np.errstate(all="ignore"):
        m = yd.max(axis=1)
        e = np.exp(yd - m[:, None])
        s = e.astype(np.float32).sum(axis=1, dtype=np.float32).astype(d)
        want = (m - yd[np.arange(300), labels]) + np.log(s)
    want64 = want.astype(np.float64)
    units = np.array([spacing(float(w), name) for w in want64])
    assert np.all(np.abs(rows.stable - want64) <= 2 * units)
    path = tmp_path / "p.csv"
    lines = ["a,b,c,d,label", "0,-40,-40,-40,0", "12,0,0,0,1"]
    lines += [
        ",".join(repr(float(v)) for v in r) + f",{lab}" for r, lab in zip(y, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["batch", str(path), "--dtype", name, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["dtype"]
    assert data["rows"] == 302
    assert data["rows_lost"] >= 1  # [0, -40, -40, -40], label 0: 1e-17 lost to 0
    if name == "float16":
        assert data["naive_rows_overflow"] >= 1  # e^12 > 65504
    assert math.isfinite(data["loss"])
    assert abs(data["loss"] - data["exact_loss"]) <= 8 * spacing(data["exact_loss"], name)
    # --format csv: a line per formula, the figures of the JSON, full precision.
    table = CliRunner().invoke(cli, ["batch", str(path), "--dtype", name, "--format", "csv"])
    assert table.exit_code == 0, table.output

    def text(x: float | str) -> str:  # JSON writes inf as "inf", as the CSV does
        return x if isinstance(x, str) else repr(x)

    assert table.stdout.splitlines() == [
        "dtype,formula,rows,loss,exact,rows_overflow,rows_lost",
        f"{name},stable,302,{text(data['loss'])},{text(data['exact_loss'])},"
        f"{data['rows_overflow']},{data['rows_lost']}",
        f"{name},naive,302,{text(data['naive_loss'])},{text(data['exact_loss'])},"
        f"{data['naive_rows_overflow']},{data['naive_rows_lost']}",
    ]
