"""The rows a parser hands over: the one type both parsers produce.

The fast parser (:mod:`xentcli.batch._fastparse`) and the precise one
(:mod:`xentcli.batch._precise`) are siblings: each turns a block of text into
:class:`ParsedRows`, computed alike so that they agree to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass
class ParsedRows:
    """The validated rows of one block (or part of one), as the fast path also gives them."""

    logits: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64] | None
    targets: npt.NDArray[np.float64] | None
    lines: npt.NDArray[np.int64]
    renormalized: int = 0  #: rows of scores whose total was off (``renormalize``)
    targets_renormalized: int = 0  #: rows of targets whose sum was off (``renormalize``)
    weights: npt.NDArray[np.float64] | None = None  #: sample weights (weight column)
    groups: npt.NDArray[np.str_] | None = None  #: group names (group column)


def row_sums(targets: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sums of the target rows, computed alike by both paths (so they agree to the bit)."""
    return targets.sum(axis=1)
