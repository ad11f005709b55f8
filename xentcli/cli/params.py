"""Parsing of the list-valued options shared by the commands (``--logits``, ``--weights``...).

Pure functions that raise :class:`~xentcli.errors.XentError` with the message the user
reads; the CLI turns those into usage errors.
"""

from __future__ import annotations

import math
import re

from xentcli.errors import XentError

# A comma or semicolon (with spaces around it), or spaces alone: "1,,3" keeps its empty
# item, so that it is reported rather than silently dropped.
_SEPARATOR = re.compile(r"\s*[,;]\s*|\s+")
# ASCII only: float() would also take full-width or Arabic-Indic digits, which the CSV
# reader rejects; the two must agree on what a number is.
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)",
    flags=re.IGNORECASE | re.ASCII,
)


def split_list(text: str) -> list[str]:
    """Split ``1.2,2.3,0.8``, ``"1.2 2.3 0.8"`` or ``[1.2, 2.3, 0.8]`` into items.

    >>> split_list("[1.2, 2.3, 0.8]")
    ['1.2', '2.3', '0.8']
    >>> split_list(" -1  2;3 ")
    ['-1', '2', '3']
    >>> split_list("1,2,,3")
    ['1', '2', '', '3']
    """
    body = text.strip()
    if body[:1] in "[(" and body[-1:] in "])":
        body = body[1:-1].strip()
    return _SEPARATOR.split(body) if body else []


def parse_float(text: str, what: str = "value") -> float:
    """Parse one float, accepting ``inf``/``-inf`` spellings but rejecting hex and ``_``.

    >>> parse_float("1e-3")
    0.001
    >>> parse_float("-Inf")
    -inf
    >>> parse_float("0x10")
    Traceback (most recent call last):
    ...
    xentcli.errors.XentError: value is not a number: '0x10'
    >>> parse_float("１２")
    Traceback (most recent call last):
    ...
    xentcli.errors.XentError: value is not a number: '１２'
    """
    stripped = text.strip()
    # float() accepts '1_000' and 'infinity'; be explicit about what a number is here.
    if not _NUMBER.fullmatch(stripped):
        raise XentError(f"{what} is not a number: {text!r}")
    return float(stripped)


def parse_float_list(text: str, what: str = "value") -> list[float]:
    """Parse a list of floats written as in :func:`split_list`.

    >>> parse_float_list("1.2,2.3,0.8")
    [1.2, 2.3, 0.8]
    >>> parse_float_list("[]", "logits")
    Traceback (most recent call last):
    ...
    xentcli.errors.XentError: logits: the list is empty
    >>> parse_float_list("1,2,,3", "--logits")
    Traceback (most recent call last):
    ...
    xentcli.errors.XentError: --logits: item 2 is empty (two separators in a row): '1,2,,3'
    """
    items = split_list(text)
    if not items:
        raise XentError(f"{what}: the list is empty")
    values = []
    for position, item in enumerate(items):
        if not item:
            raise XentError(
                f"{what}: item {position} is empty (two separators in a row): {text.strip()!r}"
            )
        try:
            values.append(parse_float(item, what))
        except XentError:
            raise XentError(f"{what}: item {position} is not a number: {item!r}") from None
    return values


def parse_name_list(text: str, what: str = "classes") -> list[str]:
    """Parse a comma-separated list of names (spaces around names are dropped).

    >>> parse_name_list("cat, dog,bird")
    ['cat', 'dog', 'bird']
    """
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise XentError(f"{what}: empty name in {text!r}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise XentError(f"{what}: {duplicates[0]!r} appears twice")
    return names


def is_finite_or_neg_inf(value: float) -> bool:
    """True for a finite float or ``-inf`` (a masked class).

    >>> is_finite_or_neg_inf(float("-inf")), is_finite_or_neg_inf(float("inf"))
    (True, False)
    """
    return math.isfinite(value) or value == -math.inf
