"""What the per-row loss functions return, and the exact smoothing weights they share.

Pure numpy: no I/O, no printing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RowLosses:
    """Per-row results of :func:`row_losses`; arrays of shape (N,)."""

    loss: FloatArray  #: the row's (weighted) loss in nats; 0 for ignored rows
    weight: FloatArray  #: its share of the mean's denominator; 0 for ignored rows
    predicted: IntArray  #: argmax of the logits (first index on ties)
    label_probability: FloatArray  #: q of the true class (nan with soft targets)
    counted: npt.NDArray[np.bool_]  #: False for rows whose label is ignore_index
    #: exact=True only: ``loss + loss_lo`` is within ``loss_err`` of the exact row loss
    #: (double-double), for exact means; ``loss`` is its correctly rounded value.
    loss_lo: FloatArray | None = None
    loss_err: FloatArray | None = None
    #: metric_inputs=True only, for logits with labels (None on other paths): what the
    #: evaluation metrics need, computed while the kernel's block is in cache. The rank
    #: of the label (classes above it; ties: lower index first), the top probability
    #: ``max_k q_k = 1 / s`` and ``sum_k q_k**2``.
    label_rank: IntArray | None = None
    max_probability: FloatArray | None = None
    sum_squared_probabilities: FloatArray | None = None


def smoothing_weights(eps: float, k: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``1 - eps`` and ``eps / k`` as double-doubles ``(hi, lo)``, exact."""
    from fractions import Fraction  # lazy: fractions imports decimal (slow)

    def double_double(x: Fraction) -> tuple[float, float]:
        hi = float(x)
        return hi, float(x - Fraction(hi))

    return double_double(1 - Fraction(eps)), double_double(Fraction(eps) / k)
