"""The correctly rounded kernel (exact=True) beside the default one, at every kernel shape,
and ``xent batch`` with and without ``--exact``.

    PYTHONPATH=. python benchmarks/exact_bench.py [--repeats 3] [--batch-mb 40]
    PYTHONPATH=. python benchmarks/exact_bench.py --rarity [--rows 200000]

Kernel: ``xentcli.cross_entropy(x, labels)`` (mean) on the arrays of
benchmarks/kernel_bench.py, interleaved (common.interleaved); the table gives the median
time of each and their ratio, plus the rows that took the decimal slow path. Batch:
``python -m xentcli batch FILE --format json`` on CSV files from benchmarks/datagen.py
(K = 10 and K = 1000), the two commands alternated, median wall time. Short runs: the
machine may be shared, so the figures carry the load average.

``--rarity``: how often ``xent batch --exact`` would need its second pass. For each
family of rows (the benchmark arrays, several scales, class weights, a small temperature)
a :class:`BatchAccumulator` with ``exact=True`` takes the rows in chunks, as the command
does, and for every figure it reports (the mean and the sum of all rows and of each
class) the chance that its one-pass test fails, ``2 E / ulp`` (E the figure's error bound:
the exact figure lies in an interval of width 2E, and the test fails when a rounding
boundary falls in it); the table gives the largest and the mean over the figures and the
figures actually undecided.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import (
    child_env,
    fmt_ratio,
    fmt_time,
    interleaved,
    log,
    machine_lines,
    median,
    run_child,
    table,
)
from datagen import generate
from kernel_bench import SHAPES, make_case


def batch_rows(megabytes: int, repeats: int) -> list[list[str]]:
    """``xent batch`` with and without ``--exact`` on K = 10 and K = 1000 files."""
    out = []
    env = child_env()
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as tmp:
        for k in (10, 1000):
            path = generate(Path(tmp) / f"k{k}.csv", k, megabytes << 20)
            argv = [sys.executable, "-m", "xentcli", "batch", str(path), "--format", "json"]
            times: dict[str, list[float]] = {"default": [], "exact": []}
            losses: dict[str, str] = {}
            for round_ in range(repeats + 1):
                for name in ("default", "exact") if round_ % 2 else ("exact", "default"):
                    run = run_child(argv + (["--exact"] if name == "exact" else []), env)
                    assert run.returncode == 0, run.stderr
                    if round_:
                        times[name].append(run.seconds)
                    losses[name] = run.stdout.split('"loss": ')[1].split(",")[0]
            t0, t1 = statistics.median(times["default"]), statistics.median(times["exact"])
            out.append(
                [
                    f"xent batch, K={k}, {megabytes} MB",
                    fmt_time(t0),
                    fmt_time(t1),
                    fmt_ratio(t1 / t0),
                    "-",
                    losses["default"],
                    losses["exact"],
                ]
            )
    return out


def rarity_rows(n: int) -> list[list[str]]:
    """The second pass's expected rate per figure, for families of rows."""
    from fractions import Fraction

    import numpy as np

    from xentcli.batch.accumulator import BatchAccumulator, BatchOptions
    from xentcli.core import row_floor

    families = {
        "benchmark arrays, K=10": dict(scale=1.0),
        "normal * 1e-3, K=10": dict(scale=5e-4),
        "normal * 30, K=10": dict(scale=15.0),
        "normal * 1e5, K=10": dict(scale=5e4),
        "benchmark arrays, weights 1..10": dict(
            scale=1.0, weights=[float(c + 1) for c in range(10)]
        ),
        "benchmark arrays, temperature 1e-3": dict(scale=1.0, temperature=1e-3),
    }
    out = []
    for name, family in families.items():
        x, labels = make_case(n, 10, seed=11)
        x *= family["scale"]
        options = BatchOptions(
            exact=True,
            weights=family.get("weights"),
            temperature=family.get("temperature", 1.0),
        )
        acc = BatchAccumulator(10, options)
        for start in range(0, n, 1 << 16):
            acc.update(x[start : start + (1 << 16)], labels[start : start + (1 << 16)])
        undecided = acc.undecided()  # (also ends the file: its sums join the totals)
        assert acc.class_errors is not None
        chances = []
        sets = [(acc.class_sums.total(), acc.class_errors.total(), acc.class_weights.total(), n)]
        for c in range(10):
            sets.append(
                (
                    acc.class_sums.exact_sum(c),
                    acc.class_errors.exact_sum(c),
                    acc.class_weights.exact_sum(c),
                    int(acc.class_rows[c]),
                )
            )
        for total, error, weight, rows in sets:
            e = error.exact() + row_floor(rows)
            for w in (Fraction(1), weight.exact()):  # the sum, the mean
                value = float(total.exact() / w)
                chances.append(float(2 * e / w / Fraction(float(np.spacing(value)))))
        out.append(
            [
                name,
                f"{n:,}",
                f"{max(chances):.2g}",
                f"{sum(chances) / len(chances):.2g}",
                "yes" if undecided else "0 of 22",
            ]
        )
        log(f"rarity: {name}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-mb", type=int, default=40)
    parser.add_argument("--rarity", action="store_true", help="the second pass's rate only")
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    if args.rarity:
        header = ["rows", "N", "largest 2E/ulp", "mean 2E/ulp", "figures undecided"]
        print("\n".join(machine_lines()))
        print("\n".join(table(header, rarity_rows(args.rows))))
        return
    import xentcli
    from xentcli.core import _ziv

    rows = []
    load_before = os.getloadavg()
    for n, k in SHAPES:
        x, labels = make_case(n, k)
        log(f"shape ({n}, {k})")
        slow_before = _ziv.SLOW_ROWS[0]
        got = interleaved(
            {
                "default": lambda x=x, labels=labels: xentcli.cross_entropy(x, labels),
                "exact": lambda x=x, labels=labels: xentcli.cross_entropy(x, labels, exact=True),
            },
            repeats=args.repeats,
        )
        slow = _ziv.SLOW_ROWS[0] - slow_before
        t_default = median(got["default"].times)
        t_exact = median(got["exact"].times)
        rows.append(
            [
                f"({n:,}, {k:,})",
                fmt_time(t_default),
                fmt_time(t_exact),
                fmt_ratio(t_exact / t_default),
                f"{slow} of {n * (args.repeats + 1):,}",
                repr(got["default"].result),
                repr(got["exact"].result),
            ]
        )
    rows += batch_rows(args.batch_mb, args.repeats)
    header = ["shape", "default", "exact=True", "ratio", "slow-path rows", "default mean",
              "exact mean"]  # fmt: skip
    print("\n".join(machine_lines()))
    print(f"Load average before: {load_before}, after: {os.getloadavg()}")
    print("\n".join(table(header, rows)))


if __name__ == "__main__":
    main()
