"""Kernel benchmark: the mean cross-entropy of an in-memory (N, K) float64 array.

Contenders, all on the same array in the same process, interleaved:

- ``xent``: ``xentcli.cross_entropy(x, labels)`` (mean, exact reduction);
- ``torch``: ``torch.nn.functional.cross_entropy`` on float64 CPU tensors (default threads),
  with ``torch.from_numpy`` (zero copy) outside the timed region's cost: it is O(1);
- ``scipy``: ``scipy.special.logsumexp(x, axis=1) - x[r, labels]``, then the mean;
- ``numpy``: max-shift, ``log(sum(exp(x - m)))``, minus the label logit, the mean;
- ``np.exp floor``: one ``np.exp(x)`` over the same array (a fresh output, as every
  contender allocates at least one array of that size); ``np.exp(x, out=buf)`` is shown
  too, the pure arithmetic floor without page faults.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np
from common import Samples, fmt_ratio, fmt_time, interleaved, log, table

SHAPES = ((1_000_000, 10), (10_000, 1000), (100, 100_000), (1_000_000, 3))
FLOOR = "np.exp floor"
TINY = (np.array([[0.0, -40.0]]), np.array([0]))
TINY_EXACT = 4.248354255291589e-18  # log1p(exp(-40)), correctly rounded


def make_case(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits like a trained classifier's: noise plus a boost on the (mostly) true class."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k)) * 2.0
    labels = rng.integers(0, k, size=n)
    x[np.arange(n), labels] += 3.0
    return x, labels


def reference(x: np.ndarray, labels: np.ndarray) -> np.longdouble:
    """The mean loss in extended precision (x87 long double where numpy has it)."""
    total = np.longdouble(0)
    step = max(1, (1 << 22) // x.shape[1])
    for start in range(0, x.shape[0], step):
        y = x[start : start + step].astype(np.longdouble)
        m = y.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(y - m).sum(axis=1))
        rows = np.arange(y.shape[0])
        total += (lse - y[rows, labels[start : start + step]]).sum()
    return total / np.longdouble(x.shape[0])


def contenders(x: np.ndarray, labels: np.ndarray) -> dict[str, Callable[[], object]]:
    """The callables to time; each returns the mean loss as a float (floor: None)."""
    import torch
    import torch.nn.functional as F
    from scipy.special import logsumexp

    import xentcli
    import xentcli.core._kernel

    snapshot_source(xentcli.core._kernel.__file__)
    rows = np.arange(x.shape[0])
    tx, tl = torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))
    buf = np.empty_like(x)

    def numpy_ce() -> float:
        m = x.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
        return float(np.mean(lse - x[rows, labels]))

    def floor() -> None:
        np.exp(x)

    def floor_out() -> None:
        np.exp(x, out=buf)

    tbuf = torch.from_numpy(buf)
    half = x.shape[0] // 2

    def floor_out_2threads() -> None:
        # numpy releases the GIL in ufunc loops: two halves on two threads.
        other = _POOL.submit(np.exp, x[half:], out=buf[half:])
        np.exp(x[:half], out=buf[:half])
        other.result()

    def torch_exp() -> None:
        torch.exp(tx, out=tbuf)

    return {
        "xent": lambda: float(xentcli.cross_entropy(x, labels)),
        "torch": lambda: float(F.cross_entropy(tx, tl).item()),
        "scipy": lambda: float(np.mean(logsumexp(x, axis=1) - x[rows, labels])),
        "numpy": numpy_ce,
        FLOOR: floor,
        "np.exp(out=)": floor_out,
        "np.exp(out=), 2 threads": floor_out_2threads,
        "torch.exp(out=)": torch_exp,
    }


_POOL = ThreadPoolExecutor(1)

#: Source lines of profiled modules as imported (the file may change during a run).
_SOURCES: dict[str, list[str]] = {}


def snapshot_source(filename: str) -> None:
    if filename not in _SOURCES:
        with open(filename) as f:
            _SOURCES[filename] = f.read().splitlines()


def source_line(filename: str, line: int) -> str:
    lines = _SOURCES.get(filename)
    if lines is None:
        return linecache.getline(filename, line).strip()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def tiny_results() -> dict[str, str]:
    """Each contender's loss for logits [0, -40], label 0 (exact: 4.248354255291589e-18)."""
    out: dict[str, str] = {}
    for name, fn in contenders(*TINY).items():
        if name.startswith(("np.exp", "torch.exp")):
            continue
        try:
            out[name] = repr(fn())
        except Exception as exc:
            out[name] = f"failed: {type(exc).__name__}: {exc}"
    return out


@dataclass
class KernelResult:
    shape: tuple[int, int]
    samples: dict[str, Samples]


def run(quick: bool) -> tuple[list[KernelResult], dict[str, str]]:
    repeats = 3 if quick else 9
    results = []
    for n, k in SHAPES:
        log(f"kernel ({n}, {k}) x{repeats}")
        x, labels = make_case(n, k)
        samples = interleaved(contenders(x, labels), repeats=repeats, warmup=1)
        results.append(KernelResult((n, k), samples))
        del x, labels
    return results, tiny_results()


def report(results: list[KernelResult], tiny: dict[str, str]) -> list[str]:
    names = list(results[0].samples)
    lines = [
        "Median time of one call (mean loss over the whole array). Ratios: the contender's",
        "time divided by torch's, and by the `np.exp` floor (one `np.exp(x)`, which allocates",
        "its output like every contender). The `(out=)` columns write into a preallocated",
        "buffer: the price of the exponential alone, numpy's (on one thread, and split",
        "over two) next to torch's.",
        "",
    ]
    header = ["shape (N, K)", *names, "xent / torch", "xent / floor"]
    rows = []
    for res in results:
        s = res.samples
        cells: list[object] = [f"({res.shape[0]:,}, {res.shape[1]:,})"]
        cells += [fmt_time(s[n].time) if s[n].ok else f"failed: {s[n].error}" for n in names]
        ok = s["xent"].ok and s["torch"].ok and s[FLOOR].ok
        cells.append(fmt_ratio(s["xent"].time / s["torch"].time) if ok else "-")
        cells.append(fmt_ratio(s["xent"].time / s[FLOOR].time) if ok else "-")
        rows.append(cells)
    lines += table(header, rows)
    lines += ["", "Each contender's time relative to torch (lower is faster):", ""]
    rows = []
    for res in results:
        s = res.samples
        base = s["torch"].time if s["torch"].ok else float("nan")
        rows.append(
            [f"({res.shape[0]:,}, {res.shape[1]:,})"]
            + [fmt_ratio(s[n].time / base) if s[n].ok else "-" for n in names]
        )
    lines += table(["shape", *names], rows)
    lines += [
        "",
        "Error of each contender's mean, in units in the last place (ulp) of the"
        " float64 result, against a reference computed in extended precision"
        " (`np.longdouble`, 64-bit significand; its own error is far below 0.01 ulp):",
        "",
    ]
    rows = []
    scored = [n for n in names if not n.startswith(("np.exp", "torch.exp"))]
    for res in results:
        s = res.samples
        ref = reference(*make_case(*res.shape))
        cells = [f"({res.shape[0]:,}, {res.shape[1]:,})"]
        for n in scored:
            r = s[n].result
            if not isinstance(r, float):
                cells.append("-")
                continue
            ulps = float((np.longdouble(r) - ref) / np.longdouble(np.spacing(float(ref))))
            cells.append(f"{ulps:+.2f}")
        rows.append(cells)
    lines += table(["shape", *scored], rows)
    lines += [
        "",
        "Accuracy on the tiny-loss case: logits [0, -40], label 0; the exact loss is",
        f"log1p(exp(-40)) = {TINY_EXACT!r}.",
        "",
    ]
    lines += table(
        ["contender", "loss", "correct"],
        [[n, f"`{v}`", "yes" if v == repr(TINY_EXACT) else "no"] for n, v in tiny.items()],
    )
    return lines


# ------------------------------------------------------------------------- profiling
def building_blocks(repeats: int = 200) -> list[str]:
    """What single numpy operations cost per element on one cache-sized block.

    The kernel works on blocks of about 32K elements laid out (K, b) (classes by rows),
    so these are the prices of its steps: a budget of "3x the np.exp floor" buys one
    exp and about as many simple passes as fit in twice exp's price.
    """
    k, b = 10, 3277
    rng = np.random.default_rng(3)
    xt = rng.standard_normal((k, b))
    out = np.empty_like(xt)
    m = xt.max(axis=0)
    am = np.zeros(b, dtype=np.intp)
    cols = np.arange(b)
    flipped = np.ascontiguousarray(xt.T)

    def argmax_copyto() -> None:
        for j in range(k - 1, -1, -1):
            np.copyto(am, j, where=xt[j] == m)

    ops: dict[str, Callable[[], object]] = {
        "np.exp(x, out=)": lambda: np.exp(xt, out=out),
        "np.expm1(x, out=)": lambda: np.expm1(xt, out=out),
        "np.log1p over (b,) only": lambda: np.log1p(np.abs(m)),
        "np.subtract(x, m, out=) (broadcast row)": lambda: np.subtract(xt, m, out=out),
        "np.add(x, x, out=)": lambda: np.add(xt, xt, out=out),
        "np.multiply(x, x, out=)": lambda: np.multiply(xt, xt, out=out),
        "x.max(axis=0)": lambda: xt.max(axis=0),
        "x.sum(axis=0)": lambda: xt.sum(axis=0),
        "np.einsum('kb,kb->b', x, y)": lambda: np.einsum("kb,kb->b", xt, out),
        "x.argmax(axis=0)": lambda: xt.argmax(axis=0),
        "(x == m).argmax(axis=0)": lambda: (xt == m).argmax(axis=0),
        "argmax by K np.copyto(where=)": argmax_copyto,
        "x[am, cols] (gather b)": lambda: xt[am, cols],
        "np.where(x > 0, x, 0.0)": lambda: np.where(xt > 0, xt, 0.0),
        "x * (x < 0.5) (mask by multiply)": lambda: xt * (xt < 0.5),
        "np.ascontiguousarray(block.T) from (b, K)": lambda: np.ascontiguousarray(flipped.T),
    }
    res = interleaved(ops, repeats=repeats, warmup=5)
    n = xt.size
    rows = [[f"`{name}`", f"{s.time / n * 1e9:.2f}", fmt_time(s.time)] for name, s in res.items()]
    return [
        f"Price of single numpy operations on one ({k}, {b:,}) float64 block (32K"
        " elements, in cache), median of many calls:",
        "",
        *table(["operation", "ns per element", "per call"], rows),
    ]


class LineTimer:
    """Attribute CPU time to the source lines of one package (a tiny line profiler).

    A trace function (installed in this thread and in threads started while it runs)
    follows every frame whose code lives under *directory*. Each thread's CPU time
    (``time.thread_time``) between two events goes to the line that was running: the
    time a line spends in numpy or in any other package's code counts for that line,
    the time spent in another traced function counts for that function's lines, and
    a thread waiting (for a worker, a lock) costs nothing. The overhead is per line
    executed, negligible for numpy lines over large arrays.
    """

    def __init__(self, directory: str) -> None:
        self.directory = os.path.join(os.path.abspath(directory), "")
        self.times: dict[tuple[str, str, int], float] = {}
        self.hits: dict[tuple[str, str, int], int] = {}
        self._stacks: dict[int, list[list[Any]]] = {}  # thread -> [[where, since], ...]

    def _charge(self, stack: list[list[Any]], now: float) -> None:
        if stack and stack[-1][0] is not None:
            where = stack[-1][0]
            self.times[where] = self.times.get(where, 0.0) + now - stack[-1][1]

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        filename = frame.f_code.co_filename
        if not filename.startswith(self.directory):
            return None
        now = time.thread_time()
        stack = self._stacks.setdefault(threading.get_ident(), [])
        self._charge(stack, now)
        if event == "call":
            stack.append([None, now])
        elif event == "line" and stack:
            where = (filename, frame.f_code.co_name, frame.f_lineno)
            self.hits[where] = self.hits.get(where, 0) + 1
            stack[-1][0] = where
        elif event == "return" and stack:
            stack.pop()
        if stack:
            stack[-1][1] = time.thread_time()
        return self._trace

    def top(self, limit: int = 12) -> list[tuple[float, int, str, int, str]]:
        """(share, hits, ``file:function``, line, source) of the costliest lines."""
        total = sum(self.times.values())
        rows = []
        for (file, func, line), t in sorted(self.times.items(), key=lambda kv: -kv[1])[:limit]:
            rows.append(
                (
                    t / total if total else 0.0,
                    self.hits.get((file, func, line), 0),
                    f"{os.path.basename(file)}:{func}",
                    line,
                    source_line(file, line),
                )
            )
        return rows

    def by_function(self) -> list[tuple[str, float]]:
        totals: dict[str, float] = {}
        for (file, func, _), t in self.times.items():
            name = f"{os.path.basename(file)}:{func}"
            totals[name] = totals.get(name, 0.0) + t
        whole = sum(totals.values()) or 1.0
        return [(f, t / whole) for f, t in sorted(totals.items(), key=lambda kv: -kv[1])]

    @property
    def total(self) -> float:
        return sum(self.times.values())


def profile(shapes: tuple[tuple[int, int], ...] = ((1_000_000, 10), (100, 100_000))) -> list[str]:
    """Where xent's kernel time goes, line by line, for a few shapes.

    Each shape is profiled in a fresh child process whose tracer is installed before
    xent runs at all: xent keeps worker threads alive between calls, and a thread that
    already runs cannot be traced from outside in Python 3.11.
    """
    import subprocess

    lines: list[str] = []
    for n, k in shapes:
        proc = subprocess.run(
            [sys.executable, __file__, "profile", str(n), str(k)],
            capture_output=True,
            text=True,
            check=False,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()
            lines += ["", f"(profile of ({n:,}, {k:,}) failed: {tail[-1] if tail else ''})"]
            continue
        lines += proc.stdout.rstrip("\n").split("\n")
    return lines


def _profile_child(n: int, k: int) -> None:
    """In a fresh process: trace a warm-up call and a measured call; print Markdown."""
    import xentcli

    package = os.path.dirname(os.path.abspath(xentcli.__file__))
    for name in sorted(os.listdir(package)):  # as imported, before anyone edits them
        if name.endswith(".py"):
            snapshot_source(os.path.join(package, name))
    import xentcli.core._kernel as kernel

    timer = LineTimer(package)
    x, labels = make_case(n, k)
    threading.settrace(timer._trace)  # threads started from here on are traced
    sys.settrace(timer._trace)
    try:
        kernel.cross_entropy(x, labels)  # warm-up: starts the workers, under the tracer
        timer.times.clear()
        timer.hits.clear()
        start = time.perf_counter()
        kernel.cross_entropy(x, labels)
        total = time.perf_counter() - start
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
    lines = [
        "",
        f"`cross_entropy` at ({n:,}, {k:,}): {fmt_time(total)} wall time,"
        f" {fmt_time(timer.total)} CPU time in xentcli's lines (all threads) under the"
        " tracer; the lines taking the most:",
        "",
    ]
    lines += table(
        ["share", "hits", "function", "line", "source"],
        [
            [f"{share:.1%}", hits, f"`{func}`", line, f"`{src}`"]
            for share, hits, func, line, src in timer.top()
        ],
    )
    lines += [
        "",
        "By function: "
        + ", ".join(f"`{f}` {share:.0%}" for f, share in timer.by_function() if share >= 0.01)
        + ".",
    ]
    print("\n".join(lines))


if __name__ == "__main__" and sys.argv[1:2] == ["profile"]:
    _profile_child(int(sys.argv[2]), int(sys.argv[3]))
