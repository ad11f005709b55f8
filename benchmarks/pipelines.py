"""The alternative pipelines of the batch benchmark, one per child process.

    python benchmarks/pipelines.py NAME FILE

reads FILE (header ``logit_0..logit_{K-1},label``) with the library NAME, turns the
logits into a float64 (N, K) numpy array and the labels into int64, computes the mean
cross-entropy with the usual stable numpy formula, and prints ``{"rows": N, "loss": L}``
as JSON. Each pipeline imports only its own library, inside its function, so that the
child's start-up and peak memory are its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import numpy as np


def mean_loss(x: np.ndarray, labels: np.ndarray) -> float:
    """Max-shifted log-sum-exp minus the label's logit, averaged (what users write)."""
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return float(np.mean(lse - x[np.arange(x.shape[0]), labels]))


def with_pandas(path: str) -> tuple[int, float]:
    import pandas as pd

    df = pd.read_csv(path)
    x = df.iloc[:, :-1].to_numpy(dtype=np.float64)
    labels = df.iloc[:, -1].to_numpy(dtype=np.int64)
    return len(labels), mean_loss(x, labels)


def with_pandas_pyarrow(path: str) -> tuple[int, float]:
    import pandas as pd

    df = pd.read_csv(path, engine="pyarrow")
    x = df.iloc[:, :-1].to_numpy(dtype=np.float64)
    labels = df.iloc[:, -1].to_numpy(dtype=np.int64)
    return len(labels), mean_loss(x, labels)


def with_pyarrow(path: str) -> tuple[int, float]:
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(path)
    names = table.column_names
    x = np.column_stack([table.column(c).to_numpy() for c in names[:-1]]).astype(
        np.float64, copy=False
    )
    labels = table.column(names[-1]).to_numpy().astype(np.int64, copy=False)
    return len(labels), mean_loss(x, labels)


def with_pyarrow_streaming(path: str) -> tuple[int, float]:
    """A careful user's pipeline: stream record batches, constant memory.

    Explicit column types (inference on the first block can guess int for a float
    column), each batch's logits as a column-major array (pyarrow's cheapest
    conversion; numpy's row reductions are fast on it), labels without pandas, a running
    sum of row losses.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(path) as f:
        names = f.readline().strip().split(",")
    types = {name: pa.float64() for name in names[:-1]}
    types[names[-1]] = pa.int64()
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=4 << 20),
        convert_options=pcsv.ConvertOptions(column_types=types),
    )
    k = len(names) - 1
    rows, total = 0, 0.0
    for batch in reader:
        x = np.asarray(batch.select(range(k)).to_tensor(row_major=False))
        # Array.to_numpy() would import pandas (+50 MB, +1 s): read the buffer instead.
        labels = np.asarray(batch.select([k]).to_tensor())[:, 0]
        m = x.max(axis=1)
        lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
        total += float(np.sum(lse - x[np.arange(x.shape[0]), labels]))
        rows += x.shape[0]
    return rows, total / rows


def with_polars(path: str) -> tuple[int, float]:
    import polars as pl

    df = pl.read_csv(path)
    x = df[:, :-1].to_numpy().astype(np.float64, copy=False)
    labels = df[:, -1].to_numpy().astype(np.int64, copy=False)
    return len(labels), mean_loss(x, labels)


PIPELINES: dict[str, Callable[[str], tuple[int, float]]] = {
    "pandas": with_pandas,
    "pandas (engine=pyarrow)": with_pandas_pyarrow,
    "pyarrow": with_pyarrow,
    "pyarrow (streaming)": with_pyarrow_streaming,
    "polars": with_polars,
}


def main() -> None:
    name, path = sys.argv[1], sys.argv[2]
    rows, loss = PIPELINES[name](path)
    print(json.dumps({"rows": rows, "loss": loss}))


if __name__ == "__main__":
    main()
