"""xent: softmax and numerically stable cross-entropy, worked step by step.

>>> from xentcli import cross_entropy
>>> cross_entropy([[1.2, 2.3, 0.8]], [1])
0.4421192251430...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xentcli._version import __version__
from xentcli.errors import DataError, InvalidInputError, UndefinedMeanError, XentError

if TYPE_CHECKING:
    from xentcli.core import cross_entropy, log_softmax, logsumexp, softmax

__all__ = [
    "DataError",
    "InvalidInputError",
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


def __getattr__(name: str) -> Any:
    if name in _KERNEL_NAMES:
        from xentcli import core

        value = getattr(core, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
