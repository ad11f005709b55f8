"""Helpers shared by the hardening suite (bad inputs, fuzzing, faults).

Two ways to run the command line:

- :func:`run` calls :func:`xentcli.cli.main.main` in this process under click's CliRunner
  isolation, so that errors go through exactly the mapping the installed ``xent`` script
  uses (fast; used for the corpus and the fuzz tests);
- :func:`run_process` runs ``python -m xentcli`` in a subprocess (for signals, pipes,
  memory limits, permissions and real file descriptors).

:func:`assert_clean_error` states the error contract: an exit code, exactly one line on
stderr starting ``Error:``, naming the place and showing the value, nothing on stdout and
no traceback anywhere.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from xentcli.cli.main import main
from xentcli.errors import shorten

#: environment for every run: no debugging tracebacks, fixed width, no colour
BASE_ENV: dict[str, str | None] = {"XENT_DEBUG": None, "COLUMNS": "100", "NO_COLOR": "1"}


@dataclass(frozen=True)
class Outcome:
    """What one run of the command line did."""

    code: int
    stdout: str
    stderr: str

    def error_line(self) -> str:
        """The only line on stderr (the test fails when there is not exactly one).

        A usage error (exit 2) may come with click's own preamble, ``Usage: ...``,
        ``Try '... -h' for help.`` and a blank line, before its one ``Error:`` line.
        """
        lines = self.stderr.splitlines()
        if (
            self.code == 2
            and len(lines) == 4
            and lines[0].startswith("Usage: ")
            and lines[1].startswith("Try ")
            and lines[2] == ""
        ):
            lines = lines[3:]
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.stderr}"
        return lines[0]


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run(
    args: Sequence[str],
    *,
    input: bytes | str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Outcome:
    """Run ``xent ARGS`` in this process through :func:`xentcli.cli.main.main`.

    Exceptions that ``main`` lets through (none should) propagate into the test.
    """
    runner = CliRunner()
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        with runner.isolation(input=input, env={**BASE_ENV, **(env or {})}) as streams:
            out, err = streams[0], streams[1]
            try:
                main(list(args))
                code = 0
            except SystemExit as request:
                code = _exit_code(request.code)
            sys.stdout.flush()
            sys.stderr.flush()
            stdout = out.getvalue().decode("utf-8", "replace")
            stderr = err.getvalue().decode("utf-8", "replace")
    finally:
        # main() installs its SIGTERM handler; give pytest its own back.
        signal.signal(signal.SIGTERM, previous_sigterm)
    return Outcome(code, stdout, stderr)


def process_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``python -m xentcli`` subprocess."""
    env = {key: value for key, value in os.environ.items() if key != "XENT_DEBUG"}
    env.update({"COLUMNS": "100", "NO_COLOR": "1"})
    env.pop("PYTHONUNBUFFERED", None)
    env.pop("PYTHONWARNINGS", None)
    env.update(extra or {})
    return env


def command(*args: str) -> list[str]:
    """The argv of ``xent ARGS`` as a subprocess."""
    return [sys.executable, "-m", "xentcli", *args]


def run_process(
    args: Sequence[str],
    *,
    input: bytes | None = None,
    cwd: str | Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 120,
) -> Outcome:
    """Run ``python -m xentcli ARGS`` and wait for it."""
    done = subprocess.run(
        command(*args),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd=cwd,
        env=process_env(),
        preexec_fn=preexec_fn,
        timeout=timeout,
        check=False,
    )
    return Outcome(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def assert_no_traceback(outcome: Outcome) -> None:
    """No Python traceback or ignored exception text anywhere in the output."""
    for stream in (outcome.stdout, outcome.stderr):
        assert "Traceback" not in stream, stream
        assert "Exception ignored" not in stream, stream


def assert_clean_error(
    outcome: Outcome,
    code: int,
    *,
    where: str | None = None,
    value: object = None,
    contains: Sequence[str] = (),
) -> str:
    """Check the error contract and return the error line.

    ``where`` is the place the line must start with after ``Error: `` (``bad.csv:3:2``);
    ``value`` is the raw offending value, shown as the errors module shows it.
    """
    assert_no_traceback(outcome)
    assert outcome.code == code, f"exit {outcome.code}, expected {code}:\n{outcome.stderr}"
    line = outcome.error_line()
    assert line.startswith("Error: "), line
    assert outcome.stdout == "", f"stdout on error: {outcome.stdout!r}"
    if where is not None:
        assert line.startswith(f"Error: {where}: "), f"place {where!r} not in: {line}"
    if value is not None:
        assert f"({shorten(value)})" in line, f"value {value!r} not shown in: {line}"
    for text in contains:
        assert text.lower() in line.lower(), f"{text!r} not in: {line}"
    return line


# Root reads and writes anything: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH bypass file
# permissions. Dropping both from the capability bounding set before exec makes the
# child (still uid 0) obey chmod like any user, so "permission denied" is provoked
# honestly in CI containers that run as root. As a non-root user nothing needs dropping.
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


#: Tests that need Linux itself: /dev/full (char device 1:7), /proc, ru_maxrss in KiB.
LINUX_ONLY = pytest.mark.skipif(
    sys.platform != "linux", reason="needs Linux (/dev/full, /proc or Linux resource units)"
)
#: Permission tests: as root they need Linux capabilities (prctl) to make chmod count.
NEEDS_PERMISSIONS = pytest.mark.skipif(
    sys.platform != "linux" and getattr(os, "geteuid", lambda: 0)() == 0,
    reason="as root, permission tests need Linux capabilities (prctl PR_CAPBSET_DROP)",
)


def drop_file_capabilities() -> None:
    """A ``preexec_fn``: make a root child obey file permissions (no-op for others)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def leftovers(directory: Path, expected: set[str]) -> set[str]:
    """Names in *directory* other than *expected* (temporary or partial output files)."""
    return {entry.name for entry in directory.iterdir()} - expected
