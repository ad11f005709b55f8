"""Running a producer ahead of its consumer, in background threads.

The reader's pipeline has two stages: a :class:`Stage` reads, decompresses and cuts the
text into blocks; a :class:`ParallelStage` parses them, two at a time, and hands them
over in file order, while the caller works on the current chunk.
"""

from __future__ import annotations

import contextlib
from typing import Any


class Closed(Exception):
    """Raised by :meth:`Stage.get` once the stage is closed."""


def _delivered(ok: bool, value: Any, stop: Any) -> Any:
    """*value*, or, when it is the producer's error, stop the stage and raise it here."""
    if not ok:
        stop.set()
        raise value
    return value


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
        return _delivered(ok, value, self._stop)

    def close(self) -> None:
        """Stop the thread (it ends at its next item; it is a daemon if it blocks)."""
        import queue

        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=0.2)


class ParallelStage:
    """Apply *work* to the items of *source* in several threads; :meth:`get` keeps order.

    *source* is called under a lock (it hands out the items in order, None at the end);
    *work* runs unlocked, so two blocks are parsed at once (pyarrow's parser and numpy's
    checks release the GIL). At most *depth* items are taken ahead of the caller. Each
    item's result, or the error its source or work raised, comes back from :meth:`get`
    in the source's order; after an error or the end, no more items are taken.
    """

    def __init__(self, source: Any, work: Any, workers: int = 2, depth: int = 3) -> None:
        import threading

        self._source = source
        self._work = work
        self._lock = threading.Lock()
        self._ready = threading.Condition()
        self._slots = threading.Semaphore(depth)
        self._stop = threading.Event()
        self._results: dict[int, tuple[bool, Any]] = {}
        self._taken = 0  # items handed out by the source
        self._wanted = 0  # the next item the caller gets
        self._finished = False  # the source ended or failed
        self._threads = [
            threading.Thread(target=self._run, name=f"xent-parser-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.1):
                continue
            with self._lock:
                if self._finished or self._stop.is_set():
                    self._slots.release()
                    return
                index = self._taken
                self._taken += 1
                try:
                    item = self._source()
                    ok = True
                except BaseException as error:  # re-raised by get() in the calling thread
                    item, ok = error, False
                if item is None or not ok:
                    self._finished = True
            if ok and item is not None:
                try:
                    result: tuple[bool, Any] = (True, self._work(item))
                except BaseException as error:
                    result = (False, error)
            else:
                result = (ok, item)
            with self._ready:
                self._results[index] = result
                self._ready.notify_all()

    def get(self) -> Any:
        """The next result (None at the end), or the error raised for that item."""
        with self._ready:
            while self._wanted not in self._results:
                if self._stop.is_set():
                    raise Closed
                # A short wait, repeated: signal handlers run in between (see Stage.get).
                self._ready.wait(timeout=0.05)
            ok, value = self._results.pop(self._wanted)
            self._wanted += 1
        self._slots.release()
        return _delivered(ok, value, self._stop)

    def close(self) -> None:
        """Stop the threads (each ends at its next item; they are daemons if one blocks)."""
        self._stop.set()
        with self._ready:
            self._results.clear()
        for thread in self._threads:
            thread.join(timeout=0.2)
