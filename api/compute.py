"""A worker's compute thread(s): blocking recommendation work off the event loop, cheaply.

The work (one SQL query, numpy, the body) holds the GIL most of the time, so one thread
per worker does best (``api.compute_threads``, default 1). With two, each request's numpy
calls hand the GIL back and forth between them: on 2 CPUs one worker used 1.45 ms of CPU
per request with two threads and 1.1 with one, and answered fewer requests; two workers
1.25 against 1.15.

Reader threads (``readers``, :meth:`ComputePool.read`): a request's database read waits for the
server's answer, ~0.15 ms on PostgreSQL when idle and several times that when the server competes
for the same cores (py-spy under wrk: a quarter of the compute thread's time); the one compute
thread did no work meanwhile. Read in a thread of its own, the next request's snapshot is fetched
while the compute thread works on the current one: 1.5M members on PostgreSQL, 1 worker, in turns
with and without a reader: req/s 0.52 -> 0.70 of the floor, 1.64 -> 1.48 ms CPU a request (2 workers,
whose other worker already used the wait: 0.69 both ways, 1.25 -> 1.29 ms). The reader holds the
GIL only for its ~0.05 ms of Python a read. A second *compute* thread overlaps the wait too, but the
two fight for the GIL over the numpy work (1 worker: 0.52 -> 0.54 of the floor's req/s, the floor's
CPU a request over the route's 0.74 -> 0.58). SQLite reads in process and waits for nobody: no reader
there (``api.app``).

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
        readers: int = 0,
    ) -> None:
        """``on_start`` / ``on_exit``: called in each thread before its first job / after its last.
        ``readers``: threads of their own for :meth:`read` (0: reads run as :meth:`run` jobs)."""
        if threads < 1:
            raise ValueError("a compute pool needs at least one thread")
        self.size = threads
        self.name = name
        self.on_start, self.on_exit = on_start, on_exit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.readers: ComputePool | None = (
            ComputePool(readers, f"{name}-reads", on_start=on_start, on_exit=on_exit) if readers else None
        )

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

    async def read(self, call: Callable[[], T]) -> T:
        """``call()`` in one of the reader threads (a database read that mostly waits for the
        server), else as :meth:`run` does."""
        if self.readers is None:
            return await self.run(call)
        return await self.readers.run(call)

    def close(self, timeout: float = 5.0) -> None:
        """Let queued jobs finish, then end the threads (the readers' too)."""
        if self.readers is not None:
            self.readers.close(timeout)
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout)
