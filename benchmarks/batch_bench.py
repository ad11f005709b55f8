"""Batch benchmark, end to end: read a CSV of logits and labels, print the mean loss.

Every contender is a fresh child process (so start-up, imports and peak memory are its
own), measured with ``os.wait4``: wall time and peak resident set size (``ru_maxrss``).
The contenders run interleaved, round after round, on the same files; the files are
read once before the first round so that every contender finds them in the page cache.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common import (
    ChildRun,
    Samples,
    child_env,
    drop_note,
    fmt_ratio,
    fmt_time,
    log,
    run_child,
    table,
)
from pipelines import PIPELINES
from startup_bench import xent_command

HERE = Path(__file__).resolve().parent
XENT = "xent"
RSS_LIMIT_MB = 250.0
#: The pipelines issue 4 names (each reads the whole file, then numpy); the streaming
#: pyarrow pipeline is an extra, the fastest way we know to do the job in Python.
ISSUE_NAMED = ("pandas", "pandas (engine=pyarrow)", "pyarrow", "polars")


def xent_argv(path: Path) -> list[str]:
    return [*xent_command(), "batch", str(path), "--format", "json"]


def argv_for(name: str, path: Path) -> list[str]:
    if name == XENT:
        return xent_argv(path)
    return [sys.executable, str(HERE / "pipelines.py"), name, str(path)]


def parse(run: ChildRun) -> tuple[int, float]:
    """(rows, loss) from a contender's JSON output; raises with the reason on failure."""
    if run.returncode != 0:
        tail = [line for line in run.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(f"exit {run.returncode}: {tail[-1] if tail else 'no message'}")
    data = json.loads(run.stdout)
    return int(data["rows"]), float(data["loss"])


def warm_cache(path: Path) -> None:
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass


@dataclass
class BatchResult:
    label: str
    path: Path
    size: int
    samples: dict[str, Samples]
    reference: object = None  #: the mean loss in extended precision (np.longdouble)


def reference_loss(path: Path) -> object:
    """The file's mean loss computed in extended precision (``np.longdouble``).

    The CSV's decimal logits are first rounded to float64 (as every contender does),
    then each row's log-sum-exp and the mean are taken in long double.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with path.open() as f:
        names = f.readline().strip().split(",")
    types = {name: pa.float64() for name in names[:-1]}
    types[names[-1]] = pa.int64()
    reader = pcsv.open_csv(path, convert_options=pcsv.ConvertOptions(column_types=types))
    k = len(names) - 1
    total, rows = np.longdouble(0), 0
    for batch in reader:
        table = np.asarray(batch.to_tensor())  # float64 (labels are small integers)
        y = table[:, :k].astype(np.longdouble)
        labels = table[:, k].astype(np.int64)
        m = y.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(y - m).sum(axis=1))
        total += (lse - y[np.arange(len(labels)), labels]).sum()
        rows += len(labels)
    return total / np.longdouble(rows)


def warm_up(names: Sequence[str], directory: Path) -> None:
    """Run every contender once on a tiny file: fills the bytecode cache, checks it runs."""
    tiny = directory / "warm-up.csv"
    if not tiny.exists():
        tiny.write_text("logit_0,logit_1,logit_2,label\n0.5,-1.25,2.0,2\n1.0,0.0,-3.5,0\n")
    for name in names:
        run_child(argv_for(name, tiny))


def measure(label: str, path: Path, names: Sequence[str], repeats: int) -> BatchResult:
    """Run each contender *repeats* times, round-robin, on *path*."""
    warm_up(names, path.parent)
    warm_cache(path)
    samples = {name: Samples() for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in list(names[shift:]) + list(names[:shift]):
            sample = samples[name]
            if sample.error is not None:
                continue
            run = run_child(argv_for(name, path))
            try:
                rows, loss = parse(run)
            except Exception as exc:
                sample.error = drop_note(str(exc))
                log(f"  {name}: failed: {sample.error}")
                continue
            sample.times.append(run.seconds)
            sample.rss_kb.append(run.max_rss_kb)
            sample.result = (rows, loss)
            log(f"  {name}: {run.seconds:.2f} s, {run.max_rss_kb / 1024:.0f} MB, loss {loss!r}")
    return BatchResult(label, path, path.stat().st_size, samples)


def ulps(value: float, reference: object) -> str:
    import numpy as np

    ref = np.longdouble(reference)  # type: ignore[arg-type]
    return f"{float((np.longdouble(value) - ref) / np.longdouble(np.spacing(float(ref)))):+.2f}"


def contenders() -> list[str]:
    return [XENT, *PIPELINES]


def report(results: list[BatchResult]) -> list[str]:
    lines: list[str] = []
    for res in results:
        s = res.samples
        alternatives = [n for n in s if n != XENT and s[n].ok]
        fastest = min(alternatives, key=lambda n: s[n].time) if alternatives else None
        rows_n = next((s[n].result[0] for n in s if s[n].ok), None)  # type: ignore[index]
        lines += [
            "",
            f"**{res.label}**: `{res.path.name}`, {res.size / 1e6:,.0f} MB"
            + (f", {rows_n:,} rows" if rows_n is not None else "")
            + (f"; fastest alternative: {fastest}" if fastest else ""),
            "",
        ]
        rows = []
        for name, sample in s.items():
            if not sample.ok:
                rows.append([name, f"failed: {sample.error}", "-", "-", "-", "-", "-"])
                continue
            ratio = sample.time / s[fastest].time if fastest else float("nan")
            rows.append(
                [
                    name,
                    fmt_time(sample.time),
                    f"{res.size / 1e6 / sample.time:,.0f}",
                    f"{sample.rss_mb:,.0f}",
                    fmt_ratio(ratio),
                    repr(sample.result[1]),  # type: ignore[index]
                    "-" if res.reference is None else ulps(sample.result[1], res.reference),  # type: ignore[index]
                ]
            )
        lines += table(
            [
                "contender",
                "wall time",
                "MB/s",
                "peak RSS (MB)",
                "time / fastest alternative",
                "mean loss",
                "error (ulp)",
            ],
            rows,
        )
    return lines


# ------------------------------------------------------------------------- profiling
def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``file.py:func`` (lines merged)."""
    func, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1] if where else "?"
    return f"{file}:{func}"


def profile(path: Path, rate: int = 250) -> list[str]:
    """Where ``xent batch`` spends its time: py-spy samples of every thread, by function.

    Needs the ``py-spy`` sampling profiler (``pip install py-spy``); says so if missing.
    """
    import subprocess
    import tempfile
    from collections import Counter

    spy = shutil.which("py-spy")
    if spy is None:
        return ["(py-spy is not installed: `pip install py-spy` to see this profile.)"]
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as raw:
        proc = subprocess.run(
            [
                spy,
                "record",
                "--format",
                "raw",
                "-r",
                str(rate),
                "-o",
                raw.name,
                "--",
                *xent_argv(path),
            ],
            capture_output=True,
            text=True,
            check=False,
            env=child_env(),
        )
        text = raw.read()
    if proc.returncode != 0 or not text.strip():
        return [f"(py-spy failed: {drop_note(proc.stderr or 'no samples')})"]
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    rows_own = [[f"`{name}`", f"{n / total:.1%}"] for name, n in own.most_common(15)]
    rows_inc = [
        [f"`{name}`", f"{n / total:.1%}"]
        for name, n in inclusive.most_common()
        if name.split(":")[0] in {"cli_batch.py", "reader.py", "batch.py", "kernel.py", "cli.py"}
    ][:20]
    return [
        f"py-spy, {total} samples at {rate} Hz of every thread of `xent batch"
        f" {path.name} --format json` (samples of idle threads are not counted):",
        "",
        "Own time (the function on top of the stack; numpy and pyarrow C code counts for"
        " the Python function that called it):",
        "",
        *table(["function", "share"], rows_own),
        "",
        "Inclusive time of xent's functions:",
        "",
        *table(["function", "share"], rows_inc),
    ]
