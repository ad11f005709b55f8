"""The syntax of a table's text: what a line, a field, a number and an integer are.

A number is xent's one number syntax (:func:`xentcli.text.is_number`, the options' too).

Shared by header detection (:mod:`xentcli.batch._columns`), the precise reader
(:mod:`xentcli.batch._precise`) and the fast path's checks; docs/input-formats.md describes it.
"""

from __future__ import annotations

import contextlib
import csv
import re

from xentcli.errors import DataError
from xentcli.text import is_number

__all__ = ["BLANK", "INTEGER", "decode", "is_blank", "is_number", "split_fields"]

INTEGER = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
BLANK = b" \t\r\n"


def is_blank(raw: bytes) -> bool:
    """True for a line of only spaces, tabs and line ends (not a row)."""
    return not raw.strip(BLANK)


def decode(raw: bytes, path: str, line: int, delimiter: str) -> str:
    """Decode one line, or name the field holding bytes that are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="surrogateescape")
    column = None
    with contextlib.suppress(csv.Error):
        for number, field in enumerate(next(csv.reader([text], delimiter=delimiter)), 1):
            if any("\udc80" <= char <= "\udcff" for char in field):
                column = number
                break
    shown = raw.decode("utf-8", errors="backslashreplace")
    raise DataError(path, line, column, "not valid UTF-8", shown)


def split_fields(text: str, delimiter: str, path: str, line: int) -> list[str]:
    """The fields of one line, with RFC 4180 quotes (a field cannot span lines)."""
    if '"' not in text:
        return text.split(delimiter)
    # A lone CR is an ordinary character here, but the csv module refuses one outside
    # quotes: stand it in by a character the line does not hold, and put it back.
    stand_in = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
    masked = text.replace("\r", stand_in)
    try:
        fields = next(csv.reader([masked], delimiter=delimiter, strict=True))
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            raise DataError(
                path, line, None, "unterminated quote (a field cannot span lines)", text
            ) from None
        # Like pyarrow, text after a closing quote is kept ('"2"x' reads as '2x').
        fields = next(csv.reader([masked], delimiter=delimiter, strict=False))
    return [field.replace(stand_in, "\r") for field in fields]
