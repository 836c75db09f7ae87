"""Many clients, threads and OS processes at once, registering against one cluster: the cluster is never
oversubscribed and no acknowledged registration is lost (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from meshctx_service.registry import JobState, Registry
from meshctx_service.registry.models import Job
from meshctx_service.registry.transactions import read_session
from tests.registry.registrar import run_client
from tests.support.env import checkout_env

REGISTRAR = Path(__file__).with_name("registrar.py")
TIMEOUT_S = 120


def _start(db_url: str, prefix: str, count: int, gpus: int, mode: str) -> subprocess.Popen[str]:
    argv = [sys.executable, str(REGISTRAR), db_url, "acme", "pool", prefix, str(count), str(gpus), mode]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=checkout_env(REGISTRAR.parent, keep_pythonpath=True),
    )


def _collect(process: subprocess.Popen[str]) -> list[tuple[str, str]]:
    out, err = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, err[-3000:]
    return [(line.split(" ", 1)[0], line.split(" ", 1)[1]) for line in out.splitlines()]


def _threads(registry: Registry, clients: int, count: int, gpus: int, mode: str) -> list[tuple[str, str]]:
    def client(i: int) -> list[tuple[str, str]]:
        answers: list[tuple[str, str]] = []
        run_client(
            registry, tenant="acme", cluster="pool", prefix=f"t{i}", count=count, gpus=gpus,
            release=mode == "release", report=lambda verdict, job: answers.append((verdict, job)),
        )  # fmt: skip
        return answers

    with ThreadPoolExecutor(clients) as pool:
        return [a for answers in pool.map(client, range(clients)) for a in answers]


def _admitted(answers: list[tuple[str, str]]) -> set[str]:
    errors = [job for verdict, job in answers if verdict == "error"]
    assert not errors, errors
    return {job for verdict, job in answers if verdict == "ok"}


def _active_gpus(registry: Registry) -> int:
    with read_session(registry.engine) as session:
        query = select(func.coalesce(func.sum(Job.gpus), 0)).where(
            Job.cluster_name == "pool", Job.state.in_(["registered", "running"])
        )
        return int(session.execute(query).scalar_one())


def test_parallel_registrations_fill_the_cluster_exactly(registry: Registry, db_url: str) -> None:
    """68 attempts of 2 GPUs for 32 GPUs, from 3 processes and 8 threads: exactly 16 are admitted."""
    registry.put_cluster("acme", "pool", nodes=4, gpus_per_node=8)
    processes = [_start(db_url, f"p{i}", 12, 2, "keep") for i in range(3)]
    answers = _threads(registry, 8, 4, 2, "keep") + [a for p in processes for a in _collect(p)]
    assert len(answers) == 3 * 12 + 8 * 4
    admitted = _admitted(answers)
    assert len(admitted) == 16
    stored = registry.list_jobs("acme", limit=1000).items
    assert {j.job_id for j in stored} == admitted  # every acknowledged write is there, nothing else
    assert all(j.state is JobState.RUNNING for j in stored)
    assert _active_gpus(registry) == 32


def test_capacity_holds_while_jobs_finish_and_new_ones_arrive(registry: Registry, db_url: str) -> None:
    """Clients keep registering and finishing jobs; a watcher checks committed state all along."""
    registry.put_cluster("acme", "pool", nodes=2, gpus_per_node=8)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(_active_gpus(registry))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        processes = [_start(db_url, f"p{i}", 15, 4, "release") for i in range(3)]
        answers = _threads(registry, 4, 10, 4, "release") + [a for p in processes for a in _collect(p)]
    finally:
        stop.set()
        watcher.join(timeout=30)
    admitted = _admitted(answers)
    assert len(admitted) > 4  # finishing freed room for more than one cluster-full of jobs
    assert {j.job_id for j in registry.list_jobs("acme", limit=1000).items} == admitted
    assert seen and max(seen) <= 16
    assert _active_gpus(registry) <= 16
