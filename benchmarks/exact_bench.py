"""The correctly rounded kernel (exact=True) beside the default one, at every kernel shape.

    PYTHONPATH=. python benchmarks/exact_bench.py [--repeats 3]

Both are ``xentcli.cross_entropy(x, labels)`` (mean) on the arrays of
benchmarks/kernel_bench.py, interleaved (common.interleaved); the table gives the median
time of each and their ratio, plus the rows that took the decimal slow path. Short runs:
the machine may be shared, so the figures carry the load average.
"""

from __future__ import annotations

import argparse
import os

from common import fmt_ratio, fmt_time, interleaved, log, machine_lines, median, table
from kernel_bench import SHAPES, make_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
    header = ["shape", "default", "exact=True", "ratio", "slow-path rows", "default mean",
              "exact mean"]  # fmt: skip
    print("\n".join(machine_lines()))
    print(f"Load average before: {load_before}, after: {os.getloadavg()}")
    print("\n".join(table(header, rows)))


if __name__ == "__main__":
    main()
