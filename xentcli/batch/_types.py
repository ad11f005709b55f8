"""What every reader of model outputs shares: how to read (:class:`ReadOptions`) and
what is read (:class:`Chunk`). Importable as ``xentcli.batch.reader.ReadOptions`` and
``xentcli.batch.reader.Chunk``; here so that the readers' modules need not import the
reader (no import cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

#: how many skipped rows' errors a file and the report keep (the rest are counted)
SKIPPED_KEPT = 5


@dataclass(frozen=True)
class ReadOptions:
    """How to read a table of model outputs."""

    delimiter: str | None = None  #: None: tab for .tsv(.gz...), comma otherwise
    header: bool | None = None  #: None: detect (first row not all numbers)
    label_column: str | int | None = None  #: None: label/target/y/class, else last column
    logit_columns: Sequence[str] | None = None  #: names, 0-based indices, "1:11", globs
    target_columns: Sequence[str] | None = None  #: soft targets instead of a label column
    class_names: Sequence[str] | None = None  #: labels are then these names
    ignore_index: int | None = None  #: a label value that is allowed and not counted
    on_error: Literal["raise", "skip"] = "raise"
    #: what the score columns hold; "auto" detects it from the first block of each file
    scores: Literal["auto", "logits", "probs", "logprobs"] = "logits"
    #: how far a row of probabilities (or soft targets) may sum from 1; None: the rule of
    #: xentcli.core.default_sum_tolerance
    sum_tolerance: float | None = None
    #: divide rows of probabilities and of targets by their sums instead of requiring 1
    renormalize: bool = False
    chunk_rows: int = 1 << 16  #: rows per chunk (tests use tiny values)
    #: at most this many bytes of logits per chunk (caps rows when K is large)
    chunk_bytes: int = 8 << 20
    #: "csv", "parquet", "arrow", "npy", "npz", "jsonl"; None: from the file name
    file_format: str | None = None
    #: for a .npy of scores: the .npy of labels (1-D integers) or of soft targets
    labels_path: str | None = None
    targets_path: str | None = None
    #: for a .npz: the names of the score and label arrays (None: logits/probs, labels)
    scores_key: str | None = None
    labels_key: str | None = None
    #: a column that is neither scores nor label (``xent compare --id-column``): left out
    #: of the default logit columns; a file without it is an error
    id_column: str | None = None
    #: sigmoid outputs (``xent batch --sigmoid``): one target column per logit column,
    #: each target in [0, 1] and the rows summing to anything; the logits must be finite
    multilabel: bool = False
    #: ``--weight-column``: a column of per-row sample weights (finite, >= 0), left out of
    #: the scores; a file without it is an error
    weight_column: str | None = None
    #: ``--group-by``: a column whose values slice the rows (its text, stripped), left out
    #: of the scores; a file without it is an error
    group_column: str | None = None
    #: the roles the command can give a column by option ("weight": --weight-column,
    #: "group": --group-by, "id": --id-column): named in the error for a score column
    #: inferred from a header whose name says it is none (see _columns.NON_SCORE_NAMES)
    roles: tuple[str, ...] = ("weight", "group")


@dataclass(frozen=True)
class Chunk:
    """A block of validated rows from one file.

    The arrays are in whatever memory layout the parse produced (logits may be a
    column-major array or a view of a wider table): copy them to keep them.
    """

    path: str
    logits: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64] | None
    targets: npt.NDArray[np.float64] | None
    lines: npt.NDArray[np.int64]
    #: what :attr:`Table.prepare` returned for this chunk (None without one)
    prepared: Any = None
    #: what ``lines`` counts: "line" (text) or "row" (Parquet, Arrow, NumPy: from 1)
    unit: str = "line"
    renormalized: int = 0  #: rows of scores whose total was off (``renormalize``)
    targets_renormalized: int = 0  #: rows of targets whose sum was off (``renormalize``)
    #: the rows' sample weights (``ReadOptions.weight_column``), finite and >= 0; or None
    weights: npt.NDArray[np.float64] | None = None
    #: the rows' group names (``ReadOptions.group_column``), a str array; or None
    groups: npt.NDArray[np.str_] | None = None


@dataclass(frozen=True)
class Piece:
    """A part of a file to read instead of the whole (the Dask engine's parts).

    For CSV, *stream* is a binary file object serving the bytes to read (the file's
    header line, then a range of whole lines) and *first_line* the number given to its
    first line. For Parquet, *row_groups* are the row groups to read and *first_row* the
    number of the first row read.
    """

    stream: Any = None
    first_line: int = 1
    row_groups: tuple[int, ...] | None = None
    first_row: int = 1


def place(path: str, number: int, unit: str = "line") -> str:
    """Where a row is, as people read it: ``FILE:LINE``, or ``FILE:row N`` without lines.

    >>> place("preds.csv", 218), place("preds.parquet", 217, "row")
    ('preds.csv:218', 'preds.parquet:row 217')
    """
    return f"{path}:row {number}" if unit == "row" else f"{path}:{number}"
