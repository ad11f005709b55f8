"""``xentcli.text.dumps`` writes large integer matrices itself: the text must be exactly
the standard library's ``json.dumps`` (the oracle), whatever the nesting and indent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hardening import run

from xentcli.text import dump, dumps, jsonable


def standard(value: Any, indent: int | None) -> str:
    return json.dumps(jsonable(value), indent=indent, allow_nan=False)


def first_difference(text: str, expected: str) -> str | None:
    """Where *text* first differs from *expected*, with context (None: equal). A plain
    ``==`` would make pytest diff two long texts line by line, for minutes."""
    if text == expected:
        return None
    at = next((i for i, (a, b) in enumerate(zip(text, expected, strict=False)) if a != b), None)
    at = min(len(text), len(expected)) if at is None else at
    start = max(0, at - 40)
    return f"at {at}: {text[start : at + 40]!r} != {expected[start : at + 40]!r}"


def matrix(rows: int, columns: int, seed: int) -> list[list[int]]:
    generator = np.random.default_rng(seed)
    cells = generator.integers(-3, 10**6, size=(rows, columns))
    cells[generator.random(size=cells.shape) < 0.8] = 0
    out: list[list[int]] = cells.tolist()
    return out


CASES = [
    {"confusion": matrix(40, 40, 0), "loss": 0.1, "inf": float("inf")},
    [matrix(33, 33, 1), {"deeper": {"still": matrix(40, 30, 2)}}, matrix(2, 2, 3)],
    matrix(1, 1100, 4),
    {"rows": [*matrix(600, 2, 5), []], "empty": [], "none": None},
    {"bools": [[True, False] * 20] * 40, "floats": [[1.0] * 40] * 40},  # not int matrices
    {"mixed": [[1] * 40] * 39 + [[1, 2.5] * 20], "big": [[2**70] * 40] * 40},
    {"array": np.arange(1600, dtype=np.int64).reshape(40, 40), "text": [["a"] * 40] * 40},
    {"zero rows": [[0] * 40] * 30 + [[0, 0, 0], [0, 5, 0], [], [0] * 40]},
    # rows mostly of zeros (written as runs of zeros): a cell past 64 bits, negatives,
    # nonzero cells at either end, exactly three quarters zeros
    {"sparse": [[0] * 30 + [2**70] + [0] * 9, [-7] + [0] * 38 + [3], [1, 2] + [0] * 6] * 40},
]


@pytest.mark.parametrize("indent", [2, None, 0, 4])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_dumps_is_the_standard_librarys_text(case: int, indent: int | None) -> None:
    value = CASES[case]
    assert first_difference(dumps(value, indent), standard(value, indent)) is None


@pytest.mark.parametrize("indent", [2, None, 0])
def test_dump_writes_the_same_text_in_few_pieces(indent: int | None) -> None:
    """dump (xent compare --format json) writes dumps's text in pieces of about 64 KB, a
    1000 x 1000 matrix a few rows at a time: never the whole text at once."""
    value = {"a": {"confusion": matrix(1000, 1000, 6)}, "b": [matrix(100, 3, 7), 0.5]}
    pieces: list[str] = []
    dump(value, pieces.append, indent)
    assert first_difference("".join(pieces), standard(value, indent)) is None
    assert max(map(len, pieces)) < 3 << 20  # the matrix alone is 6-13 MB of text
    assert len(pieces) < 100 + len("".join(pieces)) // 30_000


def test_a_report_with_a_large_confusion_matrix_is_standard_json(tmp_path: Path) -> None:
    # 40 classes: a 1600-cell matrix, written by the fast path.
    k = 40
    generator = np.random.default_rng(7)
    logits = generator.normal(size=(60, k)).round(3)
    labels = generator.integers(0, k, size=60)
    lines = [",".join([*(f"s{j}" for j in range(k)), "label"])]
    lines += [
        ",".join([*map(str, row), str(label)]) for row, label in zip(logits, labels, strict=True)
    ]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")
    outcome = run(["batch", str(tmp_path / "wide.csv"), "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    data = json.loads(outcome.stdout)
    assert first_difference(outcome.stdout, json.dumps(data, indent=2) + "\n") is None
    predicted = logits.argmax(axis=1)
    expected = np.zeros((k, k), dtype=np.int64)
    np.add.at(expected, (labels, predicted), 1)
    assert data["confusion"] == expected.tolist()
