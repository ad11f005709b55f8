"""``xent compute`` through click's CliRunner: outputs, exit codes, stdout and stderr apart."""

from __future__ import annotations

import builtins
import contextlib
import csv
import errno
import io
import json
import os

import mpfields
import pytest
from click.testing import CliRunner

from xentcli.cli.main import cli

SEED = ["compute", "--logits", "1.2,2.3,0.8", "--label", "1"]

SEED_TABLE = """\
Softmax and cross-entropy: 3 classes, true class 1

    k     y   y - max   e^(y - max)        q   p   -p log q     dL/dy
---------------------------------------------------------------------
    0   1.2   -1.1000        0.3329   0.2139   0          0    0.2139
>   1   2.3         0        1.0000   0.6427   1     0.4421   -0.3573
    2   0.8   -1.5000        0.2231   0.1434   0          0    0.1434

max m (class 1)                              2.3000
sum of shifted exps s = sum e^(y - m)        1.5560
log s                                       0.44212
log-sum-exp m + log s                        2.7421
loss L                                 0.44212 nats
perplexity e^L                               1.5560

probabilities q
  0  #########                                 0.2139
> 1  ##########################                0.6427
  2  ######                                    0.1434
"""

NAMED_TABLE = """\
Softmax and cross-entropy: 3 classes, true class 1 (dog)

    k   class     y   y - max   e^(y - max)        q   p   -p log q     dL/dy
-----------------------------------------------------------------------------
    0   cat     1.2   -1.1000        0.3329   0.2139   0          0    0.2139
>   1   dog     2.3         0        1.0000   0.6427   1     0.4421   -0.3573
    2   bird    0.8   -1.5000        0.2231   0.1434   0          0    0.1434

max m (class dog)                            2.3000
sum of shifted exps s = sum e^(y - m)        1.5560
log s                                       0.44212
log-sum-exp m + log s                        2.7421
loss L                                 0.44212 nats
perplexity e^L                               1.5560

probabilities q
   cat  #########                                 0.2139
>  dog  ##########################                0.6427
  bird  ######                                    0.1434
"""


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    return runner.invoke(cli, list(args), env={"COLUMNS": "100", "NO_COLOR": "1", **(env or {})})


def test_seed_table_whole():
    result = run(*SEED)
    assert result.exit_code == 0
    assert result.stdout == SEED_TABLE
    assert result.stderr == ""


def test_class_names_whole():
    result = run(
        "compute", "--logits", "1.2,2.3,0.8", "--classes", "cat,dog,bird", "--label", "dog"
    )
    assert result.exit_code == 0
    assert result.stdout == NAMED_TABLE


def test_label_index_still_works_with_class_names():
    by_index = run(
        "compute", "--logits", "1.2,2.3,0.8", "--classes", "cat,dog,bird", "--label", "1"
    )
    assert by_index.stdout == NAMED_TABLE


@pytest.mark.parametrize(
    "logits",
    [
        "1.2,2.3,0.8",
        "1.2 2.3 0.8",
        "[1.2, 2.3, 0.8]",
        "(1.2; 2.3; 0.8)",
        "12e-1,0.23E+1,8e-1",
        " 1.2 , 2.3 , 0.8 ",
    ],
)
def test_every_way_of_writing_the_logits(logits):
    result = run("compute", "--logits", logits, "--label", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["logits"] == [1.2, 2.3, 0.8]


@pytest.mark.parametrize(
    "args",
    [
        ["--logits", "-1,2,3"],
        ["--logits=-1,2,3"],
        ["--logits", "-1 2 3"],
        ["--logits", "[-1, 2, 3]"],
        ["--logits", "-1e0,2,3"],
    ],
)
def test_a_negative_first_logit_is_a_value_not_an_option(args):
    result = run("compute", *args, "--label", "0", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["logits"] == [-1.0, 2.0, 3.0]


def test_label_before_logits_and_negative_logits_after():
    result = run("compute", "--label", "0", "--logits", "-1,-2,-3", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["logits"] == [-1.0, -2.0, -3.0]


def test_minus_inf_masks_a_class():
    result = run("compute", "--logits", "-inf,0,1", "--label", "2", "--format", "json")
    data = json.loads(result.stdout)
    assert data["logits"][0] == "-inf"
    assert data["probabilities"][0] == 0.0


def test_json_has_full_precision():
    result = run(*SEED, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert not mpfields.out_of_bounds(data, [1.2, 2.3, 0.8], 1)
    assert abs(data["sum_exp_shifted"] - 1.55600124385) < 1e-11
    assert abs(data["sum_exp"] - 15.5198403060) < 1e-9
    assert [round(q, 12) for q in data["probabilities"]] == [
        0.213927260672,
        0.642673008106,
        0.143399731222,
    ]
    assert data["units"] == "nats"
    assert result.stderr == ""


def test_json_with_explain_and_naive():
    result = run(
        "compute",
        "--logits",
        "1000,1001,1002",
        "--label",
        "0",
        "--format",
        "json",
        "--naive",
        "--explain",
    )
    data = json.loads(result.stdout)
    assert data["naive"]["loss"] == "nan"
    assert data["sum_exp"] is None
    assert [s["number"] for s in data["steps"]] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_csv_output():
    result = run(*SEED, "--format", "csv")
    assert result.exit_code == 0
    *rows, loss = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [float(r["probability"]) for r in rows] == pytest.approx(
        [0.2139, 0.6427, 0.1434], abs=5e-5
    )
    assert rows[1]["is_label"] == "1"
    assert loss["index"] == "loss"


def test_markdown_output():
    result = run(*SEED, "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith("## Softmax and cross-entropy, step by step\n")
    assert "0.44212" in result.stdout


def test_latex_output():
    result = run(*SEED, "--format", "latex")
    assert result.exit_code == 0
    assert result.stdout.startswith("\\documentclass{article}\n")
    assert result.stdout.endswith("\\end{document}\n")


def test_explain_shows_the_numbered_steps():
    result = run(*SEED, "--explain")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith(SEED_TABLE)
    for number in range(1, 9):
        assert f"\n{number}) " in out
    assert "s * e^m = 1.5560 * e^2.3 = 15.520 = sum_k e^(y_k)" in out
    assert "L = -(y_1 - m) + log s = -(2.3 - 2.3) + log 1.5560 = 0 + 0.44212 = 0.44212 nats" in out
    assert "-log 0.642 = 0.443" in out


def test_naive_overflow_and_lost_loss():
    overflow = run("compute", "--logits", "1000,1001,1002", "--label", "0", "--naive")
    assert overflow.exit_code == 0
    assert "textbook loss  nan nats   (stable: 2.4076 nats)" in overflow.stdout
    assert "e^1002 overflows float64 to inf" in overflow.stdout
    lost = run("compute", "--logits", "0,-40", "--label", "0", "--naive")
    assert lost.exit_code == 0
    assert "textbook loss  0 nats   (stable: 4.2484e-18 nats)" in lost.stdout
    assert "rounds to exactly 1, so the textbook -log q_0 = 0" in lost.stdout


def test_digits():
    import re

    import mpref

    # The loss shown with 15 decimals (16 significant digits), near mpmath's value: the
    # last shown digit may differ by one between CPUs, so it is compared, not matched.
    result = run("compute", "--logits", "0,-40", "--label", "0", "--digits", "15")
    shown = re.search(r"loss L +(\S+) nats", result.stdout)
    assert shown is not None, result.stdout
    assert re.fullmatch(r"\d\.\d{15}e-18", shown.group(1))
    exact = float(mpref.loss([0.0, -40.0], 0))
    assert float(shown.group(1)) == pytest.approx(exact, rel=2e-15)
    seed = run(*SEED, "--digits", "16").stdout
    shown = re.search(r"loss L +(\S+) nats", seed)
    assert shown is not None, seed
    assert re.fullmatch(r"0\.\d{16,17}", shown.group(1))
    assert float(shown.group(1)) == pytest.approx(float(mpref.loss([1.2, 2.3, 0.8], 1)), rel=1e-15)


@pytest.mark.parametrize(
    ("base", "units", "loss"), [("2", "bits", "0.63784"), ("10", "bans", "0.19201")]
)
def test_base(base, units, loss):
    result = run(*SEED, "--base", base)
    assert f"loss L {' ' * 30}" in result.stdout
    assert f"{loss} {units}" in result.stdout
    data = json.loads(run(*SEED, "--base", base, "--format", "json").stdout)
    assert data["units"] == units
    assert not mpfields.out_of_bounds(data, [1.2, 2.3, 0.8], 1, base=base)


def test_soft_target_weights_smoothing_temperature():
    result = run(
        "compute",
        "--logits",
        "1.2,2.3,0.8",
        "--target",
        "0.1,0.8,0.1",
        "--weights",
        "1,2,1",
        "--label-smoothing",
        "0.1",
        "--temperature",
        "2",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["label"] is None
    assert data["targets_given"] == [0.1, 0.8, 0.1]
    assert data["weights"] == [1.0, 2.0, 1.0]
    assert data["temperature"] == 2.0
    assert data["label_smoothing"] == 0.1
    # The values, not just the echo: every field within its bound of mpmath's value.
    bad = mpfields.out_of_bounds(
        data,
        [1.2, 2.3, 0.8],
        targets=[0.1, 0.8, 0.1],
        weights=[1.0, 2.0, 1.0],
        label_smoothing=0.1,
        temperature=2.0,
    )
    assert not bad, bad
    # Each option changes the loss: dropping any one of them gives another value.
    full = data["loss"]
    for dropped in (["--weights", "1,2,1"], ["--label-smoothing", "0.1"], ["--temperature", "2"]):
        args = ["compute", "--logits", "1.2,2.3,0.8", "--target", "0.1,0.8,0.1"]
        args += ["--weights", "1,2,1", "--label-smoothing", "0.1", "--temperature", "2"]
        at = args.index(dropped[0])
        other = json.loads(run(*args[:at], *args[at + 2 :], "--format", "json").stdout)
        assert other["loss"] != pytest.approx(full, rel=1e-6), dropped


def test_true_class_at_minus_inf_is_infinite_loss_not_an_error():
    result = run("compute", "--logits", "0,-inf", "--label", "1")
    assert result.exit_code == 0
    assert "loss L                                 inf nats" in result.stdout
    data = json.loads(
        run("compute", "--logits", "0,-inf", "--label", "1", "--format", "json").stdout
    )
    assert data["loss"] == "inf"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--logits", "1,2,3", "--label", "3"],
            "--label: 3 is out of range; class indices run from 0 to 2 (3 logits)",
        ),
        (
            ["--logits", "1,2,3", "--label", "-1"],
            "--label: -1 is negative; class indices run from 0 to 2",
        ),
        (
            ["--logits", "1,2,3", "--label", "one"],
            "--label must be a class index from 0 to 2, or a class name with --classes (got 'one')",
        ),
        (
            ["--logits", "1,2,3", "--label", "1.5"],
            "--label must be a class index from 0 to 2, or a class name with --classes (got '1.5')",
        ),
        (
            ["--logits", "1,x,3", "--label", "0"],
            "Invalid value for '--logits': item 1 ('x') is not a number.",
        ),
        (["--logits", "", "--label", "0"], "Invalid value for '--logits': the list is empty."),
        (["--logits", "[]", "--label", "0"], "Invalid value for '--logits': the list is empty."),
        (["--logits", "1,nan,3", "--label", "0"], "--logits: logit is NaN at item 1: 'nan'"),
        (["--logits", "1,2,inf", "--label", "0"], "--logits: logit is +inf at item 2: 'inf'"),
        (
            ["--logits", "1,2,1e999", "--label", "0"],
            "--logits: logit is +inf at item 2 (it overflows float64): '1e999'",
        ),
        (["--logits", "-NaN,2", "--label", "0"], "--logits: logit is NaN at item 0: '-NaN'"),
        (
            ["--logits", "\uff11,2", "--label", "0"],
            "Invalid value for '--logits': item 0 ('\uff11') is not a number.",
        ),
        (["--logits", "-inf,-inf", "--label", "0"], "--logits: every logit of the row is -inf"),
        (["--label", "0"], "give the logits with --logits, for example --logits 1.2,2.3,0.8 (or"),
        (
            ["--logits", "1,2", "--label", "0", "--target", "1,0"],
            "give one of --label and --target, not both",
        ),
        (["--logits", "1,2", "--target", "0.5,0.6"], "--target: targets do not sum to 1"),
        (
            ["--logits", "1,2", "--target", "1.5,-0.5"],
            "--target: target must be a finite probability >= 0 at item 1: '-0.5'",
        ),
        (["--logits", "1,2", "--target", "1"], "--target: 1 value for 2 classes"),
        (
            ["--logits", "1,2", "--target", "a,b"],
            "Invalid value for '--target': item 0 ('a') is not a number.",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--temperature", "0"],
            "Invalid value for '--temperature': '0' is not a finite number > 0.",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--temperature", "-2"],
            "Invalid value for '--temperature': '-2' is not a finite number > 0.",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--temperature", "nan"],
            "Invalid value for '--temperature': 'nan' is not a finite number > 0.",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--temperature", "hot"],
            "Invalid value for '--temperature': 'hot' is not a number.",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--label-smoothing", "1.5"],
            "Invalid value for '--label-smoothing': '1.5' is not a number in [0, 1].",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--label-smoothing", "-0.1"],
            "Invalid value for '--label-smoothing': '-0.1' is not a number in [0, 1].",
        ),
        (
            ["--logits", "1,2", "--classes", "a,b", "--label", "c"],
            "--label: unknown class name 'c' (classes: a, b)",
        ),
        (
            ["--logits", "1,2", "--classes", "a,b,c", "--label", "a"],
            "--classes: 3 names for 2 classes",
        ),
        (
            ["--logits", "1,2", "--classes", "a,a", "--label", "a"],
            "Invalid value for '--classes': 'a' appears twice.",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--weights", "1,2,3"],
            "--weights: 3 values for 2 classes",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--weights", "1,-2"],
            "Invalid value for '--weights': item 1 ('-2') is not a finite number >= 0.",
        ),
        (
            ["--logits", "1,2", "--label", "0", "--explain", "--format", "csv"],
            "--explain has no CSV form; use --format table, json, markdown or latex",
        ),
    ],
)
def test_bad_invocations_are_one_line_on_stderr_with_exit_2(args, message):
    result = run("compute", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {message}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_clicks_own_usage_errors_exit_2():
    result = run(*SEED, "--format", "yaml")
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr
    assert run(*SEED, "--digits", "0").exit_code == 2
    assert run(*SEED, "--base", "3").exit_code == 2


def test_help_ends_with_examples():
    result = run("compute", "--help")
    assert result.exit_code == 0
    lines = result.stdout.rstrip().splitlines()
    examples = lines.index("  Examples:")
    assert all(line.startswith("    xent compute ") for line in lines[examples + 1 :])
    assert lines[-1].startswith("    xent compute")
    for option in (
        "--logits",
        "--label",
        "--target",
        "--classes",
        "--weights",
        "--label-smoothing",
        "--temperature",
        "--base",
        "--format",
        "--explain",
        "--naive",
        "--digits",
    ):
        assert option in result.stdout


def test_help_examples_run():
    lines = run("compute", "--help").stdout.rstrip().splitlines()
    examples = lines[lines.index("  Examples:") + 1 :]
    import shlex

    for example in examples:
        words = shlex.split(example.strip().split(">")[0])
        assert words[:2] == ["xent", "compute"]
        result = run(*words[1:])
        assert result.exit_code == 0, (example, result.stderr)


# ---------------------------------------------------- --from: the file's own errors
# Each is one line `Error: FILE...: reason` on stderr, exit 1 (docs/errors.md), nothing
# on stdout, run through xentcli.cli.main.main as the installed script runs it (its
# mapping of a system error that escapes a command is part of what is tested).


def _secret_is_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 000 means nothing to root (the tests' user): open() refuses it instead.
    real = builtins.open

    def refusing(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).endswith("secret.csv"):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)


def _vanishing_is_removed_when_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    # Removed between the reader's stat (it exists, a file) and its open.
    real = builtins.open

    def removing(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).endswith("vanishing.csv"):
            os.unlink(file)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", removing)


def _the_reader_lets_a_read_error_through(monkeypatch: pytest.MonkeyPatch) -> None:
    # A system error that no reader turns into its own message (EIO from a layer the
    # readers do not wrap): compute once printed `Error: Input/output error`, no file.
    @contextlib.contextmanager
    def failing(path, options):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "Input/output error")
        yield

    monkeypatch.setattr("xentcli.batch.one_row.open_table", failing)


FROM_FILE_ERRORS = [
    ("nope.csv", None, "Error: nope.csv: no such file\n"),
    ("adir", None, "Error: adir: is a directory, not a file\n"),
    ("secret.csv", _secret_is_unreadable, "Error: secret.csv: permission denied\n"),
    ("latin1.csv", None, "Error: latin1.csv:2:2: not valid UTF-8 ('1,\\\\xe92,0')\n"),
    ("empty.csv", None, "Error: empty.csv: file is empty\n"),
    ("blank.csv", None, "Error: blank.csv: file is empty\n"),
    ("vanishing.csv", _vanishing_is_removed_when_opened, "Error: vanishing.csv: no such file\n"),
    ("t.csv", _the_reader_lets_a_read_error_through,
     "Error: t.csv: cannot read file data: [Errno 5] Input/output error\n"),
    ("new\nline.csv", None, "Error: 'new\\nline.csv': no such file\n"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fault", "line"), FROM_FILE_ERRORS)
def test_from_names_the_file_and_the_reason(tmp_path, monkeypatch, name, fault, line):
    from hardening import run as run_main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    for good in ("t.csv", "secret.csv", "vanishing.csv"):
        (tmp_path / good).write_text("a,b,label\n1,2,0\n")
    (tmp_path / "latin1.csv").write_bytes("a,b,label\n1,é2,0\n".encode("latin-1"))
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "blank.csv").write_text("\n  \n\t\n")
    if fault is not None:
        fault(monkeypatch)
    outcome = run_main(["compute", "--from", f"{name}:2"])
    assert (outcome.code, outcome.stderr, outcome.stdout) == (1, line, "")


def test_from_reads_the_same_file_without_a_fault(tmp_path, monkeypatch):
    # The files of the faults above are good files: each error is the fault's.
    from hardening import run as run_main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.csv").write_text("a,b,label\n1,2,0\n")
    outcome = run_main(["compute", "--from", "secret.csv:2", "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["logits"] == [1.0, 2.0]
