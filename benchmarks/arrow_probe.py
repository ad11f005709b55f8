"""Probes for the batch reader's design (not contenders: numbers to tune by).

1. Streaming throughput of ``pyarrow.csv.open_csv`` over the K=10 file, by ``block_size``
   and ``use_threads``, with explicit column types (float64 logits, int64 label) and, for
   comparison, with type inference and with the whole-file ``read_csv``.
2. The cost of turning a record batch of K float64 columns into one C-contiguous (n, K)
   float64 array, by method, for a few batch shapes.
3. The cost of validation passes over that array (what the reader must check per chunk).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import fmt_time, interleaved, log, median, table

MB = 1 << 20


def _convert_options(path: Path, explicit: bool) -> object:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not explicit:
        return pcsv.ConvertOptions()
    with path.open() as f:
        names = f.readline().strip().split(",")
    types = {name: pa.float64() for name in names[:-1]}
    types[names[-1]] = pa.int64()
    return pcsv.ConvertOptions(column_types=types)


def stream(
    path: Path, block_size: int, use_threads: bool, explicit: bool = True, tensor: bool = False
) -> int:
    """Read *path* batch by batch; optionally convert each to a C-contiguous array."""
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=block_size, use_threads=use_threads),
        convert_options=_convert_options(path, explicit),
    )  # type: ignore[arg-type]
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        if tensor:
            np.asarray(batch.select(range(batch.num_columns - 1)).to_tensor())
    return rows


def python_blocks(path: Path, block_size: int, use_threads: bool) -> int:
    """Cut the file into line-aligned blocks in Python, ``read_csv`` each from memory.

    (The shape of a reader that keeps the bytes itself, to know line numbers and to
    fall back to a precise parser on a bad block.)
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with path.open("rb") as f:
        names = f.readline().decode().strip().split(",")
        types = {name: pa.float64() for name in names[:-1]}
        types[names[-1]] = pa.int64()
        read = pcsv.ReadOptions(column_names=names, block_size=block_size, use_threads=use_threads)
        convert = pcsv.ConvertOptions(column_types=types)
        rows, tail = 0, b""
        while True:
            data = f.read(block_size)
            if not data:
                break
            data = tail + data
            cut = data.rfind(b"\n") + 1
            block, tail = data[:cut], data[cut:]
            if block:
                rows += pcsv.read_csv(
                    pa.py_buffer(block), read_options=read, convert_options=convert
                ).num_rows
        if tail.strip():
            rows += pcsv.read_csv(
                pa.py_buffer(tail), read_options=read, convert_options=convert
            ).num_rows
    return rows


def read_whole(path: Path) -> int:
    import pyarrow.csv as pcsv

    return pcsv.read_csv(path, convert_options=_convert_options(path, True)).num_rows  # type: ignore[arg-type]


def streaming(path: Path, quick: bool) -> list[str]:
    size = path.stat().st_size
    cases: dict[str, Callable[[], object]] = {}
    for block in (1 * MB, 4 * MB, 16 * MB, 64 * MB):
        for threads in (True, False):
            cases[f"open_csv block_size={block // MB} MiB use_threads={threads}"] = (
                lambda b=block, t=threads: stream(path, b, t)
            )
    cases["open_csv block_size=1 MiB use_threads=True, inferred types"] = lambda: stream(
        path, MB, True, explicit=False
    )
    cases["open_csv block_size=4 MiB use_threads=True + to_tensor per batch"] = lambda: stream(
        path, 4 * MB, True, tensor=True
    )
    cases["open_csv block_size=4 MiB use_threads=False + to_tensor per batch"] = lambda: stream(
        path, 4 * MB, False, tensor=True
    )
    for block in (1 * MB, 4 * MB, 16 * MB):
        for threads in (True, False):
            name = f"Python {block // MB} MiB blocks + read_csv(py_buffer) use_threads={threads}"
            cases[name] = lambda b=block, t=threads: python_blocks(path, b, t)
    cases["read_csv (whole file, threads)"] = lambda: read_whole(path)
    log(f"probe: streaming {path.name}")
    res = interleaved(cases, repeats=1 if quick else 2, warmup=0, budget=120)
    rows = [
        [name, fmt_time(s.time), f"{size / 1e6 / s.time:,.0f}"]
        if s.ok
        else [name, f"failed: {s.error}", "-"]
        for name, s in res.items()
    ]
    return [
        f"Streaming `{path.name}` ({size / 1e6:,.0f} MB), parse only unless noted:",
        "",
        *table(["reader", "time", "MB/s"], rows),
    ]


def conversions(quick: bool) -> list[str]:
    import pyarrow as pa

    shapes = ((65_536, 10), (262_144, 10), (1_000, 1000), (8_192, 1000))
    lines = [
        "",
        "Record batch of K float64 columns -> one (n, K) float64 array, C-contiguous"
        " unless the method says F order (column-major, what the columns already are);"
        " median per batch; GB/s of float64 data:",
        "",
    ]
    rows = []
    for n, k in shapes:
        rng = np.random.default_rng(1)
        batch = pa.record_batch(
            [pa.array(rng.standard_normal(n)) for _ in range(k)],
            names=[f"logit_{j}" for j in range(k)],
        )

        def fill(batch: pa.RecordBatch = batch, n: int = n, k: int = k) -> np.ndarray:
            out = np.empty((n, k))
            for j, col in enumerate(batch.columns):
                out[:, j] = col.to_numpy(zero_copy_only=True)
            return out

        def fill_f(batch: pa.RecordBatch = batch, n: int = n, k: int = k) -> np.ndarray:
            out = np.empty((k, n))
            for j, col in enumerate(batch.columns):
                out[j] = col.to_numpy(zero_copy_only=True)
            return out.T  # (n, K), column-major

        methods: dict[str, Callable[[], object]] = {
            "np.asarray(batch.to_tensor())": lambda b=batch: np.asarray(b.to_tensor()),
            "fill np.empty((n,K)) column by column": fill,
            "np.column_stack(col.to_numpy())": lambda b=batch: np.column_stack(
                [c.to_numpy() for c in b.columns]
            ),
            "np.stack(axis=1)": lambda b=batch: np.stack([c.to_numpy() for c in b.columns], axis=1),
            "to_tensor(row_major=False) (F order)": lambda b=batch: np.asarray(
                b.to_tensor(row_major=False)
            ),
            "fill np.empty((K, n)) row by row, return .T (F order)": fill_f,
        }
        res = interleaved(methods, repeats=5 if quick else 15, warmup=1)
        gb = n * k * 8 / 1e9
        for name, s in res.items():
            rows.append(
                [
                    f"({n:,}, {k:,})",
                    name,
                    fmt_time(s.time) if s.ok else s.error,
                    f"{gb / s.time:.2f}" if s.ok else "-",
                ]
            )
    lines += table(["batch (n, K)", "method", "time", "GB/s"], rows)
    return lines


def validations(quick: bool) -> list[str]:
    n, k = 65_536, 10
    x = np.random.default_rng(2).standard_normal((n, k))
    checks: dict[str, Callable[[], object]] = {
        "np.isfinite(x).all()": lambda: bool(np.isfinite(x).all()),
        "np.isnan(x).any() or (x == inf).any()": lambda: bool(
            np.isnan(x).any() or (x == np.inf).any()
        ),
        "m = x.max(axis=1); np.isfinite(m).all()": lambda: bool(np.isfinite(x.max(axis=1)).all()),
        "x.max(axis=1) alone (the kernel needs it anyway)": lambda: x.max(axis=1),
    }
    res = interleaved(checks, repeats=10 if quick else 30, warmup=2)
    rows = [[name, fmt_time(s.time)] for name, s in res.items()]
    return [
        "",
        f"Validation passes over one ({n:,}, {k}) chunk:",
        "",
        *table(["check", "time"], rows),
        "",
        "A row's max is NaN if the row holds a NaN (np.max propagates NaN), +inf if it",
        "holds +inf, and -inf if every logit is -inf: `np.isfinite(m)` on the row max the",
        "kernel computes anyway validates all three at no extra pass.",
    ]


def run(path: Path, quick: bool) -> list[str]:
    start = time.perf_counter()
    lines = streaming(path, quick)
    lines += conversions(quick)
    lines += validations(quick)
    log(f"probe: {time.perf_counter() - start:.0f} s")
    return lines


__all__ = ["median", "run"]
