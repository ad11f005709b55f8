"""One row of a file of model outputs, read as ``xent batch`` reads it (``xent compute --from``).

:func:`read_row` opens the file with :func:`~xentcli.batch.reader.open_table` and the same
:class:`~xentcli.batch.reader.ReadOptions` (layout, parsing and checks are the batch
reader's own), reads up to the asked line and stops there. A line that is the header,
blank, past the end or not a valid row is a :class:`~xentcli.errors.DataError` at
``FILE:LINE`` (``FILE:row N`` for Parquet, Arrow and NumPy files, whose rows count from 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from xentcli.batch.reader import ReadOptions, open_table
from xentcli.errors import DataError


@dataclass(frozen=True)
class OneRow:
    """A row of a file: its logits and its label or soft target, with the column names."""

    path: str
    line: int  #: the 1-based physical line (or row, see :attr:`unit`)
    unit: str  #: "line" (text files) or "row" (Parquet, Arrow, NumPy)
    logits: tuple[float, ...]
    label: int | None  #: None with soft targets
    targets: tuple[float, ...] | None
    logit_names: tuple[str, ...]  #: the logit columns' names (or "0".."K-1")
    class_names: tuple[str, ...] | None  #: the classes' names, when known
    scores: str = "logits"  #: what the score columns hold ("logits", "probs", "logprobs")
    scores_detected: bool = False  #: the kind was detected (``scores="auto"``), as batch does
    binary: bool = False  #: one score column: the score of class 1 of two
    #: what the reader inferred about the file (as xent batch says it on stderr)
    notes: tuple[str, ...] = ()


def read_row(path: str, line: int, options: ReadOptions | None = None) -> OneRow:
    """The row at *line* of *path* (1-based, as ``xent batch`` names rows).

    Raises
    ------
    xentcli.errors.DataError
        For a file that cannot be read, and for a line that is the header, blank, beyond
        the last row, or a row that is not valid (with the batch reader's own message).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = path.write_text("a,b,label\\n1.5,2,1\\n\\n0,0,0\\n")
    >>> row = read_row(str(path), 4)
    >>> row.logits, row.label, row.logit_names
    ((0.0, 0.0), 0, ('a', 'b'))
    >>> read_row(str(path), 1)
    Traceback (most recent call last):
    ...
    xentcli.errors.DataError: ...p.csv:1: this line is the header, not a row of data
    """
    options = options if options is not None else ReadOptions()
    # Skip bad rows: a bad row before the asked one must not stop the reading.
    options = dataclasses.replace(options, on_error="skip")
    with open_table(path, options) as table:
        name = table.display_name
        unit = getattr(table, "unit", "line")
        header = table.header_line
        if header is not None and line <= header:
            where = "the header" if line == header else f"before the header (line {header})"
            raise DataError(name, line, None, f"this line is {where}, not a row of data")
        last = 0
        try:
            for chunk in table.chunks():
                unit = chunk.unit
                at = np.flatnonzero(chunk.lines == line)
                if at.size:
                    i = int(at[0])
                    named = getattr(table, "class_names", None)
                    classes = options.class_names if options.class_names is not None else named
                    return OneRow(
                        path=name,
                        line=line,
                        unit=unit,
                        logits=tuple(float(v) for v in chunk.logits[i]),
                        label=None if chunk.labels is None else int(chunk.labels[i]),
                        targets=(
                            None
                            if chunk.targets is None
                            else tuple(float(v) for v in chunk.targets[i])
                        ),
                        logit_names=tuple(table.logit_names),
                        class_names=None if classes is None else tuple(classes),
                        scores=getattr(table, "scores", "logits"),
                        scores_detected=bool(getattr(table, "scores_detected", False)),
                        binary=bool(getattr(table, "binary", False)),
                        notes=tuple(getattr(table, "notes", ())),
                    )
                if chunk.lines.size:
                    last = max(last, int(chunk.lines[-1]))
                if last > line:
                    break
        except DataError as error:
            if error.line is not None:  # a file-level error has no line
                raise
            if table.rows_skipped == 0:  # "no data rows": nothing to say about the line
                raise
        for skipped in table.skipped:
            if skipped.line == line:
                raise skipped
        # Every skipped row's error is kept unless there were many: then the line may be
        # one of those not kept, and all that is sure is that it is no valid row.
        every_error_kept = table.rows_skipped == len(table.skipped)
        last_row = max([last, *(e.line for e in table.skipped if e.line is not None)])
        if every_error_kept and last_row < line:
            reason = f"no such {unit}: the last {unit} of data is {last_row}"
            if not last_row:
                reason = "no data rows"
        elif every_error_kept:
            reason = f"{unit} {line} is blank"
        elif last < line:
            reason = f"no valid {unit} {line} (the last valid {unit} is {last})"
        else:
            reason = f"{unit} {line} is blank or not a valid row"
        raise DataError(name, line, None, reason, unit=unit)
