"""The option layer (xentcli/cli/params.py): one parse, one message, in every command.

The same bad value gives the same single line ``Error: ...`` and exit 2 in ``xent
compute`` and ``xent batch`` (and no click preamble: docs/errors.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from xentcli.cli.main import cli
from xentcli.text import is_number

ROOT = Path(__file__).resolve().parent.parent
COMPUTE = ["compute", "--logits", "1,2", "--label", "0"]
BATCH = ["batch", str(ROOT / "examples" / "digits.csv")]

BAD = [
    (
        ["--temperature", "-1"],
        "Invalid value for '--temperature': '-1' is not a finite number > 0.",
    ),
    (["--temperature", "0"], "Invalid value for '--temperature': '0' is not a finite number > 0."),
    (
        ["--temperature", "inf"],
        "Invalid value for '--temperature': 'inf' is not a finite number > 0.",
    ),
    (["--temperature", "1x"], "Invalid value for '--temperature': '1x' is not a number."),
    (["--temperature", "0x10"], "Invalid value for '--temperature': '0x10' is not a number."),
    (["--temperature", "1_0"], "Invalid value for '--temperature': '1_0' is not a number."),
    (
        ["--weights", "1,-2"],
        "Invalid value for '--weights': item 1 ('-2') is not a finite number >= 0.",
    ),
    (
        ["--weights", "1,nan"],
        "Invalid value for '--weights': item 1 ('nan') is not a finite number >= 0.",
    ),
    (["--weights", "1,x"], "Invalid value for '--weights': item 1 ('x') is not a number."),
    (["--weights", "[]"], "Invalid value for '--weights': the list is empty."),
    (
        ["--label-smoothing", "1.5"],
        "Invalid value for '--label-smoothing': '1.5' is not a number in [0, 1].",
    ),
    (
        ["--label-smoothing", "-0.1"],
        "Invalid value for '--label-smoothing': '-0.1' is not a number in [0, 1].",
    ),
    (["--label-smoothing", "abc"], "Invalid value for '--label-smoothing': 'abc' is not a number."),
    (["--base", "3"], "Invalid value for '--base': '3' is not one of 'e', '2', '10'."),
    (["--classes", "a,a"], "Invalid value for '--classes': 'a' appears twice."),
    (["--classes", "a,,b"], "Invalid value for '--classes': an empty name in 'a,,b'."),
    (["--no-such-option"], "No such option '--no-such-option'."),
]


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, prog_name="xent")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
@pytest.mark.parametrize("command", [COMPUTE, BATCH], ids=["compute", "batch"])
def test_same_bad_value_same_line_and_exit_2_in_every_command(
    command: list[str], args: list[str], message: str
) -> None:
    code, stdout, stderr = run([*command, *args])
    assert (code, stdout, stderr) == (2, "", f"Error: {message}\n")


@pytest.mark.parametrize(
    ("weights", "message"),
    [("1,2,3", "--weights: 3 values for 2 classes"), ("1", "--weights: 1 value for 2 classes")],
)
def test_a_list_of_the_wrong_length_has_one_wording_in_every_command(
    tmp_path: Path, weights: str, message: str
) -> None:
    table = tmp_path / "two.csv"
    table.write_text("a,b,label\n1,2,0\n3,1,1\n")
    for command in (COMPUTE, ["batch", str(table)], ["compare", str(table), str(table)]):
        assert run([*command, "--weights", weights]) == (2, "", f"Error: {message}\n"), command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--delimiter", "ab"], "Invalid value for '--delimiter': 'ab' is not one character"),
        (["--delimiter", '"'], "Invalid value for '--delimiter': '\"' is not one character"),
        (["--logit-columns", "a,,b"], "Invalid value for '--logit-columns': an empty item"),
        (["--target-columns", ","], "Invalid value for '--target-columns': an empty item"),
        (
            ["--ignore-index", "x"],
            "Invalid value for '--ignore-index': 'x' is not a valid integer.",
        ),
    ],
)
def test_batch_only_options_are_checked_by_their_types(args: list[str], message: str) -> None:
    code, stdout, stderr = run([*BATCH, *args])
    assert (code, stdout) == (2, "")
    assert stderr.startswith(f"Error: {message}")
    assert stderr.count("\n") == 1


def test_usage_errors_of_the_group_are_one_line_too() -> None:
    assert run(["nosuch"]) == (2, "", "Error: No such command 'nosuch'.\n")
    assert run(["batch"]) == (2, "", "Error: Missing argument 'FILES...'.\n")


def test_label_smoothing_one_passes_the_option_layer() -> None:
    # [0, 1] as in PyTorch: the option layer accepts 1 (the kernel decides the rest).
    code, _stdout, stderr = run([*COMPUTE, "--label-smoothing", "1"])
    assert "Invalid value for '--label-smoothing'" not in stderr
    assert code in (0, 2)


def test_good_values_reach_the_command_as_one_loss_options() -> None:
    options = ["--weights", "[2, 1]", "--label-smoothing", "0.25", "--temperature", "2"]
    code, stdout, stderr = run([*COMPUTE, *options, "--base", "2", "--format", "json"])
    assert (code, stderr) == (0, "")
    assert '"weights": [\n    2.0,\n    1.0\n  ]' in stdout
    assert '"label_smoothing": 0.25' in stdout
    assert '"temperature": 2.0' in stdout
    assert '"units": "bits"' in stdout


@pytest.mark.parametrize(
    ("text", "number"),
    [
        *[("1.5", True), (" -2e3\t", True), ("-Inf", True), ("INFINITY", True), ("nan", True)],
        *[(".5", True), ("5.", True), ("1_000", False), ("0x10", False), ("", False)],
        *[("1e", False), ("\uff11", False), ("\u0131nf", False), ("\u0661", False), ("e5", False)],
    ],
)
def test_one_number_syntax_for_options_and_files(text: str, number: bool) -> None:
    assert is_number(text) is number
    if number:
        float(text)  # whatever is a number, float() reads


def test_a_dotless_i_inf_in_a_file_is_bad_data_not_a_crash(tmp_path: Path) -> None:
    # 'ınf' (U+0131) matched the reader's case-insensitive 'inf' and crashed float().
    path = tmp_path / "p.csv"
    path.write_text("a,b,label\n1,\u0131nf,0\n", encoding="utf-8")
    code, stdout, stderr = run(["batch", str(path)])
    assert (code, stdout) == (1, "")
    assert stderr == f"Error: {path}:2:2: logit is not a number ('\u0131nf')\n"


def test_the_sigmoid_loss_counts_labels_with_the_same_wording() -> None:
    sigmoid = ["compute", "--sigmoid", "--logits", "1,2", "--target", "1,0"]
    assert run([*sigmoid, "--pos-weight", "1,2,3"]) == (
        2,
        "",
        "Error: --pos-weight: 3 values for 2 labels\n",
    )


def _sigmoid_commands(tmp_path: Path) -> tuple[list[str], list[str]]:
    """The same one-row multi-label sample for xent compute --sigmoid and xent batch."""
    table = tmp_path / "sigmoid.csv"
    table.write_text("a,b,t0,t1\n2,-1,1,0\n")
    compute = ["compute", "--sigmoid", "--logits", "2,-1", "--target", "1,0"]
    batch = [
        "batch",
        str(table),
        "--sigmoid",
        "--logit-columns",
        "a,b",
        "--target-columns",
        "t0,t1",
    ]
    return compute, batch


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1,1", "Invalid value for '--pos-weight': item 0 ('-1') is not a finite number >= 0."),
        ("1,nan", "Invalid value for '--pos-weight': item 1 ('nan') is not a finite number >= 0."),
        ("inf,1", "Invalid value for '--pos-weight': item 0 ('inf') is not a finite number >= 0."),
        ("1,x", "Invalid value for '--pos-weight': item 1 ('x') is not a number."),
    ],
)
def test_pos_weight_has_one_range_and_one_message_in_both_sigmoid_commands(
    tmp_path: Path, value: str, message: str
) -> None:
    # Finite and >= 0, as --weights: a negative weight makes a negative loss, inf or nan
    # a mean that says nothing (xent compute took all three).
    for command in _sigmoid_commands(tmp_path):
        assert run([*command, "--pos-weight", value]) == (2, "", f"Error: {message}\n"), command


def test_pos_weight_zero_is_taken_by_both_sigmoid_commands_as_pytorch_does(tmp_path: Path) -> None:
    import json

    import torch

    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([2.0, -1.0], dtype=torch.float64),
        torch.tensor([1.0, 0.0], dtype=torch.float64),
        pos_weight=torch.tensor([0.0, 3.0], dtype=torch.float64),
    ).item()
    for command in _sigmoid_commands(tmp_path):
        code, stdout, stderr = run([*command, "--pos-weight", "0,3", "--format", "json"])
        assert (code, stderr) == (0, ""), command
        assert json.loads(stdout)["loss"] == pytest.approx(expected, rel=1e-15), command
