"""A worker's compute thread(s): blocking recommendation work off the event loop, cheaply.

The work (one SQL query, numpy, the body) holds the GIL most of the time, so one thread
per worker does best (``api.compute_threads``, default 1). With two, each request's numpy
calls hand the GIL back and forth between them: on 2 CPUs one worker used 1.45 ms of CPU
per request with two threads and 1.1 with one, and answered fewer requests; two workers
1.25 against 1.15.

The threads take jobs from one :class:`queue.SimpleQueue` and hand each result back with
``loop.call_soon_threadsafe``: the queue itself bounds how many run at once. Under load
this costs a few microseconds per call, where ``anyio.to_thread.run_sync`` with a
``CapacityLimiter`` costs tens (its waiters are woken one by one through the event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the request went away while its work ran
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class ComputePool:
    """``threads`` daemon threads, started at the first call; :meth:`close` ends them (a
    later call starts them again: an app may be started more than once, as in tests)."""

    def __init__(
        self,
        threads: int,
        name: str = "compute",
        *,
        on_start: Callable[[], None] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        """``on_start`` / ``on_exit``: called in each thread before its first job / after its last."""
        if threads < 1:
            raise ValueError("a compute pool needs at least one thread")
        self.size = threads
        self.name = name
        self.on_start, self.on_exit = on_start, on_exit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        if self.on_start is not None:
            self.on_start()
        try:
            while (job := self._jobs.get()) is not None:
                loop, future, call = job
                try:
                    result, error = call(), None
                except BaseException as exc:  # handed to the awaiting request, raised there
                    result, error = None, exc
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    loop.call_soon_threadsafe(_settle, future, result, error)
                del job, future, result, error
        finally:
            if self.on_exit is not None:
                self.on_exit()

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in one of the pool's threads; its result or its exception."""
        if len(self._threads) < self.size:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, call))
        return await future

    def close(self, timeout: float = 5.0) -> None:
        """Let queued jobs finish, then end the threads."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout)
