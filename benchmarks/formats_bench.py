"""Columnar and binary inputs, end to end: `xent batch` on .npy and Parquet files.

    python benchmarks/formats_bench.py [--quick] [--data-dir DIR] [--repeats N]

Side by side, in one run, each contender in its own child process (wall time and peak
RSS through the launcher of ``common.py``):

- ``.npy``: ``xent batch scores.npy --labels labels.npy`` against
  ``xentcli.cross_entropy`` on the same array already in memory (the array is loaded
  before the clock starts; the child reports the call's own time), float32, K = 10;
- Parquet, one column per class and one list column, K = 10 and K = 1000:
  ``xent batch`` against ``pyarrow.parquet.read_table`` and ``polars.read_parquet``, each
  followed by numpy's stable formula (the pipeline a user writes).

The section it writes replaces the one between the ``formats`` markers in
``benchmarks/RESULTS.md`` (or is appended), with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

BEGIN, END = "<!-- formats:begin -->", "<!-- formats:end -->"

CHILD = r"""
import json, sys, time
import numpy as np
kind, path = sys.argv[1], sys.argv[2]

def mean_loss(x, labels):
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return float(np.mean(lse - x[np.arange(x.shape[0]), labels]))

if kind == "in-memory":
    import xentcli
    x = np.load(path)
    labels = np.load(sys.argv[3])
    xentcli.cross_entropy(x[:1000], labels[:1000])
    start = time.perf_counter()
    loss = float(xentcli.cross_entropy(x, labels))
    print(json.dumps({"loss": loss, "seconds": time.perf_counter() - start}))
elif kind == "pyarrow":
    import pyarrow.parquet as pq
    import pyarrow.compute as pc
    table = pq.read_table(path)
    labels = table.column("label").to_numpy().astype(np.int64)
    if "logits" in table.column_names:
        column = table.column("logits").combine_chunks()
        x = column.flatten().to_numpy().reshape(len(column), -1).astype(np.float64)
    else:
        names = [n for n in table.column_names if n != "label"]
        x = np.column_stack([table.column(n).to_numpy() for n in names]).astype(np.float64)
    print(json.dumps({"loss": mean_loss(x, labels)}))
elif kind == "polars":
    import polars as pl
    frame = pl.read_parquet(path)
    labels = frame["label"].to_numpy().astype(np.int64)
    if "logits" in frame.columns:
        x = np.stack(frame["logits"].to_numpy()).astype(np.float64)
    else:
        x = frame.drop("label").to_numpy().astype(np.float64)
    print(json.dumps({"loss": mean_loss(x, labels)}))
"""


def make_data(directory: Path, quick: bool, only: list[str] | None = None) -> dict[str, list[str]]:
    """The files, made once (reused when present); *only*: just these cases' files."""
    rng = np.random.default_rng(0)
    cases: dict[str, list[str]] = {}
    n_npy = 1_000_000 if quick else 10_000_000
    scores, labels = directory / f"scores_{n_npy}.npy", directory / f"labels_{n_npy}.npy"
    if (only is None or "npy" in only) and not scores.exists():
        common.log(f"making {scores} ...")
        x = np.lib.format.open_memmap(scores, mode="w+", dtype=np.float32, shape=(n_npy, 10))
        for start in range(0, n_npy, 1_000_000):
            stop = min(n_npy, start + 1_000_000)
            x[start:stop] = rng.normal(0, 3, size=(stop - start, 10))
        x.flush()
        del x
        np.save(labels, rng.integers(0, 10, size=n_npy))
    cases["npy"] = [str(scores), str(labels)]
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Row groups of 100,000 rows for K = 10 (4 MB of float32 per group) and of 8,192 rows
    # for K = 1000 (33 MB): a Parquet reader decodes a column chunk whole, so memory is
    # bounded by one row group, not by the file (see the note under the table).
    for K, n, group in (
        (10, 200_000 if quick else 2_000_000, 100_000),
        (1000, 5_000 if quick else 50_000, 8_192),
    ):
        cols = directory / f"columns_K{K}_{n}_g{group}.parquet"
        lists = directory / f"list_K{K}_{n}_g{group}.parquet"
        wanted = {f"parquet columns K={K}", f"parquet list K={K}"}
        if only is not None and not wanted & set(only):
            continue
        if not cols.exists() or not lists.exists():
            common.log(f"making {cols} and {lists} ...")
            wcols = wlist = None
            for start in range(0, n, group):
                m = min(n, start + group) - start
                x = rng.normal(0, 3, size=(m, K)).astype(np.float32)
                y = rng.integers(0, K, size=m)
                tc = pa.table({**{f"logit_{k}": x[:, k] for k in range(K)}, "label": y})
                flat = pa.array(x.reshape(-1))
                tl = pa.table({"logits": pa.FixedSizeListArray.from_arrays(flat, K), "label": y})
                if wcols is None:
                    wcols = pq.ParquetWriter(cols, tc.schema)
                    wlist = pq.ParquetWriter(lists, tl.schema)
                wcols.write_table(tc, row_group_size=group)
                assert wlist is not None
                wlist.write_table(tl, row_group_size=group)
            assert wcols is not None
            assert wlist is not None
            wcols.close()
            wlist.close()
        cases[f"parquet columns K={K}"] = [str(cols)]
        cases[f"parquet list K={K}"] = [str(lists)]
    return {k: v for k, v in cases.items() if only is None or k in only}


def xent_argv(case: str, files: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "xentcli", "batch", files[0], "--format", "json"]
    if case == "npy":
        argv += ["--labels", files[1]]
    return argv


def measure(cases: dict[str, list[str]], repeats: int) -> list[dict[str, object]]:
    rows = []
    for case, files in cases.items():
        contenders = {"xent batch": xent_argv(case, files)}
        if case == "npy":
            contenders["cross_entropy in memory"] = [
                sys.executable,
                "-c",
                CHILD,
                "in-memory",
                files[0],
                files[1],
            ]
        else:
            for name in ("pyarrow", "polars"):
                contenders[f"{name} + numpy"] = [sys.executable, "-c", CHILD, name, files[0]]
        samples: dict[str, list[common.ChildRun]] = {name: [] for name in contenders}
        loads: list[float] = []
        names = list(contenders)
        for round_ in range(repeats + 1):  # the first round warms the page cache
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                if round_:
                    loads.append(os.getloadavg()[0])
                run = common.run_child(contenders[name])
                if run.returncode != 0:
                    common.log(f"{case} / {name} failed: {run.stderr.strip()[-300:]}")
                if round_:
                    samples[name].append(run)
        for name, runs in samples.items():
            ok = [r for r in runs if r.returncode == 0]
            if not ok:
                rows.append({"case": case, "contender": name, "error": runs[-1].stderr[-200:]})
                continue
            seconds = common.median([r.seconds for r in ok])
            cpu = common.median([r.cpu_seconds for r in ok])
            if name == "cross_entropy in memory":
                seconds = common.median([json.loads(r.stdout)["seconds"] for r in ok])
                cpu = float("nan")  # the child's CPU includes loading the array
            loss = json.loads(ok[-1].stdout)["loss"]
            rows.append(
                {
                    "case": case,
                    "contender": name,
                    "seconds": seconds,
                    "cpu": cpu,
                    "load": common.median(loads),
                    "rss_mb": common.median([r.max_rss_kb for r in ok]) / 1024,
                    "loss": loss,
                    "bytes": sum(os.path.getsize(f) for f in files),
                }
            )
    return rows


def report(rows: list[dict[str, object]], command: str, started: float) -> list[str]:
    lines = [
        BEGIN,
        "## Input formats (issue 12): .npy and Parquet end to end",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" in {time.time() - started:.0f} s; load average before/after: see the machine"
        f" lines. {os.getloadavg()[0]:.2f} (1 min) at the end.",
        "",
        *common.machine_lines(),
        "",
        "Median wall time of a child process (the in-memory call: the call alone), its CPU"
        " time (user + system, all threads), peak RSS, and the 1-minute load average of the"
        " 2-core machine while the case ran (other work shares it: wall times move with the"
        " load, CPU times much less).",
        "Ratio: xent's time over the fastest alternative (for .npy: over"
        " `cross_entropy` on the array already in memory); wall time, then CPU time.",
        "",
    ]
    table_rows = []
    verdicts = []
    by_case: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_case.setdefault(str(row["case"]), []).append(row)
    for case, entries in by_case.items():
        xent = next((e for e in entries if e["contender"] == "xent batch" and "seconds" in e), None)
        others = [e for e in entries if e["contender"] != "xent batch" and "seconds" in e]
        best = min(others, key=lambda e: float(e["seconds"])) if others else None
        for e in entries:
            if "seconds" not in e:
                note = common.drop_note(str(e["error"]))
                table_rows.append([case, e["contender"], "failed", *[""] * 5, note])
                continue
            ratio = cpu_ratio = ""
            if xent is not None and best is not None and e is xent:
                ratio = common.fmt_ratio(float(xent["seconds"]) / float(best["seconds"]))
                cpu_ratio = _cpu_ratio(xent, best)
            cpu = float(e["cpu"])
            table_rows.append(
                [
                    case,
                    e["contender"],
                    common.fmt_time(float(e["seconds"])),
                    "" if cpu != cpu else common.fmt_time(cpu),
                    f"{float(e['rss_mb']):.0f} MB",
                    ratio,
                    cpu_ratio,
                    f"{float(e['load']):.1f}",
                    repr(e["loss"]),
                ]
            )
        if xent is not None and best is not None:
            ratio = float(xent["seconds"]) / float(best["seconds"])
            goal = 1.5 if case == "npy" else 1.0
            cpu_ratio = _cpu_ratio(xent, best)
            verdicts.append(
                [
                    f"{case}: time vs {best['contender']}",
                    f"<= {goal}x",
                    f"{ratio:.2f}x" + (f" (CPU {cpu_ratio})" if cpu_ratio else ""),
                    "met" if ratio <= goal else "**not met**",
                ]
            )
            rss = float(xent["rss_mb"])
            verdicts.append(
                [
                    f"{case}: peak RSS ({float(xent['bytes']) / 1e6:.0f} MB of input)",
                    "<= 250 MB",
                    f"{rss:.0f} MB",
                    "met" if rss <= 250 else "**not met**",
                ]
            )
    header = ["case", "contender", "wall", "CPU", "peak RSS", "xent / best", "CPU ratio"]
    lines += common.table([*header, "load", "mean loss"], table_rows)
    lines += ["", "| target | goal | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(v)} |" for v in verdicts]
    lines += [
        "",
        "Memory in Parquet is bounded by one row group, not by the file: a reader decodes a"
        " column chunk whole (pyarrow's buffered page reads, no memory map, no pre-buffering,"
        " are what keeps xent near one batch otherwise). Measured while writing this: a"
        " 50,000 x 1000 file written as ONE row group (200 MB of float32) peaks at 650-900 MB"
        " in any reader (pyarrow.parquet.iter_batches alone: 656 MB), so such files should be"
        " written with smaller row groups (pyarrow's row_group_size) to be scored in 250 MB.",
        "",
        "Parquet with a column per class: each batch of rows becomes xent's (n, K) float64"
        " matrix in one column-major `RecordBatch.to_tensor(row_major=False)` (how Arrow"
        " holds the columns: 3.8 ms for 8192 x 1000 float32, against 29 ms row-major) and"
        " one widening (float32 widens exactly: the same bits as the CSV). Before, one"
        " numpy call per column and batch took 3.3 s of CPU to read and convert the"
        " 50,000 x 1000 file, 1.0 s after (measured 2026-12-02, load 6); a row group is let"
        " go before the next is read (the last record batch kept it: two row groups at"
        " once, 251 MB then 231 MB peak).",
        "",
        "Since the first runs (2026-12-02, evening): the metrics' rank, top probability"
        " and sum of squared probabilities come from the kernel's own pass over each block,"
        " and the metrics' exact sums are made in the parsing threads. Interleaved medians"
        " at load 0.6-1.0, before and after: Parquet K = 10 columns 1.17 -> 1.01 s, K = 1000"
        " columns 2.36 -> 2.19 s, .npy 3.75 -> 3.23 s. The alternatives' own times move"
        " more than that from run to run: polars + numpy on the K = 1000 file took 1.15,"
        " 1.41, 2.06, 3.62 and 4.64 s in five runs in a row (user 0.76-1.11 s, system"
        " 0.60-3.95 s: the page faults of its 1.5-1.7 GB), and the in-memory call on the"
        " .npy array 1.75-2.88 s between runs of this benchmark (its 800 MB float64 copy).",
        "",
        "What decides the ratio: the alternatives compute the mean alone, from the whole"
        " file in memory (polars: 1.45 GB peak at K = 1000); xent computes the whole report"
        " (exact sums, per-class figures, calibration, the 1000 x 1000 confusion matrix and"
        " its JSON) in under 250 MB. xent's CPU time at K = 1000 columns (measured"
        " 2026-12-02, load 5-7): 0.46 s start-up, 1.2 s reading and converting, 2.1 s the"
        " kernel, the metrics and the report: 3.7 s. polars + numpy took 2.4 s of CPU at"
        " load 3.9 and 4-5 s at load 6-8 (its thread pool's CPU time grows with the load;"
        " xent's stays at 3.3-3.8 s), so the verdicts move with the load: a full run at load"
        " 6-12 met every Parquet case (K = 1000 columns 0.94x, K = 10 columns 0.81x), a run"
        " at load 3.6-3.9 not the two one-column-per-class cases (1.20x and 1.60x). On a"
        " quiet machine reading cannot close the gap alone: with reading and converting at"
        " zero, xent would still spend 2.5 s of CPU against polars' 2.4 s for the whole"
        " pipeline.",
        "",
        "Polars is timed as a user would write it; casting to Float64 inside polars and"
        " asking for a C-ordered array is the same within noise (3.85 s of CPU against"
        " 4.07 s, 4 interleaved runs, load 8).",
        "",
        END,
    ]
    return lines


def _cpu_ratio(xent: dict[str, object], best: dict[str, object]) -> str:
    """xent's CPU time over the best alternative's, when both are known."""
    mine, theirs = float(xent["cpu"]), float(best["cpu"])  # type: ignore[arg-type]
    return "" if mine != mine or theirs != theirs else common.fmt_ratio(mine / theirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files (a minute)")
    parser.add_argument("--data-dir", type=Path, help="keep and reuse the generated files")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument(
        "--case",
        action="append",
        help="only this case (repeatable; e.g. 'parquet columns K=1000'): written to a"
        " section of its own, the full run's figures are kept",
    )
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.data_dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        rows = measure(make_data(directory, args.quick, args.case), args.repeats)
    command = "python benchmarks/formats_bench.py " + " ".join(
        f"'{a}'" if " " in a else a for a in sys.argv[1:]
    )
    lines = report(rows, command.strip(), started)
    if args.case:
        lines[1] = "## Input formats (issue 12), again: " + ", ".join(args.case)
        slug = re.sub(r"[^a-z0-9]+", "-", "-".join(args.case).lower()).strip("-")
        common.replace_section(args.output, f"formats-{slug}", lines[1:-1])
    else:
        common.replace_section(args.output, "formats", lines[1:-1])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
