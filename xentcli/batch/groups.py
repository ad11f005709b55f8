"""Slices (``xent batch --group-by COLUMN``): every figure per value of a column.

Each group (a value of the column, as text) has its own
:class:`~xentcli.batch.accumulator.BatchAccumulator`, fed the group's rows of each chunk
with the kernel's and the metrics' per-row results already computed for the whole chunk
(nothing is scored twice). So a group's figures are exactly what ``xent batch`` reports on
a file of that group's rows alone (the same exact sums, the same bits whatever the
chunking), and the groups merge by name through ``--save-state``, ``xent merge`` and the
Dask engine. A group keeps no worst rows and no bootstrap; its loss quantiles come from
the sketch's buckets (within 1 %), never from kept values, so its memory is bounded.

At most :data:`MAX_GROUPS` groups: the row that brings one more is an error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.batch.reader import Chunk
from xentcli.errors import DataError, StateError

# The accumulator owns a GroupSet and makes (and reads back) its groups' accumulators: this
# module takes them as values and functions, so it imports neither the accumulator nor the
# state module (no import cycle).
Accumulator = Any  #: a xentcli.batch.accumulator.BatchAccumulator
Options = Any  #: its BatchOptions

#: the most groups a run may have (each holds about 1.5 MB of sums at most, and is a line
#: of the report); a column of more values is not a slicing of the rows but an id
MAX_GROUPS = 1000
_MAX_NAME = 1 << 16  #: longest group name read from a state


def _take(record: Any, index: npt.NDArray[np.intp], n: int) -> Any:
    """A copy of the dataclass *record* with every array of *n* rows cut to *index*."""
    changes = {
        f.name: value[index]
        for f in dataclasses.fields(record)
        if isinstance(value := getattr(record, f.name), np.ndarray)
        and value.ndim >= 1
        and value.shape[0] == n
    }
    return dataclasses.replace(record, **changes)


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """One group's name and its figures (a whole :class:`Summary` of its rows)."""

    name: str
    summary: Any  #: a xentcli.batch.accumulator.Summary

    #: keys of a Summary's JSON that describe the input, not the group's rows
    _LEFT_OUT = (
        "files",
        "worst",
        "skipped",
        "histogram",
        "scores",
        "scores_detected",
        "binary",
        "renormalize",
        "clip",
        "rows_renormalized",
        "targets_renormalized",
        "infinite_rows",
        "rows_skipped",
        "columns",
        "inferred",
        "group_by",
        "groups",
    )

    def to_json(self) -> dict[str, object]:
        """``{"group": NAME, ...}``: every figure of ``xent batch``'s JSON for the group."""
        data = self.summary.to_json()
        out: dict[str, object] = {"group": self.name}
        calibration = data.get("calibration")
        if isinstance(calibration, dict):
            out["ece"] = calibration.get("ece")
        out.update((k, v) for k, v in data.items() if k not in self._LEFT_OUT)
        return out


def group_options(options: Options) -> Options:
    """A group's options: the run's, without worst rows, bootstrap or groups of its own."""
    return dataclasses.replace(options, worst=0, bootstrap=0, group_by=None)


class GroupSet:
    """The accumulators of the groups of a run (inactive without ``--group-by``)."""

    def __init__(
        self,
        num_classes: int,
        options: Options = None,
        column: str | None = None,
        make: Callable[[int, Options], Accumulator] | None = None,
    ) -> None:
        self.k = int(num_classes)
        self.column = column
        self.options = None if options is None or column is None else group_options(options)
        #: makes a group's accumulator from (number of classes, the groups' options)
        self.make = make
        self.groups: dict[str, Accumulator] = {}
        #: groups read from a state, not yet made accumulators (see :meth:`load`)
        self.pending: list[tuple[str, object]] = []

    @property
    def active(self) -> bool:
        return self.column is not None

    def _new(self, name: str) -> Accumulator:
        assert self.make is not None
        accumulator = self.make(self.k, self.options)
        self.groups[name] = accumulator
        return accumulator

    def add(self, chunk: Chunk, prepared: Any) -> None:
        """Fold the rows of *chunk* (whose kernel and metric rows are *prepared*, the
        accumulator's ``Prepared``) into their groups; a DataError names the row that
        brings one group too many."""
        if chunk.groups is None:
            raise DataError(chunk.path, None, None, f"no group column ({self.column!r})")
        n = len(chunk.lines)
        names, first, inverse = np.unique(chunk.groups, return_index=True, return_inverse=True)
        new = [j for j in np.argsort(first, kind="stable").tolist() if names[j] not in self.groups]
        for j in new:
            if len(self.groups) >= MAX_GROUPS:
                raise DataError(
                    chunk.path,
                    int(chunk.lines[first[j]]),
                    self.column,
                    f"more than {MAX_GROUPS} groups in the --group-by column (the limit: "
                    "a column of that many values is an id, not a slice)",
                    str(names[j]),
                    unit=chunk.unit,
                )
            self._new(str(names[j]))
        counted = prepared.rows.counted
        counted_rows = np.flatnonzero(counted)
        # The metric rows are the counted rows only: their group is the counted rows' group.
        counted_inverse = inverse[counted_rows]
        for j, name in enumerate(names.tolist()):
            index = np.flatnonzero(inverse == j)
            in_metrics = np.flatnonzero(counted_inverse == j)
            sub = Chunk(
                chunk.path,
                chunk.logits[index],
                None if chunk.labels is None else chunk.labels[index],
                None if chunk.targets is None else chunk.targets[index],
                chunk.lines[index],
                prepared=dataclasses.replace(
                    prepared,
                    rows=_take(prepared.rows, index, n),
                    metrics=_take(prepared.metrics, in_metrics, len(counted_rows)),
                ),
                unit=chunk.unit,
                weights=None if chunk.weights is None else chunk.weights[index],
            )
            self.groups[name].add(sub)

    def merge(self, other: GroupSet) -> None:
        """Add *other*'s groups, by name (StateError past the limit or for another column)."""
        if other.column != self.column:
            raise StateError(f"group column: {self.column!r} here, {other.column!r} in the other")
        for name, accumulator in other.groups.items():
            if name in self.groups:
                self.groups[name].merge(accumulator)
            elif len(self.groups) >= MAX_GROUPS:
                raise StateError(f"more than {MAX_GROUPS} groups once merged (the limit)")
            else:
                self.groups[name] = accumulator

    def to_state(self) -> dict[str, Any] | None:
        """The groups' states by name (None without --group-by)."""
        if not self.active:
            return None
        return {
            "column": self.column,
            "groups": [[name, self.groups[name].to_state()] for name in sorted(self.groups)],
        }

    @classmethod
    def from_state(cls, data: object, num_classes: int, where: str = "groups") -> GroupSet:
        """The groups *data* (from :meth:`to_state`) describes, its shape checked; each
        group's own state is checked and read by :meth:`load`."""
        if data is None:
            return cls(num_classes)
        fields = core.need_dict(data, where, ("column", "groups"))
        column = str(core.need(fields["column"], str, f"{where}.column"))
        items = core.need_list(fields["groups"], f"{where}.groups", max_size=MAX_GROUPS)
        out = cls(num_classes, column=column)
        names: set[str] = set()
        for n, item in enumerate(items):
            pair = core.need_list(item, f"{where}.groups[{n}]", 2)
            name = str(core.need(pair[0], str, f"{where}.groups[{n}][0]"))
            if name in names or len(name) > _MAX_NAME or len(column) > _MAX_NAME:
                raise StateError(f"{where}.groups[{n}][0]: repeated or too long")
            names.add(name)
            out.pending.append((name, pair[1]))
        return out

    def load(
        self, fresh: GroupSet, read: Callable[[object], Accumulator], where: str = "groups"
    ) -> None:
        """Read the pending groups' states with *read* (the state module's reader); take
        the run's options and the maker of *fresh* (the set the run's options made)."""
        if self.column != fresh.column:
            raise StateError(f"components.{where}: not the groups of options.group_by")
        self.options, self.make = fresh.options, fresh.make
        for n, (name, data) in enumerate(self.pending):
            try:
                accumulator = read(data)
            except StateError as error:
                raise StateError(f"components.{where}.groups[{n}]: {error}") from None
            if accumulator.k != self.k:
                raise StateError(f"components.{where}.groups[{n}]: another number of classes")
            if dataclasses.replace(accumulator.options, worst=0) != self.options:
                raise StateError(f"components.{where}.groups[{n}]: other options than the run's")
            self.groups[name] = accumulator
        self.pending = []

    def summary(self) -> tuple[GroupSummary, ...] | None:
        """Every group's figures, by name (None without --group-by)."""
        if not self.active:
            return None
        return tuple(
            GroupSummary(name, self.groups[name].summary()) for name in sorted(self.groups)
        )
