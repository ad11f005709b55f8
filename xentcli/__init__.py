"""xent: softmax and numerically stable cross-entropy, worked step by step.

>>> from xentcli import cross_entropy
>>> cross_entropy([[1.2, 2.3, 0.8]], [1])
0.4421192251430...
"""

from xentcli._version import __version__
from xentcli.errors import DataError, InvalidInputError, UndefinedMeanError, XentError
from xentcli.kernel import cross_entropy, log_softmax, logsumexp, softmax

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
