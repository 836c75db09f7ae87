"""A registry client for the concurrency and crash tests (run in threads, or as a process), and the request
helper the registry tests share.

``python registrar.py URL TENANT CLUSTER PREFIX COUNT GPUS MODE`` registers jobs ``PREFIX-0 ..`` (COUNT = 0:
forever) of GPUS ranks each through ``Registry`` and prints one line per answer, flushed as soon as the
registry acknowledged it: ``ok JOB``, ``full JOB`` (CapacityError) or ``error JOB MESSAGE``. Each admitted job
is attested (it becomes running). In MODE ``release`` a client that finds the cluster full finishes its
oldest running job, so that capacity keeps turning over; in MODE ``keep`` jobs stay.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable

from meshctx.config import ParallelismSizes
from meshctx.plan.request import TopologyRequest
from meshctx_service.registry import CapacityError, Registry, make_engine


def fsdp2(world_size: int, tp: int = 1) -> TopologyRequest:
    return TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=tp), world_size=world_size)


def run_client(
    registry: Registry,
    *,
    tenant: str,
    cluster: str | None,
    prefix: str,
    count: int,
    gpus: int,
    release: bool,
    report: Callable[[str, str], None],
) -> None:
    request = fsdp2(gpus)
    held: deque[str] = deque()
    number = 0
    while count == 0 or number < count:
        job_id = f"{prefix}-{number}"
        number += 1
        try:
            job = registry.register_job(tenant, job_id, request, cluster=cluster, labels={"by": prefix}).job
        except CapacityError:
            report("full", job_id)
            if release and held:
                registry.set_state(tenant, held.popleft(), "finished")
            continue
        except Exception as err:  # reported to the parent, which fails the test with it
            report("error", f"{job_id} {type(err).__name__} {err}".replace("\n", " "))
            continue
        report("ok", job_id)
        registry.attest(tenant, job_id, job.fingerprint)
        held.append(job_id)


def main(argv: list[str]) -> int:
    url, tenant, cluster, prefix, count, gpus, mode = argv
    run_client(
        Registry(make_engine(url)),
        tenant=tenant,
        cluster=cluster or None,
        prefix=prefix,
        count=int(count),
        gpus=int(gpus),
        release=mode == "release",
        report=lambda verdict, job: print(verdict, job, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
