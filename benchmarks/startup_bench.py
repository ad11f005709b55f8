"""Start-up benchmark: how long a user waits for the first answer of a fresh process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from common import Samples, child_env, fmt_ratio, fmt_time, log, median, run_child, table

BARE = "python -c 'import numpy, click, rich.console, rich.table'"
COMPUTE = "xent compute --logits 1.2,2.3,0.8 --label 1"
NO_CACHE = COMPUTE + " (no bytecode cache)"


def xent_command() -> list[str]:
    """The ``xent`` console script beside this interpreter (not a pyenv or other shim,
    which would add a shell and a launcher that ``python`` here does not pay)."""
    beside = Path(sys.executable).with_name("xent")
    if beside.exists():
        return [str(beside)]
    exe = shutil.which("xent")
    return [exe] if exe else [sys.executable, "-m", "xentcli"]


def commands() -> dict[str, list[str]]:
    xent = xent_command()
    return {
        "xent --help": [*xent, "--help"],
        NO_CACHE: [*xent, "compute", "--logits", "1.2,2.3,0.8", "--label", "1"],
        COMPUTE: [*xent, "compute", "--logits", "1.2,2.3,0.8", "--label", "1"],
        BARE: [sys.executable, "-c", "import numpy, click, rich.console, rich.table"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }


def run(quick: bool) -> dict[str, Samples]:
    repeats, warmup = (8, 2) if quick else (40, 3)
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
            env = None
            if name == NO_CACHE:  # as in an environment with PYTHONDONTWRITEBYTECODE=1
                env = child_env()
                env["PYTHONDONTWRITEBYTECODE"] = "1"
                env.pop("PYTHONPYCACHEPREFIX", None)
            child = run_child(cmds[name], env=env)
            if child.returncode != 0:
                tail = child.stderr.strip().splitlines()
                sample.error = f"exit {child.returncode}: {tail[-1] if tail else ''}"
                continue
            if round_ >= warmup:
                sample.times.append(child.seconds)
                sample.rss_kb.append(child.max_rss_kb)
    return out


def _import_times(code: str) -> dict[str, int]:
    """Self import time (µs) of every module a fresh ``python -c code`` imports."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
    )
    out: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            fields = line[len("import time:") :].split("|")
            if fields[0].strip().isdigit():
                out[fields[2].strip()] = int(fields[0])
    return out


def import_profile(repeats: int = 7, limit: int = 15) -> list[str]:
    """What ``xent compute`` imports beyond the bare imports, and what it costs."""
    compute = (
        "import sys; sys.argv = ['xent', 'compute', '--logits', '1.2,2.3,0.8',"
        " '--label', '1']; from xentcli.cli.main import main; main()"
    )
    bare = "import numpy, click, rich.console, rich.table"
    _import_times(compute)  # fill the bytecode cache
    _import_times(bare)
    runs_c = [_import_times(compute) for _ in range(repeats)]
    runs_b = [_import_times(bare) for _ in range(repeats)]
    base = set().union(*runs_b)
    extra: dict[str, float] = {}
    for name in set().union(*runs_c) - base:
        extra[name] = median([r.get(name, 0) for r in runs_c]) / 1e3
    total = sum(extra.values())
    total_c = median([sum(r.values()) for r in runs_c]) / 1e3
    total_b = median([sum(r.values()) for r in runs_b]) / 1e3
    rows = [
        [f"`{name}`", f"{ms:.1f}"]
        for name, ms in sorted(extra.items(), key=lambda kv: -kv[1])[:limit]
    ]
    return [
        f"Import time (`python -X importtime`, median of {repeats}, self time of each"
        f" module): `xent compute` imports {total_c:.0f} ms of modules, the bare"
        f" imports {total_b:.0f} ms; {len(extra)} modules that the bare imports do not"
        f" load cost {total:.0f} ms, the largest:",
        "",
        *table(["module", "self ms"], rows),
    ]


def report(samples: dict[str, Samples]) -> list[str]:
    """The start-up table, and how the children were run."""
    bare = samples[BARE].time if samples[BARE].ok else float("nan")
    empty = samples["python -c pass"].time if samples["python -c pass"].ok else float("nan")
    rows = []
    for name, s in samples.items():
        if not s.ok:
            rows.append([f"`{name}`", f"failed: {s.error}", "-", "-", "-"])
            continue
        rows.append(
            [
                f"`{name}`",
                fmt_time(s.time),
                fmt_ratio(s.time / bare),
                fmt_ratio(s.time / empty),
                f"{s.rss_mb:.0f}",
            ]
        )
    return [
        *table(
            ["command", "median wall time", "/ bare imports", "/ python -c pass", "peak RSS (MB)"],
            rows,
        ),
        "",
        "Every command runs with bytecode caching on (compiled modules kept in a"
        " temporary PYTHONPYCACHEPREFIX, filled by the warm-up rounds), as an installed"
        " package has it. The *no bytecode cache* row runs with PYTHONDONTWRITEBYTECODE=1"
        " and no cache, as this environment's default is: xent (an editable install)"
        " then compiles its own source on every start, while numpy, click and rich"
        " still load their installed bytecode.",
    ]
