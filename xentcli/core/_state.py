"""Checked reading of the JSON-able states that exact sums and sketches save.

A state is data, never code: each reader below checks one field's type, range and size
before anything is built from it, and raises :class:`~xentcli.errors.StateError` naming
the field. Exact numbers travel as text that round-trips exactly: integers as hexadecimal
with a binary exponent for their trailing zero bits (``"-0x1f"``, ``"0x3p1124"`` is
3·2**1124: an exact sum's low bits are mostly zeros; no decimal conversion limit, linear
time) and floats as :meth:`float.hex`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from xentcli.errors import StateError

#: the longest hexadecimal integer accepted (an exact sum of 2**63 float64 values is
#: below 2**2213, 554 hexadecimal digits)
MAX_HEX_DIGITS = 600
#: the largest binary exponent accepted (an exact sum is below 2**2213)
MAX_EXPONENT = 2400
_HEX_INT = re.compile(r"-?0x(0|[1-9a-f][0-9a-f]*)(p[1-9][0-9]{0,3})?")
_HEX_FLOAT = re.compile(r"-?(inf|nan|0x[01]\.[0-9a-f]{1,13}p[+-]\d{1,4}|0x0\.0p\+0)")


def hex_int(value: int) -> str:
    """*value* as hexadecimal text, its trailing zero bits as a binary exponent.

    >>> hex_int(0), hex_int(-31), hex_int(3 << 1124), need_hex_int(hex_int(-5 << 70), "x")
    ('0x0', '-0x1f', '0x3p1124', -5902958103587056517120)
    """
    if value == 0:
        return "0x0"
    zeros = (value & -value).bit_length() - 1
    return hex(value >> zeros) + (f"p{zeros}" if zeros else "")


def hex_float(value: float) -> str:
    """*value* as :meth:`float.hex` text (``"inf"``, ``"nan"`` for the specials)."""
    return float(value).hex()


def need(data: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """*data* if it is a *kind* (``bool`` is not an ``int`` here), else StateError."""
    if isinstance(data, bool) and kind is int:
        raise StateError(f"{where}: expected an integer, got a boolean")
    if not isinstance(data, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise StateError(f"{where}: expected {_article(name)}, got {type(data).__name__}")
    return data


def _article(name: str) -> str:
    names = {"int": "an integer", "str": "a string", "list": "a list", "dict": "an object"}
    return names.get(name, name)


def need_int(data: Any, where: str, low: int = 0, high: int = 1 << 62) -> int:
    """An integer in ``[low, high]``."""
    value = need(data, int, where)
    if not low <= value <= high:
        raise StateError(f"{where}: {value} is outside [{low}, {high}]")
    return int(value)


def need_list(data: Any, where: str, size: int | None = None, max_size: int = 1 << 24) -> list[Any]:
    """A list of exactly *size* items (or at most *max_size*)."""
    items: list[Any] = need(data, list, where)
    if size is not None and len(items) != size:
        raise StateError(f"{where}: expected {size} items, got {len(items)}")
    if len(items) > max_size:
        raise StateError(f"{where}: {len(items)} items, more than {max_size}")
    return items


def need_dict(data: Any, where: str, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """An object; with *keys*, holding exactly those keys."""
    fields: dict[str, Any] = need(data, dict, where)
    if keys is not None:
        missing = [k for k in keys if k not in fields]
        if missing:
            raise StateError(f"{where}: missing field {missing[0]!r}")
        extra = sorted(k for k in fields if k not in keys)
        if extra:
            raise StateError(f"{where}: unknown field {extra[0]!r}")
    return fields


def need_hex_int(data: Any, where: str) -> int:
    """An integer written by :func:`hex_int` (at most :data:`MAX_HEX_DIGITS` digits and
    an exponent up to :data:`MAX_EXPONENT`, so the value stays small)."""
    text = need(data, str, where)
    if len(text) > MAX_HEX_DIGITS + 8 or not _HEX_INT.fullmatch(text):
        raise StateError(f"{where}: not a hexadecimal integer: {text[:40]!r}")
    digits, _, exponent = text.partition("p")
    shift = int(exponent) if exponent else 0
    if shift > MAX_EXPONENT:
        raise StateError(f"{where}: exponent larger than {MAX_EXPONENT}: {text[:40]!r}")
    return int(digits, 16) << shift


def need_hex_float(
    data: Any, where: str, *, finite: bool = False, low: float | None = None
) -> float:
    """A float written by :func:`hex_float`; *finite* refuses inf and nan, *low* is a floor."""
    text = need(data, str, where)
    if len(text) > 32 or not _HEX_FLOAT.fullmatch(text):
        raise StateError(f"{where}: not a hexadecimal float: {text[:40]!r}")
    try:
        value = float.fromhex(text)
    except (ValueError, OverflowError):
        raise StateError(f"{where}: not a float64: {text!r}") from None
    if finite and not math.isfinite(value):
        raise StateError(f"{where}: must be finite, got {text}")
    if low is not None and not value >= low:  # also refuses nan
        raise StateError(f"{where}: must be >= {low:g}, got {text}")
    return value
