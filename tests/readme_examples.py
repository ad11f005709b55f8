"""Run the README's ``console`` examples, and rewrite them from real output.

Every fenced block tagged ``console`` holds commands (lines starting with ``$ ``) each
followed by the exact output it prints. The tests (tests/test_readme.py) run every
command and compare; ``python tests/readme_examples.py`` regenerates the blocks after a
deliberate change of output.

Commands run from the repository root with a fixed width and no colour, and only
``xent ...`` commands are allowed, so the README cannot run arbitrary shell.

Output is compared as another CPU would still print it (:func:`mismatches`): numpy's
``exp`` and ``log`` differ in the last bit between machines, so a float may differ
within its documented bound, and nothing else may differ.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WIDTH = "88"
_BLOCK = re.compile(r"^```console\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


@dataclass
class Example:
    command: str
    expected: str


def examples(text: str) -> list[Example]:
    found = []
    for block in _BLOCK.finditer(text):
        command: str | None = None
        output: list[str] = []
        for line in block.group(1).splitlines(keepends=True):
            if line.startswith("$ "):
                if command is not None:
                    found.append(Example(command, "".join(output)))
                command, output = line[2:].strip(), []
            else:
                output.append(line)
        if command is not None:
            found.append(Example(command, "".join(output)))
    return found


def run(command: str, *, nudged: bool = False) -> str:
    """The output of *command*; *nudged*: with numpy's exp and log one ulp off."""
    argv = shlex.split(command)
    if not argv or argv[0] != "xent":
        raise ValueError(f"README examples run only xent commands: {command!r}")
    env = {**os.environ, "COLUMNS": WIDTH, "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    xent = [str(Path(__file__).with_name("ulp_nudge.py"))] if nudged else ["-m", "xentcli"]
    result = subprocess.run(
        [sys.executable, *xent, *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout + result.stderr


# Two machines each within the README's bound of the exact value (a row's loss 2 ulp, a
# probability 3 ulp, a mean rounded once from sums of those) differ by at most twice it.
ULPS = 6
# Sketched quantiles are within the stated 1 % (the JSON's
# "loss_quantiles_relative_error") of the exact one on each machine; the histogram's inner
# edges are rounded to 5 significant digits. Neither is bit-for-bit.
_SKETCHED = {"p50": 0.02, "p90": 0.02, "p99": 0.02, "low": 2e-4, "high": 2e-4}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


def _close(actual: float, expected: float, ulps: float) -> bool:
    """Within *ulps* units in the last place of the larger of the two."""
    if actual == expected or (math.isnan(actual) and math.isnan(expected)):
        return True
    if math.isinf(actual) or math.isinf(expected):
        return False
    return abs(actual - expected) <= ulps * math.ulp(max(abs(actual), abs(expected)))


def _json_mismatches(actual: object, expected: object, path: str) -> list[str]:
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or list(actual) != list(expected):
            return [f"{path}: keys {list(expected)} expected"]
        return [
            found
            for key in expected
            for found in _json_mismatches(actual[key], expected[key], f"{path}.{key}")
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: a list of {len(expected)} expected"]
        return [
            found
            for i, (got, want) in enumerate(zip(actual, expected, strict=True))
            for found in _json_mismatches(got, want, f"{path}[{i}]")
        ]
    if isinstance(expected, float) and type(actual) is float:
        key = path.rsplit(".", 1)[-1]
        if key in _SKETCHED:
            close = math.isclose(actual, expected, rel_tol=_SKETCHED[key])
        elif key == "gap":
            # A reliability bin's accuracy - confidence: within the confidence's bound, in
            # ulps of a number up to 1, not of the (cancelled, far smaller) gap itself.
            close = abs(actual - expected) <= ULPS * math.ulp(1.0)
        elif key == "perplexity":
            # exp(mean): the mean's relative error grows by |mean|, plus exp's own ulp.
            close = _close(actual, expected, ULPS * max(1.0, abs(math.log(expected))) + 1)
        else:
            close = _close(actual, expected, ULPS)
        return [] if close else [f"{path}: {actual!r}, expected {expected!r}"]
    if type(actual) is not type(expected) or actual != expected:
        return [f"{path}: {actual!r}, expected {expected!r}"]
    return []


def _same_shown_number(got: str, want: str) -> bool:
    """*got* is *want* within one unit of *want*'s last shown digit (or ``ULPS``)."""
    if "." not in want and "e" not in want.lower():
        return got == want  # an integer: a count, a line number, a label
    mantissa, _, exponent = want.lower().partition("e")
    last_digit = 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))
    got_value, want_value = float(got), float(want)
    # (1 + 1e-9): the decimal difference of two shown values is not exact in binary.
    within_digit = abs(got_value - want_value) <= last_digit * (1 + 1e-9)
    return within_digit or _close(got_value, want_value, ULPS)


def _text_mismatches(actual: str, expected: str) -> list[str]:
    """Text equal but for its numbers, compared at the digits shown."""
    got_numbers, want_numbers = _NUMBER.findall(actual), _NUMBER.findall(expected)
    if len(got_numbers) != len(want_numbers):
        return [f"{len(got_numbers)} numbers, {len(want_numbers)} expected"]
    found = [
        f"{got}, expected {want}"
        for got, want in zip(got_numbers, want_numbers, strict=True)
        if not _same_shown_number(got, want)
    ]
    # A number printed one digit longer or shorter moves the columns after it.
    got_text, want_text = (re.sub(r" +", " ", _NUMBER.sub("#", t)) for t in (actual, expected))
    if got_text != want_text:
        found.append(f"text around the numbers differs:\n{got_text}\nexpected\n{want_text}")
    return found


def mismatches(actual: str, expected: str) -> list[str]:
    """How *actual* differs from *expected* beyond what another CPU may print.

    JSON is parsed: integers, strings and keys must be equal, floats within ``ULPS``
    (sketched quantiles within their stated 1 % each way). Other text must be equal but
    for its numbers, each within one unit of its last shown digit (or ``ULPS``).
    """
    if expected.startswith(("{", "[")):
        try:
            expected_json = json.loads(expected)
        except ValueError:
            pass
        else:
            try:
                actual_json = json.loads(actual)
            except ValueError:
                return ["not JSON"]
            return _json_mismatches(actual_json, expected_json, "$")
    return _text_mismatches(actual, expected)


def regenerate(text: str) -> str:
    def fill(block: re.Match[str]) -> str:
        lines = []
        for example in examples(block.group(0)):
            lines.append(f"$ {example.command}\n{run(example.command)}")
        return "```console\n" + "".join(lines) + "```\n"

    return _BLOCK.sub(fill, text)


if __name__ == "__main__":
    README.write_text(regenerate(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote {README}")
