"""The README's console examples are real: each command prints exactly what is shown."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import readme_examples

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = readme_examples.examples((ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.command for e in EXAMPLES])
def test_readme_example_output_is_real(example: readme_examples.Example) -> None:
    assert readme_examples.run(example.command) == example.expected


def test_readme_setup_commands_match_ci() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    test_command = 'pip install -e ".[test]" && pytest'
    assert f"```bash\n{test_command}\n```" in readme
    assert test_command in ci.splitlines()


def test_readme_python_examples_run() -> None:
    results = doctest.testfile(
        str(ROOT / "README.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert results.attempted >= 5
    assert results.failed == 0
