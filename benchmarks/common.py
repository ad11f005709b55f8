"""Shared helpers for the benchmark suite: timing, child processes, machine facts, tables.

Nothing here imports a competitor package at module level: the benchmark functions
import what they measure, so a missing competitor fails one row, not the whole run.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

#: Environment variables that change how numeric libraries run; recorded, never changed.
RECORDED_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "XENT_THREADS",
)

VERSIONED = ("xent", "numpy", "torch", "scipy", "pyarrow", "pandas", "polars", "click", "rich")


# --------------------------------------------------------------------- child processes
#: Where child processes keep compiled bytecode (set by run.py to a temporary directory).
PYCACHE: Path | None = None


def child_env() -> dict[str, str]:
    """The environment of every measured child process: bytecode caching on.

    Some environments (this one's CI and sandboxes) set PYTHONDONTWRITEBYTECODE=1. An
    installed numpy, click or rich ships compiled bytecode, but an editable install of
    xent then recompiles its source on every start, a cost no installed user pays.
    Children therefore write and read bytecode under PYCACHE (a temporary directory,
    the same for every contender; warm-up runs fill it), never in the source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if PYCACHE is not None:
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


# ----------------------------------------------------------------------------- timing
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Samples:
    """Repeated measurements of one contender on one case."""

    times: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    result: object = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.times)

    @property
    def time(self) -> float:
        return median(self.times)

    @property
    def rss_mb(self) -> float:
        return median(self.rss_kb) / 1024 if self.rss_kb else float("nan")


def interleaved(
    contenders: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    budget: float = 20.0,
) -> dict[str, Samples]:
    """Time in-process callables round-robin, rotating the order each round.

    Each round runs every contender once, so slow drifts of the machine (frequency,
    page cache, a neighbour) spread over all of them rather than favouring one. A
    contender that has used more than *budget* seconds stops once it has one timed
    sample (a very slow contender is then reported from fewer repetitions).
    """
    spent = dict.fromkeys(contenders, 0.0)
    out = {name: Samples() for name in contenders}
    names = list(contenders)
    for round_ in range(warmup + repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            sample = out[name]
            if sample.error is not None or (spent[name] > budget and sample.times):
                continue
            try:
                start = time.perf_counter()
                result = contenders[name]()
                elapsed = time.perf_counter() - start
                spent[name] += elapsed
            except Exception as exc:  # a broken contender is reported, not fatal
                sample.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                continue
            if round_ >= warmup:
                sample.times.append(elapsed)
                sample.result = result
    return out


@dataclass
class ChildRun:
    """One child process: wall time, peak resident set, exit status and output."""

    seconds: float
    max_rss_kb: int
    returncode: int
    stdout: str
    stderr: str
    #: user + system time of the contender: on a shared machine wall time moves +-20 %
    #: with the load, CPU time much less
    cpu_seconds: float = float("nan")


# The launcher runs the contender as its grandchild. On Linux a child's ru_maxrss
# starts from its parent's resident size at fork and survives exec, so a contender
# forked straight from this (large) process would report this process's memory. The
# launcher is a bare interpreter (-I -S: no site, ~10 MB), so the contender's figure is
# its own as soon as it is above that; the launcher times fork to exit and writes the
# figures to the file named by its first argument.
LAUNCHER = """\
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - start
cpu = usage.ru_utime + usage.ru_stime
with open(out, "w") as f:
    f.write(f"{elapsed!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {cpu!r}")
"""


def run_child(argv: Sequence[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run *argv*, measuring wall time and the child's peak RSS with ``os.wait4``.

    The environment is :func:`child_env` unless *env* is given.
    Output goes to temporary files rather than pipes, so the parent never has to read
    while the child runs (which would add the parent's work to the measurement).
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".txt") as figures,
    ):
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, figures.name, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=child_env() if env is None else env,
            check=False,
        )
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        text = figures.read().split()
        if proc.returncode != 0 or len(text) != 4:
            return ChildRun(
                float("nan"),
                0,
                proc.returncode or 1,
                stdout,
                stderr + f"\nlauncher failed (exit {proc.returncode})",
            )
        return ChildRun(float(text[0]), int(text[1]), int(text[2]), stdout, stderr, float(text[3]))


def drop_note(error: str) -> str:
    """One short line for a failure, for a table cell."""
    text = " ".join(error.split())
    return text[:160] + ("..." if len(text) > 160 else "")


# ------------------------------------------------------------------------ machine facts
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    """Markdown bullet lines describing the machine and the software."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 0
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    lines = [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores ({affinity} usable)"
        + (f", {mem} RAM" if mem else ""),
        f"- OS: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python {platform.python_version()} ({sys.executable})",
        "- Versions: " + ", ".join(f"{d} {version_of(d)}" for d in VERSIONED),
        "- Environment: "
        + ", ".join(
            f"{name}={os.environ[name]!r}" if name in os.environ else f"{name} unset"
            for name in RECORDED_ENV
        ),
    ]
    try:
        import torch

        lines.append(f"- torch threads: {torch.get_num_threads()} (default)")
    except ImportError:
        pass
    return lines


# ------------------------------------------------------------------------------ tables
def fmt_time(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def log(message: str) -> None:
    """Progress to stderr (the results go to RESULTS.md)."""
    print(message, file=sys.stderr, flush=True)


def replace_section(output: Path, name: str, lines: list[str]) -> None:
    """Put *lines* in *output* between the markers of section *name* (appended when new).

    Each side-by-side benchmark of a feature writes its own section of RESULTS.md, so
    that running one does not erase the others' figures.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = output.read_text() if output.exists() else "# xent benchmark results\n"
    section = "\n".join([begin, *lines, end])
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    output.write_text(text)
