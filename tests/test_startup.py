"""Start-up hygiene: what each command imports, and the shortcuts that keep it small.

No timing here (the benchmarks measure it): these tests pin down the structure that
makes start-up fast, so that a new top-level import shows up as a failing test.
``xent --help`` imports neither numpy nor rich nor any command; ``xent compute`` with a
table imports neither the batch command, the reader, pyarrow, the derivation, json nor
csv. Also checked: the summaries ``xent --help`` lists without importing the commands
are the commands' own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from xentcli.cli.main import LAZY_COMMANDS, cli

# Run the command in a fresh interpreter and list the modules it has loaded at the end.
_PROBE = """
import sys
out_path = sys.argv[1]
sys.argv = ["xent", *sys.argv[2:]]
from xentcli.cli.main import main
try:
    main()
except SystemExit as stop:
    assert not stop.code, stop.code
with open(out_path, "w") as out:
    out.write("\\n".join(sorted(sys.modules)))
"""


def loaded_modules(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return set(out.read_text().split("\n"))


def imported(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_help_imports_no_command_and_neither_numpy_nor_rich(tmp_path):
    modules = loaded_modules(tmp_path, "--help")
    for name in (
        "numpy",
        "rich",
        "pyarrow",
        "xentcli.core._kernel",
        "xentcli.cli.compute",
        "xentcli.cli.batch",
        "xentcli.batch.reader",
        "xentcli.batch.accumulator",
        "matplotlib",
    ):
        assert not imported(modules, name), name


def test_compute_table_imports_only_what_the_table_needs(tmp_path):
    modules = loaded_modules(tmp_path, "compute", "--logits", "1.2,2.3,0.8", "--label", "1")
    assert {"xentcli.cli.compute", "xentcli.compute.trace", "xentcli.compute.render"} <= modules
    for name in (
        "pyarrow",
        "xentcli.cli.batch",
        "xentcli.batch.accumulator",
        "xentcli.batch.reader",
        "xentcli.batch.report",
        "xentcli.compute.derivation",
        "xentcli.compute.typeset",
        "json",  # xentcli.text (the table's number formats) imports json only to write JSON
        "csv",
        # core's modules that the table does not need: xentcli.core loads their names on
        # first use (H(p) and KL are computed only when read; the table shows them for
        # soft targets)
        "xentcli.core._divergence",
        "xentcli.core._doubledouble",
        "xentcli.core._frameworks",
        "xentcli.core._lowprecision",
        "xentcli.core._sigmoid",
        "xentcli.core._exact_kernel",
        "xentcli.core._exact_block",
        "xentcli.core._ddmath",
        "xentcli.core._ziv",
        "xentcli.compute.frameworks",
        "xentcli.compute.lowprecision",
        "xentcli.compute.sigmoid",
        "matplotlib",
    ):
        assert not imported(modules, name), name


def test_core_names_loaded_on_first_use_are_the_private_modules_own():
    """Every public name of xentcli.core resolves, lazily loaded or not, to its module's object."""
    code = (
        "import sys, xentcli.core as core\n"
        "lazy = {name: module for name, (module, _) in core._LAZY.items()}\n"
        "assert set(lazy) <= set(core.__all__) <= set(dir(core)), 'a name is missing'\n"
        "assert not any('xentcli.core.' + m in sys.modules for m in lazy.values())\n"
        "from xentcli.core import entropy, LowPrecisionStep\n"
        "from xentcli.core._divergence import entropy as own\n"
        "from xentcli.core._lowprecision import Step\n"
        "assert entropy is own and LowPrecisionStep is Step\n"
        "assert all(getattr(core, name) is not None for name in core.__all__)\n"
        "try:\n"
        "    core.no_such_name\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "module 'xentcli.core' has no attribute 'no_such_name'\n"


def test_compute_json_needs_no_derivation_unless_asked(tmp_path):
    modules = loaded_modules(
        tmp_path, "compute", "--logits", "1,2", "--label", "0", "--format", "json"
    )
    assert "json" in modules
    assert "xentcli.compute.derivation" not in modules
    assert not imported(modules, "xentcli.cli.batch")


def test_batch_imports_matplotlib_only_for_a_plot(tmp_path):
    data = tmp_path / "tiny.csv"
    data.write_text("a,b,label\n1.0,2.0,0\n")
    assert not imported(loaded_modules(tmp_path, "batch", str(data)), "matplotlib")
    plotted = loaded_modules(tmp_path, "batch", str(data), "--plot", str(tmp_path / "f.svg"))
    assert "xentcli.batch.plot" in plotted
    assert imported(plotted, "matplotlib")


def test_importing_the_package_imports_numpy_on_first_use_only():
    code = (
        "import sys, xentcli; before = 'numpy' in sys.modules;"
        " value = xentcli.cross_entropy([[1.2, 2.3, 0.8]], [1]);"
        " print(before, 'numpy' in sys.modules, value)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split()[:2] == ["False", "True"]
    assert result.stdout.split()[2].startswith("0.44211922514")


def test_the_listed_summaries_are_the_commands_own():
    for name, (module, attribute, _summary) in LAZY_COMMANDS.items():
        command = getattr(__import__(module, fromlist=[attribute]), attribute)
        stand_in = click.Command(name, help=LAZY_COMMANDS[name][2])
        for limit in (20, 45, 60, 90, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)
    assert cli.list_commands(click.Context(cli)) == sorted(LAZY_COMMANDS)


# OpenBLAS's thread count as numpy's OpenBLAS reports it.
_BLAS_REPORT = """
import threadpoolctl
pools = [p for p in threadpoolctl.threadpool_info() if p["internal_api"] == "openblas"]
print("BLAS", [p["num_threads"] for p in pools])
"""
# The same after the command has run.
_BLAS_PROBE = (
    """
import sys
sys.argv = ["xent", *sys.argv[1:]]
from xentcli.cli.main import main
try:
    main()
except SystemExit as stop:
    assert not stop.code, stop.code
"""
    + _BLAS_REPORT
)


def blas_threads(probe: str, *args: str, env_threads: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if env_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env_threads
    result = subprocess.run(
        [sys.executable, "-c", probe, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def test_compute_runs_openblas_with_one_thread_unless_the_user_chose():
    # numpy's OpenBLAS starts a pool of spinning threads when imported; xent compute
    # never calls BLAS, so it asks for one thread (main._one_blas_thread).
    args = ("compute", "--logits", "1,2", "--label", "0")
    assert blas_threads(_BLAS_PROBE, *args) == "BLAS [1]"
    assert blas_threads(_BLAS_PROBE, *args, env_threads="2") == "BLAS [2]"


def test_batch_keeps_openblas_default_threads(tmp_path):
    # xent batch leaves OpenBLAS's choice alone (one thread measured within noise there).
    data = tmp_path / "a.csv"
    data.write_text("logit_0,logit_1,label\n1,2,0\n")
    plain_numpy = blas_threads("import numpy\n" + _BLAS_REPORT)
    assert blas_threads(_BLAS_PROBE, "batch", str(data)) == plain_numpy
