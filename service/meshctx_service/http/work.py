"""The work pools: planning that may take more than a millisecond runs here, off the event loop. ``off_loop``
is the one way a route runs such work: the general pool (``app.state.work``, ``MESHCTX_WORK_*``) serves validate,
layout, render and place; admission has a pool of its own (``app.state.admission_work``,
``MESHCTX_ADMISSION_THREADS``/``_QUEUE``) that no other route can take, so a saturated general pool never keeps
the gate from checking a workload (its routes pass ``MESHCTX_CHECK_DEADLINE_S`` as their deadline, and answer a
``Busy`` in their schedulers' own form).

A fixed number of threads, a bounded queue and a deadline (docs/contract.md "Bounded work"): the event loop keeps
answering ``/livez`` and ``/readyz`` while the largest allowed requests run; a request arriving when every
thread is busy and the queue is full is refused at once (503 + ``Retry-After``), and one that waits or runs
past the deadline gets a 503 too. A thread cannot be stopped, so a task past its deadline keeps its thread
and still counts against the queue until it ends: the pool never runs more than ``threads`` tasks at once.
Registry reads and writes wait on the database, not the CPU: they run on anyio's threads, as FastAPI runs every
synchronous route.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from starlette.datastructures import State

from .errors import ServiceError

T = TypeVar("T")
#: While a pool thread computes it holds the GIL; the event loop gets it back after this many seconds at
#: most (CPython's default is 5 ms, which alone would use up a quarter of the probes' 20 ms budget).
SWITCH_INTERVAL_S = 0.001


class Busy(ServiceError):
    """Every work thread is busy and the queue is full, or the work ran past its deadline (503)."""

    status = 503
    code = "service_busy"

    def __init__(self, detail: str, retry_after_s: int, *, timed_out: bool = False) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.timed_out = timed_out  # ran past its deadline (else: refused at once, the pool being full)

    def extras(self) -> dict[str, object]:
        return {"retry_after": self.retry_after_s}

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)}


class WorkPool:
    def __init__(self, threads: int, queue: int, deadline_s: float, name: str = "meshctx-work") -> None:
        self.threads, self.queue, self.deadline_s = threads, queue, deadline_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not yet finished (running, queued, or abandoned past the deadline)
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))

    @property
    def pending(self) -> int:
        return self._pending

    def _finished(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(
        self, fn: Callable[..., T], *args: object, deadline_s: float | None = None, admitted: bool = False
    ) -> T:
        """``fn(*args)`` on a pool thread; ``Busy`` (503) when saturated or past the deadline (the pool's, or a
        shorter one of the caller's, e.g. an admission webhook that must answer before the API server gives up).
        ``admitted``: the next piece of a request the pool already took (a streamed listing's chunk, its status
        already sent): it waits its turn rather than being refused mid-response."""
        deadline = self.deadline_s if deadline_s is None else min(deadline_s, self.deadline_s)
        with self._lock:
            if self._pending >= self.threads + self.queue and not admitted:
                raise Busy(
                    f"Every planning thread ({self.threads}) is busy and {self.queue} requests are queued; retry "
                    "shortly (MESHCTX_WORK_THREADS, MESHCTX_WORK_QUEUE).",
                    1,
                )
            self._pending += 1
        future = self._executor.submit(fn, *args)
        future.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), deadline)
        except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11 on
            future.cancel()  # drops it if it has not started; a running one finishes on its own
            raise Busy(
                f"The request did not finish within {deadline:g} s (MESHCTX_WORK_DEADLINE_S); the service "
                "is loaded, retry later.",
                max(1, round(deadline)),
                timed_out=True,
            ) from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


#: The app's pools, by the ``app.state`` attribute that holds each.
POOLS = {"work": "work", "admission": "admission_work"}
Pool = Literal["work", "admission"]


async def off_loop(
    state: State,
    fn: Callable[..., T],
    *args: object,
    pool: Pool = "work",
    inline: bool = False,
    deadline_s: float | None = None,
    admitted: bool = False,
) -> T:
    """``fn(*args)`` on one of the app's work pools: how every route runs work that may take more than about a
    millisecond.

    Args:
        state: the app's state, which holds the pools.
        fn: the work, with its ``args``.
        pool: ``"work"`` (``MESHCTX_WORK_*``) or ``"admission"`` (``MESHCTX_ADMISSION_THREADS``/``_QUEUE``).
        inline: work known to be cheap: run at once on the event loop, never refused (a thread hop would cost
            more than the work; the app need not even have the pool).
        deadline_s: a deadline shorter than the pool's (``WorkPool.run``).
        admitted: the next piece of a request the pool already took (``WorkPool.run``).

    Returns:
        What ``fn`` returns.

    Raises:
        Busy: every thread busy and the queue full (``timed_out`` false), or past the deadline (true).
    """
    if inline:
        return fn(*args)
    work: WorkPool = getattr(state, POOLS[pool])
    return await work.run(fn, *args, deadline_s=deadline_s, admitted=admitted)
