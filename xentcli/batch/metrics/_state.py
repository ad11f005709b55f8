"""Checked reading and writing of the metric states' saved form (``--save-state``).

Counts are JSON integers; exact sums use the core's own state form. Every field is
checked (type, range, size against the number of bins or classes) before use, and a bad
one is a :class:`~xentcli.errors.StateError` naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli import core

IntArray = npt.NDArray[np.int64]


def counts_to_state(counts: IntArray) -> list[int]:
    """An integer array as a JSON list."""
    return [int(c) for c in counts.reshape(-1).tolist()]


def counts_from_state(data: Any, where: str, size: int) -> IntArray:
    """*size* non-negative integers, checked."""
    items = core.need_list(data, where, size)
    return np.array(
        [core.need_int(c, f"{where}[{i}]") for i, c in enumerate(items)], dtype=np.int64
    )
