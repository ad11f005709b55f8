"""The evaluation metrics of ``xent batch``: each a small streaming state.

Every state has ``update(rows)`` (one chunk's :class:`MetricRows`), ``merge(other)``
(exact, associative and commutative: integer counts and exact sums) and ``summary()``.
:class:`MetricSet` owns one of each; :func:`metric_rows` makes a chunk's rows.
"""

from xentcli.batch.metrics._bootstrap import (
    MAX_REPLICATES,
    BootstrapState,
    BootstrapSummary,
    paired_difference,
)
from xentcli.batch.metrics._brier import BrierState, BrierSummary
from xentcli.batch.metrics._calibration import (
    DEFAULT_BINS,
    FINE_BINS,
    CalibrationState,
    CalibrationSummary,
    ReliabilityBin,
    fine_bin,
)
from xentcli.batch.metrics._confusion import (
    MAX_MATRIX_CLASSES,
    ClassScores,
    ConfusionState,
    ConfusionSummary,
)
from xentcli.batch.metrics._rows import MetricRows, concat_rows, metric_rows, take_rows
from xentcli.batch.metrics._set import MetricOptions, MetricSet, MetricsSummary
from xentcli.batch.metrics._topk import TopKState, TopKSummary, default_top_k

__all__ = [
    "DEFAULT_BINS",
    "FINE_BINS",
    "MAX_MATRIX_CLASSES",
    "MAX_REPLICATES",
    "BootstrapState",
    "BootstrapSummary",
    "BrierState",
    "BrierSummary",
    "CalibrationState",
    "CalibrationSummary",
    "ClassScores",
    "ConfusionState",
    "ConfusionSummary",
    "MetricOptions",
    "MetricRows",
    "MetricSet",
    "MetricsSummary",
    "ReliabilityBin",
    "TopKState",
    "TopKSummary",
    "concat_rows",
    "default_top_k",
    "fine_bin",
    "metric_rows",
    "paired_difference",
    "take_rows",
]
