"""The combiner under real threads: batches form only from callers that queued while one ran,
each caller gets its own answer or its own error, and no caller is left waiting."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ml_assets.layers.online.combine import Combiner


def test_callers_queued_during_a_batch_run_as_the_next_batch() -> None:
    release = threading.Event()
    seen: list[list[int]] = []

    def run(items: list[int]) -> list[int | BaseException]:
        seen.append(list(items))
        if len(seen) == 1:
            release.wait(10)  # the first batch runs until the others have queued
        return [ValueError(f"bad {i}") if i == 3 else i * 10 for i in items]

    combiner: Combiner[int, int] = Combiner(run, parallel=1)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(combiner, 0)
        while not seen:
            time.sleep(0.001)
        rest = {i: pool.submit(combiner, i) for i in range(1, 6)}
        while len(combiner._queue) < 5:
            time.sleep(0.001)
        release.set()
        assert first.result(10) == 0
        for i, future in rest.items():
            if i == 3:
                with pytest.raises(ValueError, match="bad 3"):
                    future.result(10)
            else:
                assert future.result(10) == i * 10
    assert seen[0] == [0] and sorted(seen[1]) == [1, 2, 3, 4, 5]
    assert (combiner.batches, combiner.items) == (2, 6)


def test_batches_run_side_by_side_up_to_parallel() -> None:
    """Two batches at once (one per core: DuckDB releases the GIL), never a third."""
    running, most = 0, 0
    lock = threading.Lock()
    both = threading.Barrier(2, timeout=10)

    def run(items: list[int]) -> list[int | BaseException]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if items[0] < 2:
            both.wait()  # the first two callers' batches must overlap
        time.sleep(0.002)
        with lock:
            running -= 1
        return list(items)

    combiner: Combiner[int, int] = Combiner(run, parallel=2)
    with ThreadPoolExecutor(8) as pool:
        first = [pool.submit(combiner, i) for i in range(2)]
        assert [f.result(10) for f in first] == [0, 1]
        assert list(pool.map(combiner, range(2, 300))) == list(range(2, 300))
    assert most == 2


def test_a_lone_caller_runs_at_once_and_batches_are_bounded() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int | BaseException]:
        sizes.append(len(items))
        time.sleep(0.002)
        return list(items)

    combiner: Combiner[int, int] = Combiner(run, max_items=3)
    assert combiner(7) == 7 and sizes == [1]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(combiner, range(200))) == list(range(200))
    assert max(sizes) <= 3 and combiner.items == 201
    assert combiner.batches < 201  # concurrent callers did share batches
    assert not combiner._queue and not combiner._leading


def test_a_failing_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    def run(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("statement failed")
        return list(items)

    combiner: Combiner[int, int] = Combiner(run)
    with pytest.raises(RuntimeError, match="statement failed"):
        combiner(1)
    assert combiner(2) == 2
    with pytest.raises(ValueError, match="max_items"):
        Combiner(run, max_items=0)
