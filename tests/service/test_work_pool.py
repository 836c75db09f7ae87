"""The work pool: bounded threads and queue, a deadline, and 503 + Retry-After past either."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from meshctx_service.http.work import Busy, WorkPool


def test_saturated_pool_refuses_at_once_and_recovers() -> None:
    pool = WorkPool(threads=1, queue=1, deadline_s=5.0)
    release = threading.Event()

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(release.wait))
        queued = asyncio.ensure_future(pool.run(lambda: 42))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(Busy) as refused:
            await pool.run(lambda: 0)  # one running, one queued: the third is refused without waiting
        assert time.perf_counter() - started < 0.5
        assert refused.value.status == 503 and refused.value.headers() == {"Retry-After": "1"}
        release.set()
        assert await first is True and await queued == 42
        assert await pool.run(lambda: 7) == 7 and pool.pending == 0

    try:
        asyncio.run(scenario())
    finally:
        pool.close()


def test_deadline_answers_503_and_the_abandoned_task_still_counts() -> None:
    pool = WorkPool(threads=1, queue=0, deadline_s=0.2)
    release = threading.Event()

    async def scenario() -> None:
        with pytest.raises(Busy) as late:
            await pool.run(release.wait)
        assert "MESHCTX_WORK_DEADLINE_S" in str(late.value) and late.value.headers() == {"Retry-After": "1"}
        assert pool.pending == 1  # its thread cannot be stopped: it still occupies the pool
        with pytest.raises(Busy):
            await pool.run(lambda: 0)
        release.set()
        for _ in range(100):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert await pool.run(lambda: 1) == 1

    try:
        asyncio.run(scenario())
    finally:
        pool.close()
