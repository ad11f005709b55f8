"""Score files or a Dask DataFrame on a Dask cluster, to the same bits as one process.

Each task scores one part of the input (a file, a run of Parquet row groups, a byte
range of a large CSV file) into a saved state; the states are merged by a tree
reduction, in file order. Needs the ``dask`` extra (``pip install 'xent[dask]'``),
imported when a function is first called. The engine itself is
:mod:`xentcli.batch.engine`.

>>> import pandas as pd, dask.dataframe as dd
>>> from xentcli import cross_entropy
>>> frame = pd.DataFrame({"a": [1.2, 0.0], "b": [2.3, 1.0], "c": [0.8, 0.0], "label": [1, 0]})
>>> summary = score(dd.from_pandas(frame, npartitions=2), scheduler="synchronous")
>>> summary.loss == cross_entropy(frame[["a", "b", "c"]].to_numpy(), frame["label"].to_numpy())
True
"""

from __future__ import annotations

from xentcli.batch.engine import EXTRA, MissingExtraError, accumulate, cluster_client, score

__all__ = ["EXTRA", "MissingExtraError", "accumulate", "cluster_client", "score"]
