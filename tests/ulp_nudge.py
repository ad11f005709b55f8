"""Move numpy's ``exp`` and ``log`` by one unit in the last place, as another CPU may.

numpy's float64 ``exp``/``log`` are not correctly rounded, and their last bit differs
between machines (vectorised on AVX-512, scalar libm elsewhere). The README-example
tests run xent with these nudged functions to show that they do not pin digits a
different CPU would print differently.

``python tests/ulp_nudge.py ARGS...`` runs ``xent ARGS...`` with the nudge installed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _nudged(function: Callable[..., Any], *, keep: tuple[float, ...]) -> Callable[..., Any]:
    """*function* with every finite result not in *keep* moved one ulp towards +inf.

    Results that every libm gets exactly (``exp(0) = 1``, ``log(1) = 0``, 0 and the
    infinities) are kept: no CPU differs there.
    """

    def nudged(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        values = np.asarray(result)
        move = np.isfinite(values) & ~np.isin(values, keep)
        if values.ndim == 0:
            return np.nextafter(result, np.inf) if move else result
        values[move] = np.nextafter(values[move], np.inf)
        return result

    return nudged


@contextlib.contextmanager
def nudged_exp_and_log() -> Iterator[None]:
    """Within the block, ``np.exp`` and ``np.log`` are one ulp off (see the module doc)."""
    exp, log = np.exp, np.log
    np.exp = _nudged(exp, keep=(0.0, 1.0))  # type: ignore[assignment]
    np.log = _nudged(log, keep=(0.0,))  # type: ignore[assignment]
    try:
        yield
    finally:
        np.exp, np.log = exp, log  # type: ignore[assignment]


if __name__ == "__main__":
    # The repository's own xentcli, as ``python -m xentcli`` from its root would find it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from xentcli.cli.main import main

    with nudged_exp_and_log():
        main()
