"""What a table's score columns hold (``--scores``), and the row rules that follow.

The kind is given (``logits``, ``probs``, ``logprobs``) or detected (``auto``) from the
first block of each file with :func:`xentcli.core.detect_kind`; :class:`RowRules` then
carries what the parsers check on every row: the kind's cells and row totals, the
tolerance of the soft targets' sums and ``renormalize``. Everything here works on
arrays, so readers of other formats reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from xentcli.batch._rows import ParsedRows, row_sums
from xentcli.core import (
    KIND_NAMES,
    ScoreCheck,
    ScoreKind,
    default_sum_tolerance,
    detect_kind,
    row_totals,
)

FloatArray = npt.NDArray[np.float64]
ScoresOption = Literal["auto", "logits", "probs", "logprobs"]


def resolve_kind(
    option: ScoresOption, sample: FloatArray, tolerance: float | None, multilabel: bool = False
) -> ScoreKind:
    """The kind of scores: *option*, or for ``auto`` the kind *sample* shows (with
    *multilabel*, ``--sigmoid``'s rule: every cell in [0, 1] is probabilities, else logits)."""
    if option != "auto":
        return option
    if multilabel:
        from xentcli.core import detect_sigmoid_kind

        return detect_sigmoid_kind(sample)
    return detect_kind(sample, tolerance)


def mixed_kinds(first: str, kind: str, other_file: str, other_kind: str) -> str:
    """The error for files of two kinds of scores in one run (every engine says it so)."""
    from xentcli.core import KIND_NAMES

    return (
        f"{first} holds {KIND_NAMES[kind]} but {other_file} holds {KIND_NAMES[other_kind]}"
        " (detected): give --scores logits|probs|logprobs"
    )


def logits_in_unit_interval(
    kind: ScoreKind, sample: FloatArray, tolerance: float | None, multilabel: bool = False
) -> str | None:
    """What to say when ``auto`` read *sample* as logits although every score is in
    [0, 1]: most likely probabilities whose rows were rounded (``%.2f``) past the
    tolerance, and scoring them as logits gives another loss. Not an error (such logits
    exist), but never in silence. None when there is nothing to say."""
    if kind != "logits" or multilabel or sample.ndim != 2 or sample.shape[1] < 2:
        return None
    if sample.shape[0] == 0 or not bool(((sample >= 0) & (sample <= 1)).all()):
        return None
    totals = row_totals(sample, "probs")
    tol = default_sum_tolerance(sample.shape[1]) if tolerance is None else tolerance
    return (
        f"every score of the first rows is in [0, 1], but rows sum to {totals.min():.6g}"
        f" to {totals.max():.6g}, not 1 within {tol:g}: read as logits. If they are"
        " probabilities, give --scores probs (with --sum-tolerance or --renormalize)"
    )


@dataclass
class RowRules:
    """The row checks of one table, set once its kind of scores is known."""

    num_scores: int  #: score columns (1 for the binary case)
    num_targets: int  #: classes of the soft targets (0 without targets)
    sum_tolerance: float | None = None  #: None: default_sum_tolerance(K)
    renormalize: bool = False
    kind: ScoreKind = "logits"
    detected: bool = False  #: the kind came from ``--scores auto``
    #: sigmoid targets: each in [0, 1], no row total; logits finite, probabilities and
    #: log-probabilities checked cell by cell (``--sigmoid``)
    multilabel: bool = False
    check: ScoreCheck = field(init=False)

    def __post_init__(self) -> None:
        self.set_kind(self.kind, self.detected)

    def set_kind(self, kind: ScoreKind, detected: bool) -> None:
        self.kind = kind
        self.detected = detected
        if self.multilabel:  # each cell a label's own probability: no row total
            from xentcli.core import SigmoidScoreCheck

            self.check = SigmoidScoreCheck(kind, 0.0)
            return
        k = max(self.num_scores, 2)
        tolerance = default_sum_tolerance(k) if self.sum_tolerance is None else self.sum_tolerance
        self.check = ScoreCheck(
            kind,
            tolerance,
            self.renormalize,
            binary=self.num_scores == 1,
            how="; --sum-tolerance sets it, --renormalize divides by the total",
        )

    @property
    def target_tolerance(self) -> float:
        if self.sum_tolerance is not None:
            return self.sum_tolerance
        return default_sum_tolerance(self.num_targets)

    def hint(self) -> str:
        """What to add to a row's error about its scores (how to say what they are)."""
        name = KIND_NAMES[self.kind]
        if self.detected:
            return (
                f" (the scores were detected as {name} from the first rows; "
                "--scores logits|probs|logprobs says what they are)"
            )
        return ""  # given with --scores: the message's cell name says the kind

    def bad_score_rows(self, scores: FloatArray) -> tuple[npt.NDArray[np.bool_], int]:
        """Rows breaking the kind's rules, and how many rows are renormalized."""
        bad, renormalized = self.check.bad_rows(scores)
        return bad, int(np.count_nonzero(renormalized))

    def bad_target_rows(self, targets: FloatArray) -> npt.NDArray[np.bool_]:
        """Soft-target rows that are not distributions (within the tolerance); with
        ``multilabel``, rows with a target outside [0, 1]."""
        with np.errstate(invalid="ignore"):
            if self.multilabel:
                return np.asarray(~((targets >= 0) & (targets <= 1)).all(axis=1), dtype=bool)
            cells_ok = np.isfinite(targets) & (targets >= 0)
            sums = target_sums(targets)
            sums_ok = sums > 0 if self.renormalize else np.abs(sums - 1.0) <= self.target_tolerance
        return ~(cells_ok.all(axis=1) & sums_ok)

    def bad_logit_rows(self, logits: FloatArray) -> npt.NDArray[np.bool_]:
        """With ``multilabel`` and logits, rows with a logit that is not finite (the
        sigmoid loss has no masked class: -inf is refused too); otherwise none (checked
        elsewhere; a log-probability -inf is p = 0)."""
        if not self.multilabel or self.kind != "logits":
            return np.zeros(logits.shape[0], dtype=bool)
        return np.asarray(~np.isfinite(logits).all(axis=1), dtype=bool)

    def normalized_targets(self, targets: FloatArray) -> FloatArray:
        """The targets, each row divided by its sum under ``renormalize``."""
        if not self.renormalize or targets.shape[0] == 0:
            return targets
        return targets / target_sums(targets)[:, None]

    def renormalized_target_rows(self, targets: FloatArray) -> npt.NDArray[np.bool_]:
        """The target rows that sum to 1 only after dividing by their sum."""
        if not self.renormalize:
            return np.zeros(targets.shape[0], dtype=bool)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.abs(target_sums(targets) - 1.0) > self.target_tolerance)

    def renormalized_targets(self, targets: FloatArray) -> int:
        """How many target rows sum to 1 only after dividing by their sum."""
        return int(np.count_nonzero(self.renormalized_target_rows(targets)))


def finish(parsed: ParsedRows, rules: RowRules) -> ParsedRows:
    """Count the renormalized rows and divide the targets by their sums (both parsers)."""
    if not rules.renormalize:
        return parsed
    _, parsed.renormalized = rules.bad_score_rows(parsed.logits)
    if parsed.targets is not None:
        parsed.targets_renormalized = rules.renormalized_targets(parsed.targets)
        parsed.targets = rules.normalized_targets(parsed.targets)
    return parsed


def target_sums(targets: FloatArray) -> FloatArray:
    """Sums of the target rows, computed alike by both parsers (so they agree to the bit)."""
    return np.asarray(row_sums(targets), dtype=np.float64)
