"""The corpus of malformed inputs: every one gets a clean, located, one-line error.

Each case is a file (written into a fresh directory) or an invocation, run in process
through ``xentcli.cli.main.main``. The contract checked for each (see ``docs/errors.md``):

- the exit code (1 bad data or unreadable file, 2 usage);
- exactly one line on stderr, starting ``Error:``, naming ``FILE:LINE:COLUMN`` where
  there is one (1-based physical line, header = line 1; 1-based field number) and
  showing the offending value;
- nothing on stdout, no traceback;
- no output file left behind (every batch case asks for ``--per-row out.csv``).

Unless said otherwise a case's file is ``bad.csv``: a header ``a,b,c,label``, a good row on
line 2, the bad row on line 3 and another good row on line 4.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from hardening import (
    LINUX_ONLY,
    NEEDS_PERMISSIONS,
    Outcome,
    assert_clean_error,
    assert_no_traceback,
    drop_file_capabilities,
    leftovers,
    run,
    run_process,
)

from xentcli.core import _kernel as kernel

HEADER = "a,b,c,label"
GOOD = "0.5,1.5,-2.0,1"


def with_line3(line: str | bytes) -> bytes:
    """A file whose third physical line is *line* (header, good row, *line*, good row)."""
    raw = line.encode("utf-8") if isinstance(line, str) else line
    return f"{HEADER}\n{GOOD}\n".encode() + raw + f"\n{GOOD}\n".encode()


def with_cell(cell: str | bytes, column: int = 2) -> bytes:
    """Line 3 is a good row whose field *column* (1-based) is *cell*."""
    fields: list[bytes] = [b"1.0", b"2.0", b"3.0", b"0"]
    fields[column - 1] = cell.encode("utf-8") if isinstance(cell, str) else cell
    return with_line3(b",".join(fields))


@dataclass(frozen=True)
class Case:
    """One malformed input: the file, the options, and the error it must produce."""

    id: str
    content: bytes | None  #: None: no input file is written
    code: int = 1
    where: str | None = "bad.csv:3:2"
    value: object = None
    args: tuple[str, ...] = ()
    name: str = "bad.csv"
    contains: tuple[str, ...] = ()


def number_case(id: str, cell: str, *, column: int = 2) -> Case:
    """A cell that is not a number a user could mean (the value is shown as written)."""
    return Case(id, with_cell(cell, column), where=f"bad.csv:3:{column}", value=cell)


BROKEN_NUMBERS = [
    number_case("two-points", "1.2.3"),
    number_case("exponent-without-digits", "1e"),
    number_case("exponent-sign-only", "1e+"),
    number_case("double-minus", "--5"),
    number_case("plus-minus", "+-5"),
    number_case("hex-float", "0x1p3"),
    number_case("hex-int", "0x10"),
    number_case("binary-int", "0b101"),
    number_case("underscore-thousands", "1_000"),
    number_case("space-thousands", "1 000"),
    number_case("unicode-minus", "\u22121.5"),
    number_case("full-width-digits", "\uff11\uff12"),
    number_case("arabic-indic-digits", "\u0663"),
    # Quoted cells: the value shown is what is inside the quotes.
    Case("decimal-comma-quoted", with_cell('"1,5"'), value="1,5"),
    Case("thousands-comma-quoted", with_cell('"1,000"'), value="1,000"),
    number_case("lone-point", "."),
    number_case("lone-minus", "-"),
    number_case("lone-exponent", "e5"),
    number_case("trailing-letter", "1.5f"),
    number_case("fraction", "1/2"),
    number_case("percent", "5%"),
    number_case("word", "abc"),
    number_case("na", "NA"),
    number_case("null", "null"),
]

NAN_SPELLINGS = ["nan", "NaN", "NAN", "nAn", "-nan", "+nan", "-NaN", "+NAN"]
POS_INF_SPELLINGS = [
    "inf", "Inf", "INF", "iNf", "+inf", "+Inf", "+INF",
    "infinity", "Infinity", "INFINITY", "+infinity", "+Infinity", "iNfInItY",
]  # fmt: skip
OVERFLOWING = ["1e309", "1e999", "9" * 400]  # beyond the float range: +inf
NON_FINITE = (
    [number_case(f"nan:{s}", s) for s in NAN_SPELLINGS]
    + [number_case(f"+inf:{s}", s) for s in POS_INF_SPELLINGS]
    + [number_case(f"overflow:{s[:8]}", s) for s in OVERFLOWING]
)

CELLS = [
    Case("empty-cell", with_cell("")),
    Case("empty-first-cell", with_cell("", 1), where="bad.csv:3:1"),
    Case("space-only-cell", with_cell("   "), value="   "),
    Case("tab-only-cell", with_cell("\t"), value="\t"),
    Case("empty-label", with_cell("", 4), where="bad.csv:3:4"),
    Case("stray-quote", with_cell('2"0'), value='2"0'),
    # As in pyarrow and Python's csv module, text after a closing quote is kept.
    Case("text-after-closing-quote", with_cell('"2"x'), value="2x"),
    Case("lone-carriage-return", with_cell("2\r0"), value="2\r0"),
    # Found by the fuzzer: a lone CR in a line that also has a quote.
    Case("carriage-return-and-stray-quote", with_cell('2"\r'), value='2"\r'),
    Case("carriage-return-in-quotes", with_cell('"2\r"'), value="2\r"),
    # A quoted field cannot span lines: the quote is unterminated on its line.
    Case("embedded-newline", with_cell('"2.\n0"'), where="bad.csv:3"),
    Case("bom-in-the-middle", with_cell("\ufeff2.0"), value="\ufeff2.0"),
    Case("bom-starting-a-line", with_cell("\ufeff1.0", 1), where="bad.csv:3:1",
         value="\ufeff1.0"),
    # Found by the fuzzer: the last line, without a line break, starting with a BOM.
    Case("bom-starting-the-last-line", f"{HEADER}\n{GOOD}\n\ufeff1,2,3,0".encode(),
         where="bad.csv:3:1", value="\ufeff1"),
    Case("nul-byte", with_cell(b"2\x000"), value="2\x000"),
    Case("nul-only", with_cell(b"\x00"), value="\x00"),
    Case("non-utf8-byte", with_cell(b"2.\xff0")),
    Case("latin1-cell", with_cell("é".encode("latin-1"))),
]  # fmt: skip

ROWS = [
    Case("short-row", with_line3("1.0,2.0,0"), where="bad.csv:3"),
    Case("long-row", with_line3("1.0,2.0,3.0,0,5"), where="bad.csv:3"),
    Case("trailing-delimiter", with_line3("1.0,2.0,3.0,0,"), where="bad.csv:3"),
    Case("decimal-comma-unquoted", with_line3("1,5,2.0,3.0,0"), where="bad.csv:3"),
    Case("semicolons-in-csv", with_line3("1.0;2.0;3.0;0"), where="bad.csv:3"),
    Case("tabs-in-csv", with_line3("1.0\t2.0\t3.0\t0"), where="bad.csv:3"),
    Case("mixed-delimiters", with_line3("1.0;2.0,3.0,0"), where="bad.csv:3"),
    Case("unterminated-quote", with_line3('1.0,"2.0,3.0,0'), where="bad.csv:3"),
    Case("only-minus-infinity", with_line3("-inf,-inf,-inf,0"), where="bad.csv:3"),
    Case("quoted-newline-in-header", b'a,"b\nB",c,label\n0.5,1.5,-2.0,1\n', where="bad.csv:1"),
    # Blank and blank-looking lines are skipped but counted: line numbers stay physical.
    Case(
        "line-numbers-after-blank-lines",
        b"\n  \na,b,c,label\n\n0.5,1.5,-2.0,1\n\t\n\r\n1.0,x,3.0,0\n\n",
        where="bad.csv:8:2",
        value="x",
    ),
    Case(
        "line-numbers-with-crlf",
        b"a,b,c,label\r\n0.5,1.5,-2.0,1\r\n1.0,x,3.0,0\r\n",
        value="x",
    ),
]

LABELS = [
    Case("label-exponent", with_cell("1e3", 4), where="bad.csv:3:4", value="1e3"),
    Case("label-out-of-range", with_cell("3", 4), where="bad.csv:3:4", value="3"),
    Case("label-negative", with_cell("-1", 4), where="bad.csv:3:4", value="-1"),
    Case("label-fractional", with_cell("1.5", 4), where="bad.csv:3:4", value="1.5"),
    Case("label-integral-float-beyond-2**53", with_cell("1e300", 4), where="bad.csv:3:4",
         value="1e300"),
    Case("label-int64-overflow", with_cell("9223372036854775808", 4), where="bad.csv:3:4",
         value="9223372036854775808"),
    Case("label-huge", with_cell("9" * 30, 4), where="bad.csv:3:4", value="9" * 30),
    Case("label-int64-underflow", with_cell("-9223372036854775809", 4),
         where="bad.csv:3:4", value="-9223372036854775809"),
    Case("label-nan", with_cell("nan", 4), where="bad.csv:3:4", value="nan"),
    Case("label-inf", with_cell("inf", 4), where="bad.csv:3:4", value="inf"),
    Case("label-word", with_cell("cat", 4), where="bad.csv:3:4", value="cat"),
    Case("label-hex", with_cell("0x1", 4), where="bad.csv:3:4", value="0x1"),
    Case("label-underscore", with_cell("1_0", 4), where="bad.csv:3:4", value="1_0"),
    Case("label-full-width", with_cell("\uff11", 4), where="bad.csv:3:4", value="\uff11"),
    Case("label-unknown-class",
         b"a,b,c,label\n0.5,1.5,-2.0,dog\n1.0,2.0,3.0,cow\n0.5,1.5,-2.0,bird\n",
         where="bad.csv:3:4", value="cow", args=("--classes", "cat,dog,bird")),
]  # fmt: skip

FILES = [
    Case("empty-file", b"", where="bad.csv"),
    Case("newline-only", b"\n", where="bad.csv"),
    Case("header-only", f"{HEADER}\n".encode(), where="bad.csv"),
    Case("header-only-no-newline", HEADER.encode(), where="bad.csv"),
    Case("one-column", b"label\n0\n1\n", where="bad.csv"),
    # A first line with a blank cell but otherwise numbers is data, not a header.
    Case("first-row-blank-cell", b"1.0,,3.0,0\n1,2,3,0\n", where="bad.csv:1:2", value=""),
    Case("duplicate-column-name", b"a,a,c,label\n1,2,3,0\n", where="bad.csv:1:2", value="a"),
    Case("utf16-file", f"{HEADER}\n{GOOD}\n".encode("utf-16"), where="bad.csv:1:1"),
    Case("nul-bytes-file", b"\x00" * 64, where="bad.csv"),
    Case("not-gzip", f"{HEADER}\n{GOOD}\n".encode(), name="bad.csv.gz", where="bad.csv.gz"),
    Case("truncated-gzip", gzip.compress(with_line3(GOOD) * 50)[:-30], name="bad.csv.gz",
         where="bad.csv.gz"),
    Case("truncated-bz2", bz2.compress(with_line3(GOOD) * 50)[:-30], name="bad.csv.bz2",
         where="bad.csv.bz2"),
    Case("truncated-xz", lzma.compress(with_line3(GOOD) * 50)[:-30], name="bad.csv.xz",
         where="bad.csv.xz"),
    Case("bad-value-in-gzip", gzip.compress(with_cell("1.2.3")), name="bad.csv.gz",
         where="bad.csv.gz:3:2", value="1.2.3"),
    Case("missing-file", None, where="bad.csv"),
]  # fmt: skip

# A column the file does not have is bad data (it depends on the file): exit 1, naming
# the file; a malformed option value is a usage error: exit 2.
OPTIONS = [
    # A column option naming no column is a usage error (exit 2).
    Case("unknown-label-column", with_line3(GOOD), code=2, where="bad.csv",
         args=("--label-column", "nope"), contains=("no column 'nope'",)),
    Case("label-column-index-out-of-range", with_line3(GOOD), code=2, where="bad.csv",
         args=("--label-column", "9"), value=9),
    Case("unknown-logit-column", with_line3(GOOD), code=2, where="bad.csv",
         args=("--logit-columns", "a,zz"), contains=("no column 'zz'",)),
    Case("weights-length", with_line3(GOOD), code=2, where=None,
         args=("--weights", "1,2"), contains=("weights",)),
    Case("on-error-unknown", with_line3(GOOD), code=2, where=None,
         args=("--on-error", "ignore")),
    Case("delimiter-of-two-characters", with_line3(GOOD), code=2, where=None,
         args=("--delimiter", "ab"), contains=("'ab'",)),
    Case("negative-label-column-out-of-range", with_line3(GOOD), code=2, where="bad.csv",
         args=("--label-column", "-9"), value=-9),
    # Forcing --no-header on a file that has one: the header is a data row, located.
    Case("no-header-on-a-header", with_line3(GOOD), where="bad.csv:1:1", value="a",
         args=("--no-header",)),
    # A .tsv is tab-separated: a comma-separated .tsv has a single column.
    Case("tsv-holding-commas", with_line3(GOOD), name="bad.tsv", where="bad.tsv"),
    Case("glob-matching-nothing", None, name="nothing*.csv", where="nothing*.csv"),
]  # fmt: skip

CASES = BROKEN_NUMBERS + NON_FINITE + CELLS + ROWS + LABELS + FILES + OPTIONS


def test_the_corpus_is_large_and_distinct() -> None:
    assert len({case.id for case in CASES}) == len(CASES)
    assert len(CASES) >= 40


def run_batch(directory: Path, paths: list[str], *args: str) -> Outcome:
    """``xent batch PATHS --per-row out.csv ARGS`` with *directory* as the working dir."""
    return run(["batch", *paths, "--per-row", "out.csv", *args])


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_a_clean_error(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if case.content is not None:
        (tmp_path / case.name).write_bytes(case.content)
    before = {entry.name for entry in tmp_path.iterdir()}
    outcome = run_batch(tmp_path, [case.name], *case.args)
    assert_clean_error(
        outcome, case.code, where=case.where, value=case.value, contains=case.contains
    )
    assert leftovers(tmp_path, before) == set()


# ----------------------------------------------------------------- files and streams
def test_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    outcome = run_batch(tmp_path, ["data"])
    assert_clean_error(outcome, 1, where="data", contains=("directory",))
    assert leftovers(tmp_path, {"data"}) == set()


def test_error_in_the_second_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.csv").write_bytes(with_line3(GOOD))
    (tmp_path / "bad.csv").write_bytes(with_cell("1.2.3"))
    outcome = run_batch(tmp_path, ["good.csv", "bad.csv"])
    assert_clean_error(outcome, 1, where="bad.csv:3:2", value="1.2.3")
    assert leftovers(tmp_path, {"good.csv", "bad.csv"}) == set()


def test_empty_stdin() -> None:
    outcome = run(["batch", "-"], input=b"")
    assert_clean_error(outcome, 1, where="<stdin>")


def test_bad_value_on_stdin_is_located() -> None:
    outcome = run(["batch", "-"], input=with_cell("1e"))
    assert_clean_error(outcome, 1, where="<stdin>:3:2", value="1e")


def test_truncated_gzip_on_stdin() -> None:
    outcome = run(["batch", "-"], input=gzip.compress(with_line3(GOOD) * 50)[:-30])
    assert_clean_error(outcome, 1, where="<stdin>", contains=("truncated",))


def test_skipped_rows_are_never_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_bytes(with_cell("1.2.3") + b"1,nan,2,0\n")
    outcome = run(["batch", "bad.csv", "--on-error", "skip", "--format", "json"])
    assert_no_traceback(outcome)
    assert outcome.code == 0
    warning = outcome.stderr.splitlines()
    assert len(warning) == 1
    assert warning[0].startswith("Warning: skipped 2 bad rows")
    assert "bad.csv:3" in warning[0]
    assert "bad.csv:5" in warning[0]
    summary = json.loads(outcome.stdout)
    assert (summary["rows"], summary["rows_counted"], summary["rows_skipped"]) == (4, 2, 2)
    assert summary["loss"] == kernel.cross_entropy([[0.5, 1.5, -2.0]] * 2, [1, 1])


def test_undefined_mean_is_said_not_printed_as_nan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.csv").write_bytes(with_line3(GOOD))  # every label is 1 or 0
    outcome = run(["batch", "ok.csv", "--weights", "0,0,0", "--format", "json"])
    assert_no_traceback(outcome)
    assert outcome.code == 0
    assert "nan" not in outcome.stdout.lower()
    assert json.loads(outcome.stdout)["loss"] is None
    assert outcome.stderr.startswith("Warning: the mean loss is undefined")
    table = run(["batch", "ok.csv", "--weights", "0,0,0"])
    assert table.code == 0
    assert "nan" not in table.stdout.lower()
    assert "undefined" in table.stdout


def test_long_value_is_shortened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_bytes(with_cell("x" * 5000))
    line = assert_clean_error(run_batch(tmp_path, ["bad.csv"]), 1, where="bad.csv:3:2")
    assert len(line) < 200
    assert "xxx" in line


# --------------------------------------------------------------------- output paths
def test_per_row_in_a_missing_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.csv").write_bytes(with_line3(GOOD))
    outcome = run(["batch", "good.csv", "--per-row", "missing/out.csv"])
    assert_clean_error(outcome, 1, contains=("missing/out.csv",))
    assert leftovers(tmp_path, {"good.csv"}) == set()


def test_per_row_is_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.csv").write_bytes(with_line3(GOOD))
    (tmp_path / "out").mkdir()
    outcome = run(["batch", "good.csv", "--per-row", "out"])
    assert_clean_error(outcome, 1, contains=("out",))
    assert leftovers(tmp_path, {"good.csv", "out"}) == set()
    assert list((tmp_path / "out").iterdir()) == []


def test_per_row_onto_an_input_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renaming the per-row output over an input would destroy the user's data.
    monkeypatch.chdir(tmp_path)
    content = with_line3(GOOD)
    (tmp_path / "preds.csv").write_bytes(content)
    outcome = run(["batch", "preds.csv", "--per-row", "preds.csv"])
    assert_clean_error(outcome, 2, contains=("preds.csv",))
    assert (tmp_path / "preds.csv").read_bytes() == content
    assert leftovers(tmp_path, {"preds.csv"}) == set()


def test_per_row_onto_an_input_through_another_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    content = with_line3(GOOD)
    (tmp_path / "preds.csv").write_bytes(content)
    (tmp_path / "sub").mkdir()
    outcome = run(["batch", "sub/../preds.csv", "--per-row", "./preds.csv"])
    assert_clean_error(outcome, 2, contains=("preds.csv",))
    assert (tmp_path / "preds.csv").read_bytes() == content


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_per_row_onto_an_input_through_a_link(
    link: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.chdir(tmp_path)
    content = with_line3(GOOD)
    (tmp_path / "preds.csv").write_bytes(content)
    (os.symlink if link == "symlink" else os.link)("preds.csv", "other.csv")
    outcome = run(["batch", "preds.csv", "--per-row", "other.csv"])
    assert_clean_error(outcome, 2, contains=("other.csv",))
    assert (tmp_path / "preds.csv").read_bytes() == content


def test_file_name_with_a_line_break_stays_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad\nname.csv").write_bytes(with_cell("1.2.3"))
    line = assert_clean_error(run(["batch", "bad\nname.csv"]), 1, value="1.2.3")
    assert "name.csv" in line


# ----------------------------------------------------------- what must keep working
# Each accepted spelling, and the row it means (logits a, b, c; label). The documented
# syntax (docs/errors.md): spaces and tabs around a number or label are allowed, -inf in
# any spelling (and a negative overflow) masks a class, quotes are RFC 4180.
ACCEPTED = [
    ("-inf,1.5,-2.0,1", [-math.inf, 1.5, -2.0], 1),
    ("-Inf,1.5,-2.0,1", [-math.inf, 1.5, -2.0], 1),
    ("-INF,1.5,-2.0,1", [-math.inf, 1.5, -2.0], 1),
    ("-infinity,1.5,-2.0,1", [-math.inf, 1.5, -2.0], 1),
    ("-Infinity,1.5,-2.0,1", [-math.inf, 1.5, -2.0], 1),
    ("-1e999,1.5,-2.0,1", [-math.inf, 1.5, -2.0], 1),
    (" 1.5 ,\t2,-3 ,0", [1.5, 2.0, -3.0], 0),
    (".5,5.,1E+1,2", [0.5, 5.0, 10.0], 2),
    ("+1,-0,1e-400,1", [1.0, -0.0, 0.0], 1),
    ('"1.5","2",3,"1"', [1.5, 2.0, 3.0], 1),
    ('"2"0,1,1,0', [20.0, 1.0, 1.0], 0),
    ("1,2,3, 2 ", [1.0, 2.0, 3.0], 2),
    ("1,2,3,+0", [1.0, 2.0, 3.0], 0),
    ("1,2,3,00", [1.0, 2.0, 3.0], 0),
    ("1,2,3,\t1\t", [1.0, 2.0, 3.0], 1),
]


def test_accepted_spellings_mean_what_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    # a BOM, CRLF line ends and blank lines in between: all accepted
    body = "\r\n\r\n".join(text for text, _, _ in ACCEPTED)
    (tmp_path / "ok.csv").write_bytes(f"\ufeff{HEADER}\r\n{body}\r\n  \r\n".encode())
    outcome = run(["batch", "ok.csv", "--format", "json", "--per-row", "rows.csv"])
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome.stderr
    logits = [row for _, row, _ in ACCEPTED]
    labels = [label for _, _, label in ACCEPTED]
    assert json.loads(outcome.stdout)["loss"] == kernel.cross_entropy(logits, labels)
    lines = [row[1] for row in csv.reader(io.StringIO((tmp_path / "rows.csv").read_text()))]
    assert [int(line) for line in lines if line.isdigit()] == list(
        range(2, 2 * len(ACCEPTED) + 1, 2)
    )


def test_hundred_thousand_columns_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.chdir(tmp_path)
    k = 100_000
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3, k)).round(6)
    labels = np.array([0, k // 2, k - 1])
    header = ",".join(f"l{j}" for j in range(k)) + ",label"
    body = "".join(
        ",".join(repr(float(v)) for v in row) + f",{label}\n"
        for row, label in zip(logits, labels, strict=True)
    )
    (tmp_path / "wide.csv").write_text(f"{header}\n{body}")
    # CSV rather than JSON output: the same exact loss, without 100 000 per-class entries
    outcome = run(["batch", "wide.csv", "--format", "csv", "--per-row", "rows.csv"])
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome.stderr
    pooled = list(csv.DictReader(io.StringIO(outcome.stdout)))[-1]
    assert float(pooled["loss"]) == kernel.cross_entropy(logits, labels)
    per_row = list(csv.DictReader(io.StringIO((tmp_path / "rows.csv").read_text())))
    assert [int(row["line"]) for row in per_row] == [2, 3, 4]
    assert [float(row["loss"]) for row in per_row] == list(
        kernel.cross_entropy(logits, labels, reduction="none")
    )


# -------------------------------------------------------------------------- compute
@dataclass(frozen=True)
class Invocation:
    """A bad ``xent compute`` invocation: exit 2 and one line naming the bad value."""

    id: str
    args: tuple[str, ...]
    contains: tuple[str, ...]


def logits_case(id: str, logits: str, label: str = "0") -> Invocation:
    return Invocation(id, ("--logits", logits, "--label", label), (repr(logits.split(",")[0]),))


COMPUTE = [
    logits_case("logits-two-points", "1.2.3,2"),
    logits_case("logits-exponent-without-digits", "1e,2"),
    logits_case("logits-double-minus", "--5,2"),
    logits_case("logits-hex", "0x1p3,2"),
    logits_case("logits-underscore", "1_000,2"),
    logits_case("logits-unicode-minus", "\u22121,2"),
    logits_case("logits-full-width", "\uff11,2"),
    logits_case("logits-word", "abc,2"),
    Invocation("logits-empty", ("--logits", "", "--label", "0"), ("logits",)),
    Invocation("logits-separators-only", ("--logits", ",,;", "--label", "0"), ("logits",)),
    Invocation("logits-brackets-only", ("--logits", "[]", "--label", "0"), ("logits",)),
    *(
        Invocation(f"logits-{s}", ("--logits", f"{s},1", "--label", "1"), (s,))
        for s in ("nan", "NaN", "-nan", "inf", "+Inf", "Infinity")
    ),
    Invocation("logits-overflow", ("--logits", "1e999,1", "--label", "1"), ("1e999",)),
    Invocation("logits-all-minus-inf", ("--logits", "-inf,-inf", "--label", "0"), ("inf",)),
    Invocation("label-out-of-range", ("--logits", "1,2", "--label", "2"), ("2",)),
    Invocation("label-negative", ("--logits", "1,2", "--label", "-1"), ("-1",)),
    Invocation("label-fractional", ("--logits", "1,2", "--label", "1.5"), ("1.5",)),
    Invocation("label-exponent", ("--logits", "1,2", "--label", "1e0"), ("1e0",)),
    Invocation("label-overflow", ("--logits", "1,2", "--label", "9" * 25), ("9" * 20,)),
    Invocation("label-word", ("--logits", "1,2", "--label", "cat"), ("cat",)),
    Invocation(
        "temperature-zero", ("--logits", "1,2", "--label", "0", "--temperature", "0"), ("0",)
    ),
    Invocation(
        "temperature-negative",
        ("--logits", "1,2", "--label", "0", "--temperature", "-1"),
        ("-1",),
    ),
    Invocation(
        "temperature-nan", ("--logits", "1,2", "--label", "0", "--temperature", "nan"), ("nan",)
    ),
    Invocation(
        "label-smoothing-too-big",
        ("--logits", "1,2", "--label", "0", "--label-smoothing", "1.5"),
        ("1.5",),
    ),
    Invocation(
        "label-smoothing-negative",
        ("--logits", "1,2", "--label", "0", "--label-smoothing", "-0.1"),
        ("-0.1",),
    ),
    Invocation(
        "weights-length", ("--logits", "1,2,3", "--label", "0", "--weights", "1,2"), ("weights",)
    ),
    Invocation("weights-nan", ("--logits", "1,2", "--label", "0", "--weights", "1,nan"), ("nan",)),
    Invocation(
        "targets-do-not-sum-to-one", ("--logits", "1,2", "--target", "0.5,0.6"), ("target",)
    ),
    Invocation("targets-negative", ("--logits", "1,2", "--target", "1.5,-0.5"), ("target",)),
    Invocation("targets-length", ("--logits", "1,2,3", "--target", "0.5,0.5"), ("target",)),
]


@pytest.mark.parametrize("case", COMPUTE, ids=[case.id for case in COMPUTE])
def test_bad_compute_invocation(case: Invocation) -> None:
    assert_clean_error(run(["compute", *case.args]), 2, contains=case.contains)


# Every finite T > 0 is valid input. For a tiny temperature logits / T overflows float64,
# yet the loss is well defined: (m - y_i) / T + log(1 + ...), +inf for [1, 2] with label 0
# (1e320 is beyond the float range) and exactly 0 for [1, -2] with label 0. A refusal
# (exit 2) is a bug, as is NaN.
TINY_T = [(["1", "2"], 0, "inf"), (["1", "-2"], 0, 0.0)]


@pytest.mark.parametrize(("logits", "label", "loss"), TINY_T)
def test_tiny_temperature_compute(logits: list[str], label: int, loss: object) -> None:
    import json

    outcome = run(
        ["compute", "--logits", ",".join(logits), "--label", str(label),
         "--temperature", "1e-320", "--format", "json"]
    )  # fmt: skip
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome.stderr
    assert "nan" not in outcome.stdout.lower()
    assert json.loads(outcome.stdout)["loss"] == loss


def test_tiny_temperature_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{','.join(logits)},{label}\n" for logits, label, _ in TINY_T)
    (tmp_path / "t.csv").write_text(f"a,b,label\n{rows}")
    outcome = run(["batch", "t.csv", "--temperature", "1e-320", "--format", "json"])
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome.stderr
    assert "nan" not in outcome.stdout.lower()
    data = json.loads(outcome.stdout)
    assert data["loss"] == "inf"
    assert [c["loss"] for c in data["per_class"]] == ["inf", None]


@pytest.mark.parametrize("temperature", ["536870912", "4503599627370496", "1000"])
def test_huge_logit_with_power_of_two_temperature(temperature: str) -> None:
    # Found by the long fuzz run: a logit near the float max divided by 2**29 gave NaN.
    import json

    outcome = run(
        ["compute", "--logits", "0,1.7976931348623157e308", "--label", "0",
         "--temperature", temperature, "--format", "json"]
    )  # fmt: skip
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome.stderr
    want = 1.7976931348623157e308 / float(temperature)
    assert json.loads(outcome.stdout)["loss"] == pytest.approx(want, rel=1e-15)


def test_two_logits_near_the_float_max() -> None:
    # Found by the long fuzz run: the exact shift of two huge logits gave NaN.
    import json

    outcome = run(
        ["compute", "--logits", "6.403938346442472e+307,1.7976931348623157e+308",
         "--label", "0", "--format", "json"]
    )  # fmt: skip
    assert_no_traceback(outcome)
    assert outcome.code == 0, outcome.stderr
    want = 1.7976931348623157e308 - 6.403938346442472e307
    assert json.loads(outcome.stdout)["loss"] == pytest.approx(want, rel=1e-15)


def test_corpus_of_files_and_invocations_has_at_least_forty() -> None:
    assert len(CASES) + len(COMPUTE) >= 40


# ---------------------------------------------- permissions and read errors (subprocess)
# Root ignores file permissions, and CI containers often run as root. These run the
# command in a subprocess without the capabilities that let root bypass permissions
# (see hardening.drop_file_capabilities), so chmod is obeyed whoever runs the suite.
@NEEDS_PERMISSIONS
def test_unreadable_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_bytes(with_line3(GOOD))
    secret.chmod(0)
    outcome = run_process(
        ["batch", "secret.csv", "--per-row", "out.csv"],
        cwd=tmp_path,
        preexec_fn=drop_file_capabilities,
    )
    assert_clean_error(outcome, 1, where="secret.csv", contains=("permission denied",))
    assert leftovers(tmp_path, {"secret.csv"}) == set()


@NEEDS_PERMISSIONS
def test_per_row_in_a_read_only_directory(tmp_path: Path) -> None:
    (tmp_path / "good.csv").write_bytes(with_line3(GOOD))
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    outcome = run_process(
        ["batch", "good.csv", "--per-row", "ro/rows.csv"],
        cwd=tmp_path,
        preexec_fn=drop_file_capabilities,
    )
    locked.chmod(0o755)
    assert_clean_error(outcome, 1, where="ro/rows.csv", contains=("permission denied",))
    assert list(locked.iterdir()) == []


@LINUX_ONLY
def test_read_error_while_reading() -> None:
    # Reading /proc/self/mem at offset 0 fails with EIO: a read error on an open file.
    outcome = run_process(["batch", "/proc/self/mem"])
    assert_clean_error(outcome, 1, where="/proc/self/mem", contains=("input/output error",))


def test_read_error_in_a_npy_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The .npy reader reads rows with np.fromfile; its EIO once escaped every reader's
    # message and xent batch said `Error: Input/output error`, naming no file.
    import errno

    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save("s.npy", np.array([[1.0, 2.0], [0.0, 1.0]]))
    np.save("l.npy", np.array([0, 1]))

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(np, "fromfile", failing)
    outcome = run(["batch", "s.npy", "--labels", "l.npy"])
    line = "Error: s.npy: cannot read file data: [Errno 5] Input/output error\n"
    assert (outcome.code, outcome.stderr, outcome.stdout) == (1, line, "")


# ------------------------------------------------ xent compute --from: reading errors
# compute --from reads its row as xent batch reads a file, through the same mapping of
# reading errors to exit codes (cli/tools.reading_errors): each case's line and code.
FROM_CASES = [
    ("nope.csv:2", (), 1, "Error: nope.csv: no such file\n"),
    ("adir:2", (), 1, "Error: adir: is a directory, not a file\n"),
    ("t.csv:2", ("--label-column", "nope"), 2,
     "Error: t.csv: label column: no column 'nope' (columns: a, b, label)\n"),
    ("t.csv:2", ("--classes", "x,y,z"), 1, "Error: t.csv: 3 class names for 2 logit columns\n"),
    ("w.csv:2", (), 2, "Error: w.csv: column 'weight' is named like sample weights, not a score:"
     " give --logit-columns to choose the score columns\n"),
    ("t.csv:3", (), 1, "Error: t.csv:3: no such line: the last line of data is 2\n"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "options", "code", "line"), FROM_CASES)
def test_compute_from_reading_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, options: tuple[str, ...],
    code: int, line: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n")
    (tmp_path / "w.csv").write_text("a,b,weight,label\n1,2,1,0\n")
    outcome = run(["compute", "--from", spec, *options])
    assert (outcome.code, outcome.stderr, outcome.stdout) == (code, line, "")


@NEEDS_PERMISSIONS
def test_compute_from_an_unreadable_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b,label\n1,2,0\n")
    secret.chmod(0)
    outcome = run_process(
        ["compute", "--from", "secret.csv:2"], cwd=tmp_path, preexec_fn=drop_file_capabilities
    )
    assert_clean_error(outcome, 1, where="secret.csv", contains=("permission denied",))


@LINUX_ONLY
def test_compute_from_a_read_error_while_reading() -> None:
    outcome = run_process(["compute", "--from", "/proc/self/mem:2"])
    assert_clean_error(outcome, 1, where="/proc/self/mem", contains=("input/output error",))
