"""Files and streams -> chunks of (logits, labels | targets, line numbers).

CONTRACT (shared with batch.py; implementation in progress):

    with open_table(path, options) as table:   # path may be "-" for stdin
        table.display_name      # "predictions.csv" or "<stdin>"
        table.logit_names       # list[str]: names of the logit columns (header or "0".."K-1")
        table.label_name        # str | None: name of the label column (None with targets)
        table.size_bytes        # int | None: on-disk size when known (for progress)
        table.bytes_read        # int: compressed bytes consumed so far (for progress)
        table.rows_skipped      # int: rows skipped with on_error="skip"
        table.skipped           # list[DataError]: the first few skipped rows' errors
        for chunk in table.chunks():
            chunk.logits        # float64 (n, K), C-contiguous, validated (no NaN/+inf,
                                #   no all -inf row)
            chunk.labels        # int64 (n,) validated in [0, K) or == ignore_index; or None
            chunk.targets       # float64 (n, K) validated distributions; or None
            chunk.lines         # int64 (n,): 1-based physical line numbers (header = line 1)

All input validation happens here, where the file, line, column and raw text are known:
errors are raised as xentcli.errors.DataError (or, with on_error="skip", the row is
dropped, counted and its error kept in ``skipped``). The kernel is then called with
``check=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

TARGET_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ReadOptions:
    """How to read a table of model outputs."""

    delimiter: str | None = None  #: None: tab for .tsv(.gz...), comma otherwise
    header: bool | None = None  #: None: detect (first row not all numbers)
    label_column: str | int | None = None  #: None: label/target/y/class, else last column
    logit_columns: Sequence[str] | None = None  #: names, 0-based indices, "1:11", globs
    target_columns: Sequence[str] | None = None  #: soft targets instead of a label column
    classes: Sequence[str] | None = None  #: class names; labels are then names
    ignore_index: int | None = None  #: a label value that is allowed and not counted
    on_error: Literal["raise", "skip"] = "raise"
    chunk_rows: int = 1 << 16  #: rows per chunk (tests use tiny values)


@dataclass(frozen=True)
class Chunk:
    """A block of validated rows from one file."""

    path: str
    logits: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64] | None
    targets: npt.NDArray[np.float64] | None
    lines: npt.NDArray[np.int64]
