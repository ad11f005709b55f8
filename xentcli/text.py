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
from collections.abc import Sequence
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
    import json  # here, not above: the table formats never need it

    matrices: list[list[list[int]]] = []
    data = _jsonable_aside(value, matrices)
    if indent is None:
        text = json.dumps(data, allow_nan=False)
    else:
        # Indented, json.dumps joins a list of every piece it made: a string object per
        # number and line break. Written piece by piece, only the text is kept.
        out = io.StringIO()
        for piece in json.JSONEncoder(indent=indent, allow_nan=False).iterencode(data):
            out.write(piece)
        text = out.getvalue()
    return _put_back(text, matrices, indent) if matrices else text


#: a matrix of at least this many cells is written aside (below it, json is fast enough)
_ASIDE_CELLS = 1024
_MARK = "\x00xent-matrix-{}\x00"  # a string no value holds; json writes it as \u0000...


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


def _put_back(text: str, matrices: list[list[list[int]]], indent: int | None) -> str:
    """*text* with each mark replaced by its matrix, laid out as json.dumps lays it out."""
    import json

    for number, matrix in enumerate(matrices):
        mark = json.dumps(_MARK.format(number))
        at = text.index(mark)
        line = text[text.rfind("\n", 0, at) + 1 : at]
        base = " " * (len(line) - len(line.lstrip(" ")))
        text = text[:at] + _int_matrix_text(matrix, base, indent) + text[at + len(mark) :]
    return text


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
    if indent is None:
        return "[" + ", ".join("[" + ", ".join(map(str, row)) + "]" for row in matrix) + "]"
    step = " " * indent
    inner = base + step
    cell = ",\n" + inner + step
    zeros: dict[int, str] = {}  # the text of a row of n zeros (most rows of a large, sparse
    # confusion matrix), made once

    def row_text(row: list[int]) -> str:
        if not row:
            return "[]"
        if not any(row):
            if len(row) not in zeros:
                zeros[len(row)] = (
                    "[\n" + inner + step + cell.join("0" * len(row)) + "\n" + inner + "]"
                )
            return zeros[len(row)]
        return "[\n" + inner + step + cell.join(map(str, row)) + "\n" + inner + "]"

    rows = [row_text(row) for row in matrix]
    return "[\n" + inner + (",\n" + inner).join(rows) + "\n" + base + "]"


def plural(count: int, word: str, words: str | None = None) -> str:
    """*count* and the noun that goes with it: ``1 row``, ``2 rows``, ``0 rows``.

    >>> plural(1, "row"), plural(3, "row"), plural(0, "class", "classes")
    ('1 row', '3 rows', '0 classes')
    """
    noun = word if count == 1 else (words if words is not None else word + "s")
    return f"{count} {noun}"
