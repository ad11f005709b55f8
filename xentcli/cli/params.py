"""The option layer: every option value is parsed and checked once, here, for every command.

Click parameter types (a number with bounds, a list of numbers, a list of names, a
delimiter, a list of columns) raise click's usage error, so that the same bad value gives
the same one line ``Error: Invalid value for '--OPTION': ...`` and exit 2 in every
command (docs/errors.md). :func:`loss_options` adds the options of the loss (weights,
ignore index, label smoothing, temperature, base) to a command and hands it one
:class:`~xentcli.core.LossOptions`.

>>> TEMPERATURE.convert("0.5", None, None)
0.5
>>> NUMBERS.convert("[1.2, 2.3, 0.8]", None, None)
[1.2, 2.3, 0.8]
>>> NAMES.convert("cat, dog,bird", None, None)
['cat', 'dog', 'bird']
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

import click

from xentcli.text import is_number

# A comma or semicolon (with spaces around it), or spaces alone: "1,,3" keeps its empty
# item, so that it is reported rather than silently dropped.
_SEPARATOR = re.compile(r"\s*[,;]\s*|\s+")
BASES = ("e", "2", "10")
F = TypeVar("F", bound=Callable[..., Any])


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


class Number(click.ParamType):
    """A float in xent's number syntax (:func:`xentcli.text.is_number`), within bounds.

    *low*/*high* are the bounds (None: none), *low_open*/*high_open* whether they are
    excluded; *finite* refuses nan and the infinities. *what* describes the range in
    messages (``"a finite number > 0"``).
    """

    name = "number"

    def __init__(
        self,
        what: str = "a number",
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        finite: bool = False,
    ) -> None:
        self.what = what
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        self.finite = finite

    def problem(self, text: str) -> str | None:
        """What is wrong with *text* (None when it is a number in range)."""
        if not is_number(text):
            return "is not a number"
        value = float(text)
        in_range = not (self.finite and not math.isfinite(value))
        if in_range and self.low is not None:
            in_range = value > self.low if self.low_open else value >= self.low
        if in_range and self.high is not None:
            in_range = value < self.high if self.high_open else value <= self.high
        return None if in_range else f"is not {self.what}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        problem = self.problem(text)
        if problem is not None:
            self.fail(f"{text!r} {problem}.", param, ctx)
        return float(text)


class NumberList(click.ParamType):
    """A list of numbers (``1,2,3``, ``"1 2 3"``, ``[1, 2, 3]``), each a :class:`Number`.

    The value is a :class:`Numbers`: the floats, with the items as written.
    """

    name = "list"

    def __init__(self, item: Number | None = None) -> None:
        self.item = item if item is not None else Number()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Numbers):
            return value
        items = split_list(str(value))
        if not items:
            self.fail("the list is empty.", param, ctx)
        for position, item in enumerate(items):
            if not item:
                self.fail(
                    f"item {position} is empty (two separators in a row): {str(value).strip()!r}.",
                    param,
                    ctx,
                )
            problem = self.item.problem(item)
            if problem is not None:
                self.fail(f"item {position} ({item!r}) {problem}.", param, ctx)
        return Numbers([float(item) for item in items], items)


class Numbers(list[float]):
    """A list of floats that remembers how each was written (``1e999`` became inf)."""

    def __init__(self, values: list[float], written: list[str]) -> None:
        super().__init__(values)
        self.written = written


class NameList(click.ParamType):
    """Comma-separated names (class names): none empty, none twice."""

    name = "names"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        names = [name.strip() for name in str(value).split(",")]
        if any(not name for name in names):
            self.fail(f"an empty name in {value!r}.", param, ctx)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            self.fail(f"{duplicates[0]!r} appears twice.", param, ctx)
        return names


class ColumnList(click.ParamType):
    """Comma-separated column choices (names, indices, ranges, globs), none empty."""

    name = "columns"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        items = [item.strip() for item in str(value).split(",")]
        if any(not item for item in items):
            self.fail(f"an empty item in {value!r}.", param, ctx)
        return items


class Delimiter(click.ParamType):
    """One character, or its name: tab, comma, semicolon, space, pipe."""

    name = "char"
    NAMED: ClassVar[dict[str, str]] = {
        "tab": "\t",
        "\\t": "\t",
        "comma": ",",
        "semicolon": ";",
        "space": " ",
        "pipe": "|",
    }

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        character = self.NAMED.get(str(value).lower(), str(value))
        if len(character) != 1 or character in '"\r\n':
            self.fail(
                f"{value!r} is not one character (or tab, comma, semicolon, space, pipe).",
                param,
                ctx,
            )
        return character


TEMPERATURE = Number("a finite number > 0", low=0.0, low_open=True, finite=True)
#: [0, 1], as PyTorch's cross_entropy accepts
LABEL_SMOOTHING = Number("a number in [0, 1]", low=0.0, high=1.0)
WEIGHTS = NumberList(Number("a finite number >= 0", low=0.0, finite=True))
#: --pos-weight of xent compute --sigmoid and xent batch --sigmoid: one type (WEIGHTS, as
#: --weights: a negative weight makes a negative loss) and one help
POS_WEIGHT_HELP = (
    "With --sigmoid: the weight of each label's positive term (PyTorch's pos_weight),"
    " each a finite number >= 0."
)
NUMBERS = NumberList()
#: batch --sum-tolerance and --clip (probabilities as scores)
SUM_TOLERANCE = Number("a finite number >= 0", low=0.0, finite=True)
CLIP = Number("a number in (0, 0.5]", low=0.0, low_open=True, high=0.5)
NAMES = NameList()
COLUMNS = ColumnList()
DELIMITER = Delimiter()
BASE = click.Choice(BASES)


def loss_options(*, ignore_index: bool) -> Callable[[F], F]:
    """Add the loss's options to a command, which receives them as ``loss`` (a LossOptions).

    *ignore_index*: whether the command has ``--ignore-index`` (a batch of rows does; one
    sample does not).
    """
    options = [
        click.option(
            "--weights",
            type=WEIGHTS,
            metavar="W0,W1,...",
            help="Class weights, one per class (PyTorch's weight: the mean divides by the"
            " counted rows' weights; with soft targets, by the number of rows).",
        ),
        click.option(
            "--label-smoothing",
            type=LABEL_SMOOTHING,
            default="0",
            show_default=True,
            metavar="EPS",
            help="Mix the target with the uniform one: (1-EPS)p + EPS/K, EPS in [0, 1].",
        ),
        click.option(
            "--temperature",
            type=TEMPERATURE,
            default="1",
            show_default=True,
            metavar="T",
            help="Divide the logits by T > 0 first.",
        ),
        click.option(
            "--base",
            type=BASE,
            default="e",
            show_default=True,
            help="Logarithm base of the loss: e (nats), 2 (bits), 10 (bans).",
        ),
        click.option(
            "--exact",
            is_flag=True,
            help="Correctly rounded: every loss and probability the float64 nearest its"
            " exact value, the same bits on every machine (slower; see docs/accuracy.md).",
        ),
    ]
    if ignore_index:
        options.insert(
            1,
            click.option(
                "--ignore-index", type=int, metavar="INT", help="Rows with this label do not count."
            ),
        )

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_loss(*args: Any, **kwargs: Any) -> Any:
            from xentcli.core import LossOptions

            weights = kwargs.pop("weights")
            kwargs["loss"] = LossOptions(
                weights=None if weights is None else tuple(weights),
                ignore_index=kwargs.pop("ignore_index", None),
                label_smoothing=kwargs.pop("label_smoothing"),
                temperature=kwargs.pop("temperature"),
                base=kwargs.pop("base"),
                exact=kwargs.pop("exact"),
            )
            return command(*args, **kwargs)

        wrapped: Any = with_loss
        for option in reversed(options):
            wrapped = option(wrapped)
        return cast(F, wrapped)

    return decorate


#: ``--format`` of the commands that print a report (batch, compare, merge)
REPORT_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def bootstrap_options(what: str, seed_help: str) -> Callable[[F], F]:
    """``--bootstrap N`` (replicates, up to 10,000; 0: none) and ``--seed S`` of a
    command's Poisson bootstrap; *what* the intervals are of, *seed_help* what a row's
    weights depend on."""
    replicates = click.option(
        "--bootstrap",
        type=click.IntRange(min=0, max=10_000),
        default=0,
        show_default=True,
        metavar="N",
        help=f"Also percentile intervals of {what} from N Poisson bootstrap replicates "
        "(the same bits whatever the chunking; 200 is a good start).",
    )
    seed = click.option(
        "--seed",
        type=click.IntRange(min=0, max=2**64 - 1),
        default=0,
        show_default=True,
        metavar="S",
        help=f"Seed of the bootstrap ({seed_help}).",
    )

    def decorate(command: F) -> F:
        return replicates(seed(command))

    return decorate
