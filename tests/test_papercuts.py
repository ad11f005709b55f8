"""What a new user trips on (issue 11): each case failed before its fix.

Oracles: PyTorch (losses, gradients, label smoothing), numpy.quantile (exact quantiles),
the arithmetic b**L of the numbers printed (the perplexity formula), Python's csv module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import mpref
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xentcli.cli.main import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 0, err
    return out


def torch_losses(logits: Sequence[Sequence[float]], labels: Sequence[int], **kwargs) -> np.ndarray:
    return (
        torch.nn.functional.cross_entropy(
            torch.tensor(logits, dtype=torch.float64),
            torch.tensor(labels),
            reduction="none",
            **kwargs,
        )
        .numpy()
        .copy()
    )


# ------------------------------------------------------- 1. the perplexity formula
_NUMBER = r"(-?[0-9.]+(?:e[+-]?[0-9]+)?)"


@pytest.mark.parametrize(("base", "symbol"), [("e", "e"), ("2", "2"), ("10", "10")])
@pytest.mark.parametrize("fmt", ["table", "explain", "markdown", "latex"])
def test_the_perplexity_formula_is_in_the_loss_units(base: str, symbol: str, fmt: str) -> None:
    args = ["compute", "--logits", "1,2,3", "--label", "0", "--base", base]
    args += ["--explain"] if fmt == "explain" else ["--format", fmt]
    out = ok(*args)
    loss = float(
        ok(*args[:7], "--format", "json") and json.loads(ok(*args[:7], "--format", "json"))["loss"]
    )
    formulas = re.findall(r"(e|2|10)\^\{?L\}?\s*\$?\s*=?\s*" + _NUMBER, out)
    formulas += [(b, v) for b, v in re.findall(r"perplexity (e|2|10)\^L\s+" + _NUMBER, out)]
    assert formulas, out
    for shown_base, value in formulas:
        assert shown_base == symbol
        number = math.e if shown_base == "e" else float(shown_base)
        # The shown value is the base to the power of the loss in the shown units.
        assert float(value) == pytest.approx(number**loss, rel=1e-4)


# ------------------------------------------------------ 2. exact small quantiles
def _write(path: Path, logits: np.ndarray, labels: np.ndarray) -> None:
    k = logits.shape[1]
    lines = [",".join([*(f"logit_{j}" for j in range(k)), "label"])]
    lines += [
        ",".join([*(repr(float(v)) for v in row), str(int(label))])
        for row, label in zip(logits, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("n", [2, 3, 7, 50, 1000])
def test_quantiles_of_a_small_file_are_numpys(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    logits = rng.normal(scale=3.0, size=(n, 4))
    labels = rng.integers(0, 4, size=n)
    _write(tmp_path / "a.csv", logits, labels)
    data = json.loads(ok("batch", str(tmp_path / "a.csv"), "--format", "json"))
    losses = torch_losses(logits.tolist(), labels.tolist())
    for name, q in (("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        assert data["loss_quantiles"][name] == pytest.approx(
            # PyTorch's small losses carry an absolute error near 1e-16 (xent's do not).
            float(np.quantile(losses, q)),
            rel=1e-12,
            abs=1e-15,
        )
    assert data["loss_quantiles_exact"] is True
    assert data["loss_quantiles_relative_error"] == 0.0
    table = ok("batch", str(tmp_path / "a.csv"))
    assert "exact quantiles" in table
    shown = table.split("exact quantiles)\n")[1].splitlines()[1].split()
    # Printed at the precision of the other figures (6 significant digits).
    assert [float(v) for v in shown] == pytest.approx(
        [float(np.quantile(losses, q)) for q in (0.0, 0.5, 0.9, 0.99, 1.0)], rel=5e-6
    )


def test_the_three_row_example_of_the_issue(tmp_path: Path) -> None:
    logits = np.array([[3.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    labels = np.array([0, 0, 0])
    _write(tmp_path / "a.csv", logits, labels)
    q = json.loads(ok("batch", str(tmp_path / "a.csv"), "--format", "json"))["loss_quantiles"]
    losses = torch_losses(logits.tolist(), labels.tolist())
    assert q["p50"] == pytest.approx(np.median(losses), rel=1e-14)
    assert q["p90"] == pytest.approx(np.quantile(losses, 0.9), rel=1e-14)
    assert q["p50"] < q["p90"] < q["p99"] < q["max"]


# ------------------------------------------------------------- 3. gradient = q
def test_the_gradient_of_a_class_without_target_is_q_itself() -> None:
    data = json.loads(ok("compute", "--logits", "1,-inf,2", "--label", "0", "--format", "json"))
    assert data["gradient"][1:] == data["probabilities"][1:]
    rng = np.random.default_rng(3)
    for _ in range(40):
        logits = rng.normal(scale=4.0, size=5)
        label = int(rng.integers(0, 5))
        data = json.loads(
            ok(
                "compute",
                "--logits",
                ",".join(map(repr, logits.tolist())),
                "--label",
                str(label),
                "--format",
                "json",
            )
        )
        for k in range(5):
            if k != label:
                assert data["gradient"][k] == data["probabilities"][k]
        y = torch.tensor([logits.tolist()], dtype=torch.float64, requires_grad=True)
        torch.nn.functional.cross_entropy(y, torch.tensor([label])).backward()
        assert y.grad is not None
        assert data["gradient"] == pytest.approx(y.grad[0].tolist(), rel=1e-14, abs=1e-300)


# ------------------------------------------------------------- 4. an empty item
@pytest.mark.parametrize(
    ("text", "position"), [("1,2,,3", 2), (",1,2", 0), ("1,2,", 2), ("1;;2", 1), ("[1, , 2]", 1)]
)
def test_an_empty_list_item_is_an_error_naming_its_position(text: str, position: int) -> None:
    code, out, err = run("compute", "--logits", text, "--label", "0")
    assert code == 2
    assert out == ""
    assert err.startswith(f"Error: Invalid value for '--logits': item {position} is empty")
    assert len(err.splitlines()) == 1


def test_spaces_and_brackets_still_separate() -> None:
    for text in ("1.2,2.3,0.8", "1.2 2.3 0.8", "[1.2, 2.3, 0.8]", " 1.2 ,2.3;  0.8 "):
        data = json.loads(ok("compute", "--logits", text, "--label", "1", "--format", "json"))
        assert data["logits"] == [1.2, 2.3, 0.8]


def test_an_empty_weight_item_is_an_error_in_batch_too(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", np.zeros((2, 3)), np.array([0, 1]))
    code, _, err = run("batch", str(tmp_path / "a.csv"), "--weights", "1,,2")
    assert code == 2
    assert "Invalid value for '--weights': item 1 is empty" in err


# ------------------------------------------------------ 5. label smoothing of 1
def test_label_smoothing_of_one_is_the_uniform_target_in_compute() -> None:
    logits = [1.2, 2.3, 0.8]
    data = json.loads(
        ok(
            "compute",
            "--logits",
            "1.2,2.3,0.8",
            "--label",
            "1",
            "--label-smoothing",
            "1",
            "--format",
            "json",
        )
    )
    (expected,) = torch_losses([logits], [1], label_smoothing=1.0)
    assert data["loss"] == pytest.approx(expected, rel=1e-15)
    assert data["targets"] == pytest.approx([1 / 3] * 3, rel=1e-15)


def test_label_smoothing_of_one_in_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(30, 4))
    labels = rng.integers(0, 4, size=30)
    _write(tmp_path / "a.csv", logits, labels)
    data = json.loads(
        ok("batch", str(tmp_path / "a.csv"), "--label-smoothing", "1", "--format", "json")
    )
    expected = torch_losses(logits.tolist(), labels.tolist(), label_smoothing=1.0).mean()
    assert data["loss"] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("command", ["compute", "batch"])
def test_label_smoothing_above_one_is_still_refused(tmp_path: Path, command: str) -> None:
    _write(tmp_path / "a.csv", np.zeros((1, 2)), np.array([0]))
    where = (
        ["--logits", "1,2", "--label", "0"] if command == "compute" else [str(tmp_path / "a.csv")]
    )
    code, _, err = run(command, *where, "--label-smoothing", "1.01")
    assert code == 2
    assert "[0, 1]" in err
    with pytest.raises(RuntimeError, match=r"between 0\.0 and 1\.0"):  # PyTorch's own range
        torch.nn.functional.cross_entropy(
            torch.zeros(1, 2), torch.tensor([0]), label_smoothing=1.01
        )


# ---------------------------------------------------------- 10. csv loss, plurals
def test_compute_csv_ends_with_the_loss() -> None:
    *rows, loss = csv.DictReader(
        io.StringIO(ok("compute", "--logits", "1.2,2.3,0.8", "--label", "1", "--format", "csv"))
    )
    assert [r["index"] for r in rows] == ["0", "1", "2"]
    assert loss["index"] == "loss"
    (expected,) = torch_losses([[1.2, 2.3, 0.8]], [1])
    assert float(loss["contribution"]) == pytest.approx(expected, rel=1e-15)
    assert float(loss["contribution"]) == pytest.approx(
        math.fsum(float(r["contribution"]) for r in rows), rel=1e-15
    )


def test_one_row_is_singular(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", np.array([[1.0, 2.0]]), np.array([1]))
    out = ok("batch", str(tmp_path / "a.csv"))
    assert "1 file, 1 row (" in out
    assert "(1 of 1 row)" in out
    assert "Worst 1 row " in out
    assert not re.search(r"\b1 rows\b", out)
    code, _, err = run("compute", "--logits", "1,2", "--target", "1")
    assert code == 2
    assert "1 value for 2 classes" in err


# -------------------------------------------------------- 11. no label: softmax only
def test_compute_without_a_label_shows_the_softmax() -> None:
    out = ok("compute", "--logits", "1,2,3")
    q = torch.softmax(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), 0).tolist()
    for value in q:
        assert f"{value:.4f}" in out
    assert "predicted class" in out
    assert "2 (q = 0.6652)" in out
    assert "loss L" not in out
    assert "dL/dy" not in out
    assert "A label (--label) or a soft target (--target) adds the loss" in out


def test_compute_without_a_label_in_json_has_a_null_loss() -> None:
    data = json.loads(ok("compute", "--logits", "1,2,3", "--format", "json", "--explain"))
    assert data["loss"] is None
    assert data["label"] is None
    assert data["gradient"] is None
    assert data["predicted"] == 2
    q = torch.softmax(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), 0).tolist()
    assert data["probabilities"] == pytest.approx(q, rel=1e-15)
    assert data["log_sum_exp"] == pytest.approx(
        torch.logsumexp(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), 0).item(), rel=1e-15
    )
    titles = [step["title"] for step in data["steps"]]
    assert titles[-1] == "The predicted class"
    assert "adds the loss" in " ".join(data["steps"][-1]["lines"])


@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv"])
def test_compute_without_a_label_in_every_format(fmt: str) -> None:
    out = ok("compute", "--logits", "1,2,3", "--format", fmt, "--naive")
    assert "0.6652" in out or "0.6652409557748218" in out
    assert "nan" not in out.lower().replace("\\mathrm{nan}", "")


def test_compute_explain_without_a_label() -> None:
    out = ok("compute", "--logits", "1,2,3", "--explain")
    assert "6) The predicted class" in out
    assert "Perplexity" not in out


# --------------------------------------------------- 12. xent compute --from FILE:LINE
def test_compute_from_a_line_is_that_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    logits = rng.normal(scale=2.0, size=(6, 3))
    labels = rng.integers(0, 3, size=6)
    _write(tmp_path / "a.csv", logits, labels)
    for row in range(6):
        data = json.loads(
            ok("compute", "--from", f"{tmp_path / 'a.csv'}:{row + 2}", "--format", "json")
        )
        assert data["logits"] == logits[row].tolist()
        assert data["label"] == int(labels[row])
        (expected,) = torch_losses([logits[row].tolist()], [int(labels[row])])
        assert data["loss"] == pytest.approx(expected, rel=1e-14)


def test_compute_from_with_the_batch_column_options(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("id\ty\ts_a\ts_b\ts_c\n7\tb\t0.5\t-1\t2\n")
    data = json.loads(
        ok("compute", "--from", f"{path}:2", "--label-column", "y", "--logit-columns", "s_*",
           "--classes", "a,b,c", "--format", "json")
    )  # fmt: skip
    assert data["logits"] == [0.5, -1.0, 2.0]
    assert data["label"] == 1
    assert data["classes"] == ["a", "b", "c"]
    # The same row through xent batch: the same loss, to the last bit.
    batch = json.loads(
        ok("batch", str(path), "--label-column", "y", "--logit-columns", "s_*",
           "--classes", "a,b,c", "--format", "json")
    )  # fmt: skip
    assert batch["loss"] == data["loss"]


def test_compute_from_soft_targets(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("l0,l1,t0,t1\n1,2,0.25,0.75\n")
    data = json.loads(
        ok("compute", "--from", f"{path}:2", "--target-columns", "t0,t1", "--format", "json")
    )
    expected = torch.nn.functional.cross_entropy(
        torch.tensor([[1.0, 2.0]], dtype=torch.float64),
        torch.tensor([[0.25, 0.75]], dtype=torch.float64),
    ).item()
    assert data["loss"] == pytest.approx(expected, rel=1e-14)
    assert data["label"] is None


@pytest.mark.parametrize(
    ("line", "message", "code"),
    [
        ("1", "a.csv:1: this line is the header, not a row of data", 1),
        ("9", "a.csv:9: no such line: the last line of data is 4", 1),
        ("3", "a.csv:3:1: logit is not a number ('abc')", 1),
        ("5", "", 1),  # blank
        ("0", "--from: expected FILE:LINE with a line number from 1", 2),
        ("x", "--from: expected FILE:LINE with a line number from 1", 2),
    ],
)
def test_compute_from_a_line_that_is_no_row(
    tmp_path: Path, line: str, message: str, code: int
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("l0,l1,label\n1,2,0\nabc,2,1\n3,4,1\n\n")
    outcome, out, err = run("compute", "--from", f"{path}:{line}")
    assert outcome == code
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("Error: ")
    assert message in err


def test_compute_from_refuses_logits_and_stray_column_options(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    _write(path, np.zeros((1, 2)), np.array([0]))
    code, _, err = run("compute", "--from", f"{path}:2", "--logits", "1,2")
    assert code == 2
    assert "--from" in err
    code, _, err = run("compute", "--logits", "1,2", "--label-column", "y")
    assert code == 2
    assert "--label-column goes with --from" in err


def test_batch_prints_the_command_for_the_worst_row(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=3.0, size=(20, 4))
    labels = rng.integers(0, 4, size=20)
    _write(tmp_path / "runs.csv", logits, labels)
    out = ok("batch", "runs.csv", "--base", "2", "--temperature", "1.5")
    losses = torch_losses((logits / 1.5).tolist(), labels.tolist()) / math.log(2)
    worst_line = int(np.argmax(losses)) + 2
    command = f"xent compute --from runs.csv:{worst_line} --temperature 1.5 --base 2"
    assert f"Study the worst row step by step: {command}\n" in out
    # The printed command, run, gives the worst row's loss.
    data = json.loads(ok(*command.split()[1:], "--format", "json"))
    assert data["loss"] == pytest.approx(losses.max(), rel=1e-13)


# ------------------------------------------------------------ 13. a misspelt column
def test_a_misspelt_column_is_a_usage_error_with_did_you_mean(tmp_path: Path) -> None:
    names = [f"logit_{j}" for j in range(12)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join([*names, "label"]) + "\n" + ",".join(["0"] * 12 + ["1"]) + "\n")
    code, out, err = run("batch", str(path), "--label-column", "lable")
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "no column 'lable'; did you mean 'label'?" in err
    listed = err.split("(columns: ")[1]
    assert "label" in listed  # the list is not cut before the closest name
    code, _, err = run("batch", str(path), "--logit-columns", "logit_1,lgit_2")
    assert code == 2
    assert "did you mean 'logit_2'" in err


# ----------------------------------------------------------- 14. --per-row replaces
def test_per_row_says_it_replaces_an_existing_file(tmp_path: Path) -> None:
    help_text = " ".join(ok("batch", "--help").split())
    assert "An existing PATH is replaced, atomically" in help_text
    _write(tmp_path / "a.csv", np.zeros((2, 2)), np.array([0, 1]))
    rows = tmp_path / "rows.csv"
    rows.write_text("old\n")
    ok("batch", str(tmp_path / "a.csv"), "--per-row", str(rows))
    assert rows.read_text().startswith("file,line,")
    rows.write_text("old\n")
    (tmp_path / "bad.csv").write_text("a,b,label\n1,x,0\n")
    code, _, _ = run("batch", str(tmp_path / "bad.csv"), "--per-row", str(rows))
    assert code == 1
    assert rows.read_text() == "old\n"  # a failed run leaves it as it was


# ---------------------------------------------------------------- 7. per-file figures
def test_every_file_gets_its_loss_perplexity_and_accuracy(tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(7)
    files = []
    for i, n in enumerate((30, 7, 12)):
        logits = rng.normal(scale=2.0, size=(n, 3))
        labels = rng.integers(0, 3, size=n)
        _write(tmp_path / f"run{i}.csv", logits, labels)
        files.append((str(tmp_path / f"run{i}.csv"), logits, labels))
    paths = [f for f, _, _ in files]
    data = json.loads(ok("batch", *paths, "--format", "json"))
    rows = list(csv.DictReader(io.StringIO(ok("batch", *paths, "--format", "csv"))))
    table = ok("batch", *paths)
    for (path, logits, labels), entry, row in zip(files, data["files"], rows, strict=False):
        mean = torch_losses(logits.tolist(), labels.tolist()).mean()
        accuracy = accuracy_score(labels, logits.argmax(axis=1))
        assert entry["path"] == row["file"] == path
        assert entry["loss"] == pytest.approx(mean, rel=1e-14)
        assert entry["perplexity"] == pytest.approx(math.exp(mean), rel=1e-13)
        assert entry["accuracy"] == accuracy
        assert float(row["perplexity"]) == entry["perplexity"]
        assert float(row["accuracy"]) == accuracy
        line = next(ln for ln in table.splitlines() if ln.startswith(path))
        # every loss and perplexity in [0.01, 1e6): the columns are fixed-point, 4 decimals
        assert f"  {mean:.4f}  " in line
        assert f"  {math.exp(mean):.4f}  " in line
        assert f"{100 * accuracy:.2f} %" in line


# ------------------------------------------------------------ 6. file:line never cut
LONG = "runs/2024-06-01_resnet50_lr3e-4_warmup/eval/validation_predictions_epoch_090.csv"


def _long_path_summary():
    from xentcli.batch.accumulator import BatchAccumulator, BatchOptions
    from xentcli.batch.reader import Chunk

    acc = BatchAccumulator(3, BatchOptions(worst=3))
    for path in (LONG, LONG.replace("090", "091")):
        logits = np.array([[1.0, 2.0, 3.0], [3.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
        acc.add(Chunk(path, logits, np.array([0, 1, 2]), None, np.array([2, 3, 12345])))
    return acc.summary()


def test_file_and_line_are_whole_in_plain_output() -> None:
    from xentcli.batch.report import render_table
    from xentcli.cli.tools import make_console

    buffer = io.StringIO()
    render_table(_long_path_summary(), make_console(buffer, width=60))
    out = buffer.getvalue()
    assert f"{LONG}:12345" in out
    assert LONG.replace("090", "091") in out
    assert "…" not in out


def test_file_and_line_survive_a_narrow_terminal() -> None:
    from rich.console import Console

    from xentcli.batch.report import render_table

    buffer = io.StringIO()
    console = Console(file=buffer, width=60, force_terminal=True, no_color=True)
    render_table(_long_path_summary(), console)
    out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    files, worst = out.split("Mean loss   ")[0], out.split("Worst 3 rows")[1]
    for line in (files + worst).splitlines():
        assert len(line) <= 60, line  # no table row wraps
    for place in ("epoch_090.csv:12345", "epoch_091.csv:12345", "epoch_090.csv:3\n"):
        assert f"validation_predictions_{place}" in worst  # file name and line, whole
    assert "6.648e-03" in worst  # no number is cut either
    assert "validation_predictions_epoch_090.csv\n" in files
    assert "validation_predictions_epoch_091.csv\n" in files
    assert "33.2916" in files  # the numbers are whole too


# ----------------------------------------------------------- 8. a narrow terminal
def test_batch_header_fits_sixty_columns_and_stays_one_line_in_plain_output() -> None:
    from rich.console import Console

    from xentcli.batch.report import render_table
    from xentcli.cli.tools import make_console

    head = "xent batch: 2 files, 6 rows"
    counts = "(6 counted, 0 ignored, 0 skipped)"
    buffer = io.StringIO()
    render_table(_long_path_summary(), Console(file=buffer, width=60, force_terminal=True))
    out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    assert out.splitlines()[:2] == [head, counts]  # two whole lines, not a wrapped one
    buffer = io.StringIO()
    render_table(_long_path_summary(), Console(file=buffer, width=80, force_terminal=True))
    assert re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue()).splitlines()[0] == f"{head} {counts}"
    buffer = io.StringIO()
    render_table(_long_path_summary(), make_console(buffer, width=60))  # a file: never cut
    assert buffer.getvalue().splitlines()[0] == f"{head} {counts}"


def test_compute_table_fits_sixty_columns() -> None:
    from rich.console import Console

    from xentcli.compute.render import print_table
    from xentcli.compute.trace import build_trace

    trace = build_trace(
        [1.2, 2.3, 0.8], 1, classes=["cat", "dog", "bird"], weights=[1, 2, 1], temperature=2.0
    )
    buffer = io.StringIO()
    print_table(trace, Console(file=buffer, width=60, force_terminal=True, no_color=True))
    out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    assert max(len(line) for line in out.splitlines()) <= 60
    table = out.split("\n\n")[1].split("(left out")[0].splitlines()
    assert len(table) == 2 + 3  # header, rule, one line per class: no row wraps
    assert "left out to fit 60 columns" in out
    q = torch.softmax(torch.tensor([0.6, 1.15, 0.4], dtype=torch.float64), 0).tolist()
    assert all(f"{v:.4f}" in table[2 + k] for k, v in enumerate(q))  # q kept, whole


def test_histogram_and_progress_fit_sixty_columns(monkeypatch, tmp_path: Path) -> None:
    from rich.console import Console

    from xentcli.batch.report import render_table
    from xentcli.cli.batch import _Progress

    buffer = io.StringIO()
    render_table(_long_path_summary(), Console(file=buffer, width=60, force_terminal=True))
    out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    histogram = out.split("Loss (nats)")[1].split("\n\n")[0].splitlines()
    assert len(histogram) == 2 + 10  # header, rule, ten bins: none wraps
    assert all(len(line) <= 60 for line in histogram)
    monkeypatch.setenv("COLUMNS", "60")
    _write(
        tmp_path / "a_rather_long_file_name_for_a_small_terminal.csv", np.zeros((3, 2)), np.zeros(3)
    )
    path = str(tmp_path / "a_rather_long_file_name_for_a_small_terminal.csv")
    bar = _Progress(True, [path])
    try:
        bar.update(path, 10, 3)
        assert bar._progress is not None
        shown = Console(file=io.StringIO(), width=60, force_terminal=True)
        with shown.capture() as captured:
            shown.print(bar._progress.make_tasks_table(bar._progress.tasks))
        lines = captured.get().rstrip("\n").splitlines()
        assert len(lines) == 1
        assert len(re.sub(r"\x1b\[[0-9;]*m", "", lines[0])) <= 60
        assert "…ll_terminal.csv" in lines[0]  # the end of the name, and the bytes read
        assert "10/52 bytes" in lines[0]
    finally:
        bar.stop()


# ------------------------------------------------- 9. one number format per column
_FIXED, _SCIENTIFIC = (
    re.compile(r"^[0-9]+\.[0-9]{4}$"),
    re.compile(r"^[0-9]\.[0-9]{3}e[+-][0-9]{2}$"),
)


def _one_format(cells: list[str]) -> str:
    """Which format a column's numbers share ("fixed" or "scientific"); fails on a mix."""
    numbers = [c for c in cells if c not in ("0", "inf", "-")]
    if all(_FIXED.match(c) for c in numbers):
        return "fixed"
    assert all(_SCIENTIFIC.match(c) for c in numbers), cells
    return "scientific"


def test_each_batch_column_has_one_number_format(tmp_path: Path) -> None:
    # Row 0 is predicted with near certainty (loss 8.5e-18): the columns that hold its loss
    # beside others' (0.1758 beside 1.2e-05, before) turn scientific as a whole.
    logits = np.array([[40.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.2, 0.1, 1.5], [0.0, 3.0, 0.0]])
    labels = np.array([0, 1, 2, 1])
    _write(tmp_path / "a.csv", logits, labels)
    _write(tmp_path / "b.csv", logits[1:], labels[1:])
    table = ok("batch", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--worst", "7")
    losses = np.array(
        [float(mpref.loss(row, int(c))) for row, c in zip(logits, labels, strict=True)]
    )
    per_class = table.split("Per class\n")[1].split("\n\n")[0].splitlines()[2:]
    cells = [line.split()[2] for line in per_class]
    assert _one_format(cells) == "scientific"
    assert cells == [f"{m:.3e}" for m in (losses[0], (losses[1] + losses[3]) / 2, losses[2])]
    worst = table.split("Worst 7 rows (FILE:LINE)\n")[1].split("\n\n")[0].splitlines()[2:]
    assert _one_format([line.split()[4] for line in worst]) == "fixed"  # P(label), 1 included
    assert _one_format([line.split()[5] for line in worst]) == "scientific"  # loss
    assert worst[-1].split()[4:] == ["1.0000", f"{losses[0]:.3e}"]
    files = table.split("\n\n")[1].splitlines()[2:4]
    assert _one_format([line.split()[5] for line in files]) == "fixed"  # mean loss
    assert _one_format([line.split()[6] for line in files]) == "fixed"  # perplexity
    assert files[1].split()[5:7] == [f"{losses[1:].mean():.4f}", f"{np.exp(losses[1:].mean()):.4f}"]


@pytest.mark.parametrize(
    ("logits", "label"),
    [([0.0, -40.0], 0), ([1.2, 2.3, 0.8], 1), ([1000.0, 1001.0, 1002.0], 0), ([0.0, -5.0, 3.0], 1)],
)
def test_each_computed_column_has_one_number_format(logits: list[float], label: int) -> None:
    from xentcli.compute.render import per_class
    from xentcli.compute.trace import build_trace

    headers, rows = per_class(build_trace(logits, label), 4)
    for column, header in enumerate(headers):
        if header in ("k", "class", "y", "p"):
            continue  # indices, names and inputs as written
        cells = [row[column] for row in rows if row[column] not in ("0", "inf", "-inf", "nan")]
        kinds = {"e" in cell for cell in cells}
        assert len(kinds) <= 1, (header, cells)  # all fixed-point, or all scientific
        for cell in cells:
            # the value shown is the value, at the shown precision (float parses both forms)
            assert math.isfinite(float(cell))


def test_reliability_rows_fit_sixty_columns() -> None:
    """A bin is one line at 60 columns with its figures whole; the bar goes, not a row."""
    from rich.console import Console

    from xentcli.batch.accumulator import BatchAccumulator
    from xentcli.batch.report import render_table

    rng = np.random.default_rng(3)
    acc = BatchAccumulator(4)
    acc.update(rng.normal(0, 2, (400, 4)), rng.integers(0, 4, 400))
    summary = acc.summary()
    bins = [b for b in summary.metrics.calibration.bins if b.rows]
    for width, bars in ((60, False), (100, True)):
        buffer = io.StringIO()
        render_table(summary, Console(file=buffer, width=width, force_terminal=True))
        out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
        section = out.split("Reliability")[1].split("\n\n")[0].splitlines()
        table = section[section.index(next(s for s in section if s.startswith("Confidence"))) :]
        assert len(table) == 2 + len(bins)  # header, rule, one line per bin: none wraps
        assert all(len(line) <= width for line in table)
        for b, line in zip(bins, table[2:], strict=True):
            assert line.startswith(f"{b.low:.3f} - {b.high:.3f}")
            assert f"{b.gap:+.4f}" in line
            assert "…" not in line
            assert ("█" in line or "·" in line) == bars


def test_per_class_rows_fit_sixty_columns() -> None:
    """At 60 columns the per-class table drops its least needed columns, says which,
    and keeps every figure whole; a file keeps them all."""
    from rich.console import Console

    from xentcli.batch.accumulator import BatchAccumulator
    from xentcli.batch.report import render_table
    from xentcli.cli.tools import make_console

    rng = np.random.default_rng(5)
    acc = BatchAccumulator(4)
    acc.update(rng.normal(0, 2, (400, 4)), rng.integers(0, 4, 400))
    summary = acc.summary()
    buffer = io.StringIO()
    render_table(summary, Console(file=buffer, width=60, force_terminal=True))
    out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    section = out.split("Per class")[1].split("\n\n")[0]
    assert "Share of loss, Precision left out to fit 60 columns" in " ".join(section.split())
    rows = [line for line in section.splitlines() if line[:1].isdigit()]
    assert len(rows) == 4  # one line per class: none wraps
    for c, line in zip(summary.per_class, rows, strict=True):
        assert len(line) <= 60
        assert "…" not in line
        assert f"{100 * c.accuracy:.2f} %" in line
    plain = io.StringIO()
    render_table(summary, make_console(plain, width=60))
    assert "Share of loss" in plain.getvalue()
    assert "left out" not in plain.getvalue()


def test_group_rows_fit_sixty_columns() -> None:
    """The --group-by table at 60 columns: the weight column goes (and it says so), every
    figure stays whole; a file keeps every column."""
    from types import SimpleNamespace as NS

    from rich.console import Console

    from xentcli.batch._report_metrics import render_groups
    from xentcli.batch.report import _heading, _table
    from xentcli.cli.tools import make_console

    def part(rows: int, weight: float, loss: float, accuracy: float) -> NS:
        metrics = NS(brier=NS(mean=0.126512), calibration=NS(ece=0.0777123))
        return NS(rows=rows, sample_weights={"sum": weight}, loss_mean=loss,
                  accuracy=accuracy, metrics=metrics)  # fmt: skip

    groups = [NS(name="phone", summary=part(161, 322.0, 0.2819763, 0.8944)),
              NS(name="scanner", summary=part(188, 94.0, 0.1274421, 1.0))]  # fmt: skip
    summary = NS(groups=groups, group_by="source", sample_weights={"sum": 416.0}, units="nats")
    buffer = io.StringIO()
    render_groups(summary, Console(file=buffer, width=60, force_terminal=True), _table, _heading)
    out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    rows = [line for line in out.splitlines() if line.startswith(("phone", "scanner"))]
    assert len(rows) == 2
    assert all(len(line) <= 60 and "…" not in line for line in rows)
    assert "0.281976" in rows[0]
    assert "100.00 %" in rows[1]
    assert "(Weight left out to fit 60 columns)" in out
    plain = io.StringIO()
    render_groups(summary, make_console(plain, width=60), _table, _heading)
    assert "Weight" in plain.getvalue()
    assert "left out" not in plain.getvalue()


def test_sigmoid_tables_fit_sixty_columns() -> None:
    """xent batch --sigmoid at 60 columns, as xent batch's tables: the per-label table
    leaves out the target column's name (and says so) and keeps every figure whole; a
    long path is cut from the left, never into the file name and line; a file keeps all."""
    import torch
    from rich.console import Console

    from xentcli.batch.multilabel import MultiLabelAccumulator, MultiLabelOptions
    from xentcli.batch.multilabel_report import render_table
    from xentcli.cli.tools import make_console

    rng = np.random.default_rng(7)
    x, z = rng.normal(0, 2, (50, 6)), (rng.random((50, 6)) < 0.4).astype(float)
    labels = [f"logit_{k}" for k in range(6)]
    acc = MultiLabelAccumulator(labels, [f"target_{k}" for k in range(6)], MultiLabelOptions())
    long = "runs/a_rather_long_directory_name/another_long_one/multilabel_outputs.csv"
    acc.start_file(long)
    acc.add(x, z, np.arange(2, 52))
    summary = acc.summary()
    per_label = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(z), reduction="none"
    ).mean(0)
    buffer = io.StringIO()
    render_table(summary, Console(file=buffer, width=60, force_terminal=True))
    out = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    section = out.split("Per label")[1].split("\n\n")[0]
    assert "(Target left out to fit 60 columns)" in section
    rows = [line for line in section.splitlines() if line.startswith("logit_")]
    assert len(rows) == 6  # one line per label: none wraps
    for line, loss in zip(rows, per_label.tolist(), strict=True):
        assert len(line) <= 60
        assert "…" not in line
        assert f"{loss:.6g}" in line.split()
    worst = out.split("Worst 5 rows")[1].split("\n\n")[0].splitlines()[3:]
    assert len(worst) == 5
    assert all(len(line) <= 60 and "/multilabel_outputs.csv:" in line for line in worst)
    plain = io.StringIO()
    render_table(summary, make_console(plain, width=60))
    assert "target_0" in plain.getvalue()
    assert long in plain.getvalue()
    assert "left out" not in plain.getvalue()
