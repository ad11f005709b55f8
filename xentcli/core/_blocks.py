"""Running the kernel over a batch in cache-sized blocks, on one or more threads.

A batch of N rows is cut into blocks of about :data:`BLOCK_ELEMENTS` values; each block's
temporaries are carved from a per-thread scratch :class:`Arena`; big batches use a few
threads (numpy releases the GIL; the environment variable XENT_THREADS sets the count,
1 for none). An :class:`~xentcli.errors.InvalidInputError` raised by a block is re-raised
for the earliest bad block, whatever thread met it.

Pure numpy: no I/O, no printing.

>>> rows = []
>>> run(plan(9, 60000), lambda start, stop: rows.append((start, stop)), 60000)
>>> rows
[(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from xentcli.errors import InvalidInputError

if TYPE_CHECKING:
    from concurrent.futures import Executor

FloatArray = npt.NDArray[np.float64]

#: Elements (K * rows) per block: 1 MB per temporary, in cache; half as many blocks as
#: with 512 KB was 10-12 % faster at every benchmark shape (fewer numpy calls per row).
BLOCK_ELEMENTS = 1 << 17
#: Use a second thread for batches at least this large (numpy releases the GIL).
THREAD_ELEMENTS = 1 << 20


def default_threads() -> int:
    """Threads for big batches: XENT_THREADS if set, else two (or one on a single core)."""
    return max(1, int(os.environ.get("XENT_THREADS", "0")) or min(2, os.cpu_count() or 1))


THREADS = default_threads()

ARENA_BLOCKS = 12  # block-sized temporaries: shift 4 + sums 3, targets 2 + sums 3
_ARENA_KEPT = 1 << 21  # elements (16 MB): a thread keeps an arena up to this size


class Arena:
    """Per-thread scratch memory for one block's temporaries, reused block after block.

    Fresh 512 KB temporaries for every block make glibc trim and re-fault its heap (600
    page faults per block, measured: the TwoSum took 4x longer than in a loop); carving
    them from one buffer avoids that. :meth:`reset` at the start of each block.
    """

    def __init__(self) -> None:
        self.buffer = np.empty(0)
        self.used = 0

    def reset(self, elements: int) -> None:
        if self.buffer.size < elements:
            self.buffer = np.empty(elements)
        self.used = 0

    def take(self, shape: tuple[int, ...]) -> FloatArray:
        size = math.prod(shape)
        if self.used + size > self.buffer.size:
            return np.empty(shape)  # beyond the planned temporaries: allocate
        out = self.buffer[self.used : self.used + size].reshape(shape)
        self.used += size
        return out


_local = threading.local()


def arena(elements: int) -> Arena:
    """This thread's arena, reset for a block needing *elements*; a fresh one if huge."""
    kept: Arena | None = getattr(_local, "arena", None)
    if elements > _ARENA_KEPT:  # a single row of millions of classes: do not hoard it
        fresh = Arena()
    elif kept is None:
        fresh = _local.arena = Arena()
    else:
        fresh = kept
    fresh.reset(elements)
    return fresh


def plan(n: int, k: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` row ranges of the blocks of an ``(n, k)`` batch."""
    step = max(1, BLOCK_ELEMENTS // k)
    return [(start, min(n, start + step)) for start in range(0, n, step)]


def run(blocks: list[tuple[int, int]], work: Callable[[int, int], None], k: int) -> None:
    """Run *work(start, stop)* over the blocks, on two threads for big batches."""
    total = (blocks[-1][1] if blocks else 0) * k
    if THREADS < 2 or total < THREAD_ELEMENTS or len(blocks) < 4:
        _run_list(blocks, work)
        return
    # This thread and the workers take every other block; results land in disjoint
    # slices. The workers persist, so their arenas are reused from call to call.
    pool = _pool()
    futures = [pool.submit(_run_list, blocks[i::THREADS], work, True) for i in range(1, THREADS)]
    outcomes = [_run_list(blocks[0::THREADS], work, True)]
    outcomes += [future.result() for future in futures]
    failures = [f for f in outcomes if f is not None]
    if failures:
        # Each thread stops at its first bad block: the earliest of those is the first.
        raise min(failures, key=lambda failure: failure[0])[1]


_POOL: dict[int, Executor] = {}  # the worker threads, by process id, created on first use


def _pool() -> Executor:
    pid = os.getpid()  # a forked child inherits the pool object but not its threads
    if pid not in _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.clear()
        _POOL[pid] = ThreadPoolExecutor(THREADS - 1, thread_name_prefix="xent-kernel")
    return _POOL[pid]


def _run_list(
    blocks: list[tuple[int, int]], work: Callable[[int, int], None], catch: bool = False
) -> tuple[int, Exception] | None:
    # inf - inf and 0 * inf arise by design at masked classes and are repaired after.
    with np.errstate(all="ignore"):
        for start, stop in blocks:
            try:
                work(start, stop)
            except InvalidInputError as error:
                if not catch:
                    raise
                return start, error
    return None
