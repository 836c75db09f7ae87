"""A client loop shared by the concurrency and crash tests: register 8-GPU jobs against one cluster through
the HTTP client, attest each admitted one, and when the cluster is full finish this client's oldest job."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from meshctx.client import MeshctxClient, MeshctxError, ProblemError
from meshctx.config import ParallelismSizes
from meshctx.plan.request import TopologyRequest

REQUEST = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=2), world_size=8)


def register_loop(
    urls: list[str], token: str, prefix: str, count: int, acked: Callable[[str], None], stop: threading.Event
) -> list[str]:
    """Registers ``prefix-0 …`` (round-robin over ``urls``) until ``count`` attempts or ``stop``; calls ``acked``
    for every 2xx registration. Returns unexpected answers (anything but 2xx and capacity refusals)."""
    clients = [MeshctxClient(url, token=token) for url in urls]
    held: deque[str] = deque()
    unexpected: list[str] = []
    try:
        for number in range(count):
            if stop.is_set():
                break
            client, job_id = clients[number % len(clients)], f"{prefix}-{number}"
            try:
                job = client.register_job(job_id, REQUEST, cluster="pool", labels={"by": prefix})
            except ProblemError as error:
                if error.problem.get("code") != "capacity_exceeded":
                    unexpected.append(f"{job_id}: {error}")
                    continue
                if held:
                    try:
                        client.set_state(held.popleft(), "finished")
                    except ProblemError as error:
                        unexpected.append(f"finishing: {error}")
                    except MeshctxError:
                        break
                continue
            except MeshctxError:  # the server went away (the crash test kills it): stop quietly
                break
            acked(job_id)
            try:
                client.attest(job_id, job["fingerprint"])
            except MeshctxError:
                break
            held.append(job_id)
    finally:
        for client in clients:
            client.close()
    return unexpected
