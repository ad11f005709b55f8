"""`xent compare A B` against `xent batch A B` on the same two files, side by side.

    python benchmarks/compare_bench.py [--quick] [--data-dir DIR] [--repeats N]

Both commands read both files whole; compare also pairs the rows and keeps the paired
sums, the McNemar table and the changed rows. Goal (issue 14): compare at most 1.2x the
time of batch, memory flat. Each run is a child process (wall time, CPU time and peak
RSS through a launcher like ``common.py``'s), the two contenders interleaved. Writes the
``compare`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def make_pair(directory: Path, rows: int, k: int) -> tuple[Path, Path]:
    """Two CSVs of float32-like logits (6 significant digits) on the same labels."""
    a, b = directory / f"a_{rows}_{k}.csv", directory / f"b_{rows}_{k}.csv"
    if a.exists() and b.exists():
        return a, b
    rng = np.random.default_rng(0)
    header = ",".join([*(f"logit_{j}" for j in range(k)), "label"]) + "\n"
    with a.open("w") as out_a, b.open("w") as out_b:
        out_a.write(header)
        out_b.write(header)
        for start in range(0, rows, 100_000):
            n = min(rows, start + 100_000) - start
            labels = rng.integers(0, k, n)
            for out, noise in ((out_a, 2.0), (out_b, 2.5)):
                logits = rng.normal(0, noise, (n, k))
                logits[np.arange(n), labels] += 2.0
                text = np.char.mod("%.6g", logits)
                lines = [",".join(row) + f",{y}\n" for row, y in zip(text, labels, strict=True)]
                out.write("".join(lines))
    return a, b


@dataclass
class Run:
    seconds: float  #: wall time
    cpu: float  #: user + system time of the contender
    rss_mb: float  #: peak resident set
    error: str | None = None


def run_child(argv: list[str]) -> Run:
    """*argv* run by ``common.run_child`` (a grandchild, output to files)."""
    child = common.run_child(argv)
    if child.returncode != 0:
        return Run(math.nan, math.nan, 0.0, child.stderr[-300:])
    return Run(child.seconds, child.cpu_seconds, child.max_rss_kb / 1024)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "RESULTS.md")
    args = parser.parse_args()
    started = time.time()
    load_before = os.getloadavg()[0]
    shapes = [(200_000, 10)] if args.quick else [(2_000_000, 10), (20_000, 1000)]
    rows_out = []
    verdicts = []
    with tempfile.TemporaryDirectory() as scratch:
        common.PYCACHE = Path(scratch) / "pycache"  # bytecode as an installed user has it
        directory = args.data_dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        for rows, k in shapes:
            a, b = make_pair(directory, rows, k)
            size = (a.stat().st_size + b.stat().st_size) / 1e6
            contenders = {
                "xent batch A B": ["batch", str(a), str(b), "--format", "json"],
                "xent compare A B": ["compare", str(a), str(b), "--format", "json"],
            }
            runs: dict[str, list[Run]] = {name: [] for name in contenders}
            names = list(contenders)
            for round_ in range(args.repeats + 1):  # round 0 warms up (page cache, bytecode)
                for name in names[round_ % 2 :] + names[: round_ % 2]:
                    run = run_child([sys.executable, "-m", "xentcli", *contenders[name]])
                    if run.error is not None:
                        common.log(f"{name} failed: {run.error}")
                    elif round_:
                        runs[name].append(run)
            if not all(runs.values()):
                continue
            wall = {n: common.median([r.seconds for r in rs]) for n, rs in runs.items()}
            cpu = {n: common.median([r.cpu for r in rs]) for n, rs in runs.items()}
            peak = {n: max(r.rss_mb for r in rs) for n, rs in runs.items()}
            for name in names:
                rows_out.append(
                    [
                        f"{rows:,} x {k} (2 x {size / 2:.0f} MB)",
                        name,
                        common.fmt_time(wall[name]),
                        " ".join(f"{r.seconds:.2f}" for r in runs[name]),
                        common.fmt_time(cpu[name]),
                        " ".join(f"{r.cpu:.2f}" for r in runs[name]),
                        f"{peak[name]:.0f} MB",
                    ]
                )
            batch_, compare_ = names
            ratio = wall[compare_] / wall[batch_]
            cpu_ratio = cpu[compare_] / cpu[batch_]
            verdicts.append(
                [
                    f"compare vs batch, wall time, {rows:,} x {k}",
                    "<= 1.2x",
                    f"{ratio:.2f}x",
                    "met" if ratio <= 1.2 else "**not met**",
                ]
            )
            verdicts.append(
                [
                    f"compare vs batch, CPU time (user + sys), {rows:,} x {k}",
                    "(the same, steadier under load)",
                    f"{cpu_ratio:.2f}x",
                    "met" if cpu_ratio <= 1.2 else "**not met**",
                ]
            )
            verdicts.append(
                [
                    f"compare peak RSS (largest of the runs), {rows:,} x {k}",
                    "<= 250 MB",
                    f"{peak[compare_]:.0f} MB",
                    "met" if peak[compare_] <= 250 else "**not met**",
                ]
            )
    command = ("python benchmarks/compare_bench.py " + " ".join(sys.argv[1:])).strip()
    lines = [
        "## Two models on the same rows (issue 14): xent compare vs xent batch",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" in {time.time() - started:.0f} s; load average {load_before:.2f} at the start,"
        f" {os.getloadavg()[0]:.2f} at the end (other work on the machine slows both"
        " contenders alike: they run interleaved, after a warm-up round). Medians of"
        f" {args.repeats} runs each; every run's figures are listed.",
        "",
        *common.machine_lines(),
        "",
        *common.table(
            ["files", "command", "median wall", "wall (s)", "median CPU", "CPU (s)", "peak RSS"],
            rows_out,
        ),
        "",
        "| target | goal | measured | verdict |",
        "|---|---|---|---|",
        *(f"| {' | '.join(v)} |" for v in verdicts),
        "",
    ]
    common.replace_section(args.output, "compare", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
