"""Text shared by every output: numbers rounded for reading, and JSON at full precision.

Tables round for reading: ``digits`` decimals for per-class values (:func:`fixed`),
``digits + 1`` significant digits for totals (:func:`sig`), inputs as the user would
write them (:func:`given`); ``nan``, ``inf`` and ``-inf`` are written alike everywhere
(:func:`nonfinite_text`). JSON keeps the shortest float that round-trips, with the
infinities as strings (:func:`dumps`).

>>> fixed(0.21392726067185291), fixed(-1.0999999999999999), fixed(4.2e-18), fixed(0.0)
('0.2139', '-1.1000', '4.200e-18', '0')
>>> sig(1.5560012438465094), sig(0.44211922514309726), sig(15.519840306043733)
('1.5560', '0.44212', '15.520')
>>> given(1.2), given(-math.inf), given(1e300)
('1.2', '-inf', '1e+300')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

#: A number as xent reads it, in options and in files alike: ASCII decimal or scientific
#: notation, or inf, infinity, nan in any case; no hex, no ``_``, no other digits.
NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)",
    re.IGNORECASE | re.ASCII,
)


def is_number(text: str) -> bool:
    """Whether *text* is a number (:data:`NUMBER`), spaces and tabs around it allowed.

    >>> [is_number(t) for t in ["1.5", " -2e3 ", "-Inf", "nan", "1_000", "0x10", "", "1e"]]
    [True, True, True, True, False, False, False, False]
    >>> is_number("\uff11"), is_number("\u0131nf")
    (False, False)
    """
    return NUMBER.fullmatch(text.strip(" \t")) is not None


#: decimals of per-class values in tables (``--digits``)
DEFAULT_DIGITS = 4


def nonfinite_text(x: float) -> str | None:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for a non-finite *x*, else None."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def fixed(x: float, digits: int = DEFAULT_DIGITS) -> str:
    """A per-class value: *digits* decimals, or scientific notation when tiny or huge."""
    special = nonfinite_text(x)
    if special is not None:
        return special
    if x == 0:
        return "0"
    if 0.01 <= abs(x) < 1e6:
        return f"{x:.{digits}f}"
    return f"{x:.{max(digits - 1, 0)}e}"


def fixed_column(values: Sequence[float], digits: int = DEFAULT_DIGITS) -> list[str]:
    """A column of per-class values, in one format chosen from the whole column.

    Fixed-point with *digits* decimals when every nonzero finite value is in
    [0.01, 1e6); otherwise scientific notation (``digits - 1`` decimals) for every
    nonzero value, so that ``1.0000`` never stands beside ``4.248e-18``. Zero is ``0``;
    infinities and NaN are ``inf``, ``-inf``, ``nan``.

    >>> fixed_column([0.21392726067185291, 0.6426730081063124, 0.0])
    ['0.2139', '0.6427', '0']
    >>> fixed_column([1.0, 4.248354255291589e-18, float("-inf")])
    ['1.000e+00', '4.248e-18', '-inf']
    """
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    scientific = any(not 0.01 <= v < 1e6 for v in finite)
    out = []
    for v in values:
        special = nonfinite_text(v)
        if special is not None:
            out.append(special)
        elif v == 0:
            out.append("0")
        elif scientific:
            out.append(f"{v:.{max(digits - 1, 0)}e}")
        else:
            out.append(f"{v:.{digits}f}")
    return out


def sig(x: float, digits: int = DEFAULT_DIGITS) -> str:
    """A total: ``digits + 1`` significant digits (trailing zeros kept)."""
    special = nonfinite_text(x)
    if special is not None:
        return special
    if x == 0:
        return "0"
    precision = min(digits + 1, 17)
    text = f"{x:#.{precision}g}"
    if "e" in text:
        return f"{x:.{precision - 1}e}"
    return text.rstrip(".")


def given(x: float, digits: int = DEFAULT_DIGITS) -> str:
    """An input value (logit, target, weight) as the user would write it."""
    special = nonfinite_text(x)
    if special is not None:
        return special
    return f"{x:.{min(max(digits + 2, 6), 17)}g}"


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats into JSON-safe Python values.

    Floats keep the shortest representation that round-trips (Python's ``repr``);
    ``inf``/``-inf``/``nan`` become the strings ``"inf"``, ``"-inf"``, ``"nan"``.

    >>> import numpy as np
    >>> jsonable([np.float64(0.1), float("-inf"), np.int64(3)])
    [0.1, '-inf', 3]
    """
    import numpy as np  # here: the table formats above must not need it

    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        if type(value) is list and all(type(item) is int for item in value):
            return value  # plain ints (a confusion matrix row): nothing to convert
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return [jsonable(item) for item in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        special = nonfinite_text(number)
        return number if special is None else special
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """Serialise *value* with :func:`jsonable`; never emits bare ``NaN``/``Infinity``.

    The text is exactly ``json.dumps(jsonable(value), indent=indent, allow_nan=False)``.
    A large matrix of integers (a list of lists of ints, such as a 1000-class confusion
    matrix: a million cells) is written by :func:`_int_matrix_text` rather than by the
    json module, whose indenting encoder is pure Python: the same characters, about 20
    times sooner.

    >>> dumps({"loss": float("inf")}, indent=None)
    '{"loss": "inf"}'
    """
    import io

    out = io.StringIO()
    dump(value, out.write, indent)
    return out.getvalue()


def dump(value: Any, write: Callable[[str], object], indent: int | None = 2) -> None:
    """Write the text of :func:`dumps` through *write* in pieces of about 64 KB.

    The whole text is never held: a report of 1000 classes holds 17 MB of text per
    confusion matrix, and pasting the matrices into the text of the rest made three
    copies of it (``xent compare --format json`` at K = 1000 peaked 80 MB above its
    table; benchmarks/RESULTS.md).

    >>> pieces = []
    >>> dump({"m": [[0] * 40] * 40, "x": 1.5}, pieces.append, indent=None)
    >>> "".join(pieces) == dumps({"m": [[0] * 40] * 40, "x": 1.5}, indent=None)
    True
    """
    import json  # here, not above: the table formats never need it

    matrices: list[list[list[int]]] = []
    data = _jsonable_aside(value, matrices)
    if indent is None:
        pieces: Iterable[str] = [json.dumps(data, allow_nan=False)]
    else:
        # Indented, json.dumps joins a list of every piece it made: a string object per
        # number and line break. Written piece by piece, only the text is kept.
        pieces = json.JSONEncoder(indent=indent, allow_nan=False).iterencode(data)
    out = _Pieces(write)
    line: list[str] = []  # the pieces since the last line break: a matrix's indentation
    for piece in pieces:
        while matrices and _MARK_TEXT in piece:
            # A mark is written whole within one piece (the encoder writes a string at once).
            at = piece.index(_MARK_TEXT)
            end = piece.index(_MARK_END, at) + len(_MARK_END)
            number = int(piece[at + len(_MARK_TEXT) : end - len(_MARK_END)])
            head = piece[:at]
            out.add(head)
            line = [head] if "\n" in head else [*line, head]
            start = "".join(line)
            start = start[start.rfind("\n") + 1 :]
            base = " " * (len(start) - len(start.lstrip(" ")))
            for text in _int_matrix_pieces(matrices[number], base, indent):
                out.add(text)
            line = [base + "]"]
            piece = piece[end:]
        out.add(piece)
        if "\n" in piece:
            line = [piece]
        else:
            line.append(piece)
    out.flush()


class _Pieces:
    """Pieces of text gathered and written in runs of about 64 KB (one write per piece
    of the json encoder, a few characters each, would cost more than the encoding)."""

    def __init__(self, write: Callable[[str], object]) -> None:
        self._write = write
        self._pieces: list[str] = []
        self._size = 0

    def add(self, piece: str) -> None:
        if len(piece) >= 1 << 16:  # a matrix's text: written as it is, not copied again
            self.flush()
            self._write(piece)
            return
        self._pieces.append(piece)
        self._size += len(piece)
        if self._size >= 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self._pieces:
            self._write("".join(self._pieces))
            self._pieces, self._size = [], 0


#: a matrix of at least this many cells is written aside (below it, json is fast enough)
_ASIDE_CELLS = 1024
_MARK = "\x00xent-matrix-{}\x00"  # a string no value holds; json writes it as \u0000...
_MARK_TEXT = '"\\u0000xent-matrix-'  # how json writes a mark's start ...
_MARK_END = '\\u0000"'  # ... and its end


def _jsonable_aside(value: Any, matrices: list[list[list[int]]]) -> Any:
    """:func:`jsonable`, with each large integer matrix replaced by a mark (its index in
    *matrices*, which receives it)."""
    if type(value) is list and _is_int_matrix(value):
        matrices.append(value)
        return _MARK.format(len(matrices) - 1)
    if isinstance(value, dict):
        return {str(key): _jsonable_aside(item, matrices) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable_aside(item, matrices) for item in value]
    return jsonable(value)


def _is_int_matrix(value: list[Any]) -> bool:
    """Whether *value* is a non-empty list of lists of ints (not bools) of many cells."""
    if not value or not all(type(row) is list for row in value):
        return False
    if sum(len(row) for row in value) < _ASIDE_CELLS:
        return False
    # The types of a row's cells as a set (built in C): a cell-by-cell loop would cost
    # more than the encoding this saves.
    return all(set(map(type, row)) <= _INT for row in value)


_INT = {int}


#: rows of a matrix written at a time by :func:`dump` (a 1000-column row is ~14 KB of text)
_PIECE_ROWS = 64


def _int_matrix_pieces(matrix: list[list[int]], base: str, indent: int | None) -> Iterator[str]:
    """:func:`_int_matrix_text` of *matrix* in pieces of :data:`_PIECE_ROWS` rows (one
    matrix of 1000 classes is 17 MB of text, twice that while it is joined).

    >>> "".join(_int_matrix_pieces([[1, 2], [3], []] * 50, "  ", 2)) == _int_matrix_text(
    ...     [[1, 2], [3], []] * 50, "  ", 2)
    True
    """
    if len(matrix) <= _PIECE_ROWS:
        yield _int_matrix_text(matrix, base, indent)
        return
    # Each piece is the text of a matrix of its rows, less the outer brackets: "[" +
    # newline and indentation before the first row, newline + base + "]" after the last.
    if indent is None:
        opening, closing, between = "[", "]", ", "
    else:
        opening, closing = "[\n" + base + " " * indent, "\n" + base + "]"
        between = ",\n" + base + " " * indent
    yield opening
    for start in range(0, len(matrix), _PIECE_ROWS):
        text = _int_matrix_text(matrix[start : start + _PIECE_ROWS], base, indent)
        yield (between if start else "") + text[len(opening) : len(text) - len(closing)]
    yield closing


def _int_matrix_text(matrix: list[list[int]], base: str, indent: int | None) -> str:
    """*matrix* as ``json.dumps(matrix, indent=indent)`` writes it, its closing bracket
    at *base* (the indentation of the line it starts on).

    >>> print(_int_matrix_text([[1, 2], []], "", 2))
    [
      [
        1,
        2
      ],
      []
    ]
    >>> _int_matrix_text([[1, 2], [3]], "", None)
    '[[1, 2], [3]]'
    """
    # A list of ints prints as json.dumps writes it on one line ("[1, 2]"): the list's
    # own repr, in C, then ", " made the indented separator. A row mostly of zeros (a
    # large confusion matrix's) is its nonzero cells between runs of zeros cut from one
    # text of zeros: 1000 x 1000 with 9,423 rows counted, 30 ms instead of 97 joining
    # every cell's str.
    if indent is None:
        return "[" + ", ".join(map(repr, matrix)) + "]"
    import array

    import numpy as np  # here: the table formats above must not need it

    step = " " * indent
    inner = base + step
    cell = ",\n" + inner + step
    zeros = "0" + (cell + "0") * (max(map(len, matrix), default=1) - 1)

    def zero_run(count: int) -> str:  # cell.join(["0"] * count)
        return zeros[: count + (count - 1) * len(cell)]

    def row_body(row: list[int]) -> str:
        zero_cells = row.count(0)
        if zero_cells == len(row):
            return zero_run(len(row))
        if 4 * zero_cells >= 3 * len(row):
            try:
                nonzero = np.flatnonzero(np.frombuffer(array.array("q", row), np.int64))
            except OverflowError:  # beyond 64 bits: the general way below
                pass
            else:
                pieces, done = [], 0
                for at in nonzero.tolist():
                    if at > done:
                        pieces.append(zero_run(at - done))
                    pieces.append(repr(row[at]))
                    done = at + 1
                if done < len(row):
                    pieces.append(zero_run(len(row) - done))
                return cell.join(pieces)
        return repr(row)[1:-1].replace(", ", cell)

    rows = [
        "[\n" + inner + step + row_body(row) + "\n" + inner + "]" if row else "[]" for row in matrix
    ]
    return "[\n" + inner + (",\n" + inner).join(rows) + "\n" + base + "]"


def plural(count: int, word: str, words: str | None = None) -> str:
    """*count* and the noun that goes with it: ``1 row``, ``2 rows``, ``0 rows``.

    >>> plural(1, "row"), plural(3, "row"), plural(0, "class", "classes")
    ('1 row', '3 rows', '0 classes')
    """
    noun = word if count == 1 else (words if words is not None else word + "s")
    return f"{count} {noun}"
