"""xent: softmax and numerically stable cross-entropy, worked step by step.

>>> from xentcli import cross_entropy
>>> cross_entropy([[1.2, 2.3, 0.8]], [1])
0.4421192251430...

An accumulator sums batches in constant memory; accumulators merge, exactly:

>>> from xentcli import BatchAccumulator
>>> a, b = BatchAccumulator(3), BatchAccumulator(3)
>>> a.update([[1.2, 2.3, 0.8]], [1]); b.update([[0.0, 1.0, 0.0]], [0])
>>> a.merge(b); a.summary().loss == cross_entropy([[1.2, 2.3, 0.8], [0.0, 1.0, 0.0]], [1, 0])
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xentcli._version import __version__
from xentcli.errors import (
    DataError,
    InvalidInputError,
    StateError,
    UndefinedMeanError,
    XentError,
)

if TYPE_CHECKING:
    from xentcli.batch.accumulator import BatchAccumulator, BatchOptions, Summary
    from xentcli.core import cross_entropy, log_softmax, logsumexp, softmax

__all__ = [
    "BatchAccumulator",
    "BatchOptions",
    "DataError",
    "InvalidInputError",
    "StateError",
    "Summary",
    "UndefinedMeanError",
    "XentError",
    "__version__",
    "cross_entropy",
    "log_softmax",
    "logsumexp",
    "softmax",
]

# The numeric functions come from xentcli.core (and numpy) on first use, so that the
# command line, which imports this package first, starts without numpy for ``--help``.
_KERNEL_NAMES = frozenset(("cross_entropy", "log_softmax", "logsumexp", "softmax"))
# The streaming accumulator (create, feed arrays with ``update``, ``merge``, ``summary``,
# ``to_state``/``from_state``), from xentcli.batch.accumulator on first use too.
_BATCH_NAMES = frozenset(("BatchAccumulator", "BatchOptions", "Summary"))


def __getattr__(name: str) -> Any:
    if name in _KERNEL_NAMES or name in _BATCH_NAMES:
        import importlib

        module = "xentcli.core" if name in _KERNEL_NAMES else "xentcli.batch.accumulator"
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
