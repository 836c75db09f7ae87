"""A registry client process for the concurrency and crash tests, plus the request helper they share.

``python registrar.py URL TENANT CLUSTER PREFIX COUNT GPUS FINISH_EVERY`` registers jobs ``PREFIX-0 .. PREFIX-(COUNT-1)``
(COUNT = 0: forever) of GPUS ranks each through ``Registry``, and prints one line per answer, flushed as soon
as the registry acknowledged it: ``ok JOB``, ``full JOB`` (CapacityError) or ``error JOB MESSAGE``. Each
acknowledged job is then attested and, every FINISH_EVERY-th one (0: never), finished, so that the writes
span several tables and free capacity again.
"""

from __future__ import annotations

import sys

from meshctx.config import ParallelismSizes
from meshctx.plan.request import TopologyRequest
from meshctx_service.registry import CapacityError, Registry, make_engine


def fsdp2(world_size: int, tp: int = 1) -> TopologyRequest:
    return TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=tp), world_size=world_size)


def main(argv: list[str]) -> int:
    url, tenant, cluster, prefix, count, gpus = argv[0], argv[1], argv[2], argv[3], int(argv[4]), int(argv[5])
    finish_every = int(argv[6])
    registry = Registry(make_engine(url))
    request = fsdp2(gpus)
    number = 0
    while count == 0 or number < count:
        job_id = f"{prefix}-{number}"
        number += 1
        try:
            job = registry.register_job(tenant, job_id, request, cluster=cluster or None, labels={"by": prefix}).job
        except CapacityError:
            print("full", job_id, flush=True)
            continue
        except Exception as err:  # reported to the parent, which fails the test with it
            print("error", job_id, type(err).__name__, str(err).replace("\n", " "), flush=True)
            continue
        print("ok", job_id, flush=True)
        registry.attest(tenant, job_id, job.fingerprint)
        if finish_every and number % finish_every == 0:
            registry.set_state(tenant, job_id, "finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
