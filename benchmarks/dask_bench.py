"""Local ``xent batch`` vs ``--engine dask``, side by side, and the cost model's figures.

Measures, on the same 8 CSV files (K = 10, float32-like logits, ``datagen.generate``):

- local: ``xent batch FILES`` in one process (default threads, then ``XENT_THREADS=1``,
  the throughput of one core);
- dask: ``xentcli.dask.accumulate`` on a local cluster of 1 and of 2 worker processes
  (one thread each), the cluster started once per size (its start-up timed apart);
- the per-task overhead: 32 one-row files through the engine (time per task);
- the reduction: loading, merging and saving two states (one step of the tree).

Every dask result is checked to be the same bits as the local one. The figures go to
stdout as Markdown and, with ``--results``, into a section of benchmarks/RESULTS.md
(between markers, the rest of the file untouched). docs/scaling.md explains the model.

    python benchmarks/dask_bench.py --data-dir /tmp/xdask --mb 25 --results
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import common  # noqa: E402
import datagen  # noqa: E402

BEGIN = "<!-- dask_bench: begin -->"
END = "<!-- dask_bench: end -->"
FILES = 8
K = 10


def local_run(paths: list[str], threads: str | None) -> tuple[float, str]:
    env = common.child_env()
    env["PYTHONPATH"] = str(HERE.parent)
    env.pop("XENT_THREADS", None)
    if threads is not None:
        env["XENT_THREADS"] = threads
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "xentcli", "batch", *paths, "--format", "json"],
        env=env,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start, out.stdout.decode()


def start_cluster(workers: int) -> tuple[object, object, float]:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address="127.0.0.1:0",  # any free port: no clash, no warning
        silence_logs=logging.CRITICAL,
        env={"XENT_THREADS": "1", "PYTHONPATH": str(HERE.parent)},
    )
    client = Client(cluster)
    client.wait_for_workers(workers)
    return cluster, client, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/xdask"))
    parser.add_argument("--mb", type=float, default=25.0, help="size of each of the 8 files")
    parser.add_argument("--results", action="store_true", help="write into RESULTS.md")
    args = parser.parse_args()

    from xentcli import BatchAccumulator
    from xentcli.batch import state_file as state
    from xentcli.dask import accumulate

    args.data_dir.mkdir(parents=True, exist_ok=True)
    size = int(args.mb * 1e6)
    paths = [
        str(datagen.generate(args.data_dir / f"k{K}_{size}_{i}.csv", K, size, seed=i))
        for i in range(FILES)
    ]
    total = sum(os.path.getsize(p) for p in paths)
    tiny = []
    for i in range(32):
        path = args.data_dir / f"tiny_{i}.csv"
        path.write_text("a,b,c,label\n0.5,1.5,-1,1\n")
        tiny.append(str(path))
    load_before = os.getloadavg()
    began = time.perf_counter()
    common.log(f"{FILES} files, {total / 1e6:.0f} MB")

    local_run(paths[:1], None)  # warm the page cache and the bytecode
    t_local, reference = local_run(paths, None)
    t_local1, _ = local_run(paths, "1")
    common.log(f"local {t_local:.2f} s, one thread {t_local1:.2f} s")
    expected = json.loads(reference)

    rows = []
    overheads = {}
    for workers in (1, 2):
        cluster, client, t_start = start_cluster(workers)
        try:
            accumulate(tiny[:2], client=client)  # warm the workers' imports
            start = time.perf_counter()
            accumulate(tiny, client=client)
            t_tiny = time.perf_counter() - start
            start = time.perf_counter()
            acc = accumulate(paths, client=client)
            t_run = time.perf_counter() - start
        finally:
            client.close()  # type: ignore[attr-defined]
            cluster.close()  # type: ignore[attr-defined]
        summary = acc.summary().to_json()
        same = all(summary[k] == expected[k] for k in ("loss", "loss_sum", "per_class", "files"))
        assert same, "the dask engine's figures differ from one process"
        overheads[workers] = t_tiny / len(tiny)
        rows.append((workers, t_start, t_run, t_tiny))
        common.log(f"dask {workers} workers: start {t_start:.2f} s, run {t_run:.2f} s")

    # One reduction step: two states of a K = 10 run loaded, merged, saved.
    one = BatchAccumulator(K)
    import numpy as np

    rng = np.random.default_rng(0)
    one.update(rng.normal(size=(100_000, K)), rng.integers(0, K, 100_000))
    text = state.dumps(one)
    start = time.perf_counter()
    for _ in range(20):
        merged = state.loads(text)
        merged.merge(state.loads(text))
        state.dumps(merged)
    t_merge = (time.perf_counter() - start) / 20

    lines = report(paths, total, t_local, t_local1, rows, overheads, t_merge, load_before)
    lines.insert(
        2,
        f"Run in {time.perf_counter() - began:.0f} s on {_now()}; "
        f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}.",
    )
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    if args.results:
        write_results(text_out)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def report(paths, total, t_local, t_local1, rows, overheads, t_merge, load) -> list[str]:
    mb = total / 1e6
    per_file = mb / len(paths)
    single = mb / t_local1
    table_rows = [
        (
            "local, 1 process (2 parsing threads)",
            "-",
            common.fmt_time(t_local),
            f"{mb / t_local:.1f}",
        ),
        ("local, 1 process, XENT_THREADS=1", "-", common.fmt_time(t_local1), f"{single:.1f}"),
    ]
    for workers, t_start, t_run, _t_tiny in rows:
        table_rows.append(
            (
                f"--engine dask, {workers} worker process{'es' if workers > 1 else ''}",
                common.fmt_time(t_start),
                common.fmt_time(t_run),
                f"{mb / t_run:.1f}",
            )
        )
    one_worker = next(r for r in rows if r[0] == 1)
    overhead = overheads[1]
    per_worker = mb / max(1e-9, one_worker[2] - FILES * overhead)
    return [
        "## Dask engine (issue 16)",
        "",
        f"`python benchmarks/dask_bench.py --mb {per_file:.0f} --results`: {len(paths)} CSV files"
        f" of {per_file:.0f} MB (K = {K}; {mb:.0f} MB in all; the issue's 100 MB files"
        " scaled down to a shared 2-core machine), the local engine vs the Dask engine on a"
        " local cluster; every Dask result checked to be the same bits as one process.",
        "",
        *common.table(
            ["engine", "cluster start-up", "time", "MB/s"],
            table_rows,
        ),
        "",
        *common.table(
            ["cost-model figure", "measured"],
            [
                ("per-task overhead (32 one-row files, 1 worker)", common.fmt_time(overheads[1])),
                ("per-task overhead (32 one-row files, 2 workers)", common.fmt_time(overheads[2])),
                ("throughput per worker (1 worker, overhead removed)", f"{per_worker:.1f} MB/s"),
                (
                    "one reduction step (load 2 states, merge, save; K = 10)",
                    common.fmt_time(t_merge),
                ),
            ],
        ),
        "",
        "Machine: " + "; ".join(line[2:] for line in common.machine_lines()[:2]) + ".",
        "The cost model and its prediction for 100 GB: [docs/scaling.md](../docs/scaling.md).",
    ]


def write_results(section: str) -> None:
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# xent benchmark results\n"
    block = f"{BEGIN}\n{section}{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


if __name__ == "__main__":
    main()
