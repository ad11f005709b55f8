"""Make the example datasets: logits of a small classifier on the scikit-learn digits.

The digits dataset (1797 images of 8x8 pixels, 10 classes, from the UCI "Optical
Recognition of Handwritten Digits" data) ships inside scikit-learn, so this runs offline.
scikit-learn is needed only here, not by xent: ``pip install scikit-learn``.

A multinomial logistic regression is trained in plain numpy (full-batch gradient descent
with L2 regularisation) on a fixed 70 % training split; the test split's logits are
written with 6 significant digits:

- ``digits.csv``: ``logit_0..logit_9,label`` for the 540 test images;
- ``digits_distill.csv``: a knowledge-distillation set: the logits of a *student* trained
  on only 10 % of the training images, and soft targets ``target_0..target_9``: the
  softmax at temperature 2 of the *teacher* (the model of ``digits.csv``), for the first
  300 test images (targets written with 9 significant digits, so each row sums to 1
  within 1e-8).

Run from the repository root: ``python examples/make_digits.py``. Deterministic (seed 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
SEED = 0


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def train(
    x: np.ndarray, y: np.ndarray, *, steps: int, rate: float = 0.5, l2: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent."""
    n, d = x.shape
    k = 10
    w = np.zeros((d, k))
    b = np.zeros(k)
    onehot = np.eye(k)[y]
    for _ in range(steps):
        q = softmax(x @ w + b)
        grad = (q - onehot) / n
        w -= rate * (x.T @ grad + l2 * w)
        b -= rate * grad.sum(axis=0)
    return w, b


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as handle:
        handle.write(",".join(header) + "\n")
        for row in rows:
            handle.write(",".join(row) + "\n")


def main() -> None:
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))
    cut = int(0.7 * len(y))
    train_idx, test_idx = order[:cut], order[cut:]

    w, b = train(x[train_idx], y[train_idx], steps=1000)
    logits = x[test_idx] @ w + b
    labels = y[test_idx]
    write_csv(
        HERE / "digits.csv",
        [f"logit_{j}" for j in range(10)] + ["label"],
        [
            [f"{v:.6g}" for v in row] + [str(label)]
            for row, label in zip(logits, labels, strict=True)
        ],
    )

    few = train_idx[: len(train_idx) // 10]
    ws, bs = train(x[few], y[few], steps=200)
    sample = test_idx[:300]
    student = x[sample] @ ws + bs
    teacher = softmax((x[sample] @ w + b) / 2.0)
    write_csv(
        HERE / "digits_distill.csv",
        [f"logit_{j}" for j in range(10)] + [f"target_{j}" for j in range(10)],
        [
            [f"{v:.6g}" for v in s] + [f"{p:.9g}" for p in t]
            for s, t in zip(student, teacher, strict=True)
        ],
    )
    accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    print(f"digits.csv: {len(labels)} rows, test accuracy {accuracy:.4f}")
    print(f"digits_distill.csv: {len(sample)} rows")


if __name__ == "__main__":
    main()
