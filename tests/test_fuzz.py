"""Fuzzing the command line: near-CSV files and ``--logits`` strings.

Valid tables are generated, then mutated (deletions, insertions of delimiters, quotes,
line ends, random unicode, non-UTF-8 bytes, extreme numbers). Each is judged by an
independent, deliberately simple oracle that implements the documented input rules
(``docs/errors.md``) and either computes the expected rows or names the first bad line.
The command must then agree:

- oracle valid: exit 0, the JSON loss is ``kernel.cross_entropy`` of exactly the oracle's
  rows to the last bit, and ``--per-row`` lists exactly the oracle's line numbers;
- oracle invalid: exit 1 with one ``Error:`` line naming the file and the first bad line,
  and no output file left;
- always: no traceback, never ``nan`` as a loss.

The suite runs a bounded number of examples; set ``XENT_FUZZ_EXAMPLES`` (for example
20000) for a long run. Results of long runs are recorded in ``docs/fuzzing.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mpref
import pytest
from hardening import Outcome, assert_no_traceback, run
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xentcli.core import _kernel as kernel

# When an example fails, hypothesis' pytest plugin imports its patch writer, which imports
# a deprecated mypy_extensions.TypedDict; with warnings as errors that hides the failing
# example behind an INTERNALERROR. The failure report is what matters here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

LOSS_ULP = 2.0  # a row loss against mpmath (docs/accuracy.md)
SOFT_ULP = 4.0  # with label smoothing
EXAMPLES = int(os.environ.get("XENT_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=EXAMPLES or 60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None if EXAMPLES else settings.default.database,
)

# ------------------------------------------------------------------------ the oracle
# The documented syntax (docs/errors.md, xentcli/reader.py): a number is ASCII decimal
# with optional exponent, or inf/infinity/nan in any case, with an optional sign and
# optional spaces/tabs around; a logit must come out finite or -inf. A label is an
# integer in [0, K). Every row is one physical line ("\n"; a "\r" before it is dropped,
# a lone "\r" is an ordinary character); blank lines (spaces/tabs only) are skipped.
_NUMBER = re.compile(
    r"[ \t]*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)[ \t]*",
    re.ASCII | re.IGNORECASE,
)
_INTEGER = re.compile(r"[ \t]*[+-]?\d+[ \t]*", re.ASCII)
LABEL_NAMES = (
    "label", "labels", "target", "targets", "y", "y_true", "true_label", "true_labels",
    "gold", "gold_label", "class", "true_class", "ground_truth", "truth", "gt", "y_test",
)  # fmt: skip
#: a first column of this name, in a header, is a pandas index: not a score
INDEX_NAMES = ("", "Unnamed: 0")
#: score columns taken from a header under one of these names are refused (exit 2), as
#: docs/input-formats.md lists them (a mutation may write "id," into a header)
NON_SCORE_NAMES = (
    "weight", "weights", "sample_weight", "sample_weights", "instance_weight", "row_weight",
    "id", "ids", "idx", "index", "row", "row_id", "row_idx", "row_number", "example_id",
    "sample_id", "item_id", "image_id", "doc_id", "uid", "uuid", "guid", "key",
    "group", "groups", "group_id", "split", "fold", "source", "domain", "subset", "slice",
    "dataset", "partition", "cohort",
)  # fmt: skip


class Invalid(Exception):
    """The oracle's verdict on a bad input: the 1-based physical line (None: the file)."""

    def __init__(self, line: int | None, why: str) -> None:
        super().__init__(f"line {line}: {why}")
        self.line = line
        self.code = 1  #: the exit status: 1 for data


class Refused(Invalid):
    """A usage error: a score column named like weights, ids or groups (exit 2)."""

    def __init__(self, why: str) -> None:
        super().__init__(None, why)
        self.code = 2


def is_number(cell: str) -> bool:
    """A number in the reader's syntax (not necessarily a valid logit)."""
    return _NUMBER.fullmatch(cell) is not None


def parse_logit(cell: str) -> float | None:
    """The logit a cell holds, or None when it is not a valid logit."""
    if not is_number(cell):
        return None
    value = float(cell)
    return value if math.isfinite(value) or value == -math.inf else None


_CR = "\ue000"  # a lone CR is an ordinary character: hide it from the csv module


def split_fields(text: str, line: int) -> list[str]:
    """RFC 4180 fields of one line; a quote left open is an error."""
    if '"' not in text:
        return text.split(",")
    hidden = text.replace("\r", _CR)
    try:
        fields = next(csv.reader([hidden], strict=True))
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            raise Invalid(line, "unterminated quote") from None
        fields = next(csv.reader([hidden], strict=False))
    return [field.replace(_CR, "\r") for field in fields]


def physical_lines(data: bytes) -> list[tuple[int, str]]:
    """Non-blank lines with their numbers, decoded (a bad byte is an error on its line)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    out = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip(b" \t"):
            continue
        try:
            out.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError:
            out.append((number, "\udcff"))  # decoded lazily: an error when reached
    return out


@dataclass
class Table:
    logits: list[list[float]]
    labels: list[int]
    lines: list[int]
    skipped: list[int]  #: lines of bad rows (only with skip=True)


def oracle(data: bytes, *, skip: bool = False) -> Table:
    """The rows a correct reader returns for *data*, or :class:`Invalid`.

    With *skip* (``--on-error skip``) a bad row is counted in ``skipped`` instead; what
    cannot be skipped stays an error: the first line's bytes or quotes (it decides the
    header and the width), the header's names, a file without logit columns or rows.
    """

    def fields_of(line: int, text: str) -> list[str]:
        if text == "\udcff":
            raise Invalid(line, "not UTF-8")
        return split_fields(text, line)

    rows = physical_lines(data)
    if not rows:
        raise Invalid(None, "empty")
    first_line, first_text = rows[0]
    first = fields_of(first_line, first_text)
    # a header has a cell that is neither a number nor blank (a blank cell is data's)
    has_header = any(cell.strip(" \t") and not is_number(cell) for cell in first)
    width = len(first)
    label_at = width - 1
    skipped: set[int] = set()
    names: list[str] | None = None
    if has_header:
        names = [name.strip(" \t") for name in first]
        if len(set(names)) != len(names):
            raise Invalid(first_line, "duplicate name")
        lowered = [name.lower() for name in names]
        label_at = next((lowered.index(n) for n in LABEL_NAMES if n in lowered), width - 1)
        if width >= 3 and names[0] in INDEX_NAMES and label_at != 0:
            skipped.add(0)  # a pandas index column
        rows = rows[1:]
    if names is not None:
        for i, name in enumerate(names):
            if i != label_at and i not in skipped and name.lower() in NON_SCORE_NAMES:
                raise Refused(f"score column named {name!r}")
    if width < 2:
        raise Invalid(None, "no logit columns")
    if not rows:
        raise Invalid(None, "no data rows")
    k = width - 1 - len(skipped)
    classes = None
    if names is not None:
        # labels written as the score columns' names: the header names the classes
        score_names = [n for i, n in enumerate(names) if i != label_at and i not in skipped]
        try:
            record = fields_of(*rows[0])
        except Invalid:
            record = []
        if len(record) == width and len(score_names) >= 2:
            cell = record[label_at].strip(" \t")
            if cell and not is_number(cell) and cell in score_names:
                classes = score_names
    table = Table([], [], [], [])
    for line, text in rows:
        try:
            logits, label = row_of(
                fields_of(line, text), line, width, label_at, k, skipped, classes
            )
        except Invalid:
            if not skip:
                raise
            table.skipped.append(line)
            continue
        table.logits.append(logits)
        table.labels.append(label)
        table.lines.append(line)
    return table


def row_of(
    record: list[str],
    line: int,
    width: int,
    label_at: int,
    k: int,
    skipped: set[int] | frozenset[int] = frozenset(),
    classes: list[str] | None = None,
) -> tuple[list[float], int]:
    """The logits and label of one data row, or :class:`Invalid`."""
    if len(record) != width:
        raise Invalid(line, "row length")
    logits: list[float] = []
    for position, cell in enumerate(record):
        if position == label_at or position in skipped:
            continue
        value = parse_logit(cell)
        if value is None:
            raise Invalid(line, f"not a logit: {cell!r}")
        logits.append(value)
    label_text = record[label_at]
    # One score column is the binary case: labels 0 and 1, the logits [0, s].
    count = max(k, 2)
    label = label_value(label_text, classes)
    if label is None or not 0 <= label < count:
        raise Invalid(line, f"bad label {label_text!r}")
    if all(value == -math.inf for value in logits):
        raise Invalid(line, "all -inf")
    return ([0.0, *logits] if k == 1 else logits), label


def label_value(text: str, classes: list[str] | None) -> int | None:
    """A label: a class name (with classes), integer text, or an integral number."""
    if classes is not None:
        if text.strip(" \t") in classes:
            return classes.index(text.strip(" \t"))
        return int(text) if _INTEGER.fullmatch(text) else None
    if _INTEGER.fullmatch(text):
        return int(text)
    if not is_number(text):
        return None
    value = float(text)
    return int(value) if math.isfinite(value) and value.is_integer() else None


# ---------------------------------------------------------------------- generation
FINITE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [0.0, -0.0, 1e308, -1e308, 5e-324, -5e-324, 1.7976931348623157e308, 2.2250738585072014e-308]
    ),
    st.integers(-1000, 1000).map(float),
)
FORMATS = st.sampled_from([repr, "{:.17g}".format, "{:e}".format, "{:.3f}".format, "{:+}".format])
EXTREME_TOKENS = [
    "1e309", "-1e309", "1e-400", "nan", "NaN", "inf", "-inf", "-Infinity", "+inf", "",
    " ", "0x10", "1_0", "\uff11", "\u22121", "1.2.3", "1e", "--5", "9" * 400, "-" + "9" * 400,
    '"1"', '"', "\ufeff1",
]  # fmt: skip
SPECIAL = [*",;\t\n\r \"'\x00\ufeff\u2212\uff10.eE+-_#", "\r\n", ",,", "\n\n"]


@st.composite
def valid_tables(draw: st.DrawFn) -> bytes:
    """A valid CSV table as bytes (header optional, LF or CRLF, BOM optional)."""
    k = draw(st.integers(2, 4))
    n = draw(st.integers(1, 6))
    fmt = draw(FORMATS)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = []
    if draw(st.booleans()):
        lines.append(",".join([f"l{j}" for j in range(k)] + ["label"]))
    for _ in range(n):
        values = [fmt(draw(FINITE)) for _ in range(k)]
        if draw(st.integers(0, 9)) == 0:
            values[draw(st.integers(0, k - 1))] = "-inf"
        if all(v == "-inf" for v in values):
            values[0] = "0"
        lines.append(",".join([*values, str(draw(st.integers(0, k - 1)))]))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8")


# Non-UTF-8 bytes are drawn rarely: one anywhere makes the whole file invalid.
MUTATIONS = ["delete", "insert", "insert", "unicode", "double", "token", "token", "byte"]


@st.composite
def mutated_tables(draw: st.DrawFn) -> bytes:
    """A valid table with up to three random mutations."""
    data = draw(valid_tables())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(MUTATIONS))
        at = draw(st.integers(0, len(data)))
        if kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        elif kind == "insert":
            data = data[:at] + draw(st.sampled_from(SPECIAL)).encode() + data[at:]
        elif kind == "unicode":
            data = (
                data[:at] + draw(st.text(max_size=3)).encode("utf-8", "surrogatepass") + data[at:]
            )
        elif kind == "double":
            commas = [i for i, byte in enumerate(data) if byte == ord(",")]
            if commas:
                i = draw(st.sampled_from(commas))
                data = data[:i] + b"," + data[i:]
        elif kind == "token":
            cells = list(re.finditer(rb"[^,\r\n]+", data))
            if cells:
                cell = draw(st.sampled_from(cells))
                token = draw(st.sampled_from(EXTREME_TOKENS)).encode()
                data = data[: cell.start()] + token + data[cell.end() :]
        else:
            data = data[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + data[at:]
    return data


# --------------------------------------------------------------------------- checks
def judge(data: bytes) -> Table | Invalid:
    """The oracle's table, or its verdict that the input is invalid."""
    try:
        return oracle(data)
    except Invalid as verdict:
        return verdict


def judge_skip(data: bytes) -> Table | Invalid:
    """The oracle's table with ``--on-error skip``, or its verdict that the file is invalid."""
    try:
        return oracle(data, skip=True)
    except Invalid as verdict:
        return verdict


def _values(node: object) -> list[object]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _values(value)]
    if isinstance(node, list):
        return [v for value in node for v in _values(value)]
    return [node]


def check_no_nan(outcome: Outcome) -> None:
    """No NaN among the values of a JSON result (error texts in it may say "NaN")."""
    if not outcome.stdout.startswith("{"):
        assert not re.search(r"(?i)\bnan\b", outcome.stdout), outcome.stdout
        return
    document = json.loads(outcome.stdout)
    document.pop("inferred", None)  # header names as written (a column may be named "nan")
    for value in _values(document):
        assert not (isinstance(value, float) and math.isnan(value)), outcome.stdout
        assert not (isinstance(value, str) and value.lower() in {"nan", "-nan"}), outcome.stdout


def check_batch(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(data)
        per_row = Path(folder) / "rows.csv"
        outcome = run(
            [
                "batch",
                str(path),
                "--scores",
                "logits",
                "--format",
                "json",
                "--per-row",
                str(per_row),
            ]
        )
        assert_no_traceback(outcome)
        check_no_nan(outcome)
        verdict = judge(data)
        if isinstance(verdict, Invalid):
            assert outcome.code == verdict.code, (
                f"oracle: {verdict}; exit {outcome.code}: {outcome.stderr}"
            )
            line = outcome.error_line()
            place = f"Error: {path}" + (f":{verdict.line}:" if verdict.line else ":")
            assert line.startswith(place), f"oracle: {verdict}; got: {line}"
            assert outcome.stdout == ""
            assert sorted(p.name for p in Path(folder).iterdir()) == ["fuzz.csv"]
            return
        expected = verdict
        assert outcome.code == 0, outcome.stderr
        summary = json.loads(outcome.stdout)
        assert summary["rows"] == len(expected.lines)
        want = kernel.cross_entropy(expected.logits, expected.labels)
        assert summary["loss"] == (want if math.isfinite(want) else "inf")
        written = list(csv.reader(io.StringIO(per_row.read_text(encoding="utf-8"))))
        if written and not written[0][1].isdigit():
            written = written[1:]  # a header row
        assert [int(row[1]) for row in written] == expected.lines


@SETTINGS
@given(valid_tables())
def test_valid_tables_give_the_kernel_result(data: bytes) -> None:
    check_batch(data)


@SETTINGS
@given(mutated_tables())
# A pandas-index header with no data rows: the index note once came before the error.
@example(b",\xef\xbb\xbf0.0,0.0,0")
def test_mutated_tables_give_the_kernel_result_or_a_clean_error(data: bytes) -> None:
    check_batch(data)


@SETTINGS
@given(mutated_tables())
def test_skip_mode_skips_exactly_the_bad_rows(data: bytes) -> None:
    """``--on-error skip``: the good rows give the kernel's loss, the bad ones are counted."""
    verdict = judge_skip(data)
    if isinstance(verdict, Invalid):
        # What cannot be skipped (the first line, the header, no rows) stays an error.
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fuzz.csv"
            path.write_bytes(data)
            outcome = run(
                ["batch", str(path), "--scores", "logits", "--on-error", "skip", "--format", "json"]
            )
        assert_no_traceback(outcome)
        assert outcome.code == verdict.code, (
            f"oracle: {verdict}; exit {outcome.code}: {outcome.stderr}"
        )
        place = f"Error: {path}" + (f":{verdict.line}:" if verdict.line else ":")
        assert outcome.error_line().startswith(place), f"oracle: {verdict}; {outcome.stderr}"
        assert outcome.stdout == ""
        return
    expected = verdict
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(data)
        per_row = Path(folder) / "rows.csv"
        outcome = run(
            ["batch", str(path), "--scores", "logits", "--on-error", "skip", "--format", "json",
             "--per-row", str(per_row)]
        )  # fmt: skip
        assert_no_traceback(outcome)
        check_no_nan(outcome)
        assert outcome.code == 0, f"skipped {expected.skipped}: {outcome.stderr}"
        summary = json.loads(outcome.stdout)
        assert summary["rows_skipped"] == len(expected.skipped), outcome.stderr
        assert summary["rows_counted"] == len(expected.lines)
        written = list(csv.DictReader(io.StringIO(per_row.read_text(encoding="utf-8"))))
        assert [int(row["line"]) for row in written] == expected.lines
    if expected.skipped:
        # (a note on what was inferred, such as a pandas index column, may come first)
        warning = next(x for x in outcome.stderr.splitlines() if x.startswith("Warning"))
        assert warning.startswith(f"Warning: skipped {len(expected.skipped)} bad row"), warning
        assert f"{path}:{expected.skipped[0]}" in warning
    if expected.lines:
        want = kernel.cross_entropy(expected.logits, expected.labels)
        assert summary["loss"] == (want if math.isfinite(want) else "inf")
    else:
        assert summary["loss"] is None


BATCH_TEMPERATURES = st.one_of(
    st.just("1"),
    st.sampled_from(["1e-300", "0.5", "3", "1e300"]),
    st.floats(min_value=1e-3, max_value=1e3).map(repr),
)


@SETTINGS
@given(
    valid_tables(),
    BATCH_TEMPERATURES,
    st.sampled_from(["0", "0.1", "0.5", "0.999"]),
    st.sampled_from([None, 0, 1, 3]),
    st.sampled_from(["e", "2", "10"]),
    st.sampled_from(["mean", "sum"]),
)
def test_loss_options_give_the_kernel_result_and_the_exact_one(
    data: bytes,
    temperature: str,
    smoothing: str,
    ignore_index: int | None,
    base: str,
    reduction: str,
) -> None:
    from xentcli.errors import UndefinedMeanError

    table = oracle(data)
    options = ["--scores", "logits", "--temperature", temperature, "--label-smoothing", smoothing]
    options += ["--base", base, "--reduction", reduction, "--format", "json"]
    if ignore_index is not None:
        options += ["--ignore-index", str(ignore_index)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(data)
        outcome = run(["batch", str(path), *options])
    assert_no_traceback(outcome)
    check_no_nan(outcome)
    assert outcome.code == 0, outcome.stderr
    try:
        want: object = kernel.cross_entropy(
            table.logits,
            table.labels,
            ignore_index=ignore_index,
            label_smoothing=float(smoothing),
            temperature=float(temperature),
            reduction="sum" if reduction == "sum" else "mean",
            base=base,
        )
    except UndefinedMeanError:
        want = None
    if isinstance(want, float) and not math.isfinite(want):
        want = "inf" if want > 0 else "-inf"
    got = json.loads(outcome.stdout)["loss"]
    assert got == want  # the same bits as the library on the same rows
    # ... and within its bound of the exact value (mpmath), an oracle independent of both.
    counted = [i for i, c in enumerate(table.labels) if ignore_index is None or c != ignore_index]
    if not counted:  # the sum of no rows is 0; their mean is undefined
        assert got == (0.0 if reduction == "sum" else None)
        return
    eps, t = float(smoothing), float(temperature)
    exact_rows = [
        mpref.row_loss(table.logits[i], table.labels[i], label_smoothing=eps, temperature=t)
        for i in counted
    ]
    # The contract is the mean of the float64 row losses: a row loss beyond the float
    # range is +inf, and so is the mean or sum.
    if any(r >= 2 ** mpref.mp.mpf(1024) - 2 ** mpref.mp.mpf(970) for r in exact_rows):
        assert got == "inf", got
        return
    with mpref.mp.workprec(mpref.WIDE):
        total = mpref.mp.fsum(exact_rows)
        exact = mpref.in_base(total if reduction == "sum" else total / len(counted), base)
    # Rows within B ulp each make a sum or mean within 2B ulp of its exact value (plus the
    # final rounding): B is 2 with labels, 4 with smoothing, 1 more in bits or bans.
    row_bound = (SOFT_ULP if eps else LOSS_ULP) + (1.0 if base != "e" else 0.0)
    got_value = float(got) if isinstance(got, str) else got
    assert mpref.ulps(got_value, exact) <= 2 * row_bound + 0.5, (got, float(exact))


@SETTINGS
@given(mutated_tables(), st.sampled_from([".gz", ".bz2", ".xz", "-"]))
def test_compressed_files_and_stdin_read_the_same(data: bytes, how: str) -> None:
    """The plain file, its compressed copy and standard input give the same answer."""
    import bz2
    import gzip
    import lzma

    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "fuzz.csv"
        plain.write_bytes(data)
        # the delimiter is given: standard input would otherwise sniff it from line 1
        options = ["--format", "json", "--delimiter", ","]
        expected = run(["batch", str(plain), *options])
        if how == "-":
            outcome = run(["batch", "-", *options], input=data)
            name = "<stdin>"
        else:
            other = Path(folder) / f"fuzz.csv{how}"
            other.write_bytes(compress[how](data))
            outcome = run(["batch", str(other), *options])
            name = str(other)
    assert_no_traceback(outcome)
    assert outcome.code == expected.code, outcome.stderr
    assert outcome.stderr == expected.stderr.replace(str(plain), name)
    if outcome.code == 0:
        got, want = json.loads(outcome.stdout), json.loads(expected.stdout)
        assert (got["rows"], got["loss"]) == (want["rows"], want["loss"])


# ------------------------------------------------------------------------- compute
# The documented list syntax: items between commas or semicolons (spaces around them
# allowed), or between runs of spaces; an empty item (",,", a leading or trailing comma)
# is an error.
_LIST_SEPARATORS = re.compile(r"\s*[,;]\s*|\s+")


def compute_oracle(text: str, label: int) -> list[float] | None:
    """The logits of ``--logits TEXT --label LABEL``, or None when it must fail."""
    body = text.strip()
    if body[:1] in "[(" and body[-1:] in "])":
        body = body[1:-1].strip()
    items = _LIST_SEPARATORS.split(body) if body else []
    values = [parse_logit(item) if item else None for item in items]
    if not items or any(value is None for value in values):
        return None
    logits = [value for value in values if value is not None]
    if all(value == -math.inf for value in logits) or not 0 <= label < len(logits):
        return None
    return logits


@st.composite
def logit_strings(draw: st.DrawFn) -> str:
    values = [draw(FORMATS)(draw(FINITE)) for _ in range(draw(st.integers(1, 5)))]
    text = draw(st.sampled_from([",", ", ", " ", ";"])).join(values)
    if draw(st.booleans()):
        text = f"[{text}]"
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        insert = draw(st.one_of(st.sampled_from(EXTREME_TOKENS + SPECIAL), st.text(max_size=2)))
        text = text[:at] + insert + text[at:]
    return text


TEMPERATURES = st.one_of(
    st.just("1"),
    st.sampled_from(["1e-320", "1e-300", "1e-10", "0.5", "3", "1e300", "1.7976931348623157e308"]),
    st.floats(min_value=5e-324, max_value=1e308).map(repr),
)


@SETTINGS
@given(logit_strings(), st.integers(-1, 5), TEMPERATURES)
def test_compute_gives_the_exact_result_or_a_clean_error(
    text: str, label: int, temperature: str
) -> None:
    """Valid logits and label: exit 0 and the loss within 2 ulp of mpmath's, for every
    finite temperature T > 0 (a tiny one is valid input, never a usage error).

    The oracle (``compute_oracle`` and mpmath) runs before the command and outside any
    ``try``: if it fails, the example fails.
    """
    if "\x00" in text:
        text = text.replace("\x00", "")  # an argv string cannot hold NUL
    expected = compute_oracle(text, label)
    exact = None if expected is None else mpref.loss(expected, label, float(temperature))
    outcome = run(
        ["compute", f"--logits={text}", f"--label={label}", f"--temperature={temperature}",
         "--format", "json"]
    )  # fmt: skip
    assert_no_traceback(outcome)
    check_no_nan(outcome)
    if exact is None:
        assert outcome.code == 2, f"exit {outcome.code}: {outcome.stderr}{outcome.stdout[:300]}"
        line = outcome.error_line()
        assert line.startswith("Error: ")
        assert outcome.stdout == ""
        return
    assert outcome.code == 0, f"T={temperature} refused: {outcome.stderr}"
    got = json.loads(outcome.stdout)["loss"]
    got = float(got) if isinstance(got, str) else got
    assert mpref.ulps(got, exact) <= LOSS_ULP, (got, exact)
