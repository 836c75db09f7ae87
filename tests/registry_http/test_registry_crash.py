"""The service is SIGKILLed while clients write to it, and restarted on the same SQLite file, three times:
every registration it acknowledged (2xx) is there, and the database passes its integrity checks."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meshctx.client import MeshctxClient
from tests.registry_http.registering import register_loop
from tests.support.servers import LiveServer

CLIENTS, ACKS_BEFORE_KILL, ROUNDS, TIMEOUT_S = 6, 30, 3, 120


def _integrity(path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        connection.close()


def test_acknowledged_registrations_survive_sigkill(
    serve: Callable[..., LiveServer], tmp_path: Path, tokens_file: Path
) -> None:
    database = tmp_path / "registry.db"
    env = {"MESHCTX_DATABASE_URL": f"sqlite:///{database}", "MESHCTX_TOKENS_FILE": str(tokens_file)}
    server = serve(**env)
    with MeshctxClient(server.url, token="admin-a-0123456789") as admin:
        admin.put_cluster("pool", nodes=8, gpus_per_node=8)
    acknowledged: set[str] = set()
    lock = threading.Lock()

    def ack(job_id: str) -> None:
        with lock:
            acknowledged.add(job_id)

    for round_ in range(ROUNDS):
        stop = threading.Event()
        before = len(acknowledged)
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(register_loop, [server.url], "writer-a-0123456789", f"r{round_}c{i}", 10_000, ack, stop)
                for i in range(CLIENTS)
            ]
            deadline = time.monotonic() + TIMEOUT_S
            while len(acknowledged) - before < ACKS_BEFORE_KILL:
                assert time.monotonic() < deadline, "the clients made too little progress"
                assert not any(f.done() for f in futures), [f.result() for f in futures if f.done()]
                time.sleep(0.01)
            server.process.send_signal(signal.SIGKILL)  # while the clients are still writing
            server.process.wait(timeout=30)
            stop.set()
            for future in futures:
                assert future.result(timeout=60) == []
        assert server.process.returncode == -signal.SIGKILL
        _integrity(database)

        server = serve(**env)  # restarted on the same file
        with MeshctxClient(server.url, token="writer-a-0123456789") as client:
            stored = {j["job_id"] for j in client.list_jobs(limit=1000)["items"]}
            assert not acknowledged - stored, f"acknowledged but lost: {sorted(acknowledged - stored)}"
            for state in ("registered", "running"):  # the killed round's jobs died with it: free the cluster
                for job in client.list_jobs(state=state, limit=1000)["items"]:
                    client.set_state(job["job_id"], "failed")
    assert len(acknowledged) >= ROUNDS * ACKS_BEFORE_KILL
