"""The saved state of a run (``--save-state``): JSON data, versioned, checked field by field.

A state holds everything a :class:`~xentcli.batch.accumulator.Summary` is made from, so
that states of separate runs merge (``xent merge``, the Dask engine) into the report of
one run over all their inputs, to the same bits. docs/state-format.md describes it.

A state is data, never code: it is parsed with :mod:`json` (no pickle), NaN and
infinite number literals and repeated keys are refused, and every field's type, range
and size is checked before anything is built from it (sizes against the number of
classes, itself bounded), so a damaged or hostile file is a :class:`StateError`, never
a crash, a hang or a huge allocation.

This module turns an accumulator into that data and back
(:meth:`BatchAccumulator.to_state <xentcli.batch.accumulator.BatchAccumulator.to_state>` and
``from_state`` call it); :mod:`xentcli.batch.state_file` holds the text and file forms. It
imports only the records it shares with the accumulator (:mod:`xentcli.batch._records`),
never the accumulator: the accumulator's class is handed in.

>>> import numpy as np
>>> from xentcli.batch.accumulator import BatchAccumulator
>>> acc = BatchAccumulator(3)
>>> acc.update(np.array([[1.2, 2.3, 0.8]]), np.array([1]))
>>> again = accumulator_from_state(parse(json.dumps(acc.to_state())), BatchAccumulator)
>>> again.summary().loss == acc.summary().loss
True
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from xentcli import core
from xentcli._version import __version__
from xentcli.batch._records import (
    STATE_COMPONENTS,
    BatchOptions,
    FileRecord,
    StateHolder,
    WorstRow,
)
from xentcli.errors import DataError, StateError, XentError

if TYPE_CHECKING:
    from collections.abc import Callable

#: the accumulator's class, handed in by its ``from_state`` (this module does not import it)
_A = TypeVar("_A", bound=StateHolder)

FORMAT = "xent-state"
#: the state format's version; a state of another version does not merge
VERSION = 1
#: the largest state file read (bytes): above any real state (a million classes take
#: about 80 MB), it bounds what a hostile file can make the parser allocate (at worst
#: about ten times its size, for a file of nothing but short numbers)
MAX_STATE_BYTES = 128 << 20
MAX_CLASSES = 1 << 24
MAX_FILES = 1 << 20
MAX_WORST = 1 << 20
MAX_TEXT = 1 << 16  #: longest path, class name or error message

_TOP_KEYS = (
    "format",
    "version",
    "xent",
    "num_classes",
    "options",
    "soft_targets",
    "class_rows",
    "class_correct",
    "components",
    "files",
    "worst",
)


# --------------------------------------------------------------------------- writing
def accumulator_to_state(acc: StateHolder) -> dict[str, Any]:
    """*acc*, a :class:`~xentcli.batch.accumulator.BatchAccumulator` (its current file
    finished), as JSON-able data."""
    out = {
        "format": FORMAT,
        "version": VERSION,
        "xent": __version__,
        "num_classes": acc.k,
        "options": _options_to_state(acc.options),
        "soft_targets": acc.soft_targets,
        "class_rows": acc.class_rows.tolist(),
        "class_correct": acc.class_correct.tolist(),
        "components": {
            key: getattr(acc, attribute).to_state() for key, attribute in STATE_COMPONENTS.items()
        },
        "files": [_file_to_state(record) for record in acc.files],
        # Optional (states written before it have none): how the scores were read.
        "inputs": {
            "rows_renormalized": acc.rows_renormalized,
            "targets_renormalized": acc.targets_renormalized,
            "rows_infinite": acc.rows_infinite,
            "infinite_rows": [[path, line] for path, line in acc.infinite_rows],
            # Optional within "inputs": what the first file's columns were taken as.
            "columns": acc.columns,
        },
        "worst": [
            {
                "file": index,
                "line": line,
                "label": row.label,
                "predicted": row.predicted,
                "probability": core.hex_float(row.probability),
                "loss": core.hex_float(loss),
                "unit": row.unit,
            }
            for loss, index, line, row in sorted(acc._worst_items(), key=_rank, reverse=True)
        ],
    }
    if acc.class_errors is not None:
        # --exact: the bounds that make the merged means certain (docs/state-format.md)
        out["exact"] = {"class_errors": acc.class_errors.to_state()}
    return out


def _rank(item: tuple[float, int, int, Any]) -> tuple[float, int, int]:
    loss, index, line, _row = item
    return loss, -index, -line


def _options_to_state(options: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if isinstance(value, (list, tuple)):
            value = list(value)
        out[field.name] = value
    return out


def _file_to_state(record: FileRecord) -> dict[str, Any]:
    out = {
        "path": record.path,
        "part": None if record.part is None else list(record.part),
        "newlines": record.newlines,
        "rows": record.rows,
        "counted": record.counted,
        "correct": record.correct,
        "ignored": record.ignored,
        "skipped": record.skipped,
        "sum": record.total.to_state(),
        "weight": record.weight.to_state(),
        "errors": [
            {"line": e.line, "column": e.column, "reason": _error_text(e), "unit": e.unit}
            for e in record.errors
        ],
        **(
            {}
            if record.mass is None or record.hits is None
            else {"sample": {"mass": record.mass.to_state(), "hits": record.hits.to_state()}}
        ),
    }
    if record.loss_error is not None:
        out["loss_error"] = record.loss_error.to_state()
    return out


def _error_text(error: DataError) -> str:
    """The error's reason with its value, as its message shows them."""
    return str(DataError("", None, None, error.reason, error.value))[2:]


# --------------------------------------------------------------------------- reading
def _no_constant(name: str) -> None:
    raise StateError(f"{name} is not allowed in a state (floats are hexadecimal text)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StateError(f"number out of the float range: {text[:40]}")
    return value


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StateError(f"field {key[:40]!r} appears twice")
        out[key] = value
    return out


def parse(text: str | bytes) -> Any:
    """JSON *text* parsed strictly (no NaN, no repeated keys); StateError if it is not JSON."""
    if len(text) > MAX_STATE_BYTES:
        raise StateError(f"larger than {MAX_STATE_BYTES >> 20} MiB")
    try:
        return json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite,
            object_pairs_hook=_no_repeats,
        )
    except StateError:
        raise
    except RecursionError:
        raise StateError("not a state: nested too deeply") from None
    except UnicodeDecodeError:
        raise StateError("not a state: not UTF-8 text") from None
    except ValueError as error:  # json.JSONDecodeError, or an integer literal too long
        reason = str(error).split(":")[0] if isinstance(error, json.JSONDecodeError) else error
        raise StateError(f"not a state (truncated or damaged JSON: {reason})") from None


def accumulator_from_state(data: Any, make: Callable[[int, BatchOptions], _A]) -> _A:
    """An accumulator from :func:`accumulator_to_state`'s data, every field checked first.

    *make* is the accumulator's class
    (:class:`~xentcli.batch.accumulator.BatchAccumulator`): called with the number of
    classes and the options, it returns the empty accumulator this fills.
    """
    top = core.need(data, dict, "state")
    if top.get("format") != FORMAT:
        raise StateError("not a xent state (no 'format': 'xent-state')")
    version = top.get("version")
    if version != VERSION:
        raise StateError(f"state format version {version!r}; this xent reads version {VERSION}")
    inputs = data.get("inputs")
    exact = data.get("exact")
    optional = ("inputs", "exact")
    top = core.need_dict({k: v for k, v in data.items() if k not in optional}, "state", _TOP_KEYS)
    core.need(top["xent"], str, "xent")
    k = core.need_int(top["num_classes"], "num_classes", 1, MAX_CLASSES)
    options = _options_from_state(top["options"], k)
    try:
        acc = make(k, options)
    except XentError as error:
        raise StateError(f"options: {error}") from None
    soft = top["soft_targets"]
    if soft is not None:
        core.need(soft, bool, "soft_targets")
    acc.soft_targets = soft
    acc.class_rows = _counts(top["class_rows"], "class_rows", k)
    acc.class_correct = _counts(top["class_correct"], "class_correct", k)
    if (acc.class_correct > acc.class_rows).any():
        raise StateError("class_correct: more correct rows than rows in a class")
    # "sample" and "groups" are optional: states written before them have none.
    names = tuple(STATE_COMPONENTS)
    if isinstance(top["components"], dict):
        names = tuple(n for n in names if n not in ("sample", "groups") or n in top["components"])
    components = core.need_dict(top["components"], "components", names)
    components.setdefault("sample", None)
    components.setdefault("groups", None)
    fresh_groups = acc.groups  # made from the options: the groups' maker and options
    for key, attribute in STATE_COMPONENTS.items():
        kind = type(getattr(acc, attribute))
        setattr(acc, attribute, kind.from_state(components[key], k, f"components.{key}"))
    weighted = options.sample_weight_column is not None
    if acc.sample.weighted != weighted or acc.metrics.options.weighted != weighted:
        raise StateError("components: the sample weights do not match options.sample_weight_column")
    acc.groups.load(fresh_groups, lambda group: accumulator_from_state(group, make))
    if options.exact != (exact is not None):
        raise StateError(
            "exact: the bounds of --exact are missing (a state of an older xent: run xent"
            " batch --exact again)"
            if options.exact
            else "exact: present, but options.exact is false"
        )
    if exact is not None:
        fields = core.need_dict(exact, "exact", ("class_errors",))
        acc.class_errors = core.GroupedExactSum.from_state(
            fields["class_errors"], k, "exact.class_errors"
        )
    files = core.need_list(top["files"], "files", max_size=MAX_FILES)
    acc.files = [_file_from_state(item, f"files[{n}]", FileRecord) for n, item in enumerate(files)]
    if any((record.loss_error is None) == options.exact for record in acc.files):
        raise StateError("files: each has a loss_error exactly when options.exact is true")
    bounds = [acc.class_errors.exact(c) for c in range(k)] if acc.class_errors else []
    bounds += [r.loss_error.exact() for r in acc.files if r.loss_error is not None]
    if any(bound < 0 for bound in bounds):
        raise StateError("exact: an error bound is negative")
    acc._file_index = len(acc.files) - 1
    if sum(record.counted for record in acc.files) != int(acc.class_rows.sum()):
        raise StateError("files: their counted rows do not add up to class_rows")
    known = [record.correct for record in acc.files if record.correct is not None]
    if len(known) == len(acc.files) and sum(known) != int(acc.class_correct.sum()):
        raise StateError("files: their correct rows do not add up to class_correct")
    worst = core.need_list(top["worst"], "worst", max_size=options.worst)
    acc._worst = [_worst_from_state(item, f"worst[{n}]", acc) for n, item in enumerate(worst)]
    heapq.heapify(acc._worst)
    if inputs is not None:
        _inputs_from_state(inputs, acc)
    return acc


def _inputs_from_state(data: Any, acc: StateHolder) -> None:
    keys: tuple[str, ...] = (
        "rows_renormalized",
        "targets_renormalized",
        "rows_infinite",
        "infinite_rows",
    )
    if isinstance(data, dict) and "columns" in data:  # optional (later states)
        keys += ("columns",)
        acc.columns = _columns_from_state(data["columns"])
    fields = core.need_dict(data, "inputs", keys)
    acc.rows_renormalized = core.need_int(fields["rows_renormalized"], "inputs.rows_renormalized")
    acc.targets_renormalized = core.need_int(
        fields["targets_renormalized"], "inputs.targets_renormalized"
    )
    acc.rows_infinite = core.need_int(fields["rows_infinite"], "inputs.rows_infinite")
    rows = core.need_list(fields["infinite_rows"], "inputs.infinite_rows", max_size=MAX_WORST)
    acc.infinite_rows = []
    for n, item in enumerate(rows):
        pair = core.need_list(item, f"inputs.infinite_rows[{n}]", 2)
        where = f"inputs.infinite_rows[{n}]"
        acc.infinite_rows.append((_text(pair[0], where), core.need_int(pair[1], where)))


#: the fields of ``inputs.columns`` (:func:`xentcli.batch.reader.inferred_columns`)
_COLUMN_FIELDS = ("label_column", "label_guessed", "index_column", "class_names_from_header")
_GUESSES = (None, "by its name", "the last column")


def _columns_from_state(data: Any) -> dict[str, object] | None:
    """``inputs.columns``: null, or what the first file's columns were taken as."""
    if data is None:
        return None
    where = "inputs.columns"
    fields = core.need_dict(data, where, _COLUMN_FIELDS)
    names = {}
    for name in ("label_column", "index_column"):
        value = fields[name]
        names[name] = None if value is None else _text(value, f"{where}.{name}")
    if fields["label_guessed"] not in _GUESSES:
        raise StateError(
            f"{where}.label_guessed: not one of 'by its name', 'the last column', null"
        )
    return {  # in the order of the report's JSON
        "label_column": names["label_column"],
        "label_guessed": fields["label_guessed"],
        "index_column": names["index_column"],
        "class_names_from_header": core.need(
            fields["class_names_from_header"], bool, f"{where}.class_names_from_header"
        ),
    }


def _text(data: Any, where: str) -> str:
    text = core.need(data, str, where)
    if len(text) > MAX_TEXT:
        raise StateError(f"{where}: longer than {MAX_TEXT} characters")
    return str(text)


def _counts(data: Any, where: str, k: int) -> Any:
    items = core.need_list(data, where, k)
    return np.array([core.need_int(c, f"{where}[{i}]") for i, c in enumerate(items)], np.int64)


def _number(data: Any, where: str) -> float:
    if isinstance(data, bool) or not isinstance(data, (int, float)):
        raise StateError(f"{where}: expected a number, got {type(data).__name__}")
    return float(data)


def _options_from_state(data: Any, k: int) -> Any:
    """BatchOptions from the state, each known option checked; an option this xent does
    not know is refused (a state from a newer xent)."""
    names = tuple(field.name for field in dataclasses.fields(BatchOptions))
    fields = core.need_dict(data, "options", names)
    out: dict[str, Any] = {}
    for name in names:
        value = fields[name]
        where = f"options.{name}"
        if name == "weights":
            if value is not None:
                items = core.need_list(value, where, k)
                value = tuple(_number(w, f"{where}[{i}]") for i, w in enumerate(items))
                if not all(math.isfinite(w) and w >= 0 for w in value):
                    raise StateError(f"{where}: a weight must be finite and >= 0")
        elif name == "class_names":
            if value is not None:
                items = core.need_list(value, where, k)
                value = tuple(_text(c, f"{where}[{i}]") for i, c in enumerate(items))
        elif name == "ignore_index":
            if value is not None:
                value = core.need_int(value, where, -(1 << 63), (1 << 63) - 1)
        elif name == "label_smoothing":
            value = _number(value, where)
            if not 0 <= value <= 1:
                raise StateError(f"{where}: must be in [0, 1], got {value!r}")
        elif name == "temperature":
            value = _number(value, where)
            if not (value > 0 and math.isfinite(value)):
                raise StateError(f"{where}: must be a finite number > 0, got {value!r}")
        elif name in ("base", "reduction"):
            value = _text(value, where)
        elif name == "worst":
            value = core.need_int(value, where, 0, MAX_WORST)
        else:  # an option added since: JSON scalars or lists of them
            value = _plain(value, where)
        out[name] = value
    return BatchOptions(**out)


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _text(value, where)
    items = core.need_list(value, where, max_size=MAX_CLASSES)
    return tuple(_plain(item, f"{where}[{i}]") for i, item in enumerate(items))


_FILE_KEYS = (
    "path",
    "part",
    "newlines",
    "rows",
    "counted",
    "ignored",
    "skipped",
    "sum",
    "weight",
    "errors",
)


def _file_from_state(data: Any, where: str, record_type: type[FileRecord]) -> FileRecord:
    optional = ("correct", "sample", "loss_error")  # older states have none; exact only
    keys = _FILE_KEYS + tuple(k for k in optional if isinstance(data, dict) and k in data)
    fields = core.need_dict(data, where, keys)
    path = _text(fields["path"], f"{where}.path")
    part = None
    if fields["part"] is not None:
        pair = core.need_list(fields["part"], f"{where}.part", 2)
        start = core.need_int(pair[0], f"{where}.part[0]")
        part = (start, core.need_int(pair[1], f"{where}.part[1]", start))
    rows = core.need_int(fields["rows"], f"{where}.rows")
    counted = core.need_int(fields["counted"], f"{where}.counted")
    ignored = core.need_int(fields["ignored"], f"{where}.ignored")
    if counted + ignored != rows:
        raise StateError(f"{where}: counted + ignored is not rows")
    correct = fields.get("correct")
    if correct is not None:
        correct = core.need_int(correct, f"{where}.correct", 0, counted)
    errors = []
    for n, item in enumerate(core.need_list(fields["errors"], f"{where}.errors", max_size=5)):
        error = core.need_dict(item, f"{where}.errors[{n}]")
        keys = (
            ("line", "column", "reason", "unit")
            if "unit" in error
            else ("line", "column", "reason")
        )
        error = core.need_dict(error, f"{where}.errors[{n}]", keys)
        line, column = error["line"], error["column"]
        unit = error.get("unit", "line")  # optional: states written before it say lines
        if unit not in ("line", "row"):
            raise StateError(f"{where}.errors[{n}].unit: must be 'line' or 'row'")
        if line is not None:
            line = core.need_int(line, f"{where}.errors[{n}].line", -(1 << 62))
        if isinstance(column, str):  # a column's name (Parquet, Arrow, JSON Lines)
            column = _text(column, f"{where}.errors[{n}].column")
        elif column is not None:
            column = core.need_int(column, f"{where}.errors[{n}].column", 1)
        reason = _text(error["reason"], f"{where}.errors[{n}].reason")
        errors.append(DataError(path, line, column, reason, unit=unit))
    mass = hits = None
    if fields.get("sample") is not None:
        sample = core.need_dict(fields["sample"], f"{where}.sample", ("mass", "hits"))
        mass = core.ExactSum.from_state(sample["mass"], f"{where}.sample.mass")
        hits = core.ExactSum.from_state(sample["hits"], f"{where}.sample.hits")
    return record_type(
        mass=mass,
        hits=hits,
        path=path,
        total=core.ExactSum.from_state(fields["sum"], f"{where}.sum"),
        weight=core.ExactSum.from_state(fields["weight"], f"{where}.weight"),
        rows=rows,
        counted=counted,
        correct=correct,
        ignored=ignored,
        skipped=core.need_int(fields["skipped"], f"{where}.skipped"),
        errors=errors,
        part=part,
        newlines=core.need_int(fields["newlines"], f"{where}.newlines"),
        loss_error=(
            core.ExactSum.from_state(fields["loss_error"], f"{where}.loss_error")
            if "loss_error" in fields
            else None
        ),
    )


def _worst_from_state(data: Any, where: str, acc: StateHolder) -> Any:
    keys = ("file", "line", "label", "predicted", "probability", "loss", "unit")
    fields = core.need_dict(data, where, keys)
    index = core.need_int(fields["file"], f"{where}.file", 0, len(acc.files) - 1)
    line = core.need_int(fields["line"], f"{where}.line", -(1 << 62))
    label = _class(fields["label"], f"{where}.label", acc)
    predicted = _class(fields["predicted"], f"{where}.predicted", acc)
    probability = core.need_hex_float(fields["probability"], f"{where}.probability", low=0.0)
    if probability > 1:
        raise StateError(f"{where}.probability: must be <= 1")
    loss = core.need_hex_float(fields["loss"], f"{where}.loss", low=0.0)
    unit = fields["unit"]
    if unit not in ("line", "row"):
        raise StateError(f"{where}.unit: must be 'line' or 'row'")
    row = WorstRow(acc.files[index].path, line, label, predicted, probability, loss, unit)
    return (loss, -index, -line, row)


def _class(data: Any, where: str, acc: StateHolder) -> int | str:
    if isinstance(data, str) and acc.options.class_names is not None:
        if data not in acc.class_names:
            raise StateError(f"{where}: {data[:40]!r} is not a class name")
        return data
    return core.need_int(data, where, 0, acc.k - 1)


# --------------------------------------------------------------------------- merging
def check_compatible(mine: StateHolder, theirs: StateHolder) -> None:
    """StateError naming the first difference that keeps two states from merging."""
    if mine.k != theirs.k:
        raise StateError(f"number of classes: {mine.k} here, {theirs.k} in the other state")
    a, b = _options_to_state(mine.options), _options_to_state(theirs.options)
    for name in a:
        if a[name] != b[name]:
            raise StateError(
                f"option {name}: {_show(a[name])} here, {_show(b[name])} in the other state"
            )
    if None not in (mine.soft_targets, theirs.soft_targets) and (
        mine.soft_targets != theirs.soft_targets
    ):
        kinds = {True: "soft targets", False: "labels"}
        raise StateError(
            f"kind of scores: {kinds[bool(mine.soft_targets)]} here, "
            f"{kinds[bool(theirs.soft_targets)]} in the other state"
        )


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
