"""Start-up A/B: the CPU time of ``python -m xentcli`` from two source trees, interleaved.

    python benchmarks/startup_ab.py TREE_A TREE_B [RUNS]

Each tree is a directory holding a ``xentcli`` package (``git archive REV xentcli | tar -x
-C TREE``). The two trees run alternately (ABBA...), each with its own bytecode cache, for
``xent --help`` and ``xent compute --logits 1.2,2.3,0.8 --label 1``. CPU time (user + sys
of the child) rather than wall time: on a shared machine, waiting for a core is not
start-up, and it varies far more than the few per cent an A/B is after.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys

CASES = {
    "xent --help": ["--help"],
    "xent compute": ["compute", "--logits", "1.2,2.3,0.8", "--label", "1"],
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(tree: str, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": tree, "PYTHONPYCACHEPREFIX": os.path.join(tree, ".pyc")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = _cpu()
    subprocess.run(
        [sys.executable, "-m", "xentcli", *args],
        env=env,
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return _cpu() - start


def main() -> None:
    a, b = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    for name, args in CASES.items():
        times: dict[str, list[float]] = {a: [], b: []}
        for tree in (a, b):
            _run(tree, args)  # fill the bytecode cache
        for i in range(runs):
            for tree in (a, b) if i % 2 == 0 else (b, a):
                times[tree].append(_run(tree, args))
        med_a, med_b = (statistics.median(times[t]) * 1e3 for t in (a, b))
        print(f"{name}: A {med_a:.1f} ms, B {med_b:.1f} ms (median CPU), B/A {med_b / med_a:.3f}")


if __name__ == "__main__":
    main()
