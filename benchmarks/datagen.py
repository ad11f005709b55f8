"""Generate the CSV files the batch benchmarks read.

The logits are float32 model outputs written in their shortest round-trip form, as a
framework's ``to_csv`` of float32 tensors would: 6 to 9 significant digits
(``-2.1426775``, ``0.50292087``, ``5.216``). Each row has a boosted true class, so the
loss and accuracy are those of a plausible trained classifier, not of pure noise.
Header: ``logit_0,...,logit_{K-1},label``.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np

ROWS_PER_BLOCK = 1 << 18


def _block(rng: np.random.Generator, n: int, k: int) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    x = rng.standard_normal((n, k), dtype=np.float32) * np.float32(2.0)
    labels = rng.integers(0, k, size=n)
    x[np.arange(n), labels] += np.float32(2.5)
    columns = {f"logit_{j}": x[:, j] for j in range(k)}
    columns["label"] = labels
    buf = io.BytesIO()
    pcsv.write_csv(pa.table(columns), buf, pcsv.WriteOptions(include_header=False))
    return buf.getvalue()


def generate(path: Path, k: int, target_bytes: int, seed: int = 0) -> Path:
    """Write a CSV of about *target_bytes* with *k* logit columns (reused if present).

    The file name carries K and the size, so a kept data directory is reused across runs
    only for the same request.
    """
    if path.exists() and path.stat().st_size > 0:
        return path
    rng = np.random.default_rng(seed)
    rows_per_block = max(1, min(ROWS_PER_BLOCK, 4_000_000 // k))
    tmp = path.with_suffix(".partial")
    with tmp.open("wb") as out:
        out.write((",".join(f"logit_{j}" for j in range(k)) + ",label\n").encode())
        while out.tell() < target_bytes:
            body = _block(rng, rows_per_block, k)
            left = target_bytes - out.tell()
            if len(body) > left:  # cut at a line end so the file is about the size asked
                cut = body.find(b"\n", left)
                body = body[: cut + 1] if cut >= 0 else body
            out.write(body)
    tmp.replace(path)
    return path


def repeat(base: Path, times: int, path: Path) -> Path:
    """*base*'s header, then its body *times* over: the scaling series' files."""
    if path.exists() and path.stat().st_size > 0:
        return path
    tmp = path.with_suffix(".partial")
    with base.open("rb") as src, tmp.open("wb") as out:
        out.write(src.readline())
        start = src.tell()
        for _ in range(times):
            src.seek(start)
            shutil.copyfileobj(src, out, 1 << 24)
    tmp.replace(path)
    return path


def count_rows(path: Path) -> int:
    """Data rows (lines after the header)."""
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n - 1
