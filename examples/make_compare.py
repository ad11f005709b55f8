"""Make a second model's outputs on the rows of ``digits.csv``, for ``xent compare``.

``digits_boosted.csv``: the logits (``decision_function``) of scikit-learn's
``HistGradientBoostingClassifier`` (50 boosting rounds of shallow trees), trained on the
same 70 % split of the digits as the logistic regression of ``digits.csv`` (see
``make_digits.py``), on the same 540 test images in the same order, written with 6
significant digits. ``xent compare examples/digits.csv examples/digits_boosted.csv``
then compares the two models row by row.

Run from the repository root: ``python examples/make_compare.py`` (needs scikit-learn,
which ships the digits). Deterministic (seed 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier

HERE = Path(__file__).resolve().parent
SEED = 0


def main() -> None:
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))  # the split of make_digits.py
    cut = int(0.7 * len(y))
    train_idx, test_idx = order[:cut], order[cut:]
    model = HistGradientBoostingClassifier(max_iter=50, max_depth=3, random_state=SEED)
    model.fit(x[train_idx], y[train_idx])
    logits = model.decision_function(x[test_idx])
    labels = y[test_idx]
    with (HERE / "digits_boosted.csv").open("w") as handle:
        handle.write(",".join([f"logit_{j}" for j in range(10)] + ["label"]) + "\n")
        for row, label in zip(logits, labels, strict=True):
            handle.write(",".join([f"{v:.6g}" for v in row] + [str(label)]) + "\n")
    accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    print(f"digits_boosted.csv: {len(labels)} rows, test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
