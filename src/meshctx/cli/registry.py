"""``meshctx jobs …``, ``meshctx clusters …`` and ``meshctx db upgrade``: the registry from the command line.

Every command but ``db upgrade`` talks to ``--server`` (default ``$MESHCTX_SERVER``) with ``--token``
(default ``$MESHCTX_TOKEN``). Exit status: 0 done, 1 the registry refused (the problem is printed: not
found, conflict, invalid topology, no permission), 2 usage error, 3 the server could not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import EXIT_INVALID, EXIT_VALID, ServerFailed, UsageError, add_topology_args, request_from_args

if TYPE_CHECKING:
    from ..client import MeshctxClient

Json = dict[str, Any]
STATES = ("registered", "running", "finished", "failed")


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _connection_args(parser: argparse.ArgumentParser, *, topology: bool = False) -> None:
    if not topology:  # add_topology_args brings --json and --server itself
        parser.add_argument("--json", action="store_true", help="print the service's JSON")
        parser.add_argument("--server", metavar="URL", help="the meshctx service (default $MESHCTX_SERVER)")
    parser.add_argument("--token", help="bearer token (default $MESHCTX_TOKEN)")


def _call(args: argparse.Namespace, work: Callable[[MeshctxClient], Any]) -> tuple[int, Any]:
    """Run ``work(client)``; a refusal is printed (problem+json with --json) and gives exit status 1."""
    from ..client import MeshctxClient, MeshctxError, ProblemError

    server = args.server or os.environ.get("MESHCTX_SERVER")
    if not server:
        raise UsageError("give --server URL or set MESHCTX_SERVER")
    try:
        with MeshctxClient(server, token=args.token or None) as client:
            return EXIT_VALID, work(client)
    except ProblemError as error:
        if error.status >= 500:
            raise ServerFailed(f"{server}: {error}") from None
        _print_problem(args, error.problem)
        return EXIT_INVALID, None
    except MeshctxError as error:
        raise ServerFailed(str(error)) from None


def _print_problem(args: argparse.Namespace, problem: Json) -> None:
    if args.json:
        print(json.dumps(problem, indent=2, ensure_ascii=False))
        return
    lines = [
        f"refused ({problem.get('status')} {problem.get('code') or problem.get('title', '')}): {problem.get('detail')}"
    ]
    lines += [f"  {e['field']}: {e['detail']}" for e in problem.get("errors") or []]
    for found in problem.get("problems") or []:
        lines.append(f"  ✗ {found['message']}\n    fix: {found['hint']}")
    print("\n".join(lines), file=sys.stderr)


def _emit(args: argparse.Namespace, outcome: tuple[int, Any], text: Callable[[Any], str]) -> int:
    status, data = outcome
    if status == EXIT_VALID and data is not None:
        print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text(data))
    return status


def _job_line(job: Json) -> str:
    where = f"on cluster {job['cluster']}" if job["cluster"] else "on no cluster"
    labels = ", ".join(f"{k}={v}" for k, v in sorted(job["labels"].items()))
    sizes = job["plan"]["sizes"]
    shape = " ".join(f"{axis}={sizes[axis]}" for axis in ("pp", "dp_replicate", "dp_shard", "cp", "tp", "ep"))
    return (
        f"job {job['job_id']}: {job['state']} {where}, {job['gpus']} GPUs ({job['plan']['strategy']} {shape})\n"
        f"  fingerprint {job['fingerprint']}\n  etag {job['etag']}  updated {job['updated_at']}"
        + (f"\n  labels {labels}" if labels else "")
    )


def _table(rows: list[list[str]], next_cursor: str | None) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if next_cursor:
        out.append(f"(more: --cursor {next_cursor})")
    return "\n".join(out)


def _jobs_table(page: Json) -> str:
    rows = [["JOB", "STATE", "CLUSTER", "GPUS", "LABELS"]]
    for job in page["items"]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(job["labels"].items()))
        rows.append([job["job_id"], job["state"], job["cluster"] or "-", str(job["gpus"]), labels])
    return _table(rows, page["next_cursor"])


def _cluster_line(cluster: Json) -> str:
    nvlink = cluster["nvlink_domain"] if cluster["nvlink_domain"] is not None else "-"
    return (
        f"cluster {cluster['name']}: {cluster['nodes']} nodes × {cluster['gpus_per_node']} GPUs = {cluster['gpus']} "
        f"GPUs, NVLink domain {nvlink}"
    )


def _clusters_table(page: Json) -> str:
    rows = [["CLUSTER", "NODES", "GPUS/NODE", "GPUS", "NVLINK"]]
    for c in page["items"]:
        nvlink = str(c["nvlink_domain"]) if c["nvlink_domain"] is not None else "-"
        rows.append([c["name"], str(c["nodes"]), str(c["gpus_per_node"]), str(c["gpus"]), nvlink])
    return _table(rows, page["next_cursor"])


# -- handlers -------------------------------------------------------------------------------------------------


def cmd_jobs_register(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    labels = dict(args.label or [])
    outcome = _call(
        args,
        lambda c: c.register_job(args.job_id, request, cluster=args.cluster, labels=labels, if_match=args.if_match),
    )
    return _emit(args, outcome, _job_line)


def cmd_jobs_get(args: argparse.Namespace) -> int:
    return _emit(args, _call(args, lambda c: c.get_job(args.job_id)), _job_line)


def cmd_jobs_list(args: argparse.Namespace) -> int:
    labels = dict(args.label or [])
    outcome = _call(
        args,
        lambda c: c.list_jobs(
            cluster=args.cluster, state=args.state, labels=labels, limit=args.limit, cursor=args.cursor
        ),
    )
    return _emit(args, outcome, _jobs_table)


def cmd_jobs_delete(args: argparse.Namespace) -> int:
    def delete(client: MeshctxClient) -> Json:
        client.delete_job(args.job_id, if_match=args.if_match)
        return {"deleted": args.job_id}

    return _emit(args, _call(args, delete), lambda d: f"deleted job {d['deleted']}")


def cmd_jobs_state(args: argparse.Namespace) -> int:
    outcome = _call(args, lambda c: c.set_state(args.job_id, args.state, if_match=args.if_match))
    return _emit(args, outcome, _job_line)


def cmd_jobs_attest(args: argparse.Namespace) -> int:
    outcome = _call(args, lambda c: c.attest(args.job_id, args.fingerprint))
    return _emit(args, outcome, lambda a: f"job {a['job_id']}: fingerprint {a['reported']} matches the registration")


def cmd_clusters_put(args: argparse.Namespace) -> int:
    outcome = _call(
        args,
        lambda c: c.put_cluster(
            args.name, nodes=args.nodes, gpus_per_node=args.gpus_per_node, nvlink_domain=args.nvlink_domain
        ),
    )
    return _emit(args, outcome, _cluster_line)


def cmd_clusters_get(args: argparse.Namespace) -> int:
    return _emit(args, _call(args, lambda c: c.get_cluster(args.name)), _cluster_line)


def cmd_clusters_list(args: argparse.Namespace) -> int:
    return _emit(args, _call(args, lambda c: c.list_clusters(limit=args.limit, cursor=args.cursor)), _clusters_table)


def cmd_clusters_delete(args: argparse.Namespace) -> int:
    def delete(client: MeshctxClient) -> Json:
        client.delete_cluster(args.name)
        return {"deleted": args.name}

    return _emit(args, _call(args, delete), lambda d: f"deleted cluster {d['deleted']}")


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrate the registry's database (the service also does this at start-up)."""
    try:
        from meshctx_service.registry import default_database_url, upgrade_database
        from meshctx_service.settings import Settings
    except ImportError as error:
        raise UsageError(f"db upgrade needs the service extra (pip install 'meshctx[service]'): {error}") from None
    settings = Settings()
    url = args.database_url or settings.database_url or default_database_url(settings.data_dir)
    try:
        revision = upgrade_database(url)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # the database could not be reached or migrated: say which and why
        raise ServerFailed(f"cannot upgrade {_redacted(url)}: {error}") from None
    print(f"{_redacted(url)} is at schema revision {revision}")
    return EXIT_VALID


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- parser ---------------------------------------------------------------------------------------------------


def _page_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="most items on this page (1-1000, default 100)")
    parser.add_argument("--cursor", help="next_cursor of the previous page")


def add_registry_commands(commands: Any) -> None:
    """Add ``jobs``, ``clusters`` and ``db`` to the ``meshctx`` subcommands."""
    jobs = commands.add_parser("jobs", help="register, inspect and attest jobs in a meshctx registry")
    job_commands = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    register = job_commands.add_parser("register", help="register a job's topology (validated; capacity-checked)")
    register.add_argument("job_id")
    add_topology_args(register)
    _connection_args(register, topology=True)
    register.add_argument("--cluster", help="a registered cluster: checked against its shape and free GPUs")
    register.add_argument("--label", type=_label, action="append", metavar="KEY=VALUE", help="repeatable")
    register.add_argument("--if-match", metavar="ETAG", help="replace the registered topology of this version")
    register.set_defaults(handler=cmd_jobs_register)

    get = job_commands.add_parser("get", help="a job's request, plan, fingerprint, state and ETag")
    get.add_argument("job_id")
    _connection_args(get)
    get.set_defaults(handler=cmd_jobs_get)

    listing = job_commands.add_parser("list", help="jobs by id, filtered")
    listing.add_argument("--cluster")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--label", type=_label, action="append", metavar="KEY=VALUE", help="repeatable; all must hold")
    _page_args(listing)
    _connection_args(listing)
    listing.set_defaults(handler=cmd_jobs_list)

    delete = job_commands.add_parser("delete", help="delete a job (frees its GPUs)")
    delete.add_argument("job_id")
    delete.add_argument("--if-match", metavar="ETAG")
    _connection_args(delete)
    delete.set_defaults(handler=cmd_jobs_delete)

    state = job_commands.add_parser("state", help="move a job to running, finished or failed")
    state.add_argument("job_id")
    state.add_argument("state", choices=STATES)
    state.add_argument("--if-match", metavar="ETAG")
    _connection_args(state)
    state.set_defaults(handler=cmd_jobs_state)

    attest = job_commands.add_parser("attest", help="report the fingerprint a job built (match: it is running)")
    attest.add_argument("job_id")
    attest.add_argument("--fingerprint", required=True, help="sha256:… from MeshContext.to_plan().fingerprint()")
    _connection_args(attest)
    attest.set_defaults(handler=cmd_jobs_attest)

    clusters = commands.add_parser("clusters", help="manage the clusters jobs are registered on")
    cluster_commands = clusters.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = cluster_commands.add_parser("put", help="create or reshape a cluster (admin token)")
    put.add_argument("name")
    put.add_argument("--nodes", type=int, required=True)
    put.add_argument("--gpus-per-node", type=int, required=True)
    put.add_argument("--nvlink-domain", type=int, help="GPUs per NVLink domain")
    _connection_args(put)
    put.set_defaults(handler=cmd_clusters_put)
    for action, handler, text in (
        ("get", cmd_clusters_get, "one cluster"),
        ("delete", cmd_clusters_delete, "delete a cluster without active jobs (admin token)"),
    ):
        sub = cluster_commands.add_parser(action, help=text)
        sub.add_argument("name")
        _connection_args(sub)
        sub.set_defaults(handler=handler)
    clusters_list = cluster_commands.add_parser("list", help="clusters by name")
    _page_args(clusters_list)
    _connection_args(clusters_list)
    clusters_list.set_defaults(handler=cmd_clusters_list)

    db = commands.add_parser("db", help="the registry's database")
    db_commands = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply schema migrations (the service does it at start-up)")
    upgrade.add_argument(
        "--database-url", help="default: $MESHCTX_DATABASE_URL, else the SQLite file under $MESHCTX_DATA_DIR"
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)
