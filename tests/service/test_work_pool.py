"""The work pool: bounded threads and queue, a deadline, and 503 + Retry-After past either."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from starlette.datastructures import State

from meshctx_service.http.work import Busy, WorkPool, off_loop


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


def test_inline_work_runs_at_once_on_the_event_loop_even_when_the_pool_is_full() -> None:
    state = State({"work": WorkPool(threads=1, queue=0, deadline_s=5.0)})
    release = threading.Event()

    async def scenario() -> None:
        held = asyncio.ensure_future(off_loop(state, release.wait))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await off_loop(state, threading.get_ident)  # the one thread is taken and there is no queue
        loop_thread = threading.get_ident()
        assert await off_loop(state, threading.get_ident, inline=True) == loop_thread  # no thread hop, not refused
        assert state.work.pending == 1  # the inline call never counted against the pool
        release.set()
        assert await held is True
        assert await off_loop(state, threading.get_ident) != loop_thread  # without inline: on the pool's thread

    try:
        asyncio.run(scenario())
    finally:
        state.work.close()


def test_admission_work_runs_on_its_own_pool_which_the_general_pool_s_load_never_takes() -> None:
    state = State(
        {
            "work": WorkPool(threads=1, queue=0, deadline_s=5.0),
            "admission_work": WorkPool(threads=1, queue=0, deadline_s=5.0, name="meshctx-admission"),
        }
    )
    release = threading.Event()

    def thread_name() -> str:
        return threading.current_thread().name

    async def scenario() -> None:
        held = asyncio.ensure_future(off_loop(state, release.wait))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await off_loop(state, thread_name)
        assert (await off_loop(state, thread_name, pool="admission")).startswith("meshctx-admission")
        slow = asyncio.ensure_future(off_loop(state, release.wait, pool="admission"))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as refused:  # admission's own thread taken, no queue: refused at once
            await off_loop(state, thread_name, pool="admission", deadline_s=0.5)
        assert not refused.value.timed_out
        release.set()
        assert await held is True and await slow is True

    try:
        asyncio.run(scenario())
    finally:
        state.work.close()
        state.admission_work.close()
