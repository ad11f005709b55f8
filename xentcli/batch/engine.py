"""The Dask engine: score files (or a Dask DataFrame) on a cluster, to the same bits as one process.

Each task scores one part of the input (a file, a run of Parquet row groups, a byte
range of a large CSV file: :mod:`xentcli.batch.parts`) into a saved state; the states
are merged by a tree reduction, in file order; the client makes the report. Sums are
exact, so the figures do not depend on the parts, the number of workers or the order in
which tasks finish. Dask retries the tasks of a worker that dies.

Needs the ``dask`` extra (``pip install 'xent[dask]'``: dask, distributed, fsspec),
imported when a function here is first called.

The public door is :mod:`xentcli.dask` (``xentcli.dask.score``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from xentcli.batch._columns import LABEL_NAMES, check_score_names
from xentcli.batch._kinds import logits_in_unit_interval, mixed_kinds, resolve_kind
from xentcli.batch.accumulator import BatchAccumulator, BatchOptions, Summary
from xentcli.batch.exact_mean import second_pass
from xentcli.batch.parts import (
    PART_BYTES,
    Part,
    finish,
    merge_results,
    open_input,
    plan,
    score_part,
)
from xentcli.batch.reader import ReadOptions
from xentcli.errors import InvalidInputError, XentError

__all__ = ["EXTRA", "MissingExtraError", "accumulate", "cluster_client", "score"]

EXTRA = "pip install 'xent[dask]'"


class MissingExtraError(XentError):
    """The Dask engine was asked for but dask or distributed is not installed."""


def _require() -> Any:
    try:
        import dask
        import distributed  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(
            f"the Dask engine needs dask and distributed ({error.name} is missing): {EXTRA}"
        ) from None
    return dask


def default_workers() -> int:
    """Worker processes of a local cluster: one per core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A distributed Client: of the cluster at *scheduler*, or of a local cluster of
    *workers* processes (one thread each) shut down on leaving, Ctrl-C included."""
    _require()
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler)
        except (ValueError, TypeError) as error:  # not an address (unreachable: OSError)
            raise XentError(f"--scheduler {scheduler}: {error}") from None
        with client:
            yield client
        return
    n = workers or default_workers()
    with contextlib.ExitStack() as stack:
        # Ctrl-C while the cluster starts waits until it has started, so that leaving
        # shuts it down cleanly (a half-started cluster cannot be closed).
        with _interrupt_deferred():
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,  # one kernel thread per process: processes
                    processes=True,  # are the parallelism
                    dashboard_address=":0",  # any free port, never the fixed 8787 another run may hold
                    silence_logs=logging.CRITICAL,
                    env={"XENT_THREADS": "1"},
                )
            )
            client = stack.enter_context(Client(cluster))
        yield client


@contextlib.contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold a SIGINT (Ctrl-C) until the block ends, then raise KeyboardInterrupt."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _tree(items: list[Any], merge: Any) -> Any:
    """Merge *items* pairwise, in order, level by level (a balanced tree)."""
    while len(items) > 1:
        pairs = [merge(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        items = pairs + ([items[-1]] if len(items) % 2 else [])
    return items[0]


def _compute(final: Any, client: Any, scheduler: str | None, workers: int | None) -> Any:
    if client is not None:
        return client.compute(final).result()
    if scheduler in ("synchronous", "threads", "processes"):
        return final.compute(scheduler=scheduler)
    with cluster_client(scheduler, workers) as own:
        return own.compute(final).result()


def accumulate(
    inputs: Sequence[str] | Any,
    read_options: ReadOptions | None = None,
    options: BatchOptions | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    part_bytes: int = PART_BYTES,
    score_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    notes: list[str] | None = None,
) -> BatchAccumulator:
    """The merged accumulator of *inputs* (paths, or a Dask DataFrame), scored on Dask.

    *client* is a ``distributed.Client`` to use; else *scheduler* is a scheduler's
    address (or a local Dask scheduler name: ``"synchronous"``, ``"threads"``); else a
    local cluster of *workers* processes is started and shut down. Without
    *read_options*, the files are read as *options* say (their ``scores``, labels); with
    neither, the kind of scores is detected (``--scores auto``). Raises
    :class:`~xentcli.errors.DataError` for bad data (the first in file order, with the
    file's true line), :class:`MissingExtraError` without dask. *notes*, when given,
    receives what was inferred in reading that is worth saying (as ``xent batch`` says
    it on stderr): scores all in [0, 1] whose rows do not sum to 1, read as logits.
    """
    dask = _require()
    if read_options is None:
        # Read what the options say the labels and the scores are; without options,
        # detect the kind of scores as ``xent batch`` does (``--scores auto``).
        scores = options.scores if options is not None else "auto"
        options = options if options is not None else BatchOptions()
        read_options = ReadOptions(
            ignore_index=options.ignore_index, class_names=options.class_names, scores=scores
        )
    options = options if options is not None else BatchOptions()
    score = dask.delayed(score_part, pure=True)
    merge = dask.delayed(merge_results, pure=True)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [os.fspath(inputs)]
    results: list[Any]
    if hasattr(inputs, "to_delayed"):  # a Dask DataFrame
        frame: Any = inputs
        frame_task = dask.delayed(score_frame, pure=True)
        columns = _frame_columns(list(frame.columns), score_columns, label_column)
        options = _frame_scores(frame, columns[0], read_options, options, notes)
        results = [
            frame_task(partition, index, *columns, options, read_options.sum_tolerance)
            for index, partition in enumerate(frame.to_delayed())
        ]
    else:
        parts: list[Part] = plan([os.fspath(p) for p in inputs], read_options, part_bytes)
        if not parts:
            raise XentError("no input files")
        paths = [part.path for part in parts if part.start == 0]  # each file's first part
        read_options, options, inferred = _resolve_scores(paths, read_options, options, notes)
        results = [score(part, read_options, options) for part in parts]
    acc = finish(_compute(_tree(results, merge), client, scheduler, workers))
    if not hasattr(inputs, "to_delayed"):
        acc.columns = inferred  # the first file's, as one process says them
    if options.exact:
        # A figure too near a rounding boundary (rare): the inputs read again, here in
        # the client, each row in decimal; the result is unique, so one process's bits.
        if hasattr(inputs, "to_delayed"):
            _second_pass_of_frame(acc, inputs, columns)
        else:
            second_pass(acc, [os.fspath(p) for p in inputs], read_options, open_input)
    return acc


def _second_pass_of_frame(acc: BatchAccumulator, frame: Any, columns: Any) -> None:
    """:func:`second_pass` for a Dask DataFrame: its partitions computed again in turn."""
    from xentcli.batch.exact_mean import FIRST_DIGITS, SECOND_PASSES, SlowSums, add_rows
    from xentcli.batch.reader import Chunk

    digits = FIRST_DIGITS
    while acc.undecided():
        SECOND_PASSES[0] += 1
        slow = SlowSums.empty(digits, acc.k, len(acc.files))
        for partition in frame.to_delayed():
            data = partition.compute()
            logits = data[columns[0]].to_numpy(dtype=np.float64)
            labels = data[columns[1]].to_numpy().astype(np.int64)
            lines = np.arange(1, len(data) + 1, dtype=np.int64)
            add_rows(acc, slow, 0, [Chunk("<dataframe>", logits, labels, None, lines)])
        acc.slow = slow
        digits *= 2


def _resolve_scores(
    paths: list[str],
    read_options: ReadOptions,
    options: BatchOptions,
    notes: list[str] | None = None,
) -> tuple[ReadOptions, BatchOptions, dict[str, object] | None]:
    """The kind of scores for every part: given, or detected from each file (``--scores
    auto``) as ``xent batch`` detects it, so that the parts of one file cannot disagree
    and files of different kinds are refused (exit 2) as one process refuses them, not
    read with the first file's kind; and what the first file's columns were taken as
    (None for the URL of a file other than CSV, which is not opened here). *notes*,
    when given, receives what the readers inferred (the scores-in-[0, 1] note)."""
    kind: str = read_options.scores
    detect = detected = kind == "auto"
    columns: dict[str, object] | None = None
    for i, path in enumerate(paths):  # every file, for its notes, as one process reads them
        found, found_detected, found_columns = _detect(path, read_options, detect, notes)
        if i == 0:
            columns = found_columns
            if detect:
                kind, detected = found, found_detected
        elif detected and found_detected and found != kind:
            raise XentError(mixed_kinds(paths[0], kind, path, found))
    read_options = dataclasses.replace(read_options, scores=kind)  # type: ignore[arg-type]
    options = dataclasses.replace(
        options,
        scores=kind,  # type: ignore[arg-type]
        scores_detected=detected,
    )
    return read_options, options, columns


def _detect(
    path: str, read_options: ReadOptions, detect: bool, notes: list[str] | None
) -> tuple[str, bool, dict[str, object] | None]:
    """One file's kind of scores (detected if *detect*), whether it was detected, and
    its columns as inferred (None for a URL other than CSV: not opened)."""
    from xentcli.batch._formats import file_format
    from xentcli.batch.parts import is_url, open_input
    from xentcli.batch.reader import inferred_columns, open_table

    opened: Any = None
    if not is_url(path):
        opened = open_table(path, read_options)
    elif file_format(path, read_options.file_format) == "csv":
        opened = open_input(path, read_options)  # its first block only
    elif detect:  # its kind could be read only from a local copy of the whole file
        raise XentError(
            f"{path}: the kind of scores is detected in the URL of a CSV file only: give"
            " --scores logits, probs or logprobs"
        )
    if opened is None:
        return read_options.scores, False, None
    with opened as table:
        if notes is not None:
            notes.extend(f"{table.display_name}: {n}" for n in getattr(table, "notes", ()))
        # Readers of other formats may not detect (yet): logits, as given.
        kind = getattr(table, "scores", "logits") if detect else read_options.scores
        detected = detect and bool(getattr(table, "scores_detected", False))
        return kind, detected, inferred_columns(table)


def score(inputs: Sequence[str] | Any, **kwargs: Any) -> Summary:
    """The :class:`~xentcli.batch.accumulator.Summary` of *inputs* scored on Dask.

    *inputs*: paths or fsspec URLs of files ``xent batch`` reads, or a Dask DataFrame
    with score columns (*score_columns*; default every column but the label) and a
    label column (*label_column*; default the first column named as ``xent batch``
    knows label columns, ``label``, ``target``, ``y``, ..., else the last). Keyword
    options: those of :class:`BatchOptions` (``weights``, ``ignore_index``,
    ``label_smoothing``, ``temperature``, ``base``, ``reduction``, ``worst``,
    ``class_names``, ``scores``), ``read_options`` (a :class:`ReadOptions`), and
    ``client``, ``scheduler``, ``workers``, ``part_bytes`` as in :func:`accumulate`.
    Without ``scores`` (or ``read_options``) the kind of scores is detected as ``xent
    batch --scores auto`` detects it (the summary's ``scores`` and ``scores_detected``
    say what was found): a file or DataFrame of probabilities is never scored as logits.
    """
    option_names = {f.name for f in dataclasses.fields(BatchOptions)}
    batch = {k: kwargs.pop(k) for k in list(kwargs) if k in option_names}
    options = BatchOptions(**batch)
    if "read_options" not in kwargs:  # without ``scores``, detected as xent batch does
        kwargs["read_options"] = ReadOptions(
            ignore_index=options.ignore_index,
            class_names=options.class_names,
            scores=batch.get("scores", "auto"),
        )
    return accumulate(inputs, options=options, **kwargs).summary()


# ----------------------------------------------------------------------- DataFrames
def _frame_scores(
    frame: Any,
    score_columns: list[str],
    read_options: ReadOptions,
    options: BatchOptions,
    notes: list[str] | None = None,
) -> BatchOptions:
    """*options* with the DataFrame's kind of scores: given, or for ``auto`` detected
    from its first partition by the rule of ``--scores auto`` (and the scores-in-[0, 1]
    note in *notes*, as for a file)."""
    if read_options.scores != "auto":
        return dataclasses.replace(options, scores=read_options.scores, scores_detected=False)
    first = frame[score_columns].get_partition(0).compute().to_numpy(dtype=np.float64)
    kind = resolve_kind("auto", first, read_options.sum_tolerance)
    note = logits_in_unit_interval(kind, first, read_options.sum_tolerance)
    if note is not None and notes is not None:
        notes.append(f"<dataframe>: {note}")
    return dataclasses.replace(options, scores=kind, scores_detected=True)


def _frame_columns(
    columns: list[str], score_columns: Sequence[str] | None, label_column: str | None
) -> tuple[list[str], str]:
    if label_column is None:
        lower = {str(c).lower(): c for c in columns}
        label_column = next((lower[n] for n in LABEL_NAMES if n in lower), columns[-1])
    if label_column not in columns:
        raise XentError(f"the DataFrame has no column {label_column!r}")
    scores = (
        list(score_columns)
        if score_columns is not None
        else [c for c in columns if c != label_column]
    )
    if score_columns is None:  # taken from the column names: refuse a weight, an id...
        check_score_names("the DataFrame", [str(c) for c in scores], ())
    missing = [c for c in scores if c not in columns]
    if missing:
        raise XentError(f"the DataFrame has no column {missing[0]!r}")
    if not scores:
        raise XentError("the DataFrame has no score column")
    return scores, label_column


def score_frame(
    frame: Any,
    index: int,
    scores: list[str],
    label: str,
    options: BatchOptions,
    sum_tolerance: float | None = None,
) -> dict[str, Any]:
    """Score one partition (a pandas DataFrame) of a Dask DataFrame into a state (rows of
    probabilities checked with *sum_tolerance*, as a reader checks a file's).

    Its rows are numbered from 1 within the partition; merging partitions in order
    makes them the DataFrame's row numbers (each partition is a part whose "line
    breaks" are its rows).
    """
    from xentcli.batch import state_file as state

    source = "<dataframe>"
    acc = BatchAccumulator(len(scores), options)
    acc.start_file(source, part=(index, index + 1))
    labels = frame[label].to_numpy()
    try:
        if labels.dtype.kind not in "iu":
            raise InvalidInputError(f"label column {label!r} holds {labels.dtype}, not integers")
        acc.update(
            frame[scores].to_numpy(dtype=np.float64),
            labels,
            source=source,
            sum_tolerance=sum_tolerance,
        )
    except InvalidInputError as error:
        reason = f"partition {index}: {error}"
        return {
            "error": {
                "path": source,
                "line": None,
                "column": None,
                "reason": reason,
                "unit": "row",
            },
            "part": index,
            "start": 0,
        }
    acc.end_part(len(frame))
    return {"state": state.dumps(acc)}
