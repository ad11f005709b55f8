"""Regenerate ``digits_plot.png``, the figure the README shows, from ``digits.csv``.

It runs exactly the command the README gives, with this checkout's xent:

    xent batch examples/digits.csv --plot examples/digits_plot.png

so the committed figure is what a user gets. Run from anywhere:
``python examples/make_plot.py`` (needs matplotlib: ``pip install 'xent[plot]'``). The file
carries no date, so it changes only when the report, the figure's code or matplotlib
does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ["batch", "examples/digits.csv", "--plot", "examples/digits_plot.png"]


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    subprocess.run(
        [sys.executable, "-m", "xentcli", *COMMAND],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    size = (ROOT / COMMAND[-1]).stat().st_size
    print(f"{COMMAND[-1]}: {size:,} bytes, from: xent {' '.join(COMMAND)}")


if __name__ == "__main__":
    main()
