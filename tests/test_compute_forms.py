"""``xent compute --frameworks`` and ``--dtype`` as Markdown, LaTeX and CSV.

The values in each form are checked against the libraries themselves where the test
environment has them (PyTorch, scikit-learn, SciPy; ml_dtypes for the low-precision
rounding) and against the JSON of the same run for the rest; the LaTeX is compiled
with pdflatex (CI installs it and sets XENT_REQUIRE_LATEX=1).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import scipy.special
import torch
from click.testing import CliRunner
from sklearn.metrics import log_loss
from test_render import check_latex_structure

from xentcli.cli.main import cli

SEED = ["--logits", "1.2,2.3,0.8", "--label", "1"]
DISAGREE = ["--logits", "0,-40", "--label", "0"]
OVERFLOW = ["--logits", "0,20,-30", "--label", "2"]  # float16: e^20 overflows (naive)


def compute(*args: str) -> str:
    result = CliRunner().invoke(cli, ["compute", *args])
    assert result.exit_code == 0, result.output
    return result.output


def markdown_table(text: str, heading: str) -> list[list[str]]:
    """The body cells of the first Markdown table under *heading*."""
    lines = text.split(f"## {heading}", 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip("|").split(" | ")])
    return block[2:]  # header and rule left out


def test_frameworks_markdown_has_each_librarys_own_value() -> None:
    text = compute(*DISAGREE, "--frameworks", "--format", "markdown")
    rows = markdown_table(text, "What each library returns for this sample")
    data = json.loads(compute(*DISAGREE, "--frameworks", "--format", "json"))["frameworks"]
    assert [r[1].strip("`") for r in rows] == [f["function"] for f in data]
    by_function = {r[1].strip("`"): r for r in rows}
    y = torch.tensor([[0.0, -40.0]], dtype=torch.float64)
    torch64 = torch.nn.functional.cross_entropy(y, torch.tensor([0])).item()
    q = scipy.special.softmax(y.numpy(), axis=1)
    expected = {
        "torch.nn.functional.cross_entropy (float64)": torch64,
        "sklearn.metrics.log_loss": log_loss([0], q, labels=[0, 1]),
        "scipy.special.logsumexp": float(scipy.special.logsumexp(y.numpy()[0]) - 0.0),
    }
    for function, value in expected.items():
        assert float(by_function[function][2]) == value, function
    torch32 = torch.nn.functional.cross_entropy(y.float(), torch.tensor([0])).item()
    assert float(by_function["torch.nn.functional.cross_entropy (float32)"][2]) == pytest.approx(
        torch32, abs=1e-7
    )
    for row in rows:  # the exact column: xent's value of each convention, in full
        assert float(row[3]) == next(f["exact"] for f in data if f["function"] == row[1][1:-1])


def test_dtype_markdown_rounds_as_ml_dtypes() -> None:
    text = compute(*SEED, "--dtype", "bfloat16", "--format", "markdown")
    rows = markdown_table(text, "In bfloat16")
    logits = [r for r in rows if r[0].startswith("`y (logits in the format)")]
    want = np.array([1.2, 2.3, 0.8]).astype(ml_dtypes.bfloat16).astype(float)
    assert [float(r[1]) for r in logits] == want.tolist()
    data = json.loads(compute(*SEED, "--dtype", "bfloat16", "--format", "json"))["dtype"]
    loss_row = next(r for r in rows if r[0] == "`L = (m - y_i) + log s`")
    assert float(loss_row[1]) == data["loss"]
    assert "on a coarse grid" in loss_row[4]
    assert any(r[0] == "*naive: q = e^y / sum e^y*" for r in rows)


def test_frameworks_csv_one_line_per_convention() -> None:
    rows = list(csv.DictReader(io.StringIO(compute(*SEED, "--frameworks", "--format", "csv"))))
    data = json.loads(compute(*SEED, "--frameworks", "--format", "json"))["frameworks"]
    assert [r["function"] for r in rows] == [f["function"] for f in data]
    for row, f in zip(rows, data, strict=True):
        assert float(row["value"]) == f["value"]
        assert float(row["exact"]) == f["exact"]
        assert (row["name"], row["dtype"], row["note"]) == (f["name"], f["dtype"], f["note"])
    torch64 = torch.nn.functional.cross_entropy(
        torch.tensor([[1.2, 2.3, 0.8]], dtype=torch.float64), torch.tensor([1])
    ).item()
    assert float(rows[0]["value"]) == torch64


def test_dtype_csv_every_value_of_every_step() -> None:
    args = [*OVERFLOW, "--dtype", "float16"]
    rows = list(csv.DictReader(io.StringIO(compute(*args, "--format", "csv"))))
    data = json.loads(compute(*args, "--format", "json"))["dtype"]
    for formula, steps in (("stable", data["steps"]), ("naive", data["naive_steps"])):
        mine = [r for r in rows if r["formula"] == formula]
        flat = [
            (s["name"], v, e) for s in steps for v, e in zip(s["value"], s["exact"], strict=True)
        ]
        assert len(mine) == len(flat)
        for row, (name, value, exact) in zip(mine, flat, strict=True):
            assert row["step"].startswith(name)
            assert same(float(row["value"]), float(value))  # JSON writes "inf", "nan"
            assert same(float(row["exact"]), float(exact))
    overflowed = [r for r in rows if r["formula"] == "naive" and r["value"] == "inf"]
    assert overflowed, "float16's e^20 overflows in the naive formula"
    assert np.exp(20.0) > float(np.finfo(np.float16).max)  # as numpy's float16 says


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_two_csv_tables_at_once_are_a_usage_error() -> None:
    result = CliRunner().invoke(
        cli, ["compute", *SEED, "--frameworks", "--dtype", "float16", "--format", "csv"]
    )
    assert result.exit_code == 2
    assert "--frameworks and --dtype are two CSV tables" in result.output


@pytest.mark.parametrize("args", [SEED, DISAGREE, OVERFLOW])
def test_latex_sections_are_well_formed(args: list[str]) -> None:
    tex = compute(*args, "--frameworks", "--dtype", "bfloat16", "--naive", "--format", "latex")
    check_latex_structure(tex)
    assert "\\subsection*{What each library returns for this sample}" in tex
    assert "\\texttt{sklearn.metrics.log\\_loss}" in tex
    assert tex.count("\\begin{tabular}") == 3


_NO_PDFLATEX = shutil.which("pdflatex") is None and os.environ.get("XENT_REQUIRE_LATEX") != "1"


@pytest.mark.skipif(
    _NO_PDFLATEX, reason="pdflatex is not installed (apt-get install texlive-latex-base)"
)
@pytest.mark.parametrize(("args", "dtype"), [(DISAGREE, "bfloat16"), (OVERFLOW, "float16")])
def test_latex_with_frameworks_and_dtype_compiles(
    args: list[str], dtype: str, tmp_path: Path
) -> None:
    assert shutil.which("pdflatex"), "XENT_REQUIRE_LATEX=1 but pdflatex is not installed"
    tex = compute(*args, "--frameworks", "--dtype", dtype, "--format", "latex")
    (tmp_path / "doc.tex").write_text(tex, encoding="utf-8")
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
