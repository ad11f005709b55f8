"""The bootstrap's percentile interval, written out from its definition (not numpy's).

Of ``B`` replicate values sorted ``x_1 <= ... <= x_B``, the ``p`` percentile is at the
position ``h = (B + 1) p``: ``x_h`` for an integer ``h``, linear between ``x_floor(h)``
and ``x_floor(h)+1`` otherwise, and ``x_1`` or ``x_B`` beyond the ends (Davison and
Hinkley, Bootstrap Methods, 1997, section 5.2.2). The interval at *level* is the
``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p`` percentile of *values* at the position ``(B + 1) p``."""
    x = sorted(float(v) for v in values)
    h = (len(x) + 1) * p
    if h <= 1:
        return x[0]
    if h >= len(x):
        return x[-1]
    below = math.floor(h)
    return x[below - 1] + (h - below) * (x[below] - x[below - 1])


def interval(values: Sequence[float], level: float) -> tuple[float, float]:
    """The percentile interval of *values* at *level*."""
    return percentile(values, (1 - level) / 2), percentile(values, (1 + level) / 2)
