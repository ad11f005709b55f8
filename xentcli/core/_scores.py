"""What a row of scores holds: logits, probabilities or log-probabilities.

Checks of probabilities and log-probabilities (each cell, each row's total), the default
tolerance of a row's total, the detection rule of ``--scores auto``, the log of the given
scores (``log q``) and the binary case of one score column. Everything works on numpy
arrays, so every reader (CSV here, other formats later) and the Python API share it.

Pure numpy: no I/O, no printing.

>>> detect_kind(np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]]))
'probs'
>>> detect_kind(np.log(np.array([[0.1, 0.7, 0.2]])))
'logprobs'
>>> detect_kind(np.array([[1.2, 2.3, 0.8]]))
'logits'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from xentcli.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

ScoreKind = Literal["logits", "probs", "logprobs"]
#: the kinds of scores, in the order of ``--scores``
SCORE_KINDS: tuple[ScoreKind, ...] = ("logits", "probs", "logprobs")
#: how each kind is named in messages and reports
KIND_NAMES = {"logits": "logits", "probs": "probabilities", "logprobs": "log-probabilities"}
_CELL = {"logits": "logit", "probs": "probability", "logprobs": "log-probability"}

#: the smallest default tolerance of a row's total: float32 probabilities written with 6
#: significant digits are each within 5e-6 (relative) of the float32 value, so their sum
#: is within 5e-6 of the float32 sum, itself within about (log2 K + 2) * 6e-8 of 1.
SUM_TOLERANCE_FLOOR = 1e-5
#: per class: a value written with 4 decimals is within 5e-5 of the exact value
SUM_TOLERANCE_PER_CLASS = 5e-5
#: the default tolerance never exceeds 1 %
SUM_TOLERANCE_CAP = 1e-2


def default_sum_tolerance(k: int) -> float:
    """How far from 1 a row of *k* probabilities (or soft targets) may sum by default.

    ``min(1e-2, max(1e-5, 5e-5 * K))``: the floor covers float32 outputs written with
    6 to 9 significant digits; the per-class term covers values rounded to 4 decimals
    (``float_format='%.4f'``: each within 5e-5, so K of them within ``5e-5 * K``).

    >>> default_sum_tolerance(3), default_sum_tolerance(10), default_sum_tolerance(1000)
    (0.00015000000000000001, 0.0005, 0.01)
    """
    return min(SUM_TOLERANCE_CAP, max(SUM_TOLERANCE_FLOOR, SUM_TOLERANCE_PER_CLASS * k))


def check_kind(kind: object) -> ScoreKind:
    """*kind* if it is one of :data:`SCORE_KINDS`, else an error."""
    if kind not in SCORE_KINDS:
        raise InvalidInputError("scores must be 'logits', 'probs' or 'logprobs'", value=kind)
    return kind


def row_totals(scores: FloatArray, kind: ScoreKind) -> FloatArray:
    """Each row's total: the sum of probabilities, or the log-sum-exp of log-probabilities."""
    if kind == "probs":
        return np.asarray(scores.sum(axis=1), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        top = scores.max(axis=1)
        safe = np.where(np.isfinite(top), top, 0.0)
        return np.asarray(
            safe + np.log(np.exp(scores - safe[:, None]).sum(axis=1)), dtype=np.float64
        )


def detect_kind(scores: FloatArray, tolerance: float | None = None) -> ScoreKind:
    """The kind of a block of scores ``(n, K)``, by the rule of ``--scores auto``.

    Every value in [0, 1] and every row summing to 1 within *tolerance* (default
    :func:`default_sum_tolerance`): probabilities. Every value <= 0 and every row's
    log-sum-exp within *tolerance* of 0: log-probabilities. A single column (the binary
    case, the score of class 1) has no total to check: every value in [0, 1] says
    probabilities (``predict_proba[:, 1]``; logits all in [0, 1] would be a classifier
    that never gives class 1 less than 1/2 nor more than 0.73), and log-probabilities
    are not told from the logits of a rare class. Anything else, and an empty block:
    logits.

    >>> detect_kind(np.array([[0.25, 0.75], [0.5, 0.5]])), detect_kind(np.array([[0.9], [0.2]]))
    ('probs', 'probs')
    >>> detect_kind(np.array([[-1.5], [2.0]])), detect_kind(np.log([[0.3, 0.7]]))
    ('logits', 'logprobs')
    """
    n, k = scores.shape
    if n == 0:
        return "logits"
    if k == 1:
        with np.errstate(invalid="ignore"):
            return "probs" if bool(((scores >= 0) & (scores <= 1)).all()) else "logits"
    tol = default_sum_tolerance(k) if tolerance is None else tolerance
    with np.errstate(invalid="ignore"):
        if bool(((scores >= 0) & (scores <= 1)).all()):
            if bool((np.abs(row_totals(scores, "probs") - 1.0) <= tol).all()):
                return "probs"
            return "logits"
        if bool((scores <= 0).all()) and bool(
            (np.abs(row_totals(scores, "logprobs")) <= tol).all()
        ):
            return "logprobs"
    return "logits"


@dataclass(frozen=True)
class ScoreCheck:
    """The check of one kind of scores, with its tolerance and ``renormalize``."""

    kind: ScoreKind
    tolerance: float
    renormalize: bool = False
    binary: bool = False  #: one score column: no row total to check
    #: what a message about a row's total adds (the options that change the rule)
    how: str = ""

    def bad_rows(self, scores: FloatArray) -> tuple[BoolArray, BoolArray]:
        """Rows that are invalid, and rows whose total is off but are renormalized.

        Logits are checked elsewhere (the reader's and the kernel's own checks): here
        they are always valid.
        """
        n = scores.shape[0]
        none: BoolArray = np.zeros(n, dtype=bool)
        if self.kind == "logits":
            return none, none
        with np.errstate(invalid="ignore"):
            if self.kind == "probs":
                cells = ((scores >= 0) & (scores <= 1)).all(axis=1)
            else:
                cells = (scores <= self.tolerance).all(axis=1) & (scores.max(axis=1) > -np.inf)
            if self.binary:
                return np.asarray(~cells, dtype=bool), none
            totals = row_totals(scores, self.kind)
            target = 1.0 if self.kind == "probs" else 0.0
            off = ~(np.abs(totals - target) <= self.tolerance)
            empty = ~(totals > 0) if self.kind == "probs" else none
        if self.renormalize:
            return (
                np.asarray(~cells | empty, dtype=bool),
                np.asarray(off & cells & ~empty, dtype=bool),
            )
        return np.asarray(~cells | off, dtype=bool), none

    def row_error(self, row: FloatArray) -> tuple[int | None, str] | None:
        """The first problem of one row: (0-based column or None for the row, reason)."""
        kind = self.kind
        cell = _CELL[kind]
        for c, value in enumerate(row.tolist()):
            if value != value:
                return c, f"{cell} is NaN"
            if kind == "probs":
                if value < 0:
                    return c, "probability is negative"
                if value > 1:
                    return c, "probability is above 1"
            elif kind == "logprobs" and value > self.tolerance:
                return c, f"log-probability is positive (above the tolerance {self.tolerance:g})"
        if kind == "logits":
            return None
        if kind == "logprobs" and all(v == -math.inf for v in row.tolist()):
            return None, "every log-probability of the row is -inf"
        if self.binary:
            return None
        total = float(row_totals(row[None, :], kind)[0])
        if kind == "probs" and not total > 0:
            return None, "every probability of the row is 0"
        target = 1.0 if kind == "probs" else 0.0
        if self.renormalize or abs(total - target) <= self.tolerance:
            return None
        if kind == "probs":
            what = f"probabilities sum to {total!r}, not 1"
        else:
            what = f"log-probabilities' log-sum-exp is {total!r}, not 0"
        return None, f"{what} (tolerance {self.tolerance:g}{self.how})"


def check_scores(scores: FloatArray, check: ScoreCheck) -> int:
    """Raise :class:`InvalidInputError` for the first invalid row of *scores* ``(n, K)``.

    Returns how many rows are renormalized (their total was off, ``renormalize`` on).
    """
    bad, renormalized = check.bad_rows(scores)
    if bad.any():
        r = int(np.argmax(bad))
        found = check.row_error(scores[r])
        column, reason = found if found is not None else (None, "invalid row")
        value = None if column is None else float(scores[r, column])
        raise InvalidInputError(reason, row=r, column=column, value=value, field="score")
    return int(np.count_nonzero(renormalized))


def log_of_scores(
    scores: FloatArray, kind: ScoreKind, clip: float | None = None, renormalize: bool = False
) -> FloatArray:
    """``log q`` from probabilities or log-probabilities (validated), as a new array.

    *renormalize* divides each row by its total first; *clip* then clips the
    probabilities to ``[clip, 1 - clip]`` (scikit-learn's and Keras's way).
    Without either, ``log q`` is the log of the given float (within numpy's ``log``
    accuracy) or the given log-probability itself.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "probs":
            q = scores
            if renormalize:
                q = q / q.sum(axis=1, keepdims=True)
            if clip is not None:
                q = np.clip(q, clip, 1.0 - clip)
            return np.log(q)
        lq = np.array(scores, dtype=np.float64)
        if renormalize:
            lq = lq - row_totals(lq, "logprobs")[:, None]
        if clip is not None:
            lq = np.clip(lq, math.log(clip), math.log1p(-clip))
        return lq


def binary_log_scores(column: FloatArray, kind: ScoreKind) -> tuple[FloatArray, ScoreKind]:
    """One score column (class 1) as two columns ``[class 0, class 1]``.

    Logits ``s`` become ``[0, s]``; a probability ``p`` becomes the log-probabilities
    ``[log1p(-p), log p]`` (no rounding of ``1 - p``); a log-probability ``l`` becomes
    ``[log(1 - exp(l)), l]``, computed without cancellation.

    >>> binary_log_scores(np.array([0.25]), "probs")[0]
    array([[-0.28768207, -1.38629436]])
    """
    c = np.asarray(column, dtype=np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "logits":
            return np.stack([np.zeros_like(c), c], axis=1), "logits"
        if kind == "probs":
            return np.stack([np.log1p(-c), np.log(c)], axis=1), "logprobs"
        near = c > -math.log(2.0)
        other = np.where(near, np.log(-np.expm1(c)), np.log1p(-np.exp(c)))
        return np.stack([other, c], axis=1), "logprobs"
