"""Registry latency with 10,000 stored jobs, leases on, against bare SQL through the same engine in the same run.

For each backend (a SQLite file; PostgreSQL from ``--postgres-url``/``$MESHCTX_BENCH_POSTGRES_URL``, or a
throwaway local server started from ``initdb``/``pg_ctl`` when they are installed) it stores 10,000 jobs
(half on one cluster, ten label values, mixed states; every active one with a live 600 s lease), then times:

- register: ``Registry.register_job`` of a new job on the cluster with the default 600 s lease (validate + plan
  + capacity pre-check on a snapshot, then one write transaction: the job row, the cluster's lock and counters
  in one ``UPDATE … RETURNING``, the insert) vs a bare INSERT of the same row in the same kind of transaction;
- get: ``Registry.get_job`` vs a bare SELECT by key;
- list: one page of 100 (unfiltered; cluster + state; label; from a cursor half-way through) vs the same
  page as one bare SELECT (same filters, order and limit), so the ratio is the registry's own overhead.

    python bench/bench_registry.py [--jobs 10000] [--samples 300] [--postgres-url URL] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "service"), str(ROOT)]

from sqlalchemy import Engine, insert, select, text  # noqa: E402

from meshctx.config import ParallelismSizes  # noqa: E402
from meshctx.plan.request import TopologyRequest  # noqa: E402
from meshctx_service.registry import Registry, make_engine, upgrade_database  # noqa: E402
from meshctx_service.registry.capacity import fit as admit  # noqa: E402
from meshctx_service.registry.engine import SQLITE_BEGIN  # noqa: E402
from meshctx_service.registry.etags import body_digest  # noqa: E402
from meshctx_service.registry.models import Job  # noqa: E402
from meshctx_service.registry.paging import encode_cursor  # noqa: E402

TENANT = "bench"
_ACTIVE = (
    "FROM jobs WHERE jobs.tenant = clusters.tenant AND jobs.cluster_name = clusters.name "
    "AND jobs.state IN ('registered', 'running')"
)
RECOUNT = (
    f"UPDATE clusters SET active_jobs = (SELECT COUNT(*) {_ACTIVE}), "
    f"held_gpus = (SELECT COALESCE(SUM(jobs.gpus), 0) {_ACTIVE}), "
    f"lease_due = (SELECT MIN(jobs.lease_expires_at) {_ACTIVE})"
)
LEASE_S = 600
REQUEST = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=8, pp_size=2), world_size=64)


def _row(job_id: str, number: int, plan: dict[str, object], fingerprint: str) -> dict[str, object]:
    now = datetime.now(timezone.utc)
    on_cluster = number % 2 == 0
    labels = {"team": f"team-{number % 10}", "n": str(number)}
    state = ("registered", "running", "finished", "failed")[(number // 2) % 4]
    active = state in ("registered", "running")
    return {
        "tenant": TENANT,
        "job_id": job_id,
        "cluster_name": "big" if on_cluster else None,
        "labels": labels,
        "request": REQUEST.to_dict(),
        "plan": plan,
        "fingerprint": fingerprint,
        "gpus": 64,
        "state": state,
        "body_digest": body_digest({"n": number}),
        "lease_seconds": LEASE_S,
        "lease_expires_at": now + timedelta(seconds=LEASE_S) if active else None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def seed(registry: Registry, jobs: int, samples: int) -> tuple[dict[str, object], str]:
    # Room for every active seeded job on the cluster (a quarter of them) and for every registration timed.
    gpus = REQUEST.world_size or 64
    registry.put_cluster(TENANT, "big", nodes=max(1, (jobs // 4 + 2 * samples + 8) * gpus // 8), gpus_per_node=8)
    admission = admit(REQUEST, None)
    rows = [_row(f"seed-{i:06d}", i, admission.plan, admission.fingerprint) for i in range(jobs)]
    with registry.engine.begin() as connection:
        connection.execute(insert(Job), rows)
        # Rows inserted behind the registry's back: recount the cluster's active jobs as migration 0002 does.
        connection.execute(text(RECOUNT))
    # What autovacuum (PostgreSQL) or a periodic ANALYZE would have done to a table this size in service.
    with registry.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE jobs" if registry.engine.dialect.name == "postgresql" else "ANALYZE")
    return admission.plan, admission.fingerprint


def timed(
    action: Callable[[int], object], baseline: Callable[[int], object], samples: int
) -> tuple[list[float], list[float]]:
    """Each sample times the action, then its baseline: interleaved, so a slow spell of a shared machine hits both."""
    action(-1)  # warm-up
    baseline(-1)
    out: tuple[list[float], list[float]] = ([], [])
    for i in range(samples):
        for run, times in ((action, out[0]), (baseline, out[1])):
            start = time.perf_counter()
            run(i)
            times.append(time.perf_counter() - start)
    return out


def run_backend(name: str, url: str, jobs: int, samples: int) -> list[tuple[str, list[float], list[float]]]:
    upgrade_database(url)
    engine: Engine = make_engine(url)
    registry = Registry(engine)
    plan, fingerprint = seed(registry, jobs, samples)
    write = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})

    def bare_insert(i: int) -> None:
        with write.begin() as connection:
            connection.execute(insert(Job), [_row(f"bare-{i:06d}", 2 * i, plan, fingerprint)])

    def bare_get(i: int) -> None:
        with engine.connect() as connection:
            query = select(Job.__table__).where(Job.tenant == TENANT, Job.job_id == f"seed-{(i * 37) % jobs:06d}")
            connection.execute(query).one()

    def bare_page(**filters: str) -> Callable[[int], object]:
        """The same page as ``list_jobs(**filters)`` as one bare SELECT: the baseline for the listing."""
        query = select(Job.__table__).where(Job.tenant == TENANT)
        if "cluster" in filters:
            query = query.where(Job.cluster_name == filters["cluster"], Job.state == filters["state"])
        if "team" in filters:
            query = query.where(Job.labels["team"].as_string() == filters["team"])
        if "after" in filters:
            query = query.where(Job.job_id > filters["after"])
        query = query.order_by(Job.job_id).limit(101)

        def run(_: int) -> object:
            with engine.connect() as connection:
                return connection.execute(query).all()

        return run

    after = f"seed-{jobs // 2:06d}"
    deep = encode_cursor(after)
    cases = [
        ("register", lambda i: registry.register_job(TENANT, f"new-{i:06d}", REQUEST, cluster="big"), bare_insert),
        ("get", lambda i: registry.get_job(TENANT, f"seed-{(i * 37) % jobs:06d}"), bare_get),
        ("list 100", lambda i: registry.list_jobs(TENANT), bare_page()),
        (
            "list 100, cluster+state",
            lambda i: registry.list_jobs(TENANT, cluster="big", state="running"),
            bare_page(cluster="big", state="running"),
        ),
        ("list 100, label", lambda i: registry.list_jobs(TENANT, labels={"team": "team-3"}), bare_page(team="team-3")),
        ("list 100, mid-listing cursor", lambda i: registry.list_jobs(TENANT, cursor=deep), bare_page(after=after)),
    ]
    results = []
    for label, action, baseline in cases:
        results.append((f"{name}: {label}", *timed(action, baseline, samples)))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    engine.dispose()
    print(f"{name}: {stored} jobs stored at the end", file=sys.stderr)
    return results


def _ms(samples: list[float], q: float) -> float:
    return 1000 * (statistics.median(samples) if q == 0.5 else statistics.quantiles(samples, n=100)[98])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--postgres-url", default=os.environ.get("MESHCTX_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    rows: list[tuple[str, list[float], list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run_backend("SQLite", f"sqlite:///{tmp}/bench.db", args.jobs, args.samples)
    server = None
    url = args.postgres_url
    if url is None and not args.no_postgres:
        try:
            from tests.support.postgres import LocalPostgres

            server = LocalPostgres()
            url = server.url
        except Exception as err:
            print(f"PostgreSQL skipped: {err}", file=sys.stderr)
    try:
        if url is not None:
            rows += run_backend("PostgreSQL", url, args.jobs, args.samples)
    finally:
        if server is not None:
            server.stop()

    print(
        f"{args.jobs} stored jobs, {args.samples} samples each; baseline = bare SQL through the same engine, "
        "timed alternately with the operation"
    )
    print("| operation | median | p99 | baseline median | baseline p99 | ratio (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, measured, baseline in rows:
        ratio = statistics.median(measured) / statistics.median(baseline)
        print(
            f"| {label} | {_ms(measured, 0.5):.2f} ms | {_ms(measured, 0.99):.2f} ms | "
            f"{_ms(baseline, 0.5):.2f} ms | {_ms(baseline, 0.99):.2f} ms | {ratio:.1f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
