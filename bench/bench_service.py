"""HTTP benchmark of the validation service: ``POST /v1/validate`` (W = 131072, compact) against the app's
constant-JSON route ``GET /livez``, on one uvicorn worker over loopback, in the same run.

Validate runs twice: one request over and over (answered from the service's memo of recent verdicts after the
first), and 4,096 distinct requests in turn (W = 256 … 1,048,576, more than the memo holds: every one planned
and encoded afresh).

Also: cold start (process start → ``/readyz`` 200), RSS after warm-up, and whether torch was ever imported
(from the server's ``-X importtime`` trace). The load generator is this process: ``--clients`` keep-alive
connections speaking minimal HTTP/1.1 over asyncio streams, so the client is not the bottleneck. Each route's
time is split into ``--slices`` short runs taken in turn, so the machine's slow spells fall on every route alike.

    PYTHONPATH=src:service python bench/bench_service.py [--duration 10] [--clients 32] [--slices 8]

Side by side (``--versus MESHCTX_FAST_PATHS=off``): a second server with that setting beside one with the shipped
defaults; every route's slices run on both in turn (route A on server 1, on server 2, route B, ...), and each
route's req/s, p99 and server CPU a request are the medians over the rounds, with server 2's per-round ratio
to server 1 (the slow spells of a shared machine fall on both alike).

    PYTHONPATH=src:service python bench/bench_service.py --versus MESHCTX_FAST_PATHS=off --duration 8 --slices 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from serving import meshctx_process

REPO = Path(__file__).resolve().parents[1]


def body(world_size: int) -> bytes:
    sizes = {"tp_size": 8, "pp_size": 4, "ep_size": 8}
    request = {"strategy": "fsdp2", "world_size": world_size, "sizes": sizes, "cluster": {"gpus_per_node": 8}}
    return json.dumps(request).encode()


BODY = body(131072)
DISTINCT = 4096  # far more than the service memoizes (256 verdicts and plans)
JSON = {"content-type": "application/json"}
TARGETS = {"validate": 20.0, "ratio": 0.60, "rss_mb": 90.0}


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    return (head + "\r\n").encode() + body


async def one_client(
    port: int, requests: list[bytes], first: int, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    turn = first
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(requests[turn % len(requests)])
            turn += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def load(port: int, requests: list[bytes], clients: int, seconds: float, start: int = 0) -> Sample:
    """``clients`` closed-loop connections for ``seconds``, each sending ``requests`` in turn from its own offset
    (shifted by ``start``, so consecutive slices of a route do not replay the same bodies)."""
    latencies: list[float] = []
    errors: list[int] = []
    began = time.perf_counter()
    deadline = began + seconds
    spread = [(client * len(requests)) // clients + start for client in range(clients)]
    await asyncio.gather(*(one_client(port, requests, first, deadline, latencies, errors) for first in spread))
    return Sample(latencies, len(errors), time.perf_counter() - began)


@dataclass
class Sample:
    latencies: list[float]
    errors: int
    seconds: float

    def add(self, other: Sample) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.seconds += other.seconds

    def summary(self) -> dict[str, float]:
        latencies = sorted(self.latencies)
        return {
            "requests": len(latencies),
            "rps": len(latencies) / self.seconds,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "mean_ms": 1000 * statistics.fmean(latencies),
            "errors": self.errors,
        }


def interleaved(
    port: int, routes: dict[str, list[bytes]], clients: int, seconds: float, slices: int
) -> tuple[dict[str, Sample], list[dict[str, float]]]:
    """Each route for ``seconds`` in all, as ``slices`` short runs taken in turn (route A, B, C, A, B, C, ...),
    so a slow spell of a shared machine falls on every route alike; also each round's req/s per route."""
    totals = {name: Sample([], 0, 0.0) for name in routes}
    rounds: list[dict[str, float]] = []
    for k in range(slices):
        this_round = {}
        for name, requests in routes.items():
            sample = asyncio.run(load(port, requests, clients, seconds / slices, start=k * 509))
            totals[name].add(sample)
            this_round[name] = len(sample.latencies) / sample.seconds
        rounds.append(this_round)
    return totals, rounds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (every thread, live or ended) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def side_by_side(args: argparse.Namespace) -> None:
    """``--versus NAME=VALUE``: the shipped defaults against the same tree with that setting, slices in turn."""
    name, _, value = args.versus.partition("=")
    settings = {"MESHCTX_ACCESS_LOG": "false" if args.no_access_log else "true"}
    routes = {
        "GET /livez": [http_request("GET", "/livez")],
        "POST /v1/validate, one body": [http_request("POST", "/v1/validate", BODY)],
        f"POST /v1/validate, {DISTINCT} distinct": [
            http_request("POST", "/v1/validate", body(256 * k)) for k in range(1, DISTINCT + 1)
        ],
    }
    labels = ("defaults", args.versus)
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = {(r, label): [] for r in routes for label in labels}
    ports = (free_port(), free_port())
    with (
        meshctx_process(ports[0], **settings) as first,
        meshctx_process(ports[1], **settings, **{name: value}) as second,
    ):
        servers = {labels[0]: (first, ports[0]), labels[1]: (second, ports[1])}
        for port in ports:
            for requests in routes.values():
                asyncio.run(load(port, requests, args.clients, 0.5))  # warm-up
        for k in range(args.slices):
            for route, requests in routes.items():
                for label, (process, port) in servers.items():
                    cpu = cpu_seconds(process.pid)
                    sample = asyncio.run(load(port, requests, args.clients, args.duration / args.slices, k * 509))
                    summary = sample.summary()
                    used = 1e6 * (cpu_seconds(process.pid) - cpu) / max(1, len(sample.latencies))
                    rows[route, label].append((summary["rps"], summary["p99_ms"], used))
                    if sample.errors:
                        raise SystemExit(f"{route} on {label}: {sample.errors} errors")
    print(
        f"one uvicorn worker each, loopback, {args.clients} clients, {args.slices} rounds of "
        f"{args.duration / args.slices:.2f} s per route and server, taken in turn; medians over the rounds"
    )
    print(f"{'route':<40}{'server':<28}{'req/s':>8}{'p99 ms':>8}{'CPU µs/req':>12}{'req/s vs 1':>12}{'CPU vs 1':>10}")
    for route in routes:
        base = rows[route, labels[0]]
        for label in labels:
            mine = rows[route, label]
            rps, p99, cpu = (statistics.median(column) for column in zip(*mine))
            ratio = statistics.median(m[0] / b[0] for m, b in zip(mine, base))
            cpu_ratio = statistics.median(m[2] / b[2] for m, b in zip(mine, base))
            print(f"{route:<40}{label:<28}{rps:>8.0f}{p99:>8.2f}{cpu:>12.0f}{ratio:>12.3f}{cpu_ratio:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per route")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--slices", type=int, default=8, help="interleaved runs each route's time is split into")
    parser.add_argument(
        "--no-access-log", action="store_true", help="turn the access log off (default: the shipped defaults, on)"
    )
    parser.add_argument(
        "--versus",
        metavar="MESHCTX_NAME=VALUE",
        help="serve a second server with this setting and compare the two side by side (see above)",
    )
    args = parser.parse_args()
    if args.versus:
        side_by_side(args)
        return

    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "service")]))
    env["MESHCTX_ACCESS_LOG"] = "false" if args.no_access_log else "true"
    env["MESHCTX_DATA_DIR"] = tempfile.mkdtemp(prefix="meshctx-bench-")  # a throwaway registry, not $HOME's
    command = [sys.executable, "-X", "importtime", "-m", "meshctx.cli", "serve", "--port", str(port)]
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        server = subprocess.Popen([*command, "--log-level", "info"], env=env, stdout=log, stderr=log, text=True)
        try:
            cold_start = None
            while time.perf_counter() - started < 60 and server.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        cold_start = time.perf_counter() - started
                        break
                except httpx.TransportError:
                    time.sleep(0.02)
            if cold_start is None:
                raise SystemExit("server did not become ready within 60 s")
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/validate", content=BODY, headers=JSON)
            assert reply.status_code == 200 and reply.json()["valid"], reply.text

            constant = [http_request("GET", "/livez")]
            validate = [http_request("POST", "/v1/validate", BODY)]
            distinct = [http_request("POST", "/v1/validate", body(256 * k)) for k in range(1, DISTINCT + 1)]
            asyncio.run(load(port, validate, args.clients, 1.0))  # warm-up
            asyncio.run(load(port, distinct, args.clients, 1.0))
            asyncio.run(load(port, constant, args.clients, 1.0))
            warm_rss = rss_mb(server.pid)
            routes = {"constant": constant, "validate": validate, "distinct": distinct}
            totals, rounds = interleaved(port, routes, args.clients, args.duration, args.slices)
            rss = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        log.seek(0)
        trace = log.read()
    torch_imported = any(line.rsplit("|", 1)[-1].strip().split(".")[0] == "torch" for line in trace.splitlines())

    print(
        f"one uvicorn worker, loopback, {args.clients} clients, {args.duration:.0f} s per route "
        f"in {args.slices} interleaved slices"
    )
    base, result, fresh = (totals[name].summary() for name in ("constant", "validate", "distinct"))
    print(f"{'route':<44}{'req/s':>9}{'ratio':>7}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    rows = (
        ("GET /livez (constant JSON)", base),
        ("POST /v1/validate, one request (W=131072)", result),
        (f"POST /v1/validate, {DISTINCT} distinct requests", fresh),
    )
    for name, row in rows:
        ratio = row["rps"] / base["rps"]
        print(
            f"{name:<44}{row['rps']:>9.0f}{ratio:>7.2f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['errors']:>8.0f}"
        )
    per_round = sorted(r["distinct"] / r["constant"] for r in rounds)
    print(
        f"distinct / constant per round: median {statistics.median(per_round):.2f}, "
        f"range {per_round[0]:.2f}-{per_round[-1]:.2f}"
    )
    print(f"targets: ratio >= {TARGETS['ratio']:.2f}, validate p99 <= {TARGETS['validate']:.0f} ms")
    print(f"RSS after warm-up: {warm_rss:.1f} MB; after the runs: {rss:.1f} MB (target <= {TARGETS['rss_mb']:.0f} MB)")
    print(f"cold start to /readyz: {cold_start:.2f} s")
    print(f"torch imported by the server: {torch_imported}")


if __name__ == "__main__":
    main()
