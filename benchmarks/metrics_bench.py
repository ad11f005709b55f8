"""Cost of the evaluation metrics (issue 13): ``xent batch`` before and after, one run.

Three contenders, fresh child processes interleaved round by round on the same files
(timed and measured with ``os.wait4`` as in batch_bench.py; their CPU time, user + sys,
from ``RUSAGE_CHILDREN`` around each run, since on a shared machine wall time moves with
the neighbours' load):

- ``before``: ``xent batch FILE --format json`` from a checkout of xent without the
  metrics (``--baseline DIR``, a directory holding its ``xentcli`` package);
- ``metrics``: the same command with this checkout (every metric and the normal
  intervals on, as by default);
- ``bootstrap 200``: this checkout with ``--bootstrap 200``;
- optionally ``metrics, --previous``: the command with another checkout that has the
  metrics (``--previous DIR``), to show what a change to this checkout bought.

Files: ``datagen.generate`` CSVs of K = 10 and K = 1000 classes, ``--mb`` megabytes
each (500: the batch benchmark's files; less on a busy machine, though small files
exaggerate the fixed costs: start-up, the summary, the JSON of a 1000 x 1000 matrix). The table replaces the section between
the ``metrics`` markers of ``benchmarks/RESULTS.md`` (``--output``).

    python benchmarks/metrics_bench.py --baseline /tmp/xent_base --mb 500 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from common import (
    ChildRun,
    Samples,
    child_env,
    fmt_ratio,
    log,
    machine_lines,
    replace_section,
    run_child,
    table,
)
from datagen import count_rows, generate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def contenders(
    path: Path, baseline: Path, previous: Path | None = None
) -> dict[str, tuple[list[str], dict[str, str]]]:
    argv = [sys.executable, "-m", "xentcli", "batch", str(path), "--format", "json"]

    def env(root: Path) -> dict[str, str]:
        out = child_env()
        out["PYTHONPATH"] = str(root)
        return out

    out = {"before": (argv, env(baseline))}
    if previous is not None:
        out["metrics, --previous"] = (argv, env(previous))
    out["metrics"] = (argv, env(ROOT))
    out["bootstrap 200"] = ([*argv, "--bootstrap", "200"], env(ROOT))
    return out


@dataclass
class Timed(Samples):
    """:class:`Samples` with each run's CPU time (user + sys of the child)."""

    cpu: list[float] = field(default_factory=list)

    @property
    def cpu_time(self) -> float:
        return median(self.cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    path: Path, baseline: Path, rounds: int, previous: Path | None = None
) -> dict[str, Timed]:
    runs = contenders(path, baseline, previous)
    out = {name: Timed() for name in runs}
    names = list(runs)
    for round_ in range(rounds + 1):  # the first round warms the caches
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            argv, env = runs[name]
            cpu = _children_cpu()  # the launcher's and, once waited for, the contender's
            run: ChildRun = run_child(argv, env)
            cpu = _children_cpu() - cpu
            if run.returncode != 0:
                out[name].error = run.stderr.strip().splitlines()[-1]
                continue
            if round_:
                out[name].times.append(run.seconds)
                out[name].rss_kb.append(run.max_rss_kb)
                out[name].cpu.append(cpu)
    return out


def verdict(k: int, samples: dict[str, Timed]) -> str:
    """One line: the three targets at *k* classes, met or not (time: wall time; the CPU
    time's ratios beside them)."""
    base, metrics, boot = samples["before"], samples["metrics"], samples["bootstrap 200"]
    if not (base.ok and metrics.ok and boot.ok):
        return f"- K={k}: a contender failed"
    cpu = f"(CPU {fmt_ratio(metrics.cpu_time / base.cpu_time)})"
    boot_cpu = f"(CPU {fmt_ratio(boot.cpu_time / base.cpu_time)})"
    checks = [
        (
            f"metrics {fmt_ratio(metrics.time / base.time)} {cpu}",
            metrics.time <= 1.15 * base.time,
        ),
        (f"bootstrap {fmt_ratio(boot.time / base.time)} {boot_cpu}", boot.time <= 2 * base.time),
        (
            f"peak RSS {max(metrics.rss_mb, boot.rss_mb):.0f} MB",
            max(metrics.rss_mb, boot.rss_mb) <= 250,
        ),
    ]
    return f"- K={k}: " + "; ".join(
        f"{text} {'met' if ok else '**not met**'}" for text, ok in checks
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--previous", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/xent-metrics-bench"))
    parser.add_argument("--mb", type=float, default=500.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.time()
    load_before = os.getloadavg()[0]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    verdicts = []
    for k in (10, 1000):
        # the size in the name: a kept data directory serves each size its own files
        path = generate(args.data_dir / f"k{k}-{args.mb:g}mb.csv", k, int(args.mb * 1e6))
        n = count_rows(path)
        log(f"K={k}: {path} ({os.path.getsize(path) / 1e6:.0f} MB, {n} rows)")
        samples = measure(path, args.baseline, args.rounds, args.previous)
        base = samples["before"]
        verdicts.append(verdict(k, samples))
        for name, s in samples.items():
            if not s.ok:
                rows.append([f"K={k}", name, "failed", s.error or "", "", "", "", ""])
                continue
            rows.append(
                [
                    f"K={k}, {n:,} rows, {os.path.getsize(path) / 1e6:.0f} MB",
                    name,
                    f"{s.time:.2f} s",
                    fmt_ratio(s.time / base.time) if base.ok else "",
                    f"{s.cpu_time:.2f} s",
                    fmt_ratio(s.cpu_time / base.cpu_time) if base.ok else "",
                    f"{s.rss_mb:.0f} MB",
                    " ".join(f"{t:.2f}" for t in s.times),
                ]
            )
    header = [
        "file",
        "contender",
        "median wall",
        "/ before",
        "median CPU",
        "/ before",
        "peak RSS",
        "wall times (s)",
    ]
    command = "python benchmarks/metrics_bench.py " + " ".join(sys.argv[1:])
    lines = [
        "## Evaluation metrics (issue 13): cost against the batch before them",
        "",
        f"Generated by `{command.strip()}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" in {time.time() - started:.0f} s ({args.rounds} rounds after a warm-up, contenders"
        f" interleaved; 1-minute load average {load_before:.1f} at the start,"
        f" {os.getloadavg()[0]:.1f} at the end). Each is `xent batch"
        " FILE --format json` in a fresh process: `before` the checkout without the metrics"
        f" ({args.baseline}), `metrics` this checkout (every metric and the normal intervals,"
        " as by default), `bootstrap 200` with `--bootstrap 200`"
        + (
            f", `metrics, --previous` the checkout {args.previous} with the metrics."
            if args.previous is not None
            else "."
        ),
        "",
        *machine_lines(),
        "",
        *table(header, rows),
        "",
        "Targets: every metric <= 1.15x `before`, `--bootstrap 200` <= 2x, peak RSS <= 250 MB"
        " (judged on the wall time; CPU time is user + sys of the process, all threads).",
        *verdicts,
    ]
    replace_section(args.output, "metrics", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
