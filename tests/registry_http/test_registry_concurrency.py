"""Many clients registering against one cluster at once through two service replicas on one database: the
cluster is never oversubscribed (checked continuously, and at the end) and no acknowledged write is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from meshctx.client import MeshctxClient
from tests.registry_http.registering import register_loop
from tests.support.servers import LiveServer

CLIENTS, ATTEMPTS, CAPACITY = 12, 30, 64


def _active_gpus(client: MeshctxClient) -> int:
    """From one listing (one database snapshot): two listings could count a job that moved between them twice."""
    page = client.list_jobs(cluster="pool", limit=1000)
    assert page["next_cursor"] is None
    return sum(job["gpus"] for job in page["items"] if job["state"] in ("registered", "running"))


def test_parallel_registrations_through_two_replicas(
    serve: Callable[..., LiveServer], db_url: str, tokens_file: Path
) -> None:
    replicas = [serve(MESHCTX_DATABASE_URL=db_url, MESHCTX_TOKENS_FILE=str(tokens_file)) for _ in range(2)]
    urls = [r.url for r in replicas]
    with MeshctxClient(urls[0], token="admin-a-0123456789") as admin:
        admin.put_cluster("pool", nodes=8, gpus_per_node=8)
    acknowledged: set[str] = set()
    lock, stop = threading.Lock(), threading.Event()

    def ack(job_id: str) -> None:
        with lock:
            acknowledged.add(job_id)

    peaks: list[int] = []

    def watch() -> None:  # a snapshot never shows more active GPUs than the cluster has
        with MeshctxClient(urls[1], token="reader-a-0123456789") as reader:
            while not stop.is_set():
                peaks.append(_active_gpus(reader))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(
                    register_loop, urls[i % 2 :] + urls[: i % 2], "writer-a-0123456789", f"c{i}", ATTEMPTS, ack, stop
                )
                for i in range(CLIENTS)
            ]
            unexpected = [answer for f in futures for answer in f.result(timeout=240)]
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert unexpected == []
    assert peaks and max(peaks) <= CAPACITY, max(peaks)
    with MeshctxClient(urls[1], token="reader-a-0123456789") as reader:
        stored = {j["job_id"] for j in reader.list_jobs(limit=1000)["items"]}
        assert not acknowledged - stored, f"acknowledged but lost: {sorted(acknowledged - stored)}"
        assert len(acknowledged) > CAPACITY // 8  # capacity turned over: more jobs were admitted than fit at once
        assert _active_gpus(reader) <= CAPACITY
