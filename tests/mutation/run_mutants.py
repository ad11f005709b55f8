"""Plant known bugs in a temporary copy of the repository and check the tests catch each.

Not part of the test suite (it takes minutes): run it by hand, from the repository root,

    python tests/mutation/run_mutants.py            # every mutant, its own test subset
    python tests/mutation/run_mutants.py --full     # every mutant against the whole suite
    python tests/mutation/run_mutants.py --only label-shift-remainder exp-shifted-correction

and record the result in docs/testing.md. For each mutant the script copies the files git
knows (committed or not, ignored files excepted) into a temporary directory, replaces one
exact piece of source text (which must occur exactly once: a mutant that no longer
applies after a refactoring is reported as STALE, not silently passed), runs pytest there
with that copy first on ``PYTHONPATH``, and reports the mutant CAUGHT when some test
fails, MISSED when every test passes. Before the mutants it runs each subset on the
unchanged copy: a subset that fails there makes its mutants' results meaningless
(reported as BASELINE-FAILS).

The output is a Markdown table (mutant, where, caught by) for docs/testing.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace *old* (exactly once in *path*) by *new*."""

    name: str
    what: str  #: the bug, in words
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  #: the pytest arguments of the subset expected to catch it


MUTANTS = [
    # ----------------------------------------------------------- the issue-18 gaps
    Mutant(
        "exp-shifted-correction",
        "exp_shifted without its e*lo correction (exp of the rounded shift)",
        "xentcli/core/_kernel.py",
        "e_out[rows] = (e + e * sh.lo).T",
        "e_out[rows] = e.T",
        ("tests/test_compute_fields.py", "tests/test_trace.py", "tests/test_kernel.py"),
    ),
    Mutant(
        "compute-refuses-tiny-temperature",
        "xent compute refuses temperatures below 1e-6 (a clean exit 2)",
        "xentcli/cli/compute.py",
        "            temperature=loss.temperature,\n",
        "            temperature=loss.temperature if loss.temperature >= 1e-6 else math.nan,\n",
        (
            "tests/test_compute_fields.py",
            "tests/test_bad_inputs.py",
            "tests/test_fuzz.py::test_compute_gives_the_exact_result_or_a_clean_error",
        ),
    ),
    Mutant(
        "refuses-tiny-temperature",
        "--temperature (shared by compute and batch) refuses values below 1e-6 (exit 2)",
        "xentcli/cli/params.py",
        'TEMPERATURE = Number("a finite number > 0", low=0.0, low_open=True, finite=True)',
        'TEMPERATURE = Number("a finite number > 0", low=1e-6, low_open=True, finite=True)',
        ("tests/test_bad_inputs.py", "tests/test_batch_oracles.py"),
    ),
    Mutant(
        "label-shift-remainder",
        "the label's loss drops the TwoSum remainder lo of its shift (general path)",
        "xentcli/core/_kernel.py",
        "main = label_loss(-np.take(sh.hi, at), sh.log_s - lo_i, li, w)",
        "main = label_loss(-np.take(sh.hi, at), sh.log_s, li, w)",
        ("tests/test_batch_oracles.py", "tests/test_compute_fields.py"),
    ),
    Mutant(
        "label-shift-remainder-binary",
        "the same, in the kernel's fast path for two classes",
        "xentcli/core/_loss_block.py",
        "loss = label_loss(-hi, log_s - lo, li, w)",
        "loss = label_loss(-hi, log_s, li, w)",
        ("tests/test_batch_oracles.py", "tests/test_compute_fields.py"),
    ),
    Mutant(
        "soft-per-row-probability-temperature",
        "--per-row probability of a soft-target row ignores --temperature",
        "xentcli/batch/accumulator.py",
        "probability = _label_probability(chunk.logits, labels, opts.temperature)",
        "probability = _label_probability(chunk.logits, labels, 1.0)",
        ("tests/test_batch_oracles.py", "tests/test_cli_batch.py", "tests/test_accumulator.py"),
    ),
    Mutant(
        "never-two-threads",
        "the block runner never uses its second thread",
        "xentcli/core/_blocks.py",
        "if THREADS < 2 or total < THREAD_ELEMENTS or len(blocks) < 4:",
        "if True or total < THREAD_ELEMENTS or len(blocks) < 4:",
        ("tests/test_kernel.py",),
    ),
    # ------------------------------------------- bugs issue 18 says were caught already
    Mutant(
        "dropped-max-shift",
        "the softmax without the max subtracted (exp of the raw logits)",
        "xentcli/core/_softmax_block.py",
        "    am, m = argmax0(xt, rows)\n",
        "    am, m = argmax0(xt, rows)\n    m = np.zeros_like(m)\n",
        ("tests/test_kernel.py",),
    ),
    Mutant(
        "naive-log",
        "log s as log(s_hi + s_lo): tiny losses of confident rows become 0",
        "xentcli/core/_softmax_block.py",
        "return np.log(s_hi) + (z - 0.5 * z * z)",
        "return np.log(s_hi + s_lo)",
        ("tests/test_kernel.py",),
    ),
    Mutant(
        "weighted-mean-denominator-kernel",
        "the weighted mean divides by the number of rows, not the sum of their weights",
        "xentcli/core/_kernel.py",
        "        denominator.add(rows.weight)\n",
        "        denominator.add_ones(int(np.count_nonzero(rows.counted)))\n",
        ("tests/test_kernel.py",),
    ),
    Mutant(
        "weighted-mean-denominator-batch",
        "xent batch's weighted mean divides by the row count, not the weights",
        "xentcli/batch/accumulator.py",
        "            state.class_weights.add(weight, cls)\n",
        "            state.class_weights.add_ones(class_rows)\n",
        ("tests/test_accumulator.py", "tests/test_cli_batch.py", "tests/test_batch_oracles.py"),
    ),
    Mutant(
        "smoothing-eps-over-k-minus-1",
        "label smoothing gives eps/(K-1) to each class instead of eps/K",
        "xentcli/core/_kernel.py",
        "double_double(Fraction(eps) / k)",
        "double_double(Fraction(eps) / (k - 1))",
        ("tests/test_kernel.py",),
    ),
    Mutant(
        "dropped-last-chunk",
        "the reader drops the last chunk of every block cut into several",
        "xentcli/batch/reader.py",
        "            pieces.append(chunk)\n        return pieces\n",
        "            pieces.append(chunk)\n        return pieces[:-1] if len(pieces) > 1 else pieces\n",
        ("tests/test_reader.py", "tests/test_cli_batch.py"),
    ),
    Mutant(
        "per-class-wrong-class",
        "per-class loss sums filed under the predicted class, not the label",
        "xentcli/batch/accumulator.py",
        "        state.class_sums.add(loss, cls)\n",
        "        state.class_sums.add(loss, rows.predicted[counted])\n",
        ("tests/test_accumulator.py", "tests/test_cli_batch.py", "tests/test_batch_oracles.py"),
    ),
    Mutant(
        "line-numbers-off-by-one",
        "the fast parser numbers lines one too high",
        "xentcli/batch/_fastparse.py",
        "lines = np.arange(first, first + count, dtype=np.int64)",
        "lines = np.arange(first + 1, first + 1 + count, dtype=np.int64)",
        ("tests/test_reader.py", "tests/test_cli_batch.py"),
    ),
]


def tracked_files() -> list[str]:
    """Files git knows in the working tree (committed, staged or new, not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in out.split("\0") if name and (ROOT / name).is_file()]


def copy_tree(destination: Path) -> None:
    for name in tracked_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def run_pytest(copy: Path, tests: tuple[str, ...]) -> tuple[int, list[str], float]:
    """Run pytest on *tests* in *copy*; the exit code, the failing tests and the time."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("XENT_FUZZ_EXAMPLES", None)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *tests],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.MULTILINE)
    return done.returncode, failed, time.monotonic() - start


def apply(copy: Path, mutant: Mutant) -> bool:
    """Plant *mutant* in *copy*; False when its source text is not there exactly once."""
    path = copy / mutant.path
    text = path.read_text(encoding="utf-8")
    if text.count(mutant.old) != 1:
        return False
    path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")
    return True


def unplant(copy: Path, mutant: Mutant) -> None:
    shutil.copy2(ROOT / mutant.path, copy / mutant.path)


def summarize(failed: list[str], limit: int = 6) -> str:
    """The failing tests, grouped by file: ``file: test, test (+n more)``."""
    by_file: dict[str, list[str]] = {}
    for node in failed:
        file, _, test = node.partition("::")
        by_file.setdefault(Path(file).name, []).append(test.split("[")[0])
    parts = []
    for file, tests in by_file.items():
        unique = list(dict.fromkeys(tests))
        shown = ", ".join(unique[:limit]) + (
            f" (+{len(unique) - limit} more)" if len(unique) > limit else ""
        )
        parts.append(f"{file} ({len(tests)}): {shown}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run the whole suite per mutant")
    parser.add_argument("--only", nargs="*", help="names of the mutants to run")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutants: {', '.join(sorted(unknown))}")
    rows = []
    missed = 0
    with tempfile.TemporaryDirectory(prefix="xent-mutants-") as folder:
        copy = Path(folder)
        copy_tree(copy)
        baseline: dict[tuple[str, ...], bool] = {}
        for mutant in mutants:
            tests = () if args.full else mutant.tests
            if tests not in baseline:
                code, failed, seconds = run_pytest(copy, tests)
                baseline[tests] = code == 0
                print(
                    f"baseline {' '.join(tests) or 'whole suite'}: exit {code} "
                    f"({seconds:.0f} s) {summarize(failed)}",
                    file=sys.stderr,
                )
            if not apply(copy, mutant):
                verdict, detail, seconds = "STALE", "source text not found exactly once", 0.0
            else:
                try:
                    code, failed, seconds = run_pytest(copy, tests)
                finally:
                    unplant(copy, mutant)
                if not baseline[tests]:
                    verdict, detail = "BASELINE-FAILS", summarize(failed)
                elif code == 1 and failed:
                    verdict, detail = "CAUGHT", summarize(failed)
                elif code == 0:
                    verdict, detail = "MISSED", ""
                else:
                    verdict, detail = f"ERROR (exit {code})", summarize(failed)
            missed += verdict != "CAUGHT"
            print(f"{mutant.name}: {verdict} ({seconds:.0f} s) {detail}", file=sys.stderr)
            rows.append((mutant, verdict, detail))
    print("| mutant | planted bug | where | result | failing tests (subset run) |")
    print("|---|---|---|---|---|")
    for mutant, verdict, detail in rows:
        print(f"| `{mutant.name}` | {mutant.what} | `{mutant.path}` | {verdict} | {detail} |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
