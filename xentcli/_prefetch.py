"""Running a producer ahead of its consumer, in a background thread.

The reader's pipeline is two :class:`Stage` objects: one reads, decompresses and cuts
the text into blocks, the next parses them, while the caller works on the current chunk.
"""

from __future__ import annotations

import contextlib
from typing import Any


class Closed(Exception):
    """Raised by :meth:`Stage.get` once the stage is closed."""


class Stage:
    """Call *produce* in a background thread, ahead of the caller, until it returns None.

    Two stages run in a pipeline: one reads, decompresses and cuts the text into blocks;
    the next parses them (pyarrow and numpy work mostly without the GIL), so reading,
    parsing and whatever the caller does with the current chunk overlap. Errors are
    re-raised in the caller, by :meth:`get`.
    """

    def __init__(self, produce: Any, depth: int = 2) -> None:
        import queue
        import threading

        self._produce = produce
        self._queue: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xent-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._produce()
                self._put((True, item))
                if item is None:
                    return
        except BaseException as error:  # re-raised by get() in the calling thread
            self._put((False, error))

    def _put(self, item: tuple[bool, Any]) -> None:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        """The next item (None at the end), or the producer's error raised."""
        import queue

        while True:
            if self._stop.is_set():
                raise Closed
            # A short wait, repeated: the interpreter runs signal handlers in between,
            # so Ctrl-C is never stuck behind a lock (or an idle pipe).
            try:
                ok, value = self._queue.get(timeout=0.05)
                break
            except queue.Empty:
                continue
        if not ok:
            self._stop.set()
            raise value
        return value

    def close(self) -> None:
        """Stop the thread (it ends at its next item; it is a daemon if it blocks)."""
        import queue

        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=0.2)
