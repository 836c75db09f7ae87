"""A registry client process is SIGKILLed in the middle of its writes, three times over. Everything it was
told had been stored is there, the database passes its integrity checks, and the next client carries on."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from meshctx_service.registry import Registry
from meshctx_service.registry.models import Attestation, Job
from meshctx_service.registry.transactions import read_session
from tests.support.env import checkout_env

REGISTRAR = Path(__file__).with_name("registrar.py")
ACKS_BEFORE_KILL = 25
TIMEOUT_S = 90


def _run_until_killed(db_url: str, prefix: str) -> set[str]:
    """Start a client that registers forever; SIGKILL it after some acknowledgements; return all of them."""
    argv = [sys.executable, str(REGISTRAR), db_url, "acme", "pool", prefix, "0", "8", "release"]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=checkout_env(REGISTRAR.parent, keep_pythonpath=True)
    )
    assert process.stdout is not None and process.stderr is not None
    acknowledged: set[str] = set()
    buffer = b""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(acknowledged) < ACKS_BEFORE_KILL:
            assert time.monotonic() < deadline, "the client made too little progress"
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            if not selector.select(timeout=1):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                verdict, _, job = line.decode().partition(" ")
                assert verdict in ("ok", "full"), line
                if verdict == "ok":
                    acknowledged.add(job)
        process.send_signal(signal.SIGKILL)  # mid-write: the client never pauses between transactions
        rest, _ = process.communicate(timeout=30)
    finally:
        selector.close()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    for line in (buffer + rest).split(b"\n"):  # lines flushed just before the kill count too
        verdict, _, job = line.decode().partition(" ")
        if verdict == "ok":
            acknowledged.add(job)
    return acknowledged


def _check_consistent(registry: Registry) -> None:
    engine = registry.engine
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        else:  # every index agrees with its table: an index scan and a sequential scan see the same rows
            connection.execute(text("SET enable_seqscan = off"))
            by_index = connection.execute(text("SELECT count(*) FROM jobs WHERE tenant = 'acme'")).scalar_one()
            connection.execute(text("SET enable_seqscan = on; SET enable_indexscan = off; SET enable_bitmapscan = off"))
            by_table = connection.execute(text("SELECT count(*) FROM jobs WHERE tenant = 'acme'")).scalar_one()
            assert by_index == by_table
    with read_session(engine) as session:
        orphans = session.execute(
            select(func.count(Attestation.id)).where(~Attestation.job_pk.in_(select(Job.id)))
        ).scalar_one()
        assert orphans == 0
        active = session.execute(
            select(func.coalesce(func.sum(Job.gpus), 0)).where(Job.state.in_(["registered", "running"]))
        ).scalar_one()
        assert active <= 64


def test_acknowledged_registrations_survive_sigkill(registry: Registry, db_url: str) -> None:
    registry.put_cluster("acme", "pool", nodes=8, gpus_per_node=8)
    acknowledged: set[str] = set()
    for round_ in range(3):
        acknowledged |= _run_until_killed(db_url, f"r{round_}")
        stored = {j.job_id for j in registry.list_jobs("acme", limit=1000).items}
        missing = acknowledged - stored
        assert not missing, f"acknowledged but lost: {sorted(missing)}"
        _check_consistent(registry)
        for state in ("registered", "running"):  # the killed client's jobs died with it: free the cluster
            for job in registry.list_jobs("acme", state=state, limit=1000).items:
                registry.set_state("acme", job.job_id, "failed")
    # "Restarted": a fresh client on the same database works normally.
    assert len(_run_until_killed(db_url, "after")) >= 25
    _check_consistent(registry)
