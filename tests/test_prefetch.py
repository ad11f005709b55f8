"""Tests of the reader's background stages (xentcli.batch._prefetch): order, errors, bounds."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from xentcli.batch._prefetch import Closed, Stage


def counting_source(n: int) -> tuple[Callable[[], int | None], list[int]]:
    """A source of 0..n-1 then None, and the list of what it handed out."""
    numbers: Iterator[int] = iter(range(n))
    handed: list[int] = []

    def source() -> int | None:
        value = next(numbers, None)
        if value is not None:
            handed.append(value)
        return value

    return source, handed


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def drain(stage: Any) -> list[Any]:
    out = []
    while (item := stage.get()) is not None:
        out.append(item)
    return out


def test_parallel_stage_keeps_the_source_order() -> None:
    source, _ = counting_source(200)
    delays = random.Random(3)
    pauses = [delays.random() * 1e-3 for _ in range(200)]
    seen_threads: set[str] = set()

    def work(i: int) -> int:
        seen_threads.add(threading.current_thread().name)
        time.sleep(pauses[i])  # later items often finish first
        return i * i

    stage = Stage(source, work, workers=3)
    assert drain(stage) == [i * i for i in range(200)]
    stage.close()
    assert len(seen_threads) > 1


def test_parallel_stage_stays_within_its_depth() -> None:
    source, handed = counting_source(50)
    stage = Stage(source, lambda i: i, workers=2, depth=3)
    wait_until(lambda: len(handed) >= 3)  # the workers run ahead as far as they may...
    time.sleep(0.05)
    assert len(handed) == 3  # ...and no further
    assert stage.get() == 0
    wait_until(lambda: len(handed) >= 4)
    time.sleep(0.05)
    assert len(handed) == 4
    assert drain(stage) == list(range(1, 50))
    stage.close()


def test_parallel_stage_error_in_work_comes_in_order() -> None:
    source, handed = counting_source(100)

    def work(i: int) -> int:
        if i == 7:
            raise ValueError("item 7")
        return i

    stage = Stage(source, work, workers=2, depth=4)
    got = [stage.get() for _ in range(7)]
    assert got == list(range(7))
    with pytest.raises(ValueError, match="item 7"):
        stage.get()
    with pytest.raises(Closed):
        stage.get()
    stage.close()
    assert len(handed) <= 7 + 4 + 1  # it stopped taking items soon after the error


def test_parallel_stage_error_in_source() -> None:
    calls = iter(range(3))

    def source() -> int:
        i = next(calls, None)
        if i is None:
            raise OSError("disk gone")
        return i

    stage = Stage(source, lambda i: -i, workers=2)
    assert [stage.get() for _ in range(3)] == [0, -1, -2]
    with pytest.raises(OSError, match="disk gone"):
        stage.get()
    stage.close()


def test_parallel_stage_close_stops_the_workers() -> None:
    source, handed = counting_source(10**9)
    stage = Stage(source, lambda i: i, workers=2, depth=2)
    assert stage.get() == 0
    stage.close()
    with pytest.raises(Closed):
        stage.get()
    assert not any(thread.is_alive() for thread in stage._threads)
    count = len(handed)
    time.sleep(0.05)
    assert len(handed) == count


def test_stage_order_and_error() -> None:
    source, _ = counting_source(5)
    stage = Stage(source)
    assert drain(stage) == [0, 1, 2, 3, 4]
    stage.close()

    def failing() -> int:
        raise KeyError("boom")

    stage = Stage(failing)
    with pytest.raises(KeyError):
        stage.get()
    stage.close()
