"""Cost of the evaluation metrics (issue 13): ``xent batch`` before and after, one run.

Three contenders, fresh child processes interleaved round by round on the same files
(timed and measured with ``os.wait4`` as in batch_bench.py):

- ``before``: ``xent batch FILE --format json`` from a checkout of xent without the
  metrics (``--baseline DIR``, a directory holding its ``xentcli`` package);
- ``metrics``: the same command with this checkout (every metric and the normal
  intervals on, as by default);
- ``bootstrap 200``: this checkout with ``--bootstrap 200``.

Files: ``datagen.generate`` CSVs of K = 10 and K = 1000 classes, ``--mb`` megabytes
each (small by default: the machine is shared).

    python benchmarks/metrics_bench.py --baseline /tmp/xent_base --mb 40 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common import ChildRun, Samples, child_env, fmt_ratio, log, run_child, table
from datagen import count_rows, generate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def contenders(path: Path, baseline: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    argv = [sys.executable, "-m", "xentcli", "batch", str(path), "--format", "json"]

    def env(root: Path) -> dict[str, str]:
        out = child_env()
        out["PYTHONPATH"] = str(root)
        return out

    return {
        "before": (argv, env(baseline)),
        "metrics": (argv, env(ROOT)),
        "bootstrap 200": ([*argv, "--bootstrap", "200"], env(ROOT)),
    }


def measure(path: Path, baseline: Path, rounds: int) -> dict[str, Samples]:
    runs = contenders(path, baseline)
    out = {name: Samples() for name in runs}
    names = list(runs)
    for round_ in range(rounds + 1):  # the first round warms the caches
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            argv, env = runs[name]
            run: ChildRun = run_child(argv, env)
            if run.returncode != 0:
                out[name].error = run.stderr.strip().splitlines()[-1]
                continue
            if round_:
                out[name].times.append(run.seconds)
                out[name].rss_kb.append(run.max_rss_kb)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/xent-metrics-bench"))
    parser.add_argument("--mb", type=float, default=40.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in (10, 1000):
        path = generate(args.data_dir / f"k{k}.csv", k, int(args.mb * 1e6))
        n = count_rows(path)
        log(f"K={k}: {path} ({os.path.getsize(path) / 1e6:.0f} MB, {n} rows)")
        samples = measure(path, args.baseline, args.rounds)
        base = samples["before"]
        for name, s in samples.items():
            if not s.ok:
                rows.append([f"K={k}", name, "failed", s.error or "", "", ""])
                continue
            rows.append(
                [
                    f"K={k}, {n:,} rows, {os.path.getsize(path) / 1e6:.0f} MB",
                    name,
                    f"{s.time:.2f} s",
                    fmt_ratio(s.time / base.time) if base.ok else "",
                    f"{s.rss_mb:.0f} MB",
                    " ".join(f"{t:.2f}" for t in s.times),
                ]
            )
    header = ["file", "contender", "median time", "/ before", "peak RSS", "times (s)"]
    print("\n".join(table(header, rows)))


if __name__ == "__main__":
    main()
