"""A saved state as text and as a file (``--save-state``, ``xent merge``, the Dask engine).

:mod:`xentcli.batch.state` turns an accumulator into JSON-able data and back; this is its
JSON text (one line) and the file that holds it. docs/state-format.md describes both.

>>> import numpy as np
>>> from xentcli.batch.accumulator import BatchAccumulator
>>> acc = BatchAccumulator(3)
>>> acc.update(np.array([[1.2, 2.3, 0.8]]), np.array([1]))
>>> again = loads(dumps(acc))
>>> again.summary().loss == acc.summary().loss
True
"""

from __future__ import annotations

import json

from xentcli.batch import state
from xentcli.batch.accumulator import BatchAccumulator
from xentcli.errors import DataError, StateError


def dumps(acc: BatchAccumulator) -> str:
    """The state of *acc* as JSON text (one line, with a final newline)."""
    return json.dumps(acc.to_state(), separators=(",", ":"), allow_nan=False) + "\n"


def loads(text: str | bytes) -> BatchAccumulator:
    """An accumulator from state text (from :func:`dumps`); StateError if it is not one."""
    return BatchAccumulator.from_state(state.parse(text))


def read_state(path: str) -> BatchAccumulator:
    """The accumulator saved in the state file *path* (a StateError names the field)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(state.MAX_STATE_BYTES + 1)
    except OSError as error:
        raise DataError(path, None, None, f"cannot read: {error.strerror or error}") from None
    if not text:
        raise StateError("not a state: the file is empty")
    return loads(text)
