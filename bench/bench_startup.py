"""Start-up: ``meshctx serve`` until ``/readyz`` answers 200, against a bare FastAPI app under uvicorn, same run.

Each start is a fresh process, timed from ``Popen`` to the first 200 from ``/readyz`` (polled every 5 ms over
loopback). Three kinds are interleaved round by round, so a machine's load drifts over all of them alike:

- ``bare``: ``python -m uvicorn bare:app`` — a one-route FastAPI app, nothing else imported;
- ``fresh``: ``python -m meshctx.cli serve`` with an empty data directory (the schema is created);
- ``migrated``: ``python -m meshctx.cli serve`` on a database already at the newest revision.

It prints each kind's median and min wall time, the median CPU time the server (and the children it waited
for, such as the migration) had used when it became ready, and the ratio of each ``meshctx serve`` median to the
bare app's (the target in docs/contract.md: ≤ 2× for fresh and migrated databases). ``--before TREE`` also
starts, in the same rounds, ``meshctx serve`` from another checkout (``fresh-before``, ``migrated-before``), so a
change is measured against the tree before it under the same load.

Every server may write its bytecode caches (``PYTHONDONTWRITEBYTECODE`` is dropped), so after the warm-up start
each imports compiled modules, as an installed package does.

    python bench/bench_startup.py [--rounds 7] [--before /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/readyz")
def readyz() -> dict[str, str]:
    return {"status": "ready"}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and of the children it waited for, from /proc (0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def time_start(command: list[str], env: dict[str, str], port: int) -> tuple[float, float]:
    """Seconds from ``Popen`` to the first 200 from ``/readyz``, and the CPU seconds the server had used by then
    (less sensitive than wall time to other work on the machine); the process is stopped afterwards."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=env.get("BENCH_CWD"))
        try:
            while not _ready(port):
                if process.poll() is not None or time.perf_counter() - started > 60:
                    log.seek(0)
                    raise SystemExit(f"{' '.join(command)} did not become ready:\n{log.read()[-3000:]}")
                time.sleep(0.005)
            return time.perf_counter() - started, _cpu_seconds(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", type=Path, help="another checkout whose meshctx serve is timed alongside")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="meshctx-bench-startup-"))
    (work / "bare.py").write_text(BARE_APP)
    base = dict(os.environ)
    for name in ("MESHCTX_DATABASE_URL", "MESHCTX_TOKENS_FILE", "PYTHONDONTWRITEBYTECODE"):
        base.pop(name, None)
    trees = {"": ROOT} if args.before is None else {"": ROOT, "-before": args.before.resolve()}

    def serve(data_dir: Path, tree: Path) -> tuple[list[str], dict[str, str]]:
        port = _free_port()
        path = os.pathsep.join([str(tree / "src"), str(tree / "service")])
        env = dict(base, PYTHONPATH=path, MESHCTX_DATA_DIR=str(data_dir), MESHCTX_LOG_LEVEL="warning")
        return [sys.executable, "-m", "meshctx.cli", "serve", "--port", str(port)], env

    def bare() -> tuple[list[str], dict[str, str]]:
        port = _free_port()
        command = [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port), "--log-level", "warning"]
        return command, dict(base, PYTHONPATH=str(work), BENCH_CWD=str(work))

    def run(kind: str, round_number: int) -> tuple[float, float]:
        database, _, suffix = kind.partition("-")
        tree = trees["-" + suffix if suffix else ""]
        if kind == "bare":
            command, env = bare()
        elif database == "fresh":
            command, env = serve(work / f"{kind}-{round_number}", tree)
        else:
            command, env = serve(work / kind, tree)
        port = int(command[command.index("--port") + 1])
        return time_start(command, env, port)

    kinds = ["bare", *(f"{database}{suffix}" for suffix in trees for database in ("fresh", "migrated"))]
    for kind in kinds:  # creates the migrated databases, writes bytecode caches and warms the file cache
        run(kind, -1)
    times: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for round_number in range(args.rounds):
        for kind in times:
            times[kind].append(run(kind, round_number))
    load = os.getloadavg()[0]
    print(f"start-up to /readyz 200, {args.rounds} rounds interleaved (load average {load:.1f}, {os.cpu_count()} CPUs)")
    bare_wall = statistics.median(wall for wall, _ in times["bare"])
    bare_cpu = statistics.median(cpu for _, cpu in times["bare"])
    for kind, samples in times.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        ratios = "" if kind == "bare" else f"  {wall / bare_wall:.2f}× bare (CPU {cpu / bare_cpu:.2f}×)"
        low = min(w for w, _ in samples)
        print(f"  {kind:16s} median {wall * 1000:6.0f} ms (min {low * 1000:6.0f}), CPU {cpu * 1000:5.0f} ms{ratios}")


if __name__ == "__main__":
    main()
