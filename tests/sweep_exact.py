"""Long random sweep of exact=True against mpmath (not part of the suite: minutes).

    PYTHONPATH=. python tests/sweep_exact.py ROWS [SEED]

Rows of 2 to 40 classes from mixed families (normal logits at scales 1e-3 to 1e300,
near-ties, big offsets, wide spreads, masked classes, temperatures); for every row the
loss and, for every 10th row, every probability and log-probability are compared with
mpmath (tests/mpref.py). Prints the rows checked, the misrounded count (must be 0), the
worst distance in ulp, and how many rows took the decimal slow path.
"""

from __future__ import annotations

import sys
import time

import mpref
import numpy as np

from xentcli.core import _ziv
from xentcli.core._kernel import log_softmax, row_losses, softmax


def family(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    k = int(rng.integers(2, 41))
    kind = int(rng.integers(0, 5))
    scale = 10.0 ** float(rng.choice([-3, 0, 0, 1, 1, 2, 5, 16, 300]))
    y = rng.normal(size=(n, k)) * scale
    if kind == 1:
        y = 1e300 + rng.normal(size=(n, k)) * 1e300 * 2.0**-48
    elif kind == 2:
        y = float(rng.choice([1e15, -3e12, 2.0**52])) + rng.normal(size=(n, k)) * 4
    elif kind == 3:
        y = rng.uniform(-760, 0.7, size=(n, k))
    if rng.random() < 0.2:
        y[rng.random(size=y.shape) < 0.1] = -np.inf
        y[:, 0] = np.where(np.isinf(y).all(axis=1), 0.0, y[:, 0])
    labels = rng.integers(0, k, size=n)
    labels[: n // 4] = np.argmax(y[: n // 4], axis=1)
    temperature = float(rng.choice([1.0, 1.0, 1.0, 0.3, 7.1, 1e-3]))
    return y, labels, temperature


def main() -> None:
    total = int(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    checked = misrounded = values = 0
    worst = 0.0
    slow_before = _ziv.SLOW_ROWS[0]
    start = time.time()
    while checked < total:
        y, labels, temperature = family(rng, 50)
        rows = row_losses(y, labels, temperature=temperature, exact=True)
        q = softmax(y[::10], temperature=temperature, exact=True)
        lq = log_softmax(y[::10], temperature=temperature, exact=True)
        for i in range(y.shape[0]):
            row = list(y[i])
            got = [float(rows.loss[i])]
            exact = [mpref.loss(row, int(labels[i]), temperature)]
            if i % 10 == 0:
                got += [float(v) for v in q[i // 10]] + [float(v) for v in lq[i // 10]]
                exact += mpref.probabilities(row, temperature)
                exact += mpref.log_probabilities(row, temperature)
            for g, e in zip(got, exact, strict=True):
                d = mpref.ulps(g, e)
                worst = max(worst, d)
                misrounded += d > 0.5
                values += 1
        checked += y.shape[0]
    print(
        f"rows {checked}, values {values}, misrounded {misrounded}, worst {worst:.4f} ulp,"
        f" slow-path rows {_ziv.SLOW_ROWS[0] - slow_before}, {time.time() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
