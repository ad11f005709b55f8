"""Every command is documented: shown in the README and in `xent --help`, with examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hardening import run

from xentcli.cli.main import LAZY_COMMANDS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_every_command_is_in_the_readme_and_the_help(name: str) -> None:
    assert f"xent {name} " in README, f"the README shows no use of xent {name}"
    listing = run(["--help"])
    assert listing.code == 0
    assert f"  {name} " in listing.stdout
    own = run([name, "--help"])
    assert own.code == 0
    assert "Examples:" in own.stdout
    assert f"xent {name}" in own.stdout.split("Examples:", 1)[1]


def test_the_label_column_names_are_the_readers() -> None:
    from xentcli.batch._columns import LABEL_NAMES

    doc = (Path(__file__).resolve().parent.parent / "docs" / "input-formats.md").read_text()
    listed = doc.split("The default label column is the first header column named", 1)[1]
    listed = listed.split("; otherwise the", 1)[0]
    assert re.findall(r"`([^`]+)`", listed) == list(LABEL_NAMES)
