"""Run the README's ``console`` examples, and rewrite them from real output.

Every fenced block tagged ``console`` holds commands (lines starting with ``$ ``) each
followed by the exact output it prints. The tests (tests/test_readme.py) run every
command and compare; ``python tests/readme_examples.py`` regenerates the blocks after a
deliberate change of output.

Commands run from the repository root with a fixed width and no colour, and only
``xent ...`` commands are allowed, so the README cannot run arbitrary shell.
"""

from __future__ import annotations

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


def run(command: str) -> str:
    argv = shlex.split(command)
    if not argv or argv[0] != "xent":
        raise ValueError(f"README examples run only xent commands: {command!r}")
    env = {**os.environ, "COLUMNS": WIDTH, "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-m", "xentcli", *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout + result.stderr


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
