"""``meshctx jobs register|get|list|delete|state|attest|heartbeat``: jobs in a meshctx registry (``--server``,
``--token``).

Exit status: 0 done, 1 the registry refused (the problem is printed: not found, conflict, invalid topology, no
permission), 2 usage error, 3 the server could not answer.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..job_states import NAMES as STATES
from .common import Json, add_topology_args, connection_args, emit, page_args, registry_call, request_from_args, table

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
    tiers = ("node", "nvlink_domain", "leaf", "spine")
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
    listing.add_argument("--state", choices=STATES, help="only jobs in this state")
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
    state.add_argument("state", choices=STATES, help="the new state")
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
