"""The error types of xent, each carrying the one-line message a user reads.

The numeric core and the readers raise these; only :mod:`xentcli.cli.main` prints them and
chooses the exit code (1 for bad data or an unreadable file, 2 for a bad invocation).
Every error is a :class:`ValueError` subclass, so library users can catch either.
"""

from __future__ import annotations

_VALUE_WIDTH = 40


def shorten(value: object, width: int = _VALUE_WIDTH) -> str:
    """Return ``repr``-like text for *value*, cut to *width* characters.

    >>> shorten("abc")
    "'abc'"
    >>> shorten("x" * 100, width=12)
    "'xxxxxxx...'"
    """
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) <= width:
        return text
    if isinstance(value, str):
        return text[: width - 4] + "...'"
    return text[: width - 3] + "..."


class XentError(ValueError):
    """Base class of every error xent raises for bad input."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInputError(XentError):
    """Invalid numeric input, located by 0-based row and column of the array.

    ``row`` is ``None`` for a 1-D input or for a problem with the whole batch;
    ``column`` is ``None`` when the problem is the row (or a label) rather than a cell.

    >>> str(InvalidInputError("logit is NaN", row=2, column=1, value=float("nan")))
    'row 2, column 1: logit is NaN (nan)'
    >>> str(InvalidInputError("label_smoothing must be in [0, 1]", value=1.5))
    'label_smoothing must be in [0, 1] (1.5)'
    """

    def __init__(
        self,
        reason: str,
        *,
        row: int | None = None,
        column: int | None = None,
        value: object = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.row = row
        self.column = column
        self.value = value
        #: what the value belongs to: "logit", "label", "target", "weight"
        self.field = field
        place = []
        if row is not None:
            place.append(f"row {row}")
        if column is not None:
            place.append(f"column {column}")
        text = reason if not place else f"{', '.join(place)}: {reason}"
        if value is not None:
            text += f" ({shorten(value)})"
        super().__init__(text)


class DataError(XentError):
    """Bad data in a file, located by path, 1-based physical line and 1-based column.

    >>> str(DataError("preds.csv", 17, 3, "not a number", "abc"))
    "preds.csv:17:3: not a number ('abc')"
    >>> str(DataError("preds.csv", None, None, "file is empty"))
    'preds.csv: file is empty'
    >>> print(DataError("bad\\nname.csv", 3, 2, "not a number", "x"))
    'bad\\nname.csv':3:2: not a number ('x')

    Formats without lines (Parquet, Arrow, NumPy) count rows from 1 and name columns:

    >>> error = DataError("preds.parquet", 17, "logits", "logit is NaN", "nan", unit="row")
    >>> str(error), error.where
    ("preds.parquet:row 17:logits: logit is NaN ('nan')", 'preds.parquet:row 17')
    """

    def __init__(
        self,
        path: str,
        line: int | None,
        column: int | str | None,
        reason: str,
        value: object = None,
        *,
        unit: str = "line",
    ) -> None:
        self.path = path
        #: what ``line`` counts: ``"line"`` (physical lines of text) or ``"row"`` (rows)
        self.unit = unit
        self.line = line
        self.column = column
        self.reason = reason
        self.value = value
        # A path with a line break or another control character is shown quoted, so
        # that the message stays on one line.
        place = repr(path) if any(ord(c) < 32 or ord(c) == 127 for c in path) else path
        if line is not None:
            place += f":row {line}" if unit == "row" else f":{line}"
        #: where the row is, as people read it: ``FILE:LINE``, ``FILE:row N`` or ``FILE``
        self.where = place
        if line is not None and column is not None:
            place += f":{column}"
        text = f"{place}: {reason}"
        if value is not None:
            text += f" ({shorten(value)})"
        super().__init__(text)


class ColumnError(DataError):
    """A column option names no column of the file (a usage error: exit 2, not 1).

    >>> str(ColumnError("p.csv", None, None, "label column: no column 'lable'"))
    "p.csv: label column: no column 'lable'"
    """


class ColumnRoleError(XentError):
    """A score column taken from a header whose name says it holds something else (sample
    weights, row ids, groups): a usage error (exit 2), the fix being an option.

    >>> str(ColumnRoleError("p.csv: column 'id' is named like row ids"))
    "p.csv: column 'id' is named like row ids"
    """


class CountError(XentError):
    """A per-class list (weights, class names, a target row) whose length is not the
    number of classes. The message names the parameter (``weights``); the command line
    names its option instead, with the same wording (:meth:`about`).

    >>> error = CountError("weights", 3, "value", 2)
    >>> str(error)
    'weights: 3 values for 2 classes'
    >>> error.about("--weights")
    '--weights: 3 values for 2 classes'
    """

    def __init__(self, name: str, given: int, what: str, classes: int, per: str = "class") -> None:
        self.name, self.given, self.what, self.classes = name, given, what, classes
        self.per = per  #: what there are *classes* of: "class", or "label" (multi-label)
        super().__init__(self.about(name))

    def about(self, name: str) -> str:
        """The message, naming *name* (a parameter or an option) as what is wrong."""
        items = self.what if self.given == 1 else self.what + "s"
        per = (
            self.per
            if self.classes == 1
            else ("classes" if self.per == "class" else self.per + "s")
        )
        return f"{name}: {self.given} {items} for {self.classes} {per}"

    def __reduce__(self) -> tuple[type[CountError], tuple[str, int, str, int, str]]:
        # An error raised in a Dask worker travels pickled: rebuild it from its fields.
        return type(self), (self.name, self.given, self.what, self.classes, self.per)


class UndefinedMeanError(XentError):
    """The mean loss is undefined because no row counts (all ignored, or zero weight)."""


class StateError(XentError):
    """A saved state (``--save-state``) that cannot be read or merged.

    The message names the field (``sketch.buckets[3]``) or the first difference between
    two states' options; the command line prefixes the state file's path.

    >>> str(StateError("options.temperature: 1.0 in one state, 2.0 in the other"))
    'options.temperature: 1.0 in one state, 2.0 in the other'
    """
