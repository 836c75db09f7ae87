"""``meshctx jobs register|get|list|delete|state|attest|heartbeat|reconcile``: jobs in a meshctx registry (``--server``,
``--token``).

Exit status: 0 done, 1 the registry refused (the problem is printed: not found, conflict, invalid topology, no
permission), 2 usage error, 3 the server could not answer.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from ..job_states import NAMES
from ..place.topology import TIER_NAMES
from .common import (
    Json,
    ServerFailed,
    add_topology_args,
    client_module,
    connection_args,
    emit,
    page_args,
    registry_call,
    request_from_args,
    table,
)

if TYPE_CHECKING:
    from ..client import MeshctxClient


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _job_line(job: Json) -> str:
    where = f"on cluster {job['cluster']}" if job["cluster"] else "on no cluster"
    labels = ", ".join(f"{k}={v}" for k, v in sorted(job["labels"].items()))
    sizes = job["plan"]["sizes"]
    shape = " ".join(f"{axis}={sizes[axis]}" for axis in ("pp", "dp_replicate", "dp_shard", "cp", "tp", "ep"))
    return (
        f"job {job['job_id']}: {job['state']} {where}, {job['gpus']} GPUs ({job['plan']['strategy']} {shape})\n"
        f"  fingerprint {job['fingerprint']}\n  etag {job['etag']}  updated {job['updated_at']}"
        + (f"\n  lease until {job['lease_expires_at']}" if job.get("lease_expires_at") else "")
        + (f"\n  nodes {_hosts(job['nodes'])}" if job.get("nodes") else "")
        + (f"\n  labels {labels}" if labels else "")
        + (_placement_line(job["placement"]) if job.get("placement") else "")
    )


def _hosts(hosts: list[str]) -> str:
    return " ".join(hosts[:8]) + (f" … ({len(hosts)} nodes)" if len(hosts) > 8 else "")


def _placement_line(placement: Json) -> str:
    order = placement["order"]
    shown = " ".join(order[:8]) + (f" … ({len(order)} nodes)" if len(order) > 8 else "")
    tiers = TIER_NAMES
    crossing = ", ".join(
        f"{axis} {'/'.join(str(axes['crossing'][t]) for t in tiers)}" for axis, axes in placement["axes"].items()
    )
    return f"\n  placed: {shown}" + (f"\n  crossings ({'/'.join(tiers)}): {crossing}" if crossing else "")


def _jobs_table(page: Json) -> str:
    rows = [["JOB", "STATE", "CLUSTER", "GPUS", "LABELS"]]
    for job in page["items"]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(job["labels"].items()))
        rows.append([job["job_id"], job["state"], job["cluster"] or "-", str(job["gpus"]), labels])
    return table(rows, page["next_cursor"])


def cmd_jobs_register(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    labels = dict(args.label or [])
    outcome = registry_call(
        args,
        lambda c: c.register_job(
            args.job_id,
            request,
            cluster=args.cluster,
            labels=labels,
            if_match=args.if_match,
            nodes=args.nodes,
            lease_seconds=args.lease_seconds,
        ),
    )
    job = outcome[1]
    if not args.json and isinstance(job, dict):  # as validate prints them; --json carries them in the answer
        for warning in job.get("warnings") or ():
            print(f"warning: {warning['code']}: {warning['message']}", file=sys.stderr)
    return emit(args, outcome, _job_line)


def cmd_jobs_get(args: argparse.Namespace) -> int:
    return emit(args, registry_call(args, lambda c: c.get_job(args.job_id)), _job_line)


def cmd_jobs_list(args: argparse.Namespace) -> int:
    labels = dict(args.label or [])
    outcome = registry_call(
        args,
        lambda c: c.list_jobs(
            cluster=args.cluster, state=args.state, labels=labels, limit=args.limit, cursor=args.cursor
        ),
    )
    return emit(args, outcome, _jobs_table)


def cmd_jobs_delete(args: argparse.Namespace) -> int:
    def delete(client: MeshctxClient) -> Json:
        client.delete_job(args.job_id, if_match=args.if_match)
        return {"deleted": args.job_id}

    return emit(args, registry_call(args, delete), lambda d: f"deleted job {d['deleted']}")


def cmd_jobs_state(args: argparse.Namespace) -> int:
    outcome = registry_call(args, lambda c: c.set_state(args.job_id, args.state, if_match=args.if_match))
    return emit(args, outcome, _job_line)


def cmd_jobs_heartbeat(args: argparse.Namespace) -> int:
    def line(job: Json) -> str:
        until = f"until {job['lease_expires_at']}" if job["lease_expires_at"] else "(it has no lease)"
        return f"job {job['job_id']}: {job['state']}, lease renewed {until}"

    return emit(args, registry_call(args, lambda c: c.heartbeat(args.job_id)), line)


def cmd_jobs_attest(args: argparse.Namespace) -> int:
    outcome = registry_call(args, lambda c: c.attest(args.job_id, args.fingerprint))
    return emit(args, outcome, lambda a: f"job {a['job_id']}: fingerprint {a['reported']} matches the registration")


# -- reconcile --slurm ------------------------------------------------------------------------------------------

SLURM_PREFIX = "slurm-"  # what deploy/slurm/meshctx-slurmctld registers: slurm-<jobid>
#: Slurm states of a job that still holds (or will hold) its nodes; any other end state but COMPLETED is a failure.
SLURM_ALIVE = frozenset(
    [
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
    ]
)
#: Where a job Slurm no longer knows at all goes (a server older than leases refuses it: then ``failed``).
UNKNOWN_TO_SLURM = "lost"


def _run_slurm(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """Slurm's state of each of ``job_ids`` that it still knows: ``squeue`` (every job in slurmctld's memory,
    ended ones for MinJobAge), then ``sacct`` for the rest when the cluster keeps accounting. A job in neither is
    missing from the answer. ``ServerFailed`` when squeue cannot answer: then nothing may be settled."""
    if not job_ids:  # no active slurm- job: nothing to ask Slurm about
        return {}
    done = _run_slurm(["squeue", "-h", "-a", "--states=all", "-o", "%A %T"])
    if done is None or done.returncode != 0:
        reason = "squeue is not installed or hung" if done is None else done.stderr.strip()[-300:]
        raise ServerFailed(f"Slurm did not answer ({reason}); nothing was changed")
    wanted = set(job_ids)
    states: dict[str, str] = {}
    for line in done.stdout.splitlines():
        job, _, state = line.strip().partition(" ")
        if job in wanted:
            states[job] = state.strip()
    rest = [job for job in job_ids if job not in states]
    if rest:
        accounted = _run_slurm(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(rest)])
        if accounted is not None and accounted.returncode == 0:  # no accounting: sacct fails; the rest are unknown
            for line in accounted.stdout.splitlines():
                job, _, state = line.strip().partition("|")
                if job in wanted and state:
                    states[job] = state.split()[0]  # "CANCELLED by 1000"
    return states


def _settled(state: str | None) -> str | None:
    """The registry state for a job Slurm reports in ``state`` (None: it does not know the job); None to leave it."""
    if state is None:
        return UNKNOWN_TO_SLURM
    if state in SLURM_ALIVE:
        return None
    return "finished" if state == "COMPLETED" else "failed"


def _active_jobs(client: MeshctxClient, cluster: str | None) -> list[Json]:
    jobs: list[Json] = []
    for state in ("registered", "running"):
        cursor = None
        while True:
            page = client.list_jobs(cluster=cluster, state=state, limit=1000, cursor=cursor)
            jobs += [job for job in page["items"] if job["job_id"].startswith(SLURM_PREFIX)]
            cursor = page["next_cursor"]
            if not cursor:
                break
    return jobs


def cmd_jobs_reconcile(args: argparse.Namespace) -> int:
    ProblemError = client_module("meshctx jobs reconcile").ProblemError

    def reconcile(client: MeshctxClient) -> list[Json]:
        jobs = _active_jobs(client, args.cluster)
        known = slurm_states([job["job_id"][len(SLURM_PREFIX) :] for job in jobs])
        settled = []
        for job in jobs:
            slurm = known.get(job["job_id"][len(SLURM_PREFIX) :])
            target = _settled(slurm)
            if target is None:
                continue
            row: Json = {"job_id": job["job_id"], "from": job["state"], "to": target, "slurm": slurm}
            if not args.dry_run:
                try:
                    if target == "finished" and job["state"] == "registered":
                        client.set_state(job["job_id"], "running")  # finished follows running
                    try:
                        client.set_state(job["job_id"], target)
                    except ProblemError:
                        if target != "lost":
                            raise
                        row["to"] = "failed"  # a registry where only leases lead to lost
                        client.set_state(job["job_id"], "failed")
                except ProblemError as error:  # e.g. the epilog settled it meanwhile
                    row["to"], row["refused"] = job["state"], str(error.problem.get("detail"))
            settled.append(row)
        return settled

    def text(rows: list[Json]) -> str:
        if not rows:
            return "every active slurm- job is still known to Slurm"
        verb = "would move" if args.dry_run else "moved"
        lines = []
        for row in rows:
            why = f"Slurm says {row['slurm']}" if row["slurm"] else "unknown to Slurm"
            if "refused" in row:
                lines.append(f"{row['job_id']}: left {row['from']} ({why}): {row['refused']}")
            else:
                lines.append(f"{row['job_id']}: {verb} {row['from']} → {row['to']} ({why})")
        return "\n".join(lines)

    return emit(args, registry_call(args, reconcile), text)


def add_jobs_commands(commands: Any) -> None:
    jobs = commands.add_parser("jobs", help="register, inspect and attest jobs in a meshctx registry")
    job_commands = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    register = job_commands.add_parser("register", help="register a job's topology (validated; capacity-checked)")
    register.add_argument("job_id", help="the job's id (your scheduler's, e.g. llm-1)")
    add_topology_args(register)
    connection_args(register, topology=True)
    register.add_argument("--cluster", help="a registered cluster: checked against its shape and free GPUs")
    register.add_argument("--label", type=_label, action="append", metavar="KEY=VALUE", help="repeatable")
    register.add_argument(
        "--nodes",
        metavar="HOSTLIST",
        help="the job's allocated hosts (gpu-[001-004]): placed on the cluster's topology, placement stored",
    )
    register.add_argument(
        "--lease-seconds",
        type=int,
        metavar="S",
        help="lost (GPUs and nodes freed) unless a heartbeat renews it within S seconds; 0: no lease "
        "(default: the service's MESHCTX_JOB_LEASE_S)",
    )
    register.add_argument("--if-match", metavar="ETAG", help="replace the registered topology of this version")
    register.set_defaults(handler=cmd_jobs_register)

    get = job_commands.add_parser("get", help="a job's request, plan, fingerprint, state and ETag")
    get.add_argument("job_id", help="the job's id")
    connection_args(get)
    get.set_defaults(handler=cmd_jobs_get)

    listing = job_commands.add_parser("list", help="jobs by id, filtered")
    listing.add_argument("--cluster", help="only jobs on this cluster")
    listing.add_argument("--state", choices=NAMES, help="only jobs in this state")
    listing.add_argument("--label", type=_label, action="append", metavar="KEY=VALUE", help="repeatable; all must hold")
    page_args(listing)
    connection_args(listing)
    listing.set_defaults(handler=cmd_jobs_list)

    delete = job_commands.add_parser("delete", help="delete a job (frees its GPUs)")
    delete.add_argument("job_id", help="the job's id")
    delete.add_argument("--if-match", metavar="ETAG", help="delete only this version (its etag)")
    connection_args(delete)
    delete.set_defaults(handler=cmd_jobs_delete)

    state = job_commands.add_parser("state", help="move a job to running, finished or failed")
    state.add_argument("job_id", help="the job's id")
    state.add_argument("state", choices=NAMES, help="the new state")
    state.add_argument("--if-match", metavar="ETAG", help="change only this version (its etag)")
    connection_args(state)
    state.set_defaults(handler=cmd_jobs_state)

    attest = job_commands.add_parser("attest", help="report the fingerprint a job built (match: it is running)")
    attest.add_argument("job_id", help="the job's id")
    attest.add_argument("--fingerprint", required=True, help="sha256:… from MeshContext.to_plan().fingerprint()")
    connection_args(attest)
    attest.set_defaults(handler=cmd_jobs_attest)

    heartbeat = job_commands.add_parser("heartbeat", help="renew a job's lease (it is lost when the lease runs out)")
    heartbeat.add_argument("job_id", help="the job's id")
    connection_args(heartbeat)
    heartbeat.set_defaults(handler=cmd_jobs_heartbeat)

    reconcile = job_commands.add_parser(
        "reconcile",
        help="settle the registry's active slurm-<jobid> jobs that Slurm has ended or no longer knows",
        description="Asks Slurm (squeue, then sacct when the cluster keeps accounting) about every registered or "
        "running job named slurm-<jobid>: COMPLETED → finished, any other end → failed, unknown to Slurm → "
        f"{UNKNOWN_TO_SLURM}; jobs Slurm still runs or queues are left alone. Run it where squeue works "
        "(SLURM_CONF), e.g. from cron next to the shipped PrologSlurmctld/EpilogSlurmctld script.",
    )
    reconcile.add_argument("--slurm", action="store_true", required=True, help="ask Slurm (the one source today)")
    reconcile.add_argument("--cluster", help="only jobs registered on this cluster")
    reconcile.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    connection_args(reconcile)
    reconcile.set_defaults(handler=cmd_jobs_reconcile)
