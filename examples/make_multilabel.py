"""Make the multi-label example: sigmoid outputs of four yes/no questions about a digit.

Each image of the scikit-learn digits gets four labels at once, which overlap (a digit
can be even and large, or prime and odd, ...):

- ``even``: 0, 2, 4, 6, 8;
- ``prime``: 2, 3, 5, 7;
- ``large``: 5 to 9;
- ``loop``: the digit is written with a closed loop (0, 6, 8, 9).

One logistic regression per label (a sigmoid output each, trained in plain numpy by
full-batch gradient descent with L2 regularisation) on the same 70 % training split as
``make_digits.py``; for the 540 test images, ``digits_multilabel.csv`` holds the four
logits (``logit_even ... logit_loop``, 6 significant digits) and the four 0/1 targets
(``y_even ... y_loop``): ``xent batch examples/digits_multilabel.csv --sigmoid
--target-columns 'y_*'``. ``digits_multilabel_proba.csv`` holds the same model's
probabilities sigma(x) instead (``p_even ... p_loop``, 6 significant digits, as a
``predict_proba`` writes them), which ``xent batch --sigmoid`` detects.

Run from the repository root: ``python examples/make_multilabel.py``. Deterministic (seed 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
SEED = 0
QUESTIONS = {
    "even": (0, 2, 4, 6, 8),
    "prime": (2, 3, 5, 7),
    "large": (5, 6, 7, 8, 9),
    "loop": (0, 6, 8, 9),
}


def train(
    x: np.ndarray, z: np.ndarray, *, steps: int, rate: float = 0.5, l2: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per label (columns of *z*), by full-batch gradient descent."""
    n, d = x.shape
    w = np.zeros((d, z.shape[1]))
    b = np.zeros(z.shape[1])
    for _ in range(steps):
        s = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        grad = (s - z) / n
        w -= rate * (x.T @ grad + l2 * w)
        b -= rate * grad.sum(axis=0)
    return w, b


def main() -> None:
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))
    cut = int(0.7 * len(y))
    train_idx, test_idx = order[:cut], order[cut:]
    z = np.stack([np.isin(y, digits_) for digits_ in QUESTIONS.values()], axis=1).astype(float)

    w, b = train(x[train_idx], z[train_idx], steps=300)
    logits = x[test_idx] @ w + b
    targets = z[test_idx]
    names = list(QUESTIONS)
    with (HERE / "digits_multilabel.csv").open("w", newline="") as handle:
        handle.write(",".join([f"logit_{n}" for n in names] + [f"y_{n}" for n in names]) + "\n")
        for row, target in zip(logits, targets, strict=True):
            cells = [f"{v:.6g}" for v in row] + [str(int(t)) for t in target]
            handle.write(",".join(cells) + "\n")
    with (HERE / "digits_multilabel_proba.csv").open("w", newline="") as handle:
        handle.write(",".join([f"p_{n}" for n in names] + [f"y_{n}" for n in names]) + "\n")
        for row, target in zip(1.0 / (1.0 + np.exp(-logits)), targets, strict=True):
            cells = [f"{v:.6g}" for v in row] + [str(int(t)) for t in target]
            handle.write(",".join(cells) + "\n")
    exact = float(np.mean(((logits > 0) == (targets == 1)).all(axis=1)))
    print(f"digits_multilabel.csv: {len(targets)} rows, exact match {exact:.4f}")


if __name__ == "__main__":
    main()
