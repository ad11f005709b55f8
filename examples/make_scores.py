"""Write examples/digits_proba.csv and examples/digits_logprobs.csv: the probabilities and
the log-probabilities of examples/digits.csv's logits.

The probabilities as a scikit-learn user writes ``predict_proba``: a pandas DataFrame
saved with ``df.to_csv()`` (its index first, unnamed) and 6 significant digits, so the
rows sum to 1 only within the rounding. ``xent batch examples/digits_proba.csv`` detects
the probabilities and leaves the index out, and says both. The log-probabilities as a
PyTorch user writes ``log_softmax`` outputs: 9 significant digits, no index.

Run from the repository root: ``python examples/make_scores.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    logits = pd.read_csv(HERE / "digits.csv")
    labels = logits.pop("label")
    y = logits.to_numpy()
    q = np.exp(y - y.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(q, columns=[f"p_{c}" for c in range(q.shape[1])])
    frame["label"] = labels
    frame.to_csv(HERE / "digits_proba.csv", float_format="%.6g")
    shifted = y - y.max(axis=1, keepdims=True)
    log_q = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    logp = pd.DataFrame(log_q, columns=[f"logp_{c}" for c in range(q.shape[1])])
    logp["label"] = labels
    logp.to_csv(HERE / "digits_logprobs.csv", float_format="%.9g", index=False)


if __name__ == "__main__":
    main()
