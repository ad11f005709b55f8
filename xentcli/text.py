"""JSON output at full precision: shortest round-tripping floats, infinities as strings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats into JSON-safe Python values.

    Floats keep the shortest representation that round-trips (Python's ``repr``);
    ``inf``/``-inf``/``nan`` become the strings ``"inf"``, ``"-inf"``, ``"nan"``.

    >>> jsonable([np.float64(0.1), float("-inf"), np.int64(3)])
    [0.1, '-inf', 3]
    """
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return [jsonable(item) for item in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return number
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """Serialise *value* with :func:`jsonable`; never emits bare ``NaN``/``Infinity``.

    >>> dumps({"loss": float("inf")}, indent=None)
    '{"loss": "inf"}'
    """
    import json  # here, not above: the table formats never need it

    return json.dumps(jsonable(value), indent=indent, allow_nan=False)
