"""Start-up benchmark: how long a user waits for the first answer of a fresh process."""

from __future__ import annotations

import shutil
import sys

from common import Samples, fmt_ratio, fmt_time, log, run_child, table

BARE = "python -c 'import numpy, click, rich.console, rich.table'"
COMPUTE = "xent compute --logits 1.2,2.3,0.8 --label 1"


def commands() -> dict[str, list[str]]:
    exe = shutil.which("xent")
    xent = [exe] if exe else [sys.executable, "-m", "xentcli"]
    return {
        "xent --help": [*xent, "--help"],
        COMPUTE: [*xent, "compute", "--logits", "1.2,2.3,0.8", "--label", "1"],
        BARE: [sys.executable, "-c", "import numpy, click, rich.console, rich.table"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }


def run(quick: bool) -> dict[str, Samples]:
    repeats, warmup = (12, 2) if quick else (40, 3)
    cmds = commands()
    names = list(cmds)
    out = {name: Samples() for name in names}
    log(f"start-up x{repeats}")
    for round_ in range(warmup + repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            sample = out[name]
            if sample.error is not None:
                continue
            child = run_child(cmds[name])
            if child.returncode != 0:
                tail = child.stderr.strip().splitlines()
                sample.error = f"exit {child.returncode}: {tail[-1] if tail else ''}"
                continue
            if round_ >= warmup:
                sample.times.append(child.seconds)
                sample.rss_kb.append(child.max_rss_kb)
    return out


def report(samples: dict[str, Samples]) -> list[str]:
    bare = samples[BARE].time if samples[BARE].ok else float("nan")
    empty = samples["python -c pass"].time if samples["python -c pass"].ok else float("nan")
    rows = []
    for name, s in samples.items():
        if not s.ok:
            rows.append([f"`{name}`", f"failed: {s.error}", "-", "-", "-"])
            continue
        rows.append([f"`{name}`", fmt_time(s.time), fmt_ratio(s.time / bare),
                     fmt_ratio(s.time / empty), f"{s.rss_mb:.0f}"])
    return table(["command", "median wall time", "/ bare imports", "/ python -c pass",
                  "peak RSS (MB)"], rows)
