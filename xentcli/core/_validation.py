"""Checks of the kernel's inputs, each raising :class:`~xentcli.errors.InvalidInputError`.

Logits (NaN, +inf, rows of only -inf, shapes), labels, soft targets, class weights,
temperature and label smoothing: the error names the row, column, value and field, so the
CLI can say where the bad value is. The row-wise checks take a block and the index of its
first row (``row0``), so a batched caller reports positions in the whole batch.

Pure numpy: no I/O, no printing.

>>> check_smoothing(1.5)
Traceback (most recent call last):
...
xentcli.errors.InvalidInputError: label_smoothing must be in [0, 1] (1.5)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from xentcli.errors import InvalidInputError

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Soft targets must sum to 1 within this absolute tolerance (reader.py uses the same).
TARGET_SUM_TOLERANCE = 1e-6


def logits_array(logits: ArrayLike) -> FloatArray:
    """*logits* as a float64 array of shape ``(K,)`` or ``(N, K)``, neither empty."""
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise InvalidInputError(f"logits must be 1-D or 2-D, got {array.ndim}-D")
    if array.shape[-1] == 0:
        raise InvalidInputError("logits: a row is empty (no classes)")
    if array.ndim == 2 and array.shape[0] == 0:
        raise InvalidInputError("logits: the batch is empty (no rows)")
    return array


def check_temperature(temperature: float) -> None:
    """Raise unless *temperature* is a positive finite number."""
    if not (
        isinstance(temperature, (int, float, np.floating, np.integer))
        and math.isfinite(temperature)
        and temperature > 0
    ):
        raise InvalidInputError("temperature must be a positive finite number", value=temperature)


def check_logit_values(rows: FloatArray, row0: int, *, transposed: bool = False) -> None:
    """Raise for NaN or +inf in *rows* (``(n, K)``, or ``(K, n)`` when transposed)."""
    ok = rows < np.inf  # False for NaN and +inf
    if ok.all():
        return
    bad = np.argwhere(~ok)
    if transposed:
        bad = bad[:, ::-1]
    r, c = (int(v) for v in bad[np.lexsort((bad[:, 1], bad[:, 0]))[0]])
    value = float(rows[c, r] if transposed else rows[r, c])
    raise InvalidInputError(
        "logit is NaN" if math.isnan(value) else "logit is +inf",
        row=row0 + r,
        column=c,
        value=value,
        field="logit",
    )


def check_masked_rows(m: FloatArray, row0: int, one_row: bool = False) -> None:
    """Raise for the first row whose max *m* is -inf (every class masked)."""
    masked = m == -np.inf
    if masked.any():
        row = None if one_row else row0 + int(np.argmax(masked))
        raise InvalidInputError("every logit of the row is -inf", row=row, field="logit")


def check_weights(weights: ArrayLike | None, k: int) -> FloatArray | None:
    """*weights* as ``(K,)`` float64, finite and >= 0 (None stays None)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k,):
        raise InvalidInputError(
            f"weights: expected {k} values (one per class), got shape {w.shape}", field="weight"
        )
    bad = ~((w >= 0) & (w < np.inf))
    if bad.any():
        col = int(np.argmax(bad))
        raise InvalidInputError(
            "weight must be finite and >= 0", column=col, value=float(w[col]), field="weight"
        )
    return w


def check_smoothing(label_smoothing: float) -> float:
    """*label_smoothing* as a float in [0, 1] (1 is the uniform target, as in PyTorch)."""
    eps = float(label_smoothing)
    if not (0.0 <= eps <= 1.0):
        raise InvalidInputError("label_smoothing must be in [0, 1]", value=label_smoothing)
    return eps


def validate_labels(
    labels: ArrayLike, n: int, k: int, ignore_index: int | None, check: bool = True
) -> IntArray:
    """*labels* as ``(n,)`` int64 class indices in [0, k) (or *ignore_index*).

    With *check* False only the shape is checked (the caller has validated the values).
    """
    raw = np.asarray(labels)
    if raw.ndim == 0:
        raw = raw.reshape(1)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise InvalidInputError(
            f"labels: expected {n} labels, got shape {raw.shape}", field="label"
        )
    if not check:
        return raw.astype(np.int64, copy=False)
    if raw.dtype.kind == "f":
        nonint = ~np.isfinite(raw) | (raw != np.round(raw))
        if nonint.any():
            row = int(np.argmax(nonint))
            raise InvalidInputError(
                "label is not an integer", row=row, value=float(raw[row]), field="label"
            )
        if raw.size and np.abs(raw).max() >= 2.0**62:
            row = int(np.argmax(np.abs(raw) >= 2.0**62))
            raise InvalidInputError(
                f"label out of range [0, {k})", row=row, value=float(raw[row]), field="label"
            )
    elif raw.dtype.kind not in "iub":
        raise InvalidInputError(f"labels must be integers, got dtype {raw.dtype}", field="label")
    out = raw.astype(np.int64)
    valid = (out >= 0) & (out < k)
    if ignore_index is not None:
        valid |= out == ignore_index
    if not valid.all():
        row = int(np.argmax(~valid))
        raise InvalidInputError(
            f"label out of range [0, {k})", row=row, value=int(out[row]), field="label"
        )
    return out


def check_targets(tt: FloatArray, row0: int, tolerance: float | None = None) -> None:
    """Validate a transposed ``(K, n)`` block of soft targets.

    Each row must sum to 1 within *tolerance* (default: ``default_sum_tolerance(K)``).
    """
    if tolerance is None:
        from xentcli.core._scores import default_sum_tolerance

        tolerance = default_sum_tolerance(tt.shape[0])
    ok = (tt >= 0) & (tt < np.inf)
    if not ok.all():
        bad = np.argwhere(~ok)[:, ::-1]
        r, c = (int(v) for v in bad[np.lexsort((bad[:, 1], bad[:, 0]))[0]])
        raise InvalidInputError(
            "target must be a finite probability >= 0",
            row=row0 + r,
            column=c,
            value=float(tt[c, r]),
            field="target",
        )
    sums = tt.sum(axis=0)
    off = np.abs(sums - 1.0) > tolerance
    if off.any():
        r = int(np.argmax(off))
        raise InvalidInputError(
            f"targets do not sum to 1 (tolerance {tolerance:g})",
            row=row0 + r,
            value=float(sums[r]),
            field="target",
        )
