"""Write examples/digits_slices.csv: examples/digits.csv with a sample weight and a source.

Each row gets the device its digit was captured on (``source``: ``scanner``, ``tablet``
or ``phone``; the model's mistakes come more often from phones, drawn with seed 0), and a
sample weight (``weight``) that reweights the test rows to a deployment where phones are
common: 0.5 for a scanner, 1 for a tablet, 2 for a phone. ``xent batch
examples/digits_slices.csv --weight-column weight --group-by source`` then gives the
weighted figures and one line per source.

Run from the repository root: ``python examples/make_slices.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WEIGHTS = {"scanner": 0.5, "tablet": 1.0, "phone": 2.0}


def main() -> None:
    frame = pd.read_csv(HERE / "digits.csv", dtype=str)  # the logits' text kept as written
    logits = frame.filter(like="logit_").to_numpy(dtype=float)
    wrong = logits.argmax(axis=1) != frame["label"].astype(int).to_numpy()
    rng = np.random.default_rng(0)
    draw = rng.random(len(frame))
    source = np.where(draw < 0.4, "scanner", np.where(draw < 0.75, "tablet", "phone"))
    source[wrong & (rng.random(len(frame)) < 0.6)] = "phone"
    frame["weight"] = [repr(WEIGHTS[s]) for s in source]
    frame["source"] = source
    frame.to_csv(HERE / "digits_slices.csv", index=False)


if __name__ == "__main__":
    main()
