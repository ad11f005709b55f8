"""``xent batch --sigmoid``: multi-label files, one sigmoid output per label.

Each row holds L scores and L targets (0/1, or soft in [0, 1]); label k of a row is its
own yes/no question, scored by the binary cross-entropy: from logits with
:func:`xentcli.core.bce_with_logits` (PyTorch's ``BCEWithLogitsLoss``, with its
``pos_weight``), from probabilities or log-probabilities with
:func:`xentcli.core.bce_with_probs` / :func:`~xentcli.core.bce_with_logprobs` (PyTorch's
``BCELoss`` without its clamp: p = 0 with a positive target is an infinite loss).
:class:`MultiLabelAccumulator` folds chunks of such rows into:

- the mean loss as ``BCEWithLogitsLoss(reduction='mean')`` computes it: the sum over
  rows *and* labels divided by rows x labels (or the sum, ``reduction='sum'``);
- the mean loss of each label over the rows;
- for 0/1 targets, the exact-match ratio (rows whose every label is predicted right,
  scikit-learn's ``accuracy_score`` on multi-label data), each label's accuracy and the
  Hamming loss (the share of wrong labels), predicting 1 where the label's probability
  is > 1/2 (a logit > 0, :func:`xentcli.core.sigmoid_predicted`);
- the worst rows (highest mean loss over their labels).

Every sum is exact (:class:`~xentcli.core.GroupedExactSum`, integer counts), so every
figure is the same bits however the files are cut into chunks.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli.core import (
    ExactSum,
    GroupedExactSum,
    bce_with_logits,
    bce_with_logprobs,
    bce_with_probs,
    sigmoid_predicted,
    to_base,
)
from xentcli.errors import DataError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MultiLabelOptions:
    """What ``xent batch --sigmoid`` computes and reports."""

    pos_weight: tuple[float, ...] | None = None  #: PyTorch's pos_weight, one per label
    base: str = "e"  #: units: e nats, 2 bits, 10 bans
    reduction: str = "mean"  #: "mean" (over rows and labels) or "sum"
    worst: int = 5  #: how many highest-loss rows to keep
    scores: str = "logits"  #: what the score columns hold: logits, probs or logprobs
    scores_detected: bool = False  #: the kind was detected (``--scores auto``)


@dataclass(frozen=True)
class WorstRow:
    """A row among the highest mean loss over its labels."""

    file: str
    line: int
    loss: float  #: the row's mean loss over its labels, in the report's units
    wrong: int | None  #: labels predicted wrong (None when a target is soft)
    unit: str = "line"

    @property
    def place(self) -> str:
        from xentcli.batch._types import place

        return place(self.file, self.line, self.unit)


@dataclass(frozen=True)
class FileSummary:
    path: str
    rows: int
    loss: float | None  #: mean over its rows and labels (or sum), in units
    rows_skipped: int = 0


@dataclass(frozen=True)
class MultiLabelSummary:
    """Everything the report shows; :meth:`to_json` is the JSON document."""

    files: list[FileSummary]
    labels: list[str]  #: the score columns' names
    target_columns: list[str]
    rows: int
    rows_skipped: int
    skipped: list[DataError]
    reduction: str
    loss: float | None  #: mean over rows and labels (or the sum); None without rows
    loss_sum: float
    units: str
    pos_weight: tuple[float, ...] | None
    label_loss: list[float | None]  #: each label's mean over the rows
    label_positives: list[float]  #: each label's sum of targets
    label_predicted: list[int]  #: rows whose probability of the label is > 1/2
    soft_targets: int  #: targets that are neither 0 nor 1
    first_soft: str | None  #: where the first one is (FILE:LINE)
    exact_match: float | None  #: None with soft targets or without rows
    exact_matches: int
    hamming_loss: float | None
    label_accuracy: list[float] | None  #: None with soft targets or without rows
    label_correct: list[int]
    worst: list[WorstRow] = field(default_factory=list)
    scores: str = "logits"  #: what the score columns hold: logits, probs or logprobs
    scores_detected: bool = False
    rows_infinite: int = 0  #: rows with an infinite loss (a label's p = 0 with z > 0...)
    infinite_rows: list[tuple[str, int, str]] = field(default_factory=list)  #: (file, n, unit)

    @property
    def elements(self) -> int:
        return self.rows * len(self.labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "sigmoid": True,
            "scores": self.scores,
            "scores_detected": self.scores_detected,
            "files": [
                {"path": f.path, "rows": f.rows, "loss": f.loss, "rows_skipped": f.rows_skipped}
                for f in self.files
            ],
            "rows": self.rows,
            "rows_skipped": self.rows_skipped,
            "labels": list(self.labels),
            "target_columns": list(self.target_columns),
            "elements": self.elements,
            "reduction": self.reduction,
            "loss": self.loss,
            "loss_sum": self.loss_sum,
            "units": self.units,
            "pos_weight": None if self.pos_weight is None else list(self.pos_weight),
            "label_loss": list(self.label_loss),
            "label_positives": list(self.label_positives),
            "label_predicted_positives": list(self.label_predicted),
            "soft_targets": self.soft_targets,
            "first_soft_target": self.first_soft,
            "exact_match": self.exact_match,
            "exact_matches": self.exact_matches,
            "hamming_loss": self.hamming_loss,
            "label_accuracy": None if self.label_accuracy is None else list(self.label_accuracy),
            "rows_infinite": self.rows_infinite,
            "infinite_rows": [
                {"file": f, "line": line, "unit": unit} for f, line, unit in self.infinite_rows
            ],
            "worst": [
                {
                    "file": w.file,
                    "line": w.line,
                    "loss": w.loss,
                    "wrong_labels": w.wrong,
                    "unit": w.unit,
                }
                for w in self.worst
            ],
            "skipped": [
                {"file": e.path, "line": e.line, "column": e.column, "error": str(e)}
                for e in self.skipped
            ],
        }


_UNITS = {"e": "nats", "2": "bits", "10": "bans"}


@dataclass(frozen=True)
class ChunkRows:
    """The rows of one chunk, for ``--per-row`` (losses in the report's units)."""

    path: str
    lines: npt.NDArray[np.int64]
    loss: FloatArray  #: each row's mean over its labels
    wrong: npt.NDArray[np.int64]  #: labels predicted wrong; -1 where a target is soft
    label_loss: FloatArray  #: (n, L): each label's loss, within 2 ulp of the exact value


class MultiLabelAccumulator:
    """Exact sums and counts of multi-label rows, chunk by chunk (see the module docstring).

    Parameters
    ----------
    labels, target_columns : list of str
        The names of the logit columns (the labels) and of their target columns.
    options : MultiLabelOptions
    """

    INFINITE_KEPT = 5  #: how many rows of infinite loss are named in the report

    def __init__(
        self, labels: list[str], target_columns: list[str], options: MultiLabelOptions
    ) -> None:
        n_labels = len(labels)
        self.labels = list(labels)
        self.target_columns = list(target_columns)
        self.options = options
        self._pos_weight = (
            None if options.pos_weight is None else np.asarray(options.pos_weight, np.float64)
        )
        self._positives = GroupedExactSum(n_labels)  #: sum of the targets, per label
        self._predicted = np.zeros(n_labels, dtype=np.int64)
        self._correct = np.zeros(n_labels, dtype=np.int64)  #: 0/1 targets predicted right
        self._exact_matches = 0
        self._soft = 0
        self._first_soft: str | None = None
        self._rows = 0
        self._files: list[tuple[str, int, GroupedExactSum]] = []
        self._skipped = 0
        self._skipped_errors: list[DataError] = []
        self._file_skipped: dict[int, int] = {}  #: file index -> rows skipped
        # The worst rows: a min-heap of (loss, -file, -line) keeps the largest losses,
        # and among equal losses the earliest rows, whatever the chunking.
        self._worst: list[tuple[float, int, int, int | None, str, int, str]] = []
        self._group = np.arange(n_labels, dtype=np.int64)
        self._infinite = 0
        self._infinite_rows: list[tuple[str, int, str]] = []

    def start_file(self, path: str) -> None:
        """Rows added from now on belong to *path*."""
        self._files.append((path, 0, GroupedExactSum(len(self.labels))))

    def add(
        self,
        logits: FloatArray,
        targets: FloatArray,
        lines: Any,
        unit: str = "line",
        per_row: bool = False,
    ) -> ChunkRows | None:
        """Add a chunk: *logits* (the scores, of the options' kind) and *targets*
        ``(n, L)``, validated; *lines* ``(n,)``.

        With *per_row*, returns the chunk's rows (their losses, labels wrong) to write.
        """
        # Contiguous copies: every figure is then computed alike whatever memory layout
        # the parser produced (a transposed view or a row-major array).
        x = np.ascontiguousarray(logits, dtype=np.float64)
        z = np.ascontiguousarray(targets, dtype=np.float64)
        n = x.shape[0]
        if n == 0:
            return None
        kind = self.options.scores
        if kind == "probs":
            losses = bce_with_probs(x, z, self._pos_weight).loss
        elif kind == "logprobs":
            losses = bce_with_logprobs(x, z, self._pos_weight).loss
        else:
            losses = bce_with_logits(x, z, self._pos_weight).loss
        groups = np.broadcast_to(self._group, x.shape)
        path, rows, file_loss = self._files[-1]
        file_loss.add(losses, groups)
        self._files[-1] = (path, rows + n, file_loss)
        self._positives.add(z, groups)
        self._rows += n
        predicted = sigmoid_predicted(x, kind)  # type: ignore[arg-type]
        self._predicted += np.count_nonzero(predicted, axis=0)
        hard = (z == 0.0) | (z == 1.0)
        right = predicted == (z == 1.0)
        self._correct += np.count_nonzero(right & hard, axis=0)
        all_hard = hard.all(axis=1)
        self._exact_matches += int(np.count_nonzero(right.all(axis=1) & all_hard))
        if not all_hard.all():
            self._soft += int(np.count_nonzero(~hard))
            if self._first_soft is None:
                from xentcli.batch._types import place

                self._first_soft = place(path, int(lines[int(np.argmin(all_hard))]), unit)
        # Each row's mean over its labels (nats): its sum from a contiguous row, so the
        # same bits whatever the chunk or the parser's memory layout.
        row_sums = losses.sum(axis=1)
        infinite = np.flatnonzero(row_sums == np.inf)
        if infinite.size:
            self._infinite += int(infinite.size)
            room = self.INFINITE_KEPT - len(self._infinite_rows)
            for i in infinite[: max(room, 0)].tolist():
                self._infinite_rows.append((path, int(lines[i]), unit))
        if self.options.worst:
            self._keep_worst(row_sums, right, all_hard, lines, unit, len(self._files) - 1)
        if not per_row:
            return None
        base = self.options.base
        return ChunkRows(
            path,
            np.asarray(lines, dtype=np.int64),
            np.asarray(to_base(row_sums / x.shape[1], base)),
            np.where(all_hard, (~right).sum(axis=1), -1),
            np.asarray(to_base(losses, base)),
        )

    def _keep_worst(
        self,
        row_sums: FloatArray,
        right: npt.NDArray[np.bool_],
        hard: npt.NDArray[np.bool_],
        lines: Any,
        unit: str,
        file_index: int,
    ) -> None:
        count = self.options.worst
        if len(row_sums) > count:
            # Only rows that can enter: the chunk's *count* largest (ties kept).
            cut = np.partition(row_sums, len(row_sums) - count)[len(row_sums) - count]
            candidates = np.flatnonzero(row_sums >= cut)
        else:
            candidates = np.arange(len(row_sums))
        wrong = (~right).sum(axis=1)
        path = self._files[file_index][0]
        for i in candidates.tolist():
            item = (
                float(row_sums[i]),
                -file_index,
                -int(lines[i]),
                int(wrong[i]) if hard[i] else None,
                path,
                int(lines[i]),
                unit,
            )
            if len(self._worst) < count:
                heapq.heappush(self._worst, item)
            elif item[:3] > self._worst[0][:3]:
                heapq.heapreplace(self._worst, item)

    def add_skipped(self, count: int, errors: list[DataError]) -> None:
        """Count rows the reader skipped (``--on-error skip``), keep a few errors."""
        from xentcli.batch._types import SKIPPED_KEPT

        self._skipped += count
        if self._files:
            self._file_skipped[len(self._files) - 1] = count
        room = SKIPPED_KEPT - len(self._skipped_errors)
        self._skipped_errors.extend(errors[: max(room, 0)])

    def summary(self) -> MultiLabelSummary:
        base = self.options.base
        n_labels = len(self.labels)
        rows = self._rows
        label_loss = GroupedExactSum(n_labels)  # nats, per label: the files' sums
        for _, _, sums in self._files:
            label_loss.merge(sums)
        total = label_loss.total()
        elements = ExactSum()
        elements.add_ones(rows * n_labels)
        per_row = ExactSum()
        per_row.add_ones(rows)
        mean = self.options.reduction == "mean"

        def reduced(loss: ExactSum, count: int) -> float | None:
            if not mean:
                return loss.value(base)
            if count == 0:
                return None
            denominator = ExactSum()
            denominator.add_ones(count * n_labels)
            return loss.ratio(denominator, base)

        files = [
            FileSummary(path, n, reduced(sums.total(), n), self._file_skipped.get(i, 0))
            for i, (path, n, sums) in enumerate(self._files)
        ]
        hard = self._soft == 0 and rows > 0
        label_accuracy = [int(c) / rows for c in self._correct.tolist()] if hard else None
        wrong = rows * n_labels - int(self._correct.sum())
        worst = [
            WorstRow(path, line, float(to_base(loss / n_labels, base)), wrong_labels, unit)
            for loss, _, _, wrong_labels, path, line, unit in sorted(self._worst, reverse=True)
        ]
        return MultiLabelSummary(
            files=files,
            labels=self.labels,
            target_columns=self.target_columns,
            rows=rows,
            rows_skipped=self._skipped,
            skipped=list(self._skipped_errors),
            reduction=self.options.reduction,
            loss=reduced(total, rows),
            loss_sum=total.value(base),
            units=_UNITS[base],
            pos_weight=self.options.pos_weight,
            label_loss=[
                label_loss.exact_sum(k).ratio(per_row, base) if rows else None
                for k in range(n_labels)
            ],
            label_positives=[self._positives.value(k) for k in range(n_labels)],
            label_predicted=self._predicted.tolist(),
            soft_targets=self._soft,
            first_soft=self._first_soft,
            exact_match=self._exact_matches / rows if hard else None,
            exact_matches=self._exact_matches,
            hamming_loss=wrong / (rows * n_labels) if hard else None,
            label_accuracy=label_accuracy,
            label_correct=self._correct.tolist(),
            worst=worst,
            scores=self.options.scores,
            scores_detected=self.options.scores_detected,
            rows_infinite=self._infinite,
            infinite_rows=list(self._infinite_rows),
        )
