"""The records that the accumulator and its saved state (:mod:`xentcli.batch.state`)
share: the options of a run, a file's exact sums, a worst row, and the state's parts.

Here, below both, so that the state module need not import the accumulator (no import
cycle); importable from :mod:`xentcli.batch.accumulator` as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.batch._types import place
from xentcli.batch.groups import GroupSet
from xentcli.batch.metrics import DEFAULT_BINS, MetricOptions, MetricSet
from xentcli.batch.weighting import SampleSums
from xentcli.errors import DataError


@dataclass(frozen=True)
class BatchOptions:
    """The loss options of ``xent batch`` (PyTorch semantics, as in ``cross_entropy``)."""

    weights: Sequence[float] | None = None
    ignore_index: int | None = None
    label_smoothing: float = 0.0
    temperature: float = 1.0
    base: str = "e"
    #: correctly rounded row losses and probabilities; the sums add their double-double
    #: remainders, so means are of the (nearly) exact losses (docs/accuracy.md)
    exact: bool = False
    reduction: Literal["mean", "sum"] = "mean"
    worst: int = 5
    class_names: Sequence[str] | None = None  #: names shown for labels (from --classes)
    scores: core.ScoreKind = "logits"  #: what the score columns hold
    scores_detected: bool = False  #: the kind was detected (``--scores auto``)
    binary: bool = False  #: one score column: the score of class 1 of two
    renormalize: bool = False  #: divide rows of probabilities by their sums
    clip: float | None = None  #: clip probabilities to [clip, 1 - clip] (comparison)
    top_k: tuple[int, ...] | None = None  #: --top-k (None: 1, and 5 when K > 5)
    bins: int = DEFAULT_BINS  #: --bins: calibration bins
    ci: float = 0.95  #: --ci: confidence level of the intervals (0: none)
    bootstrap: int = 0  #: --bootstrap: Poisson bootstrap replicates (0: none)
    seed: int = 0  #: --seed of the bootstrap
    #: --weight-column: the name of the column of sample weights (None: every row weighs 1)
    sample_weight_column: str | None = None
    #: --group-by: the column whose values slice the rows (None: no groups)
    group_by: str | None = None

    @property
    def metric_options(self) -> MetricOptions:
        """The options of the evaluation metrics."""
        return MetricOptions(
            top_k=self.top_k,
            bins=self.bins,
            ci=self.ci,
            bootstrap=self.bootstrap,
            seed=self.seed,
            weighted=self.sample_weight_column is not None,
        )


@dataclass(frozen=True)
class WorstRow:
    """A row among the highest losses."""

    file: str
    line: int
    label: int | str  #: a class name with --classes; argmax of the target for soft targets
    predicted: int | str
    probability: float  #: the softmax probability of the label
    loss: float
    #: what ``line`` counts: "line" (text files) or "row" (Parquet, Arrow, NumPy)
    unit: str = "line"

    @property
    def place(self) -> str:
        """``FILE:LINE``, or ``FILE:row N`` in a file without lines."""
        return place(self.file, self.line, self.unit)


@dataclass
class FileRecord:
    """One input file (or a part of one) as the state keeps it: exact sums and counts.

    A part of a file (a byte range scored on its own, as the Dask engine does) has
    ``part = (start, end)`` and ``newlines``, the line breaks in its range; its line
    numbers (in :attr:`errors` and in the worst rows) count from the range's first line
    as line 1 until it is joined to the part before it (:meth:`BatchAccumulator.merge`),
    which shifts them by that part's ``newlines``.
    """

    path: str
    total: core.ExactSum  #: the sum of the counted rows' losses (nats)
    weight: core.ExactSum  #: the mean's denominator
    rows: int = 0  #: rows read and scored (counted + ignored)
    counted: int = 0
    ignored: int = 0
    skipped: int = 0
    errors: list[DataError] = field(default_factory=list)  #: first skipped rows' errors
    part: tuple[int, int] | None = None  #: byte range [start, end) of a part of a file
    correct: int | None = 0  #: counted rows predicted right (None: a state without it)
    newlines: int = 0  #: line breaks in the part's range (parts only)
    #: with sample weights: the weight of the counted rows and of the right ones
    mass: core.ExactSum | None = None
    hits: core.ExactSum | None = None
    #: exact only: the sum of the counted rows' loss bounds (``total`` is within it plus
    #: ``counted * 2**-1073`` of the exact sum: :mod:`xentcli.batch.exact_mean`)
    loss_error: core.ExactSum | None = None


#: The parts of the state that are objects with ``to_state()``, ``from_state(data,
#: num_classes, where)`` (a classmethod that checks every field) and ``merge(other)``:
#: state key -> attribute of :class:`BatchAccumulator`. A new statistic joins the saved
#: state, ``xent merge`` and the Dask engine by implementing the three and adding a line.
STATE_COMPONENTS: dict[str, str] = {
    "class_sums": "class_sums",
    "class_weights": "class_weights",
    "sketch": "sketch",
    "divergence": "divergence",
    "metrics": "metrics",
    "sample": "sample",
    "groups": "groups",
}


class StateHolder(Protocol):
    """What the saved state reads from and writes into an accumulator: the fields of
    :class:`~xentcli.batch.accumulator.BatchAccumulator` that are not a
    :data:`STATE_COMPONENTS` object (those are reached by name)."""

    k: int
    options: BatchOptions
    class_names: list[str]
    soft_targets: bool | None
    class_rows: npt.NDArray[np.int64]
    class_correct: npt.NDArray[np.int64]
    files: list[FileRecord]
    rows_renormalized: int
    targets_renormalized: int
    rows_infinite: int
    infinite_rows: list[tuple[str, int]]
    columns: dict[str, object] | None
    metrics: MetricSet
    sample: SampleSums
    groups: GroupSet
    class_errors: core.GroupedExactSum | None
    _file_index: int
    _worst: list[tuple[float, int, int, WorstRow]]

    def _worst_items(self) -> list[tuple[float, int, int, WorstRow]]: ...
