"""api/compute.py: the worker's compute threads, and api/metrics.py's off-request writer."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import metrics
from api.compute import ComputePool


def test_results_and_errors_come_back_to_the_caller() -> None:
    pool = ComputePool(2)

    def fail() -> int:
        raise KeyError("missing")

    async def main() -> None:
        assert await pool.run(lambda: 6 * 7) == 42
        assert await pool.run(threading.current_thread) is not threading.current_thread()
        with pytest.raises(KeyError, match="missing"):
            await pool.run(fail)

    asyncio.run(main())
    pool.close()


def test_at_most_threads_jobs_run_at_once_and_the_rest_wait() -> None:
    pool = ComputePool(2)
    lock = threading.Lock()
    release = threading.Event()
    running = peak = 0

    def job(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(10)
        with lock:
            running -= 1
        return n

    async def main() -> list[int]:
        tasks = [asyncio.ensure_future(pool.run(lambda n=n: job(n))) for n in range(6)]
        for _ in range(1000):  # until two have started (the others queue behind them)
            await asyncio.sleep(0.005)
            if running == 2:
                break
        assert running == 2
        release.set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == list(range(6))
    assert peak == 2
    pool.close()


def test_a_closed_pool_starts_again_and_a_cancelled_caller_is_no_error() -> None:
    pool = ComputePool(1)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "done"

    async def main() -> str:
        task = asyncio.ensure_future(pool.run(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        return await pool.run(lambda: "after")  # the same thread, once slow() has returned

    assert asyncio.run(main()) == "after"
    pool.close()
    assert asyncio.run(pool.run(lambda: "again")) == "again"
    pool.close()


class _Clock:
    @staticmethod
    def time() -> float:
        return 1_000_000.25


def test_requests_are_counted_and_logged_when_drained_stamped_at_their_end(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics.drain()
    route = "/test/{compute}"

    def count(status: str) -> float:
        value = metrics.REQUESTS.labels(method="GET", route=route, status=status)._value.get()
        return float(value)

    before = count("200")
    with caplog.at_level(logging.INFO, logger="bookclub.api.access"):
        with monkeypatch.context() as patch:
            patch.setattr(metrics, "time", _Clock)  # the wall time a request ends
            metrics.record_request("GET", route, 200, 0.0123)
            metrics.record_request("GET", route, 200, 0.002)
            metrics.record_request("GET", route, 404, 0.001)
        metrics.drain()
    assert count("200") - before == 2
    lines = [r for r in caplog.records if route in r.getMessage()]
    assert [r.getMessage() for r in lines] == [
        f"GET {route} 200 12.3ms",
        f"GET {route} 200 2.0ms",
        f"GET {route} 404 1.0ms",
    ]
    assert {(r.created, r.msecs) for r in lines} == {(1_000_000.25, 250.0)}  # not the drain's time


def test_worker_exit_writes_the_backlog(caplog: pytest.LogCaptureFixture) -> None:
    route = "/test/{exit}"
    with caplog.at_level(logging.INFO, logger="bookclub.api.access"):
        metrics.record_request("GET", route, 200, 0.001)
        metrics.worker_exit()
    assert [r.getMessage() for r in caplog.records if route in r.getMessage()] == [f"GET {route} 200 1.0ms"]


def test_what_start_up_built_is_out_of_the_collectors_sight(app: FastAPI) -> None:
    gc.unfreeze()
    with TestClient(app):
        assert gc.get_freeze_count() > 10_000  # the model, the title cache, the imports
    gc.unfreeze()


def test_each_thread_runs_its_start_and_exit_hooks_around_its_jobs() -> None:
    seen: list[tuple[str, str]] = []
    pool = ComputePool(
        2,
        on_start=lambda: seen.append(("start", threading.current_thread().name)),
        on_exit=lambda: seen.append(("exit", threading.current_thread().name)),
    )

    async def main() -> set[str]:
        names = await asyncio.gather(*(pool.run(lambda: threading.current_thread().name) for _ in range(8)))
        return set(names)

    names = asyncio.run(main())
    assert {n for kind, n in seen if kind == "start"} == {"compute-0", "compute-1"} >= names
    assert not [e for e in seen if e[0] == "exit"]
    pool.close()
    assert sorted(seen) == sorted([("start", "compute-0"), ("start", "compute-1"), ("exit", "compute-0"), ("exit", "compute-1")])
