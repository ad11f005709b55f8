"""The options of the loss, as one value: what the command line builds once and hands on.

Pure data: the checks are the kernel's (for the Python API) and the command line's
parameter types (for the commands), with PyTorch's ``cross_entropy`` semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xentcli.core._units import Base


@dataclass(frozen=True)
class LossOptions:
    """The loss's options, alike for one sample (``xent compute``) and a batch of rows.

    >>> LossOptions(temperature=2.0).label_smoothing
    0.0
    """

    weights: Sequence[float] | None = None  #: one per class (PyTorch's ``weight``)
    ignore_index: int | None = None  #: a label value whose rows do not count
    label_smoothing: float = 0.0  #: ε in [0, 1]
    temperature: float = 1.0  #: T > 0; the logits are divided by it first
    base: Base = "e"  #: units of the loss: e nats, 2 bits, 10 bans
    exact: bool = False  #: correctly rounded results (the kernel's ``exact=True``)
