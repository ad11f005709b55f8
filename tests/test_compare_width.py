"""``xent compare``'s table in a terminal of 60 and of 80 columns, run as a real
subprocess on a pseudo-terminal of that size: no line is longer than the terminal, each
figure shown is whole (it equals the JSON's figure rounded as the table rounds, written
here), the columns left out are said, and output to a pipe keeps every column.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
A, B = "examples/digits.csv", "examples/digits_boosted.csv"  # as the review ran it
NOTE = re.compile(r"\((.+) left out to fit (\d+) columns\)")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**env, "NO_COLOR": "1", "TERM": "xterm"}


def in_terminal(columns: int, *args: str) -> str:
    """What ``xent compare ARGS`` shows on a terminal *columns* wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "xentcli", "compare", *args],
        stdin=slave,  # rich takes the size from standard input first
        stdout=slave,
        stderr=subprocess.PIPE,
        env=_env(),
        cwd=REPO,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: the program closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def piped(*args: str, env: dict[str, str] | None = None) -> str:
    """What ``xent compare ARGS`` writes into a pipe."""
    return subprocess.run(
        [sys.executable, "-m", "xentcli", "compare", *args],
        capture_output=True,
        text=True,
        env=_env() if env is None else env,
        cwd=REPO,
        check=True,
        timeout=120,
    ).stdout


def as_json(*args: str) -> dict:
    return json.loads(piped(*args, "--format", "json"))


def g6(value: float) -> str:
    return f"{value:.6g}"


def pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def cells(line: str) -> list[str]:
    """A table row's cells: columns are 3 spaces apart at least, a cell has single ones."""
    return re.split(r" {2,}", line.strip())


def section(out: str, heading: str) -> tuple[list[str], list[str]]:
    """The lines of the section under *heading* (to the next blank line) and what its
    heading says was left out."""
    lines = out.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    note = NOTE.search(lines[start])
    end = lines.index("", start)
    return lines[start + 1 : end], note.group(1).split(", ") if note else []


def rows_after_rule(lines: list[str]) -> list[str]:
    rule = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
    return lines[rule + 1 :]


def expected_summary(doc: dict) -> dict[str, dict[str, str]]:
    """Each figure's line of the summary, by column, rounded as the table rounds."""
    a, b, d = doc["a"], doc["b"], doc["difference"]
    level = f"{100 * d['ci_level']:g} % interval"

    def bounds(pair: list[float], show=g6) -> str:
        return f"[{show(pair[0])}, {show(pair[1])}]"

    return {
        "mean loss (nats)": {
            "A": g6(a["loss_mean"]),
            "B": g6(b["loss_mean"]),
            "B - A": g6(d["loss"]),
            level: bounds(d["loss_ci"]),
        },
        "perplexity": {
            "A": g6(a["perplexity"]),
            "B": g6(b["perplexity"]),
            "B - A": g6(b["perplexity"] - a["perplexity"]),
        },
        "accuracy": {
            "A": pct(a["accuracy"]),
            "B": pct(b["accuracy"]),
            "B - A": pct(d["accuracy"]),
            level: bounds(d["accuracy_ci"], pct),
        },
        "brier": {"A": g6(a["brier"]), "B": g6(b["brier"]), "B - A": g6(d["brier"])},
        "ece": {
            "A": g6(a["calibration"]["ece"]),
            "B": g6(b["calibration"]["ece"]),
            "B - A": g6(d["ece"]),
        },
    }


def check_summary(out: str, doc: dict) -> list[str]:
    """The summary's figures against the JSON; returns what its note says was left out."""
    lines = out.split("\n")
    rule = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
    end = lines.index("", rule)
    body = lines[rule + 1 : end]
    note = NOTE.fullmatch(body[-1]) if body and body[-1].startswith("(") else None
    left_out = note.group(1).split(", ") if note else []
    if note:
        body = body[:-1]
    level = f"{100 * doc['difference']['ci_level']:g} % interval"
    named = {"the interval": level}
    gone = {named.get(name, name) for name in left_out}
    expected = expected_summary(doc)
    assert len(body) == len(expected)
    for line in body:
        name = next(n for n in expected if line.startswith(n))
        shown = [c for c in ("A", "B", "B - A", level) if c not in gone]
        figures = expected[name]
        want = [figures.get(c, "") for c in shown]
        while want and not want[-1]:  # a figure without an interval: an empty last cell
            want.pop()
        assert cells(line[len(name) :]) == want, line
    return left_out


def check_changes(out: str, heading: str, rows: list[dict]) -> list[str]:
    lines, left_out = section(out, heading)
    body = rows_after_rule(lines)
    table, places = body[: len(rows)], body[len(rows) :]
    columns = ["#", "Label", "Pred. A", "Pred. B", "Loss A", "Loss B", "Change"]
    shown = [c for c in columns if c not in left_out]
    for i, (line, row) in enumerate(zip(table, rows, strict=True), 1):
        figures = {
            "#": str(i),
            "Label": str(row["label"]),
            "Pred. A": str(row["predicted_a"]),
            "Pred. B": str(row["predicted_b"]),
            "Loss A": g6(row["loss_a"]),
            "Loss B": g6(row["loss_b"]),
            "Change": f"{row['change']:+.6g}",
        }
        assert cells(line) == [figures[c] for c in shown], line
    assert len(places) == len(rows)
    for i, (line, row) in enumerate(zip(places, rows, strict=True), 1):
        match = re.fullmatch(rf" *{i}  A (\S+)   B (\S+)", line)
        assert match, line
        for place, full in zip(match.groups(), (row["a"], row["b"]), strict=True):
            # whole, or cut from the left but never into the file name and line
            assert place == full or (place.startswith("…") and full.endswith(place[1:])), place
            assert place.endswith(full.rsplit("/", 1)[-1]), place
    return left_out


def check_per_class(out: str, doc: dict) -> list[str]:
    lines, left_out = section(out + "\n", "Per class")
    body = rows_after_rule(lines)
    columns = ["Class", "Rows", "Loss A", "Loss B", "Change", "Acc. A", "Acc. B"]
    shown = [c for c in columns if c not in left_out]
    assert len(body) == len(doc["per_class"])
    for line, c in zip(body, doc["per_class"], strict=True):
        figures = {
            "Class": c["class"],
            "Rows": str(c["rows"]),
            "Loss A": g6(c["loss_a"]),
            "Loss B": g6(c["loss_b"]),
            "Change": g6(c["loss_b"] - c["loss_a"]),
            "Acc. A": pct(c["accuracy_a"]),
            "Acc. B": pct(c["accuracy_b"]),
        }
        assert cells(line) == [figures[name] for name in shown], line
    return left_out


@pytest.mark.parametrize("columns", [60, 80])
def test_every_figure_whole_in_a_terminal(columns: int) -> None:
    doc = as_json(A, B)
    out = in_terminal(columns, A, B)
    assert out.endswith("\n")
    summary_out = check_summary(out, doc)
    regressions = check_changes(out, "Regressions", doc["regressions"])
    improvements = check_changes(out, "Improvements", doc["improvements"])
    per_class = check_per_class(out, doc)
    too_long = [line for line in out.split("\n") if len(line) > columns]
    assert not too_long  # no line wraps (was: per-class rows wrapped "100.00" / "%")
    if columns == 80:
        assert "left out" not in out
    else:  # the least needed columns go, in the stated order, and the note says which
        assert summary_out == ["A", "B"]
        assert regressions == improvements == []
        assert per_class == ["Loss A"]


def test_interval_too_wide_even_alone_goes_first() -> None:
    """Nearly equal models: differences of 1e-9 make an interval too wide for 60
    columns even with A and B left out; then it goes, and A and B stay."""
    proba = "examples/digits_proba.csv"
    doc = as_json(A, proba)
    out = in_terminal(60, A, proba)
    assert check_summary(out, doc) == ["the interval"]
    check_per_class(out, doc)
    assert max(len(line) for line in out.split("\n")) <= 60


def test_long_paths_cut_from_the_left(tmp_path: Path) -> None:
    """A place (path:line) under the changed rows' table is shortened from the left on a
    narrow terminal, never into its file name and line; a pipe gets it whole."""
    deep = tmp_path / "runs" / "2026-12-02_resnet50_long_experiment_name" / "validation"
    deep.mkdir(parents=True)
    a = shutil.copy(REPO / A, deep / "digits.csv")
    b = shutil.copy(REPO / B, deep / "digits_boosted.csv")
    doc = as_json(str(a), str(b), "--worst", "3")
    out = in_terminal(60, str(a), str(b), "--worst", "3")
    assert max(len(line) for line in out.split("\n")) <= 60
    check_changes(out, "Regressions", doc["regressions"])
    check_changes(out, "Improvements", doc["improvements"])
    out = piped(str(a), str(b), "--worst", "3", env={**_env(), "COLUMNS": "60"})
    row = doc["regressions"][0]
    assert f"  1  A {row['a']}   B {row['b']}\n" in out


def test_pipe_keeps_every_column() -> None:
    """Output to a pipe is never fitted: every column, every figure, no note, even
    where COLUMNS says 60."""
    doc = as_json(A, B)
    out = piped(A, B, env={**_env(), "COLUMNS": "60"})
    assert "left out" not in out
    assert not any(line != line.rstrip() for line in out.split("\n"))
    out = re.sub(r"^-+$", lambda m: "─" * len(m.group()), out, flags=re.M)
    assert check_summary(out, doc) == []
    assert check_changes(out, "Regressions", doc["regressions"]) == []
    assert check_per_class(out, doc) == []


def test_long_file_names_put_b_on_a_line_of_its_own(tmp_path: Path) -> None:
    """When both file names and lines do not fit on one line, B's place goes under A's;
    each is cut from the left only, its file name and line whole."""
    names = ("a_really_long_model_output_file_v1.csv", "another_long_model_output_file_v2.csv")
    deep = tmp_path / "runs" / "december"
    deep.mkdir(parents=True)
    a = shutil.copy(REPO / A, deep / names[0])
    b = shutil.copy(REPO / B, deep / names[1])
    doc = as_json(str(a), str(b), "--worst", "2")
    out = in_terminal(60, str(a), str(b), "--worst", "2")
    assert max(len(line) for line in out.split("\n")) <= 60
    lines = out.split("\n")
    for i, row in enumerate(doc["regressions"], 1):
        first = next(n for n, line in enumerate(lines) if re.match(rf" *{i}  A …", line))
        for line, side, place in ((lines[first], "A", row["a"]), (lines[first + 1], "B", row["b"])):
            match = re.fullmatch(rf"( *{i}| +)  {side} …(\S+)", line)
            assert match, line
            assert place.endswith(match.group(2)), line
            assert match.group(2).endswith(place.rsplit("/", 1)[-1]), line
