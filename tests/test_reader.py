"""Tests of xentcli.batch.reader on real files: layouts, options, the accepted syntax, every bad
input, skipping, streaming, and the agreement of the fast (pyarrow) and precise paths."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xentcli.batch.reader as reader
from xentcli.batch.reader import Chunk, ReadOptions, open_table
from xentcli.errors import DataError

NEG = float("-inf")


# ----------------------------------------------------------------------------- helpers


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    data = content.encode() if isinstance(content, str) else content
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".bz2"):
        data = bz2.compress(data)
    elif name.endswith(".xz"):
        data = lzma.compress(data)
    path.write_bytes(data)
    return str(path)


class Read:
    """Everything read from a table, chunks concatenated."""

    def __init__(self, path: str, options: ReadOptions) -> None:
        with open_table(path, options) as table:
            self.chunks: list[Chunk] = list(table.chunks())
            self.table = table
        k = len(table.logit_names)
        self.logits = np.concatenate([np.empty((0, k))] + [c.logits for c in self.chunks])
        self.lines = [line for c in self.chunks for line in c.lines.tolist()]
        self.labels: list[int] | None = None
        if table.label_name is not None:
            self.labels = [
                y for c in self.chunks if c.labels is not None for y in c.labels.tolist()
            ]
        self.targets = None
        if table.label_name is None:
            self.targets = np.concatenate(
                [np.empty((0, k))] + [c.targets for c in self.chunks if c.targets is not None]
            )


def read(path: str, **options: Any) -> Read:
    return Read(path, ReadOptions(**options))


def error(path: str, **options: Any) -> DataError:
    with pytest.raises(DataError) as caught, open_table(path, ReadOptions(**options)) as table:
        for _ in table.chunks():
            pass
    return caught.value


@pytest.fixture
def precise_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disable both fast paths: every block is read by the precise reader."""
    monkeypatch.setattr(reader.Table, "_fast", lambda self, block, first, newlines=None: None)
    monkeypatch.setattr(reader.Table, "_fast_wide", lambda self, block, first: None)


def same(a: Read, b: Read) -> None:
    assert a.logits.tobytes() == b.logits.tobytes()  # identical bits, -0.0 included
    assert a.lines == b.lines
    assert a.labels == b.labels
    if a.targets is None:
        assert b.targets is None
    else:
        assert b.targets is not None
        assert a.targets.tobytes() == b.targets.tobytes()


def both_paths(path: str, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Read:
    """Read *path* with the fast path and with the precise reader only; they must agree."""
    fast = read(path, **options)
    with monkeypatch.context() as patch:
        patch.setattr(reader.Table, "_fast", lambda self, block, first, newlines=None: None)
        patch.setattr(reader.Table, "_fast_wide", lambda self, block, first: None)
        precise = read(path, **options)
    same(fast, precise)
    return fast


SIMPLE = "a,b,c,label\n1.5,-2,0.25,2\n0,1e3,-inf,0\n"


# ----------------------------------------------------------------------------- layouts


def test_header_label_column_and_lines(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", SIMPLE))
    assert r.logits.tolist() == [[1.5, -2.0, 0.25], [0.0, 1000.0, NEG]]
    assert r.labels == [2, 0]
    assert r.lines == [2, 3]
    assert r.table.logit_names == ["a", "b", "c"]
    assert r.table.label_name == "label"
    assert r.table.display_name.endswith("p.csv")
    assert r.table.size_bytes == len(SIMPLE)
    chunk = r.chunks[0]
    assert chunk.logits.dtype == np.float64
    assert chunk.logits.shape == (2, 3)  # any memory layout: a view of the parsed block
    assert chunk.labels is not None
    assert chunk.labels.dtype == np.int64
    assert chunk.lines.dtype == np.int64
    assert chunk.targets is None


@pytest.mark.parametrize("name", ["Label", "TARGET", "y", "Class"])
def test_default_label_column_by_name_anywhere(tmp_path: Path, name: str) -> None:
    r = read(write(tmp_path, "p.csv", f"{name},a,b\n1,0.5,0.25\n"))
    assert r.labels == [1]
    assert r.logits.tolist() == [[0.5, 0.25]]
    assert r.table.label_name == name


def test_label_preferred_over_other_label_like_names(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", "y,label,a\n0.5,1,0.25\n"))
    assert r.table.label_name == "label"
    assert r.table.logit_names == ["y", "a"]


def test_no_header_detected_label_last(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", "1,2,3,0\n4,5,6,2\n"))
    assert r.lines == [1, 2]
    assert r.labels == [0, 2]
    assert r.table.logit_names == ["0", "1", "2"]
    assert r.table.label_name == "3"


def test_blank_first_cell_is_not_a_header(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", "1,,0\n1,2,0\n"))
    assert (e.line, e.column, e.reason) == (1, 2, "empty logit cell")
    r = read(write(tmp_path, "q.csv", ",a,label\n7,1,0\n"), logit_columns=["a"])
    assert r.table.label_name == "label"
    assert r.logits.tolist() == [[1.0]]


def test_header_forced(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "5,6,0\n1,2,1\n")
    r = read(path, header=True)
    assert r.lines == [2]
    assert r.table.logit_names == ["5", "6"]
    assert read(path).lines == [1, 2]
    assert read(path, header=False).lines == [1, 2]


def test_header_forced_off_makes_a_text_row_an_error(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", "a,b,label\n1,2,0\n"), header=False)
    assert (e.line, e.column, e.reason, e.value) == (1, 1, "logit is not a number", "a")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("p.tsv", {}),
        ("p.TSV", {}),
        ("p.tab", {}),
        ("p.tsv.gz", {}),
        ("p.txt", {}),  # sniffed: tabs and no comma
        ("p.csv", {"delimiter": "\t"}),
    ],
)
def test_tab_separated(tmp_path: Path, name: str, options: dict[str, Any]) -> None:
    r = read(write(tmp_path, name, "a\tb\tlabel\n1\t2\t1\n"), **options)
    assert r.logits.tolist() == [[1.0, 2.0]]
    assert r.labels == [1]


def test_other_delimiter(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", "a;b;label\n1.5;2;1\n"), delimiter=";")
    assert r.logits.tolist() == [[1.5, 2.0]]


def test_bad_delimiter_option(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", SIMPLE), delimiter=";;")
    assert e.reason == "the delimiter must be one character"


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed(tmp_path: Path, suffix: str) -> None:
    plain = read(write(tmp_path, "p.csv", SIMPLE))
    packed = read(write(tmp_path, "p.csv" + suffix, SIMPLE))
    same(plain, packed)
    assert packed.table.bytes_read == Path(tmp_path / ("p.csv" + suffix)).stat().st_size


def test_bom_crlf_quotes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '\ufeff"a","b","label"\r\n"1.5",2,"1"\r\n-3," 4 ",0\r\n'
    r = both_paths(write(tmp_path, "p.csv", text.encode()), monkeypatch)
    assert r.table.logit_names == ["a", "b"]
    assert r.logits.tolist() == [[1.5, 2.0], [-3.0, 4.0]]
    assert r.labels == [1, 0]
    assert r.lines == [2, 3]


def test_blank_lines_skipped_with_physical_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "\n \n a,b,label\n\n1,2,0\r\n\r\n \t \n3,4,1\n\n\n"
    r = both_paths(write(tmp_path, "p.csv", text), monkeypatch)
    assert r.lines == [5, 8]
    assert r.logits.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_no_final_newline(tmp_path: Path) -> None:
    assert read(write(tmp_path, "p.csv", "a,label\n1,0\n2,0")).lines == [2, 3]


def test_unused_columns_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = 'id,a,b,label,note\nx1,1,2,0,"hello, world"\nx2,3,4,1,he said "hi\n'
    r = both_paths(write(tmp_path, "p.csv", text), monkeypatch, logit_columns=["a", "b"])
    assert r.logits.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert r.labels == [0, 1]


def test_quoted_delimiter_inside_a_class_name(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", 'a,b,label\n1,2,"x,y"\n'), class_names=["z", "x,y"])
    assert r.labels == [1]


# ----------------------------------------------------------------------------- stdin


class FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(SIMPLE.encode()))
    r = read("-")
    assert r.table.display_name == "<stdin>"
    assert r.labels == [2, 0]
    assert r.table.size_bytes is None
    assert r.table.bytes_read == len(SIMPLE)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_stdin_compressed_detected(monkeypatch: pytest.MonkeyPatch, compress: Any) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(compress(SIMPLE.encode())))
    assert read("-").labels == [2, 0]


@pytest.mark.parametrize("name", ["in.csv", "in.csv.gz"])
def test_stdin_from_a_real_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = write(tmp_path, name, SIMPLE)
    with open(path, encoding="latin-1") as handle:  # like sys.stdin, a text wrapper
        monkeypatch.setattr(sys, "stdin", handle)
        r = read("-")
        assert not handle.closed
    assert r.labels == [2, 0]
    assert r.table.size_bytes == Path(path).stat().st_size
    assert r.table.bytes_read == r.table.size_bytes


def test_stdin_tab_sniffed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"a\tb\tlabel\n1\t2\t1\n"))
    assert read("-").logits.tolist() == [[1.0, 2.0]]


def test_stdin_empty_or_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(b""))
    assert str(error("-")) == "<stdin>: file is empty"
    monkeypatch.setattr(sys, "stdin", None)
    assert str(error("-")) == "<stdin>: standard input is closed"
    closed = FakeStdin(b"")
    closed.buffer.close()
    monkeypatch.setattr(sys, "stdin", closed)
    assert str(error("-")) == "<stdin>: standard input is closed"


# ----------------------------------------------------------------------------- columns

WIDE_HEADER = "id,logit_0,logit_1,logit_2,label,p_0,p_1,p_2\n"
WIDE_ROW = "r1,1,2,3,0,0.25,0.25,0.5\n"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (["logit_*"], [1.0, 2.0, 3.0]),
        (["1:4"], [1.0, 2.0, 3.0]),
        (["logit_2", "logit_0"], [3.0, 1.0]),
        (["3", "1"], [3.0, 1.0]),
        (["1", "2:4"], [1.0, 2.0, 3.0]),
        (["1:4:2"], [1.0, 3.0]),
        (["-6"], [2.0]),  # negative indices count from the end
        (["logit_?"], [1.0, 2.0, 3.0]),
    ],
)
def test_logit_column_selection(tmp_path: Path, spec: list[str], expected: list[float]) -> None:
    path = write(tmp_path, "p.csv", WIDE_HEADER + WIDE_ROW)
    r = read(path, logit_columns=spec)
    assert r.logits.tolist() == [expected]
    assert r.labels == [0]


def test_label_column_by_name_and_index(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "a,b,c\n1,2,0\n")
    assert read(path, label_column="a").labels == [1]
    assert read(path, label_column=0).labels == [1]
    assert read(path, label_column="0").labels == [1]
    assert read(path, label_column="-3").labels == [1]


def test_label_column_in_range(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", "a,b,c\n1,0,5\n"), label_column="b")
    assert r.labels == [0]
    assert r.logits.tolist() == [[1.0, 5.0]]
    assert r.table.logit_names == ["a", "c"]


def test_name_wins_over_index(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", "1,0,label\n7,1,5\n"), label_column="0")
    assert r.labels == [1]
    assert r.logits.tolist() == [[7.0, 5.0]]
    assert r.table.label_name == "0"


def test_soft_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "p.csv", WIDE_HEADER + WIDE_ROW + "r2,0,0,-inf,0,0.5,0.5,0\n")
    r = both_paths(path, monkeypatch, logit_columns=["logit_*"], target_columns=["p_*"])
    assert r.labels is None
    assert r.table.label_name is None
    assert r.targets is not None
    assert r.targets.tolist() == [[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]]
    assert r.logits.tolist() == [[1.0, 2.0, 3.0], [0.0, 0.0, NEG]]


def test_targets_with_default_logits(tmp_path: Path) -> None:
    r = read(write(tmp_path, "p.csv", "a,b,t0,t1\n1,2,0.5,0.5\n"), target_columns=["t0", "t1"])
    assert r.logits.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"label_column": "nope"}, "label column: no column 'nope'"),
        ({"logit_columns": ["logit_0", "nope"]}, "logit columns: no column 'nope'"),
        ({"logit_columns": ["zz*"]}, "logit columns: no column matches the pattern"),
        ({"logit_columns": ["9"]}, "logit columns: column index out of range"),
        ({"logit_columns": ["-9"]}, "logit columns: column index out of range"),
        ({"logit_columns": ["8:9"]}, "logit columns: the range selects no column"),
        ({"logit_columns": ["1::0"]}, "logit columns: a range step cannot be 0"),
        ({"logit_columns": ["logit_*", "logit_1"]}, "logit columns: column 'logit_1' is selected"),
        ({"logit_columns": ["logit_*", "label"]}, "logit columns: column 'label' is also the"),
        ({"target_columns": ["p_0", "p_1"], "logit_columns": ["logit_*"]}, "2 target columns"),
        ({"logit_columns": ["logit_*"], "class_names": ["a", "b"]}, "2 class names for 3 logit"),
        ({"label_column": 1.5}, "label column: not a column name or index"),
    ],
)
def test_bad_column_selection(tmp_path: Path, options: dict[str, Any], reason: str) -> None:
    path = write(tmp_path, "p.csv", WIDE_HEADER + WIDE_ROW)
    e = error(path, **options)
    assert e.reason.startswith(reason), e.reason
    assert e.line is None


def test_names_without_header(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", "1,2,0\n"), label_column="label")
    assert "the file has no header" in e.reason


def test_one_column_file(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", "label\n1\n"))
    assert str(e).endswith("p.csv: no logit column (the file has 1 column)")


def test_duplicate_header_name(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", "a,b,a,label\n1,2,3,0\n"))
    assert (e.line, e.column, e.value) == (1, 3, "a")
    assert e.reason == "column name appears twice (also column 1)"


# ----------------------------------------------------------------------------- labels


def test_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "p.csv", "1,2,3,dog\n4,5,6, cat \n7,8,9,bird\n")
    r = both_paths(path, monkeypatch, class_names=["cat", "dog", "bird"])
    assert r.labels == [1, 0, 2]
    assert r.lines == [1, 2, 3]  # a class name in the first row does not make it a header


def test_unknown_class(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", "a,b,label\n1,2,cat\n1,2,cow\n"), class_names=["cat", "dog"])
    assert (e.line, e.column, e.value) == (3, 3, "cow")
    assert e.reason == "unknown class name (classes: cat, dog)"


def test_ignore_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "p.csv", "a,b,label\n1,2,-100\n1,2,1\n")
    assert both_paths(path, monkeypatch, ignore_index=-100).labels == [-100, 1]
    e = error(path)
    assert (e.line, e.column, e.reason) == (2, 3, "label is negative")


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("1", 1),
        (" 2 ", 2),
        ("\t0", 0),
        ("+1", 1),
        ("-0", 0),
        ("002", 2),
        # integral floats, as np.savetxt and pandas write integer labels
        ("1.0", 1),
        ("0.000000000000000000e+00", 0),
        ("2e0", 2),
        ("-0.0", 0),
    ],
)
def test_label_syntax_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cell: str, value: int
) -> None:
    path = write(tmp_path, "p.csv", f"a,b,c,label\n1,2,3,{cell}\n")
    assert both_paths(path, monkeypatch).labels == [value]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("1e3", "label is out of range [0, 3)"),
        ("1.5", "label is not an integer"),
        ("nan", "label is not an integer"),
        ("inf", "label is not an integer"),
        ("1e400", "label is not an integer"),
        ("0x1", "label is not an integer"),
        ("one", "label is not an integer"),
        ("２", "label is not an integer"),
        ("", "empty label cell"),
        ("  ", "empty label cell"),
        ("3", "label is out of range [0, 3)"),
        ("99999999999999999999", "label is out of range [0, 3)"),
        ("-1", "label is negative"),
        ("-99999999999999999999", "label is negative"),
    ],
)
def test_bad_labels(tmp_path: Path, cell: str, reason: str) -> None:
    path = write(tmp_path, "p.csv", f"a,b,c,label\n1,2,3,0\n1,2,3,{cell}\n")
    e = error(path)
    assert (e.line, e.column, e.reason, e.value) == (3, 4, reason, cell)


# ----------------------------------------------------------------------------- numbers

ACCEPTED = [
    ("1", 1.0),
    ("-2.5", -2.5),
    ("+3", 3.0),
    (".5", 0.5),
    ("5.", 5.0),
    ("1e-3", 1e-3),
    ("1.5E+10", 1.5e10),
    (" 7 ", 7.0),
    ("\t8", 8.0),
    ('"9"', 9.0),
    ('" 10 "', 10.0),
    ("-inf", NEG),
    ("-Infinity", NEG),
    ("-INF", NEG),
    ("-1e400", NEG),
    ("1e-400", 0.0),
    ("-0", -0.0),
    ("0.1000000000000000055511151231257827021181583404541015625", 0.1),
    ("2.2250738585072011e-308", 2.2250738585072011e-308),
]


@pytest.mark.parametrize(("cell", "value"), ACCEPTED)
def test_number_syntax_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cell: str, value: float
) -> None:
    path = write(tmp_path, "p.csv", f"a,b,label\n0,{cell},0\n")
    r = both_paths(path, monkeypatch)
    assert r.logits[0, 1] == value
    assert np.signbit(r.logits[0, 1]) == np.signbit(value)


NOT_NUMBERS = [
    "1_000",
    "0x10",
    "0x1p3",
    "1e",
    "e3",
    "1.2.3",
    "--5",
    "−1",  # unicode minus
    "１",  # full-width digit
    "1,5".replace(",", ";"),
    "NA",
    "null",
    "abc",
    "\ufeff1",  # a byte-order mark in the middle of the file
    "1\x002",
    "nan(1)",
    "infinit",
    "1 2",
    "'1'",
    "1d5",
    "\xa01",  # no-break space is not a blank
]


@pytest.mark.parametrize("cell", NOT_NUMBERS)
def test_not_a_number(tmp_path: Path, cell: str) -> None:
    path = write(tmp_path, "p.csv", f"a,b,label\n0,1,0\n0,{cell},0\n")
    e = error(path)
    assert (e.line, e.column, e.reason, e.value) == (3, 2, "logit is not a number", cell)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("nan", "logit is NaN"),
        ("NaN", "logit is NaN"),
        ("-nan", "logit is NaN"),
        ("NAN", "logit is NaN"),
        ("inf", "logit is +inf"),
        ("+Inf", "logit is +inf"),
        ("INFINITY", "logit is +inf"),
        ("infinity", "logit is +inf"),
        ("1e400", "logit is +inf"),
        ("", "empty logit cell"),
        (" ", "empty logit cell"),
        ('""', "empty logit cell"),
    ],
)
def test_invalid_logits(tmp_path: Path, cell: str, reason: str) -> None:
    path = write(tmp_path, "p.csv", f"a,b,label\n0,1,0\n0,{cell},0\n")
    e = error(path)
    shown = "" if cell == '""' else cell
    assert (e.line, e.column, e.reason, e.value) == (3, 2, reason, shown)


def test_row_of_only_minus_inf(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", "a,b,label\n-inf,0,0\n-inf,-Infinity,0\n"))
    assert (e.line, e.column, e.reason) == (3, None, "every logit of the row is -inf")
    assert e.value == "-inf,-Infinity,0"


def test_label_logit_minus_inf_is_valid(tmp_path: Path) -> None:
    assert read(write(tmp_path, "p.csv", "a,b,label\n-inf,0,0\n")).labels == [0]


_HOW = "; --sum-tolerance sets it, --renormalize divides by the sum"


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("1,2,-0.5,1.5", 3, "target is negative"),
        ("1,2,nan,1", 3, "target is not finite"),
        ("1,2,0.5,inf", 4, "target is not finite"),
        ("1,2,-inf,1", 3, "target is not finite"),
        ("1,2,x,1", 3, "target is not a number"),
        # K = 2: the default tolerance is max(1e-5, 5e-5 * K) = 1e-4
        ("1,2,0.5,0.4", None, f"targets sum to 0.9, not 1 (tolerance 0.0001{_HOW})"),
        ("1,2,0.5,0.50011", None, f"targets sum to 1.00011, not 1 (tolerance 0.0001{_HOW})"),
    ],
)
def test_bad_targets(tmp_path: Path, row: str, column: int | None, reason: str) -> None:
    path = write(tmp_path, "p.csv", f"a,b,t0,t1\n1,2,0.5,0.5\n{row}\n")
    e = error(path, target_columns=["t0", "t1"])
    assert (e.line, e.column, e.reason) == (3, column, reason)


def test_target_sum_within_tolerance(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "a,b,t0,t1\n1,2,0.5,0.50009\n")
    assert read(path, target_columns=["t0", "t1"]).lines == [2]


# ----------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize(
    ("row", "line", "column", "reason", "value"),
    [
        ("1,2", 3, None, "expected 3 fields, found 2", "1,2"),
        ("1,2,0,4", 3, None, "expected 3 fields, found 4", "1,2,0,4"),
        ("1,2,0,", 3, None, "expected 3 fields, found 4", "1,2,0,"),
        ("1,,0", 3, 2, "empty logit cell", ""),
        ('1,"2,0', 3, None, "unterminated quote (a field cannot span lines)", '1,"2,0'),
        ('1,"2\n3",0', 3, None, "unterminated quote (a field cannot span lines)", '1,"2'),
        ("1,2\r5,0", 3, 2, "logit is not a number", "2\r5"),
        ('1,"2"x,0', 3, 2, "logit is not a number", "2x"),
        ("1;2;0", 3, None, "expected 3 fields, found 1", "1;2;0"),
        ("1,2\t,0", 3, None, None, None),  # a tab around a number is a blank: valid
    ],
)
def test_bad_rows(
    tmp_path: Path, row: str, line: int, column: int | None, reason: str | None, value: Any
) -> None:
    path = write(tmp_path, "p.csv", f"a,b,label\n1,2,0\n{row}\n")
    if reason is None:
        assert read(path).lines == [2, 3]
        return
    e = error(path)
    assert (e.line, e.column, e.reason, e.value) == (line, column, reason, value)


@pytest.mark.parametrize("block_bytes", [1 << 20, 16])
def test_bom_starting_a_later_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    monkeypatch.setattr(reader, "BLOCK_BYTES", block_bytes)
    for end in ["", "\n"]:
        path = write(tmp_path, "p.csv", f"a,b,label\n1,2,0\n\ufeff1,2,0{end}")
        e = error(path)
        assert (e.line, e.column, e.reason, e.value) == (3, 1, "logit is not a number", "\ufeff1")


def test_not_utf8(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", b"a,b,label\n1,2,0\n1,\xff\xfe,0\n"))
    assert (e.line, e.column, e.reason, e.value) == (3, 2, "not valid UTF-8", "1,\\xff\\xfe,0")


@pytest.mark.parametrize("wide", [False, True])
def test_not_utf8_in_a_column_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wide: bool
) -> None:
    if wide:
        monkeypatch.setattr(reader, "WIDE_COLUMNS", 2)
    path = write(tmp_path, "p.csv", b"id,a,b,label\nx,1,2,0\n\xe9,1,2,0\n")
    e = error(path, logit_columns=["a", "b"])
    assert (e.line, e.column, e.reason, e.value) == (3, 1, "not valid UTF-8", "\\xe9,1,2,0")
    ok = read(write(tmp_path, "q.csv", "id,a,b,label\nx,1,2,0\né,1,2,0\n"), logit_columns=["b"])
    assert ok.lines == [2, 3]


def test_not_utf8_in_header(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", b"a,\xe9,label\n1,2,0\n"))
    assert (e.line, e.column, e.reason) == (1, 2, "not valid UTF-8")


def test_not_utf8_in_a_class_name(tmp_path: Path) -> None:
    e = error(write(tmp_path, "p.csv", b"a,b,label\n1,2,ca\xfft\n"), class_names=["cat", "dog"])
    assert (e.line, e.column, e.reason) == (2, 3, "not valid UTF-8")


def test_bad_row_far_into_a_multi_block_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "BLOCK_BYTES", 1 << 12)
    monkeypatch.setattr(reader, "_SPLIT_MIN_BYTES", 256)
    rows = [f"{i},{i + 1},{i % 2}" for i in range(3000)]
    rows[2345] = "1,oops,0"
    e = error(write(tmp_path, "p.csv", "a,b,label\n" + "\n".join(rows) + "\n"))
    assert (e.line, e.column, e.value) == (2347, 2, "oops")


# ----------------------------------------------------------------------------- files


def test_empty_files(tmp_path: Path) -> None:
    for name, content in [("e.csv", b""), ("b.csv", b"\xef\xbb\xbf"), ("w.csv", b"\n \n\r\n")]:
        assert str(error(write(tmp_path, name, content))).endswith(f"{name}: file is empty")
    assert str(error(write(tmp_path, "e.csv.gz", b""))).endswith("e.csv.gz: file is empty")


def test_header_only(tmp_path: Path) -> None:
    for content in ["a,b,label\n", "a,b,label", "a,b,label\n\n\n"]:
        e = error(write(tmp_path, "h.csv", content))
        assert (e.line, e.reason) == (None, "no data rows")
        e = error(write(tmp_path, "h.csv", content), on_error="skip")
        assert e.reason == "no data rows"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.csv")
    assert str(error(missing)) == f"{missing}: no such file"
    assert str(error(str(tmp_path))) == f"{tmp_path}: is a directory, not a file"
    assert str(error(missing, on_error="skip")) == f"{missing}: no such file"


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "p.csv", SIMPLE)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    # Tests may run as root, who can read anything: simulate the refusal.
    monkeypatch.setattr(reader, "open", refuse, raising=False)
    assert str(error(path)) == f"{path}: permission denied"


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(("a,b,label\n" + "1,2,0\n" * 5000).encode())
    path = tmp_path / "t.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    e = error(str(path))
    assert str(e) == f"{path}: gzip data is truncated"


def test_corrupt_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(("a,b,label\n" + "1,2,0\n" * 50).encode()))
    data[20:30] = b"\x00" * 10
    path = tmp_path / "c.csv.gz"
    path.write_bytes(bytes(data))
    assert "gzip data" in error(str(path)).reason


@pytest.mark.parametrize(("name", "kind"), [("n.csv.gz", "gz"), ("n.bz2", "bz2"), ("n.xz", "xz")])
def test_not_compressed_as_named(tmp_path: Path, name: str, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(SIMPLE.encode())
    e = error(str(path))
    assert str(e) == f"{path}: not a {kind} file (its name ends in .{kind})"


def test_long_line_is_an_error_not_a_memory_blowup(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    with path.open("wb") as f:
        f.write(b"a,b,label\n1,2,0\n")
        f.write(b"1" * (100 << 20))  # 100 MB without a line break
    e = error(str(path))
    assert (e.line, e.reason) == (3, "line longer than 32 MiB without a line break")


# ----------------------------------------------------------------------------- skipping


def test_skip_bad_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = ["a,b,label"] + [f"{i},{-i},{i % 2}" for i in range(40)]
    bad = {5: "1,nan,0", 9: "1,2", 12: "x,1,0", 20: "1,2,7", 31: "-inf,-inf,0"}
    for index, text in bad.items():
        rows[index] = text
    for extra in range(13):
        rows.append(f"1,2,{extra + 5}")  # more bad rows than SKIPPED_KEPT
    path = write(tmp_path, "p.csv", "\n".join(rows) + "\n")
    r = both_paths(path, monkeypatch, on_error="skip", chunk_rows=4)
    assert r.table.rows_skipped == 5 + 13
    assert len(r.table.skipped) == reader.SKIPPED_KEPT
    assert [e.line for e in r.table.skipped[:5]] == [i + 1 for i in sorted(bad)]
    assert r.table.skipped[0].reason == "logit is NaN"
    good = [i for i in range(1, 41) if i not in bad]
    assert r.lines == [i + 1 for i in good]
    assert r.labels == [(i - 1) % 2 for i in good]
    assert r.table.rows_read == len(good)


def test_skip_everything(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "a,b,label\n1,x,0\n1,2,9\n")
    with open_table(path, ReadOptions(on_error="skip")) as table:
        assert list(table.chunks()) == []
        assert table.rows_skipped == 2


def test_skip_does_not_hide_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "a,a,label\n1,2,0\n")
    assert error(path, on_error="skip").reason.startswith("column name appears twice")


# ----------------------------------------------------------------------------- streaming


def random_file(rng: np.random.Generator, rows: int, k: int) -> tuple[str, np.ndarray, list[int]]:
    logits = rng.normal(size=(rows, k)) * 5
    logits[rng.random((rows, k)) < 0.05] = NEG
    logits[:, 0] = np.where(np.isinf(logits).all(axis=1), 0.0, logits[:, 0])
    labels = rng.integers(0, k, size=rows).tolist()
    lines = [
        ",".join([repr(float(v)) for v in row] + [str(y)])
        for row, y in zip(logits, labels, strict=True)
    ]
    header = ",".join([f"logit_{j}" for j in range(k)] + ["label"])
    return header + "\n" + "\n".join(lines) + "\n", logits, labels


def test_values_exact_and_tiny_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, logits, labels = random_file(np.random.default_rng(1), 500, 7)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 1000)  # many blocks, lines cut everywhere
    path = write(tmp_path, "p.csv", text)
    r = both_paths(path, monkeypatch, chunk_rows=3)
    assert r.logits.tobytes() == logits.tobytes()
    assert r.labels == labels
    assert r.lines == list(range(2, 502))
    assert all(len(c.lines) <= 3 for c in r.chunks)
    assert all(c.logits.shape == (len(c.lines), 7) for c in r.chunks)


def test_chunk_bytes_caps_rows(tmp_path: Path) -> None:
    text, _, _ = random_file(np.random.default_rng(2), 100, 8)
    r = read(write(tmp_path, "p.csv", text), chunk_bytes=8 * 8 * 10)
    assert max(len(c.lines) for c in r.chunks) == 10


def test_bytes_read_advances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    text, _, _ = random_file(rng, 20000, 5)
    path = write(tmp_path, "p.csv.gz", text)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 1 << 16)
    seen = []
    with open_table(path, ReadOptions(chunk_rows=1000)) as table:
        for _ in table.chunks():
            seen.append(table.bytes_read)
        size = Path(path).stat().st_size
        assert table.size_bytes == size
        assert table.bytes_read == size
    assert seen == sorted(seen)
    assert len(set(seen)) > 5
    assert seen[0] < size // 2


def test_leaving_early_stops_the_reading_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    text, _, _ = random_file(np.random.default_rng(5), 5000, 4)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4096)
    with open_table(write(tmp_path, "p.csv", text), ReadOptions(chunk_rows=10)) as table:
        for _ in table.chunks():
            break
    assert not [t for t in threading.enumerate() if t.name == "xent-reader"]


def test_chunks_only_once(tmp_path: Path) -> None:
    with open_table(write(tmp_path, "p.csv", SIMPLE)) as table:
        list(table.chunks())
        with pytest.raises(RuntimeError):
            list(table.chunks())


def test_many_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    k = 99_999
    rng = np.random.default_rng(4)
    logits = np.round(rng.normal(size=(3, k)), 3)
    header = ",".join([f"l{j}" for j in range(k)] + ["label"])
    body = "\n".join(
        ",".join([*map(repr, row.tolist()), str(y)])
        for row, y in zip(logits, [0, 5, k - 1], strict=True)
    )
    path = write(tmp_path, "wide.csv", header + "\n" + body + "\n")
    r = read(path)
    assert r.logits.shape == (3, k)
    assert r.logits.tobytes() == logits.tobytes()
    assert r.labels == [0, 5, k - 1]
    assert len(r.table.logit_names) == k
    e = error(write(tmp_path, "bad.csv", header + "\n" + body.replace(",5\n", ",5.5\n") + "\n"))
    assert (e.line, e.column, e.value) == (3, k + 1, "5.5")
    # an integral float is a label (as np.savetxt writes them), in wide mode too
    r = read(write(tmp_path, "float.csv", header + "\n" + body.replace(",5\n", ",5.0\n") + "\n"))
    assert r.labels == [0, 5, k - 1]


@pytest.mark.parametrize("text", [SIMPLE, "a,b,label\n1,2,0\n3,4,1\n"])
def test_wide_mode_agrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = write(tmp_path, "p.csv", text)
    normal = read(path)
    monkeypatch.setattr(reader, "WIDE_COLUMNS", 2)
    same(normal, read(path))


def test_wide_mode_blank_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "WIDE_COLUMNS", 2)
    calls = []
    original = reader.Table._fast

    def spy(self: Any, block: bytes, first: int, newlines: int | None = None) -> Any:
        calls.append(first)
        return original(self, block, first, newlines)

    monkeypatch.setattr(reader.Table, "_fast", spy)
    text = "a,b,label\r\n\r\n1,2,0\r\n\n3,4,1\r\n\r\n"
    r = read(write(tmp_path, "p.csv", text))
    assert r.lines == [3, 5]
    assert r.logits.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert calls == []  # wide mode itself handled the blank lines


def test_wide_mode_with_text_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "WIDE_COLUMNS", 2)
    text = "id,a,b,label\nx,1,2,0\ny,3,4,1\n"
    r = read(write(tmp_path, "p.csv", text), logit_columns=["a", "b"])
    assert r.labels == [0, 1]
    assert r.logits.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def _wide_text(k: int, label_at: int, digits: int, rows: int = 6) -> tuple[str, list[int]]:
    """A table of *k* logits with the label column at *label_at*, cells of *digits* digits."""
    rng = np.random.default_rng(k + label_at + digits)
    names = [f"l{j}" for j in range(k)]
    names.insert(label_at, "label")
    labels = [int(y) for y in rng.integers(0, k, size=rows)]
    lines = []
    for y in labels:
        cells = [f"{v:.{digits}f}" for v in rng.normal(size=k)]
        cells.insert(label_at, str(y))
        lines.append(",".join(cells))
    return ",".join(names) + "\n" + "\n".join(lines) + "\n", labels


@pytest.mark.parametrize("digits", [2, 40])  # short lines checked at once, long ones one by one
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_wide_mode_label_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits: int, where: str
) -> None:
    k = 60
    label_at = {"first": 0, "middle": 17, "last": k}[where]
    text, labels = _wide_text(k, label_at, digits)
    path = write(tmp_path, "wide.csv", text)
    calls: list[int] = []
    original = reader.Table._fast

    def spy(self: Any, block: bytes, first: int, newlines: int | None = None) -> Any:
        calls.append(first)
        return original(self, block, first, newlines)

    monkeypatch.setattr(reader.Table, "_fast", spy)
    r = both_paths(path, monkeypatch)
    assert r.labels == labels
    assert r.lines == list(range(2, 8))
    assert calls == []  # the wide path read it all
    # A label too long for the wide path's window is handed to the precise reader.
    rows = text.splitlines()
    cells = rows[3].split(",")
    cells[label_at] = f"{int(cells[label_at]):+030d}"
    rows[3] = ",".join(cells)
    padded = both_paths(write(tmp_path, "padded.csv", "\n".join(rows) + "\n"), monkeypatch)
    assert padded.labels == labels
    cells[label_at] = "1" + "0" * 30
    rows[3] = ",".join(cells)
    e = error(write(tmp_path, "huge.csv", "\n".join(rows) + "\n"))
    assert (e.line, e.column, e.value) == (4, label_at + 1, cells[label_at])


@pytest.mark.parametrize("delimiter", ["\t", ";", "|", " "])
def test_wide_mode_other_delimiters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delimiter: str
) -> None:
    monkeypatch.setattr(reader, "WIDE_COLUMNS", 2)
    monkeypatch.setattr(reader.Table, "_fast", lambda self, block, first, newlines=None: None)
    text, labels = _wide_text(5, 5, 3)
    path = write(tmp_path, "p.txt", text.replace(",", delimiter))
    precise_calls: list[int] = []
    original = reader.PreciseReader.read

    def spy(self: Any, block: bytes, first: int) -> Any:
        precise_calls.append(first)
        return original(self, block, first)

    with monkeypatch.context() as patch:
        patch.setattr(reader.PreciseReader, "read", spy)
        read(path, delimiter=delimiter)
    assert precise_calls == []  # the wide path read every block
    r = both_paths(path, monkeypatch, delimiter=delimiter)
    assert r.labels == labels
    assert r.logits.shape == (6, 5)
    assert r.logits.tobytes() == read(write(tmp_path, "p.csv", text)).logits.tobytes()


@pytest.mark.parametrize("digits", [2, 40])
def test_wide_mode_counts_fields_line_by_line(tmp_path: Path, digits: int) -> None:
    """One line with a field too many and the next with one too few: the totals agree."""
    text, _ = _wide_text(60, 60, digits)
    lines = text.splitlines()
    lines[3] = "0.5," + lines[3]
    lines[4] = lines[4].split(",", 1)[1]
    e = error(write(tmp_path, "ragged.csv", "\n".join(lines) + "\n"))
    assert (e.line, e.reason) == (4, "expected 61 fields, found 62")


@pytest.mark.parametrize("fast", [True, False])
def test_prepare_runs_on_every_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """Table.prepare runs on each chunk, in the parsing threads for fast-parsed blocks and
    in the caller's thread for blocks the precise reader re-reads."""
    import threading

    monkeypatch.setattr(reader, "BLOCK_BYTES", 2000)
    text, logits, _ = random_file(np.random.default_rng(5), 400, 4)
    path = write(tmp_path, "p.csv", text)
    if not fast:
        monkeypatch.setattr(reader.Table, "_fast", lambda self, block, first, newlines=None: None)
    seen: list[str] = []

    def prepare(chunk: Chunk) -> tuple[int, float]:
        seen.append(threading.current_thread().name)
        return int(chunk.lines[0]), float(chunk.logits.sum())

    with open_table(path, ReadOptions(chunk_rows=7), prepare) as table:
        chunks = list(table.chunks())
    got = np.concatenate([c.logits for c in chunks])
    assert got.tobytes() == logits.tobytes()
    assert [c.prepared for c in chunks] == [
        (int(c.lines[0]), float(c.logits.sum())) for c in chunks
    ]
    main = threading.current_thread().name
    if fast:  # the first block (with the header) is parsed in the caller's thread
        assert main in seen
        assert any(name.startswith("xent-parser") for name in seen)
    else:
        assert set(seen) == {main}


# ----------------------------------------------------------------------------- agreement

CELLS = [
    "0", "1", "-2.5", "1e-3", " 3 ", '"4"', "-inf", "inf", "nan", "", "x", "1_0", "0x1",
    "1e", "1.0", "+1", "1e400", "-1e400", ".5", "5.", "\t6", "７", "-0", "\ufeff1",
]  # fmt: skip
LABELS = ["0", "1", "2", " 1 ", "3", "-1", "1.0", "0x1", "", "+2", "a", "99999999999999999999"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.lists(st.sampled_from(CELLS), min_size=3, max_size=3),
                  st.sampled_from(LABELS),
                  st.sampled_from(["\n", "\r\n", "\n\n"])),
        min_size=1, max_size=12,
    ),
    skip=st.booleans(),
)  # fmt: skip
def test_fast_and_precise_agree_on_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: Any, skip: bool
) -> None:
    text = "a,b,c,label\n" + "".join(",".join([*cells, label]) + end for cells, label, end in rows)
    path = write(tmp_path, "f.csv", text)
    options = ReadOptions(on_error="skip" if skip else "raise", ignore_index=-1)

    def outcome() -> Any:
        try:
            r = Read(path, options)
        except DataError as e:
            return str(e)
        return (r.logits.tobytes(), r.labels, r.lines, [str(e) for e in r.table.skipped])

    fast = outcome()
    with monkeypatch.context() as patch:
        patch.setattr(reader.Table, "_fast", lambda self, block, first, newlines=None: None)
        patch.setattr(reader.Table, "_fast_wide", lambda self, block, first: None)
        precise = outcome()
    with monkeypatch.context() as patch:
        patch.setattr(reader, "WIDE_COLUMNS", 2)
        wide = outcome()
    assert fast == precise == wide
