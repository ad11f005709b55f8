"""Running a producer ahead of its consumer, in background threads.

The reader's pipeline has two :class:`Stage` objects: one thread reads, decompresses and
cuts the text into blocks; two threads parse them and hand them over in file order,
while the caller works on the current chunk.
"""

from __future__ import annotations

from typing import Any


class Closed(Exception):
    """Raised by :meth:`Stage.get` once the stage is closed."""


class Stage:
    """Take the items of *source* ahead of the caller, in background threads, until None.

    *source* is called under a lock (it hands out the items in order, None at the end);
    *work*, when given, runs on each item unlocked, in *workers* threads at once (pyarrow's
    parser and numpy release the GIL). At most *depth* items are taken ahead of the
    caller. Each item (or its work's result), or the error its source or work raised,
    comes back from :meth:`get` in the source's order; after an error or the end, no more
    items are taken. Threads are named *name*-0, *name*-1, ...
    """

    def __init__(
        self,
        source: Any,
        work: Any = None,
        *,
        workers: int = 1,
        depth: int = 3,
        name: str = "xent-stage",
    ) -> None:
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
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
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
            if ok and item is not None and self._work is not None:
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
                # A short wait, repeated: the interpreter runs signal handlers in
                # between, so Ctrl-C is never stuck behind a lock (or an idle pipe).
                self._ready.wait(timeout=0.05)
            ok, value = self._results.pop(self._wanted)
            self._wanted += 1
        self._slots.release()
        if not ok:
            self._stop.set()
            raise value
        return value

    def close(self) -> None:
        """Stop the threads (each ends at its next item; they are daemons if one blocks)."""
        self._stop.set()
        with self._ready:
            self._results.clear()
        for thread in self._threads:
            thread.join(timeout=0.2)
