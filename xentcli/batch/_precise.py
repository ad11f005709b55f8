"""The precise reader: rows read line by line, each bad row with its exact message.

It applies the syntax of :mod:`xentcli.batch._syntax` (described in docs/input-formats.md)
and writes every row-level error message. The fast path (:mod:`xentcli.batch._fastparse`)
only ever accepts what this reader accepts, with identical arrays; any block it does
not accept whole is re-read here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xentcli.batch._columns import Layout, text_hint
from xentcli.batch._kinds import RowRules, finish, target_sums
from xentcli.batch._rows import ParsedRows
from xentcli.batch._syntax import INTEGER, decode, is_blank, is_number, split_fields
from xentcli.errors import DataError


class PreciseReader:
    """Read blocks of a table line by line, raising (or reporting) the exact error.

    *skip*, when given, receives each bad row's error and the row is dropped;
    otherwise the first bad row raises its :class:`~xentcli.errors.DataError`.
    """

    def __init__(
        self,
        path: str,
        layout: Layout,
        ignore_index: int | None,
        skip: Callable[[DataError], None] | None,
        rules: RowRules,
    ) -> None:
        self._path = path
        self._layout = layout
        #: the row rules (shared with the fast parser; the table sets the kind)
        self.rules = rules
        self._ignore_index = ignore_index
        self._skip = skip
        #: the file's first data line when its score columns were taken from the header:
        #: text there in a score column of text (below) gets a hint naming the option that
        #: reads it; None: no such hint
        self.first_row: int | None = None
        #: the score columns holding text on the first two data lines (the hint's columns)
        self.text_columns: set[int] = set()
        #: the roles the command offers for such a column (ReadOptions.roles)
        self.roles: tuple[str, ...] = ()

    def read(self, block: bytes, first: int) -> ParsedRows:
        """The valid rows of *block*, whose first line is line *first*."""
        K = len(self._layout.logits)
        logits: list[list[float]] = []
        targets: list[list[float]] = []
        labels: list[int] = []
        lines: list[int] = []
        weights: list[float] = []
        groups: list[str] = []
        for offset, raw in enumerate(block.split(b"\n")):
            number = first + offset
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            if is_blank(raw):
                continue
            try:
                row_logits, label, row_targets, extra = self._row(raw, number)
            except DataError as error:
                if self._skip is None:
                    raise
                self._skip(error)
                continue
            logits.append(row_logits)
            lines.append(number)
            if row_targets is not None:
                targets.append(row_targets)
            if label is not None:
                labels.append(label)
            if self._layout.weight is not None:
                weights.append(extra[0])
            if self._layout.group is not None:
                groups.append(extra[1])
        n = len(lines)
        parsed = ParsedRows(
            np.array(logits, dtype=np.float64).reshape(n, K),
            np.array(labels, dtype=np.int64) if self._layout.label is not None else None,
            np.array(targets, dtype=np.float64).reshape(n, len(self._layout.targets))
            if self._layout.targets is not None
            else None,
            np.array(lines, dtype=np.int64),
        )
        if self._layout.weight is not None:
            parsed.weights = np.array(weights, dtype=np.float64)
        if self._layout.group is not None:
            parsed.groups = np.array(groups, dtype=np.str_)
        return finish(parsed, self.rules)

    def _row(
        self, raw: bytes, number: int
    ) -> tuple[list[float], int | None, list[float] | None, tuple[float, str]]:
        path, layout = self._path, self._layout
        text = decode(raw, path, number, layout.delimiter)
        fields = split_fields(text, layout.delimiter, path, number)
        if len(fields) != layout.ncols:
            raise DataError(
                path, number, None, f"expected {layout.ncols} fields, found {len(fields)}", text
            )

        def number_at(index: int, what: str) -> float:
            cell = fields[index]
            if not cell.strip(" \t"):
                raise DataError(path, number, index + 1, f"empty {what} cell", cell)
            if not is_number(cell):
                reason = f"{what} is not a number"
                if number == self.first_row and index in self.text_columns:
                    reason += "; " + text_hint(layout.names[index], self.roles)
                raise DataError(path, number, index + 1, reason, cell)
            return float(cell)

        rules = self.rules
        cell = {"logits": "logit", "probs": "probability", "logprobs": "log-probability"}
        row = [number_at(index, cell[rules.kind]) for index in layout.logits]
        if rules.kind != "logits":
            found = rules.check.row_error(np.array(row, dtype=np.float64))
            if found is not None:
                at, reason = found
                column = None if at is None else layout.logits[at] + 1
                shown = text if at is None else fields[layout.logits[at]]
                raise DataError(path, number, column, reason + rules.hint(), shown)
        for index, value in zip(layout.logits, row, strict=True):
            if value != value:
                raise DataError(path, number, index + 1, "logit is NaN", fields[index])
            if value == float("inf"):
                raise DataError(path, number, index + 1, "logit is +inf", fields[index])
            if value == float("-inf") and rules.multilabel and rules.kind == "logits":
                raise DataError(
                    path,
                    number,
                    index + 1,
                    "logit is -inf (the sigmoid loss needs finite logits)",
                    fields[index],
                )
        # (--sigmoid log-probabilities: every label with p = 0 is a valid row)
        if all(v == float("-inf") for v in row) and (
            rules.kind == "logits" or not rules.multilabel
        ):
            raise DataError(path, number, None, "every logit of the row is -inf", text)
        row_targets = None
        if layout.targets is not None:
            row_targets = []
            for index in layout.targets:
                value = number_at(index, "target")
                if not abs(value) < float("inf"):  # NaN or an infinity
                    raise DataError(path, number, index + 1, "target is not finite", fields[index])
                if value < 0:
                    raise DataError(path, number, index + 1, "target is negative", fields[index])
                if value > 1 and rules.multilabel:
                    raise DataError(
                        path,
                        number,
                        index + 1,
                        "target is above 1 (a sigmoid target is in [0, 1])",
                        fields[index],
                    )
                row_targets.append(value)
            if rules.multilabel:  # one yes/no target per label: no row total (and --sigmoid
                return row, None, row_targets, (1.0, "")  # takes no weight or group column)
            total = float(target_sums(np.array([row_targets], dtype=np.float64))[0])
            tolerance = rules.target_tolerance
            if rules.renormalize and not total > 0:
                raise DataError(path, number, None, "every target of the row is 0", text)
            if not rules.renormalize and not abs(total - 1.0) <= tolerance:
                raise DataError(
                    path,
                    number,
                    None,
                    f"targets sum to {total!r}, not 1 (tolerance {tolerance:g}; "
                    "--sum-tolerance sets it, --renormalize divides by the sum)",
                    text,
                )
        label = None
        if layout.label is not None:
            label = self._label(fields[layout.label], layout.label + 1, number)
        weight, group = 1.0, ""
        if layout.weight is not None:
            weight = number_at(layout.weight, "weight")
            if not abs(weight) < float("inf"):
                raise DataError(
                    path, number, layout.weight + 1, "weight is not finite", fields[layout.weight]
                )
            if weight < 0:
                raise DataError(
                    path, number, layout.weight + 1, "weight is negative", fields[layout.weight]
                )
        if layout.group is not None:
            group = fields[layout.group].strip(" \t")
            if not group:
                raise DataError(path, number, layout.group + 1, "empty group cell", group)
        return row, label, row_targets, (weight, group)

    def _label(self, cell: str, column: int, number: int) -> int:
        try:
            return self._label_value(cell, column, number)
        except DataError as error:
            guess = self._layout.label_guess
            if guess != "the last column":  # a column named label is no guess worth doubting
                raise
            name = self._layout.label_name
            raise DataError(
                error.path,
                error.line,
                error.column,
                f"{error.reason}; the label column {name!r} was guessed ({guess}): "
                "--label-column names the right one",
                error.value,
            ) from None

    def _label_value(self, cell: str, column: int, number: int) -> int:
        path, layout = self._path, self._layout
        K = layout.num_classes
        if layout.class_index is not None and layout.class_names is not None:
            name = cell.strip(" \t")
            if name in layout.class_index:
                return layout.class_index[name]
            # With class names, an integer label is a class index (named for display).
            if not INTEGER.fullmatch(cell) or not 0 <= int(cell) < K:
                shown = ", ".join(layout.class_names[:8])
                more = ", ..." if K > 8 else ""
                raise DataError(
                    path, number, column, f"unknown class name (classes: {shown}{more})", cell
                )
        if not cell.strip(" \t"):
            raise DataError(path, number, column, "empty label cell", cell)
        value = integer_label(cell)
        if value is None:
            raise DataError(path, number, column, "label is not an integer", cell)
        if value == self._ignore_index:
            return value
        if value < 0:
            raise DataError(path, number, column, "label is negative", cell)
        if value >= K:
            raise DataError(path, number, column, f"label is out of range [0, {K})", cell)
        return value


def integer_label(cell: str) -> int | None:
    """The integer a label cell holds: integer text, or a number with an integral value.

    ``np.savetxt`` and pandas write integer labels as floats (``1.0``,
    ``0.000000000000000000e+00``): those are integers; ``1.5`` is not.

    >>> integer_label(" 2 "), integer_label("1.0"), integer_label("1e1"), integer_label("1.5")
    (2, 1, 10, None)
    """
    if INTEGER.fullmatch(cell):
        return int(cell)
    if not is_number(cell):
        return None
    value = float(cell)
    if not (abs(value) < float("inf") and value == int(value)):
        return None
    # Beyond 2**53 a float does not say which integer was meant, but any such value is
    # out of range: the caller says so.
    return int(value)
