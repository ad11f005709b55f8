"""exact=True on logits with every combination of the loss options (issue 17: soft
targets, label smoothing, class weights and temperature keep the contract): scales x
temperatures x class weights x smoothing x labels or soft targets, masked classes
included, each row loss and mean within half an ulp of the mpmath reference
(tests/mpref.py), i.e. 0 misrounded.

``PYTHONPATH=.:tests python tests/test_exact_options.py SEED ROWS`` runs the long sweep
recorded in docs/accuracy.md (seed 2, 150 rows per combination: 36,000 rows).
"""

from __future__ import annotations

import itertools
import sys

import mpref
import numpy as np

from xentcli.core._kernel import cross_entropy, row_losses

SCALES = (1e-3, 1.0, 30.0, 1e5, 1e300)
TEMPERATURES = (1.0, 0.3, 7.1, 1e-3)
SMOOTHING = (0.0, 0.1, 0.999)


def sweep(seed: int, rows: int) -> tuple[int, int, float, int, int]:
    """(rows, misrounded rows, worst ulp, means, misrounded means)."""
    rng = np.random.default_rng(seed)
    total = bad = means = bad_means = 0
    worst = 0.0
    combos = itertools.product(SCALES, TEMPERATURES, (False, True), SMOOTHING, (False, True))
    for scale, temperature, weighted, eps, soft in combos:
        k = int(rng.integers(2, 9))
        y = rng.normal(size=(rows, k)) * scale
        if k > 2:
            y[::5, k - 1] = -np.inf  # a masked class in every fifth row
        w = list(rng.uniform(0.2, 5, size=k)) if weighted else None
        t = labels = None
        if soft:
            t = rng.dirichlet(np.ones(k), size=rows)
            if k > 2:
                t[::5, k - 1] = 0.0
            t /= t.sum(axis=1, keepdims=True)
        else:
            labels = rng.integers(0, k, size=rows)
        options = {"weights": w, "label_smoothing": eps, "temperature": temperature}
        got = row_losses(y, labels, targets=t, exact=True, **options)
        for i in range(rows):
            exact = mpref.row_loss(
                list(y[i]),
                None if labels is None else int(labels[i]),
                targets=None if t is None else list(t[i]),
                **options,
            )
            ulps = mpref.ulps(float(got.loss[i]), exact)
            worst = max(worst, ulps)
            total += 1
            bad += ulps > 0.5
        if np.isfinite(got.loss).all():
            mean = cross_entropy(y, labels, targets=t, exact=True, **options)
            exact_mean = mpref.mean(
                [list(r) for r in y],
                None if labels is None else [int(c) for c in labels],
                targets=None if t is None else [list(r) for r in t],
                **options,
            )
            means += 1
            bad_means += mpref.ulps(mean, exact_mean) > 0.5
    return total, bad, worst, means, bad_means


def test_every_combination_of_options_is_correctly_rounded() -> None:
    total, bad, worst, means, bad_means = sweep(seed=1, rows=6)
    assert total == 6 * len(SCALES) * len(TEMPERATURES) * 2 * len(SMOOTHING) * 2
    assert bad == 0, worst
    assert means > 20
    assert bad_means == 0


if __name__ == "__main__":
    found = sweep(int(sys.argv[1]), int(sys.argv[2]))
    print("rows {} misrounded {} worst {:.4f} ulp; means {} misrounded {}".format(*found))
