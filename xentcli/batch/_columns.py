"""The first line of a table: delimiter, header, and which columns hold what.

From the first non-blank line and the :class:`~xentcli.batch._types.ReadOptions` this decides
the delimiter (when not given), whether the line is a header, and the columns of the
logits, the label or the targets (names, indices, ranges and globs; the default label
column), as a :class:`Layout`. Every error is file-level (no row is read yet).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xentcli.batch._syntax import decode, is_number, split_fields
from xentcli.batch._types import ReadOptions
from xentcli.errors import ColumnError, ColumnRoleError, DataError
from xentcli.text import plural

#: names of a label column, in order of preference (compared without case)
LABEL_NAMES = (
    "label",
    "labels",
    "target",
    "targets",
    "y",
    "y_true",
    "true_label",
    "true_labels",
    "gold",
    "gold_label",
    "class",
    "true_class",
    "ground_truth",
    "truth",
    "gt",
    "y_test",
)
_LABEL_NAMES = LABEL_NAMES
#: header names pandas gives its index column (``df.to_csv()``), left out of the scores
INDEX_NAMES = ("", "Unnamed: 0")
#: header names that say a column is not a score, by what it is (compared without case):
#: a score column taken from the header (no ``--logit-columns``) with one of these names
#: is refused, never scored as one more class, unless an option already gave it its role
NON_SCORE_NAMES = {
    "weight": (
        "weight",
        "weights",
        "sample_weight",
        "sample_weights",
        "instance_weight",
        "row_weight",
    ),
    "id": (
        "id",
        "ids",
        "idx",
        "index",
        "row",
        "row_id",
        "row_idx",
        "row_number",
        "example_id",
        "sample_id",
        "item_id",
        "image_id",
        "doc_id",
        "uid",
        "uuid",
        "guid",
        "key",
    ),
    "group": (
        "group",
        "groups",
        "group_id",
        "split",
        "fold",
        "source",
        "domain",
        "subset",
        "slice",
        "dataset",
        "partition",
        "cohort",
    ),
}
_NON_SCORE = {name: role for role, names in NON_SCORE_NAMES.items() for name in names}
_ROLE_TEXT = {"weight": "sample weights", "id": "row ids", "group": "a grouping of the rows"}
#: the option that gives a column each role (the roles a command offers: ReadOptions.roles)
ROLE_OPTIONS = {"weight": "--weight-column", "id": "--id-column", "group": "--group-by"}
_RANGE = re.compile(r"(-?[0-9]*):(-?[0-9]*)(?::(-?[0-9]*))?")
_INDEX = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Layout:
    """The columns of a table and the role chosen for each (0-based indices)."""

    delimiter: str
    ncols: int
    has_header: bool
    header_line: int | None  #: the header's line number, None without a header
    names: list[str]  #: header names, or "0".."ncols-1" without a header
    label: int | None  #: the label column (None with targets)
    logits: list[int]
    targets: list[int] | None
    class_names: list[str] | None  #: ``options.class_names``: labels are then names
    class_index: dict[str, int] | None  #: class name -> index (None without class names)
    #: how the label column was chosen when no option named it: "by its name" or
    #: "the last column"; None when --label-column (or targets) chose
    label_guess: str | None = None
    index_column: int | None = None  #: a pandas index column, left out of the scores
    weight: int | None = None  #: the sample-weight column (``--weight-column``)
    group: int | None = None  #: the column whose values slice the rows (``--group-by``)
    #: the score columns were taken from the header (no ``--logit-columns``)
    logits_inferred: bool = False

    @property
    def weight_name(self) -> str | None:
        return None if self.weight is None else self.names[self.weight]

    @property
    def group_name(self) -> str | None:
        return None if self.group is None else self.names[self.group]

    @property
    def binary(self) -> bool:
        """One score column: a binary classifier's score of class 1 (labels 0 and 1)."""
        return len(self.logits) == 1

    @property
    def num_classes(self) -> int:
        """The number of classes: the score columns, or 2 for one score column."""
        return 2 if self.binary else len(self.logits)

    @property
    def logit_names(self) -> list[str]:
        """Names of the logit columns (their header names, or "0".."K-1")."""
        if self.has_header:
            return [self.names[i] for i in self.logits]
        return [str(i) for i in range(len(self.logits))]

    @property
    def label_name(self) -> str | None:
        return None if self.label is None else self.names[self.label]

    @property
    def target_names(self) -> list[str] | None:
        return None if self.targets is None else [self.names[i] for i in self.targets]


def read_layout(
    raw: bytes, line: int, delimiter: str | None, options: ReadOptions, path: str
) -> Layout:
    """The layout from *raw*, the table's first non-blank line (line number *line*).

    *delimiter* is the one already known (given, or from the file name), else None:
    tab when the line has a tab and no comma, otherwise comma.
    """
    if delimiter is None:
        delimiter = "\t" if b"\t" in raw and b"," not in raw else ","
    if len(delimiter) != 1:
        raise DataError(path, None, None, "the delimiter must be one character", delimiter)
    text = decode(raw, path, line, delimiter)
    fields = split_fields(text, delimiter, path, line)
    ncols = len(fields)
    classes = set(options.class_names or ())
    header = options.header
    if header is None:
        # A blank cell is a bad data cell, not the sign of a header.
        header = any(
            f.strip(" \t") and not is_number(f) and f.strip(" \t") not in classes for f in fields
        )
    if header:
        names = [f.strip(" \t") for f in fields]
        seen: dict[str, int] = {}
        for number, name in enumerate(names, 1):
            if name in seen:
                raise DataError(
                    path,
                    line,
                    number,
                    f"column name appears twice (also column {seen[name]})",
                    name,
                )
            seen[name] = number
    else:
        names = [str(i) for i in range(ncols)]
    return _Selector(path, names, header).layout(delimiter, line, options)


def _listed(names: Sequence[str], keep: Sequence[str] = (), limit: int = 12) -> str:
    """The column names for a message: all of them, or the first and last few and every
    name in *keep* (the closest to what was asked), never cut before those."""
    if len(names) <= limit:
        return ", ".join(names)
    shown = set(range(limit - 2)) | {len(names) - 2, len(names) - 1}
    shown |= {names.index(name) for name in keep}
    out: list[str] = []
    for index in sorted(shown):
        if out and index - 1 not in shown:
            out.append("...")
        out.append(names[index])
    return ", ".join(out)


def _shown(path: str) -> str:
    """*path* as DataError shows it: quoted when it holds a control character."""
    return repr(path) if any(ord(c) < 32 or ord(c) == 127 for c in path) else path


def role_hint(name: str, role: str, offered: Sequence[str]) -> str:
    """The options that would read column *name*: its *role*'s option when the command
    offers it (*offered*: roles of :data:`ROLE_OPTIONS`), and ``--logit-columns``.

    >>> role_hint("w", "weight", ("weight", "group"))
    '--weight-column w, or --logit-columns to choose the score columns'
    >>> role_hint("w", "weight", ())
    '--logit-columns to choose the score columns'
    """
    import shlex  # only for this message

    fixes = [f"{ROLE_OPTIONS[role]} {shlex.quote(name)}"] if role in offered else []
    return ", or ".join([*fixes, "--logit-columns to choose the score columns"])


def check_score_names(path: str, names: Sequence[str], offered: Sequence[str]) -> None:
    """Refuse a score column inferred from a header whose name says it is no score.

    *names* are the inferred score columns' names; *offered* the roles the command can
    give a column (:data:`ROLE_OPTIONS`). A :class:`ColumnRoleError` (a usage error) names
    the first such column and the option that reads it.

    >>> check_score_names("p.csv", ["a", "b", "Weight"], ("weight", "group"))
    Traceback (most recent call last):
    ...
    xentcli.errors.ColumnRoleError: p.csv: column 'Weight' is named like sample weights, not a score: give --weight-column Weight, or --logit-columns to choose the score columns
    """
    for name in names:
        role = _NON_SCORE.get(name.lower())
        if role is not None:
            raise ColumnRoleError(
                f"{_shown(path)}: column {name!r} is named like {_ROLE_TEXT[role]}, not a "
                "score: give " + role_hint(name, role, offered)
            )


def text_hint(name: str, offered: Sequence[str], holds: str = "text") -> str:
    """What to say of an inferred score column *name* that holds text (*holds*).

    >>> text_hint("source", ("weight", "group"))
    "column 'source' holds text: --group-by source, or --logit-columns to choose the score columns"
    """
    role = "group" if "group" in offered else "id"
    return f"column {name!r} holds {holds}: " + role_hint(name, role, offered)


def unknown_column(path: str, what: str, name: str, names: Sequence[str]) -> ColumnError:
    """The usage error for a column *name* the header does not have, with a did-you-mean.

    >>> print(unknown_column("p.csv", "label column", "lable", ["logit_0", "logit_1", "label"]))
    p.csv: label column: no column 'lable'; did you mean 'label'? (columns: logit_0, logit_1, label)
    """
    import difflib  # only for this message

    lowered = {n.lower(): n for n in names}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close += [n for n in difflib.get_close_matches(name, names, n=3, cutoff=0.6) if n not in close]
    hint = ""
    if close:
        hint = "; did you mean " + " or ".join(repr(n) for n in close) + "?"
    prefix = f"{what}: " if what else ""
    return ColumnError(
        path, None, None, f"{prefix}no column {name!r}{hint} (columns: {_listed(names, close)})"
    )


class _Selector:
    """Resolve column specifications against a table's column names."""

    def __init__(self, path: str, names: list[str], has_header: bool) -> None:
        self._path = path
        self._names = names
        self._ncols = len(names)
        self._has_header = has_header

    def _error(self, reason: str, value: object = None) -> DataError:
        return DataError(self._path, None, None, reason, value)

    def select(self, spec: str | int, what: str) -> list[int]:
        """The columns *spec* names: a name, an index, a range or a glob."""
        names, ncols = self._names, self._ncols
        if isinstance(spec, int) and not isinstance(spec, bool):
            index = spec
        elif isinstance(spec, str):
            text = spec.strip()
            if self._has_header and text in names:
                return [names.index(text)]
            if _INDEX.fullmatch(text):
                index = int(text)
            elif (match := _RANGE.fullmatch(text)) is not None:
                parts = [int(p) if p not in (None, "", "-") else None for p in match.groups()]
                if parts[2] == 0:
                    raise self._error(f"{what}: a range step cannot be 0", spec)
                selected = list(range(ncols))[slice(*parts)]
                if not selected:
                    raise self._error(
                        f"{what}: the range selects no column (the file has {plural(ncols, 'column')})",
                        spec,
                    )
                return selected
            elif any(c in text for c in "*?["):
                selected = [i for i, n in enumerate(names) if fnmatch.fnmatchcase(n, text)]
                if not selected:
                    raise ColumnError(
                        self._path,
                        None,
                        None,
                        f"{what}: no column matches the pattern (columns: {_listed(names)})",
                        spec,
                    )
                return selected
            elif self._has_header:
                raise unknown_column(self._path, what, text, names)
            else:
                raise ColumnError(
                    self._path,
                    None,
                    None,
                    f"{what}: no column of that name (the file has no header: give a 0-based"
                    f" index from 0 to {ncols - 1})",
                    spec,
                )
        else:
            raise self._error(f"{what}: not a column name or index", spec)
        if not -ncols <= index < ncols:
            raise ColumnError(
                self._path,
                None,
                None,
                f"{what}: column index out of range (the file has {plural(ncols, 'column')})",
                spec,
            )
        return [index % ncols]

    def select_many(self, specs: Sequence[str | int], what: str) -> list[int]:
        """The columns of all *specs*, in order; a column selected twice is an error."""
        chosen: list[int] = []
        for spec in specs:
            for index in self.select(spec, what):
                if index in chosen:
                    raise self._error(
                        f"{what}: column {self._names[index]!r} is selected twice", spec
                    )
                chosen.append(index)
        if not chosen:
            raise self._error(f"{what}: no column selected")
        return chosen

    def layout(self, delimiter: str, line: int, options: ReadOptions) -> Layout:
        """The roles of the columns, from the options or the defaults."""
        names, ncols = self._names, self._ncols
        label: int | None = None
        targets: list[int] | None = None
        if options.target_columns is not None:
            targets = self.select_many(options.target_columns, "target columns")
        elif options.label_column is not None:
            label = self.select(options.label_column, "label column")[0]
        else:
            label = ncols - 1
            guess = "the last column"
            if self._has_header:
                lowered = [n.lower() for n in names]
                for wanted in LABEL_NAMES:
                    if wanted in lowered:
                        label = lowered.index(wanted)
                        guess = "by its name"
                        break
        taken = set(targets or ()) | ({label} if label is not None else set())
        identity = None
        if options.id_column is not None:
            identity = self.select(options.id_column, "id column")[0]
            if identity in taken:
                role = "label" if identity == label else "target"
                raise self._error(
                    f"id column: column {names[identity]!r} is also the {role} column"
                )
            taken.add(identity)
        roles = {label: "label", identity: "id"} | {t: "target" for t in targets or ()}
        extra: dict[str, int | None] = {"weight": None, "group": None}
        for what, spec in (("weight", options.weight_column), ("group", options.group_column)):
            if spec is None:
                continue
            index = self.select(spec, f"{what} column")[0]
            if index in taken:
                raise self._error(
                    f"{what} column: column {names[index]!r} is also the {roles[index]} column"
                )
            taken.add(index)
            roles[index] = what
            extra[what] = index
        index_column = None
        if (
            self._has_header
            and options.logit_columns is None
            and ncols >= 3
            and names[0] in INDEX_NAMES
            and 0 not in taken
        ):
            # pandas' df.to_csv() writes its index first, under an empty name.
            index_column = 0
            taken.add(0)
        if options.logit_columns is not None:
            logits = self.select_many(options.logit_columns, "logit columns")
            for index in logits:
                if index in taken:
                    raise self._error(
                        f"logit columns: column {names[index]!r} is also the {roles.get(index, 'index')} column"
                    )
        else:
            logits = [i for i in range(ncols) if i not in taken]
            if self._has_header:
                # A class may be called "source": --classes names the score columns.
                named = {c.lower() for c in options.class_names or ()}
                check_score_names(
                    self._path,
                    [names[i] for i in logits if names[i].lower() not in named],
                    options.roles,
                )
        if not logits:
            raise self._error(f"no logit column (the file has {plural(ncols, 'column')})")
        K = len(logits)
        if targets is not None and len(targets) != K:
            raise self._error(f"{len(targets)} target columns for {K} logit columns")
        if targets is not None and K == 1 and not options.multilabel:
            raise self._error(
                "one score column is the binary case: it needs a label column (0 or 1), "
                "not soft targets"
            )
        classes = max(K, 2)
        if options.class_names is not None and len(options.class_names) != classes:
            what = "classes (one score column: the binary case)" if K == 1 else "logit columns"
            raise self._error(f"{len(options.class_names)} class names for {classes} {what}")
        class_names = None if options.class_names is None else list(options.class_names)
        if class_names is not None and self._has_header:
            _check_classes_against_header(class_names, [names[i] for i in logits], self._error)
        return Layout(
            delimiter=delimiter,
            ncols=ncols,
            has_header=self._has_header,
            header_line=line if self._has_header else None,
            names=names,
            label=label,
            logits=logits,
            targets=targets,
            class_names=class_names,
            class_index=None if class_names is None else {c: i for i, c in enumerate(class_names)},
            label_guess=guess if label is not None and options.label_column is None else None,
            index_column=index_column,
            weight=extra["weight"],
            group=extra["group"],
            logits_inferred=options.logit_columns is None,
        )


def _check_classes_against_header(
    classes: list[str], header: list[str], error: Callable[[str, object], DataError]
) -> None:
    """Refuse ``--classes`` that name the header's score columns in another order."""
    if len(classes) != len(header) or not set(classes) & set(header):
        return
    for i, (given, named) in enumerate(zip(classes, header, strict=True)):
        if given != named:
            raise error(
                f"--classes disagrees with the header: class {i} is {given!r} but score "
                f"column {i + 1} is named {named!r} (give the classes in the header's order, "
                "or leave --classes out)",
                None,
            )


def layout_from_names(path: str, names: list[str], options: ReadOptions) -> Layout:
    """The roles of named columns (a Parquet, Arrow or JSON Lines schema), as for a header."""
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise DataError(path, None, None, "column name appears twice", twice)
    return _Selector(path, names, True).layout("", 0, options)
