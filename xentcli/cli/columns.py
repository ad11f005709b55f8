"""Which columns of a file hold what: options shared by ``xent batch`` and ``xent compute --from``.

One declaration of ``--delimiter``, ``--header/--no-header``, ``--label-column``,
``--logit-columns`` and ``--target-columns`` (:func:`column_options`, with the parameter
types of :mod:`xentcli.cli.params`), and one translation of their values into the
reader's :class:`~xentcli.batch.reader.ReadOptions` fields (:func:`column_fields`), so
that a row studied with ``xent compute --from FILE:LINE`` is read exactly as ``xent
batch`` read it. Nothing heavy is imported here (``xent --help`` stays fast).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any, TypeVar

import click

from xentcli.cli.params import COLUMNS, DELIMITER, Delimiter
from xentcli.cli.tools import BadInvocation

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option(
        "--delimiter",
        type=DELIMITER,
        metavar="CHAR",
        help="Field separator (default: tab for .tsv, comma otherwise; 'tab' works).",
    ),
    click.option(
        "--header/--no-header",
        default=None,
        help="Whether the first row is a header (default: detected).",
    ),
    click.option(
        "--label-column",
        metavar="NAME|INDEX",
        help="The label column (default: label, target, y or class, else the last).",
    ),
    click.option(
        "--logit-columns",
        type=COLUMNS,
        metavar="LIST",
        help="Logit columns: names, 0-based indices, ranges 1:11, globs 'logit_*' "
        "(default: every other column).",
    ),
    click.option(
        "--target-columns",
        type=COLUMNS,
        metavar="LIST",
        help="Soft-target columns (a probability per class) instead of a label.",
    ),
)

#: the parameter names :func:`column_options` adds, in order
COLUMN_PARAMETERS = ("delimiter", "header", "label_column", "logit_columns", "target_columns")


def column_options(command: F) -> F:
    """Add the column options to a click command (parameters :data:`COLUMN_PARAMETERS`)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def column_fields(
    delimiter: str | None,
    header: bool | None,
    label_column: str | None,
    logit_columns: list[str] | None,
    target_columns: list[str] | None,
) -> dict[str, Any]:
    """The :class:`~xentcli.batch.reader.ReadOptions` fields the column options set.

    >>> column_fields(None, None, "3", ["1:3"], None)["label_column"]
    3
    """
    if target_columns is not None and label_column is not None:
        raise BadInvocation("--target-columns and --label-column cannot be used together")
    label: str | int | None = label_column
    if label_column is not None and re.fullmatch(r"-?\d+", label_column.strip()):
        label = int(label_column)
    return {
        "delimiter": delimiter,
        "header": header,
        "label_column": label,
        "logit_columns": logit_columns,
        "target_columns": target_columns,
    }


def column_arguments(
    delimiter: str | None,
    header: bool | None,
    label_column: str | None,
    logit_columns: list[str] | None,
    target_columns: list[str] | None,
) -> str:
    """The column options as command-line text (for a command to copy), or "".

    >>> column_arguments("\\t", False, "y", ["logit_*"], None)
    " --delimiter tab --no-header --label-column y --logit-columns 'logit_*'"
    """
    names = {character: name for name, character in Delimiter.NAMED.items() if name != "\\t"}
    given = {
        "--delimiter": None if delimiter is None else names.get(delimiter, delimiter),
        "--header": None if header is not True else "",
        "--no-header": None if header is not False else "",
        "--label-column": label_column,
        "--logit-columns": None if logit_columns is None else ",".join(logit_columns),
        "--target-columns": None if target_columns is None else ",".join(target_columns),
    }
    return "".join(
        f" {option}" + (f" {shlex.quote(value)}" if value else "")
        for option, value in given.items()
        if value is not None
    )
