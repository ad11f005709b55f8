"""``python -m xentcli``: the same program as ``xent``, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mpref

from xentcli import __version__


def xent(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "xentcli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_version():
    result = xent("-V")
    assert result.returncode == 0
    assert result.stdout == f"xent, version {__version__}\n"
    assert result.stderr == ""


def test_help_lists_the_commands_and_examples():
    result = xent("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: xent [OPTIONS] COMMAND [ARGS]...")
    assert "  compute  Work one sample through the softmax and the cross-entropy loss." in (
        result.stdout
    )
    assert "xent compute --logits 1.2,2.3,0.8 --label 1" in result.stdout
    assert result.stderr == ""


def test_seed_example_as_plain_text_through_a_pipe():
    result = xent("compute", "--logits", "1.2,2.3,0.8", "--label", "1")
    assert result.returncode == 0
    assert result.stderr == ""
    out = result.stdout
    assert "\x1b[" not in out  # not a terminal: no colour
    assert out.isascii()  # and no box drawing
    assert ">   1   2.3         0        1.0000   0.6427   1     0.4421   -0.3573" in out
    assert "sum of shifted exps s = sum e^(y - m)        1.5560" in out
    assert "loss L                                 0.44212 nats" in out


def test_json_through_a_pipe():
    result = xent("compute", "--logits", "-1,2,3", "--label", "0", "--format", "json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["logits"] == [-1.0, 2.0, 3.0]
    assert data["label"] == 0
    # the values too: the loss and probabilities against mpmath (tests/mpref.py)
    assert mpref.ulps(data["loss"], mpref.loss([-1.0, 2.0, 3.0], 0)) <= 2
    exact = mpref.probabilities([-1.0, 2.0, 3.0])
    assert all(mpref.ulps(q, e) <= 3 for q, e in zip(data["probabilities"], exact, strict=True))


def test_options_through_a_pipe():
    args = ["--logits", "1.2,2.3,0.8", "--label", "0", "--weights", "1,2,0.5"]
    args += ["--label-smoothing", "0.2", "--temperature", "0.5", "--base", "2"]
    result = xent("compute", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    loss = json.loads(result.stdout)["loss"]
    exact = mpref.in_base(
        mpref.row_loss(
            [1.2, 2.3, 0.8], 0, weights=[1, 2, 0.5], label_smoothing=0.2, temperature=0.5
        ),
        "2",
    )
    assert mpref.ulps(loss, exact) <= 5  # smoothing 4 ulp, +1 for bits (docs/accuracy.md)


def test_bad_invocation_is_one_line_and_exit_2():
    result = xent("compute", "--logits", "1,2", "--label", "5")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: --label: 5 is out of range; class indices run from 0 to 1 (2 logits)\n"
    )
