"""Cross-entropy from given log-probabilities ``log q`` (no softmax to compute).

When the scores are probabilities or log-probabilities, ``log q`` is given (the log of
the given probability, or the log-probability itself) and the loss terms are formed from
it directly, with PyTorch's semantics (``nll_loss`` on ``log q``):

- label: ``w[i] * -log q_i`` (the product exact before its one rounding);
- label smoothing: ``(1 - eps) * w[i] * -log q_i + (eps / K) * sum_c w_c * -log q_c``;
- soft targets: ``-sum_c w_c t_c log q_c``, with ``0 * log 0 = 0``;

sums compensated (TwoProduct and a TwoSum tree), so a row's loss is within a few ulp of
the exact value for the given floats: within 1 ulp of ``-log q_i`` for a label (``log q``
itself is numpy's ``log`` of the given float, within 1 ulp; a given log-probability is
exact).

Pure numpy: no I/O, no printing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from xentcli.core._compensated import sum0, two_prod
from xentcli.core._loss_block import label_loss
from xentcli.core._results import RowLosses, smoothing_weights
from xentcli.core._scores import (
    ScoreCheck,
    ScoreKind,
    check_scores,
    default_sum_tolerance,
    log_of_scores,
)
from xentcli.core._validation import (
    check_smoothing,
    check_targets,
    check_temperature,
    check_weights,
    logits_array,
    validate_labels,
)
from xentcli.errors import InvalidInputError

ArrayLike = npt.ArrayLike

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _weighted_sum(v: FloatArray, nlq: FloatArray) -> FloatArray:
    """``sum_c v_c * nlq_c`` per row (``(n, K)`` inputs), 0 where ``v_c == 0``."""
    with np.errstate(invalid="ignore"):
        p, pe = two_prod(v, nlq)
    zero = v == 0
    if zero.any():
        p = np.where(zero, 0.0, p)
        pe = np.where(zero, 0.0, pe)
    pe = np.where(np.isfinite(p), pe, 0.0)
    # An inf term (q_c = 0 where v_c > 0: label smoothing, soft targets) makes the
    # compensated sum's error terms inf - inf = nan; the row's loss is inf, set below.
    with np.errstate(invalid="ignore"):
        hi, lo = sum0(np.ascontiguousarray(p.T))
        out = hi + (lo + pe.sum(axis=1))
    return np.where(np.isnan(out), np.inf, out)


def given_losses(
    log_q: FloatArray,
    labels: IntArray | None,
    targets: FloatArray | None,
    weights: FloatArray | None,
    label_smoothing: float,
    keep: tuple[float, float],
    share: tuple[float, float],
) -> FloatArray:
    """Row losses (nats) from ``log q`` ``(n, K)`` and labels or soft targets.

    *keep* and *share* are ``1 - eps`` and ``eps / K`` as double-doubles; ignored rows
    must carry a valid label (their loss is dropped by the caller).
    """
    nlq = -log_q
    n, k = nlq.shape
    if targets is not None:
        v = targets if weights is None else targets * weights[None, :]
        main = _weighted_sum(v, nlq)
    else:
        assert labels is not None
        picked = nlq[np.arange(n), labels]
        main = label_loss(picked, np.zeros(n), labels, weights)
    if label_smoothing:
        w = np.ones(k) if weights is None else weights
        uniform = _weighted_sum(np.broadcast_to(w[None, :], nlq.shape), nlq)
        with np.errstate(invalid="ignore"):
            main = keep[0] * main + (share[0] * uniform + (keep[1] * main + share[1] * uniform))
        main[np.isnan(main)] = np.inf
    return np.asarray(main, dtype=np.float64)


def given_row_losses(
    scores: FloatArray,
    kind: ScoreKind,
    labels: ArrayLike | None,
    targets: ArrayLike | None,
    *,
    weights: ArrayLike | None,
    ignore_index: int | None,
    label_smoothing: float,
    temperature: float,
    check: bool,
    sum_tolerance: float | None,
    renormalize: bool,
    clip: float | None,
    kernel: Callable[..., RowLosses],
    exact: bool = False,
) -> RowLosses:
    """:func:`~xentcli.core.row_losses` for probabilities or log-probabilities.

    With a temperature (and no clip) the logs of the scores are logits for *kernel* (the
    logits path): ``softmax(log p / T)``; with *renormalize* likewise at T = 1, since
    ``softmax(log p) = p / sum(p)``, which keeps the kernel's accuracy.
    """
    check_temperature(temperature)
    eps = check_smoothing(label_smoothing)
    y = logits_array(scores)
    y = y[None, :] if y.ndim == 1 else y
    n, k = y.shape
    if (labels is None) == (targets is None):
        raise InvalidInputError("give exactly one of labels and targets")
    if clip is not None and not 0 < clip <= 0.5:
        raise InvalidInputError("clip must be in (0, 0.5]", value=clip)
    if clip is not None and temperature != 1.0:
        # Clipping reproduces scikit-learn's and Keras's log-loss of the given
        # probabilities, which has no temperature; the two were once taken together and
        # the temperature silently ignored.
        raise InvalidInputError(
            "clip reproduces a library's clipped log-loss, which has no temperature:"
            " give clip or temperature, not both"
        )
    tolerance = default_sum_tolerance(k) if sum_tolerance is None else sum_tolerance
    if check:
        check_scores(y, ScoreCheck(kind, tolerance, renormalize))
    if exact:
        from xentcli.core import _exact_given

        refused = _exact_given.refusal(kind, temperature, renormalize, clip)
        if refused is not None:
            raise InvalidInputError(refused)
    if (temperature != 1.0 or renormalize) and clip is None and not (exact and kind == "probs"):
        return kernel(
            log_of_scores(y, kind),
            labels,
            targets=targets,
            weights=weights,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            temperature=temperature,
            check=check,
            target_tolerance=sum_tolerance,
            exact=exact,
        )
    w = check_weights(weights, k)
    if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
        raise InvalidInputError("ignore_index must be an integer", value=ignore_index)
    lab = None
    t = None
    counted = np.ones(n, dtype=bool)
    if targets is not None:
        t = np.asarray(targets, dtype=np.float64)
        t = t[None, :] if t.ndim == 1 else t
        if t.shape != (n, k):
            raise InvalidInputError(
                f"targets: expected shape {(n, k)}, got {t.shape}", field="target"
            )
        if check:
            check_targets(np.ascontiguousarray(t.T), 0, tolerance)
    else:
        lab = validate_labels(labels, n, k, ignore_index, check)  # type: ignore[arg-type]
        if ignore_index is not None:
            counted = lab != ignore_index
            lab = np.where(counted, lab, 0)
    keep, share = smoothing_weights(eps, k) if eps else ((1.0, 0.0), (0.0, 0.0))
    if exact:
        return _exact_rows(y, kind, clip, renormalize, lab, t, w, eps, keep, share, counted,
                           ignore_index)  # fmt: skip
    log_q = log_of_scores(y, kind, clip, renormalize)
    loss = given_losses(log_q, lab, t, w, eps, keep, share)
    predicted = np.argmax(y, axis=1).astype(np.int64)
    if t is not None:
        return RowLosses(loss, np.ones(n), predicted, np.full(n, np.nan), counted)
    assert lab is not None
    if kind == "probs" and clip is None and not renormalize:
        label_q = y[np.arange(n), lab]
    else:
        label_q = np.exp(log_q[np.arange(n), lab])
    row_w = np.ones(n) if w is None else w[lab]
    if ignore_index is not None:
        loss = np.where(counted, loss, 0.0)
        row_w = np.where(counted, row_w, 0.0)
        label_q = np.where(counted, label_q, np.nan)
    return RowLosses(loss, row_w, predicted, np.asarray(label_q, dtype=np.float64), counted)


def _exact_rows(
    y: FloatArray,
    kind: ScoreKind,
    clip: float | None,
    renormalize: bool,
    lab: IntArray | None,
    t: FloatArray | None,
    w: FloatArray | None,
    eps: float,
    keep: tuple[float, float],
    share: tuple[float, float],
    counted: npt.NDArray[np.bool_],
    ignore_index: int | None,
) -> RowLosses:
    """exact=True: the correctly rounded rows (:mod:`xentcli.core._exact_given`)."""
    from xentcli.core import _exact_given

    n = y.shape[0]
    labels = np.zeros(n, dtype=np.int64) if lab is None else lab
    got = _exact_given.row_losses(
        y, _exact_given.Given(kind, clip, renormalize), labels, t, w, eps, keep, share
    )
    loss, lo, err, label_q = got.loss, got.loss_lo, got.loss_err, got.label_probability
    if t is not None:
        return RowLosses(loss, np.ones(n), got.predicted, label_q, counted, lo, err)
    row_w = np.ones(n) if w is None else w[labels]
    if ignore_index is not None:
        loss, lo, err = (np.where(counted, a, 0.0) for a in (loss, lo, err))
        row_w = np.where(counted, row_w, 0.0)
        label_q = np.where(counted, label_q, np.nan)
    return RowLosses(loss, row_w, got.predicted, label_q, counted, lo, err)
