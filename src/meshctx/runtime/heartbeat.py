"""The job tells the registry it is alive: ``MeshContext.from_env()`` on rank 0 attests the mesh it built, then
renews the job's lease from a daemon thread until the process exits (docs/registry.md, "Leases").

It runs only when the launch names the registry: ``MESHCTX_JOB_ID`` (the renderings set it to the job's name)
and ``MESHCTX_SERVER`` (``MESHCTX_TOKEN`` for a registry with tokens). Without them nothing happens. It never
stops the job: an unreachable service or a refused call is logged and the thread keeps trying; it stops for
good only when the registry says the job has ended (finished, failed, or lost).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

ENV_JOB_ID = "MESHCTX_JOB_ID"
ENV_SERVER = "MESHCTX_SERVER"
#: Renew this often when the job's lease is unknown (the service unreachable at the first beat).
DEFAULT_INTERVAL_S = 30.0
log = logging.getLogger("meshctx.heartbeat")


class Fingerprinted(Protocol):
    def fingerprint(self) -> str: ...


@dataclass
class Heartbeat:
    """The running heartbeat of one job: ``stop()`` ends it (the thread is a daemon: exiting the process does)."""

    job_id: str
    server: str
    token: str | None = None
    interval_s: float = DEFAULT_INTERVAL_S
    beats: int = 0
    ended: str | None = None  # the job's final state once the registry answers job_ended
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, fingerprint: str | None) -> Heartbeat:
        self._thread = threading.Thread(
            target=self._run, args=(fingerprint,), name=f"meshctx-heartbeat-{self.job_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, fingerprint: str | None) -> None:
        try:
            from ..client import MeshctxClient, ProblemError
        except Exception as error:  # httpx missing (pip install 'meshctx[client]'): say so once
            log.warning("meshctx: not heartbeating job %s: %s", self.job_id, error)
            return
        with MeshctxClient(self.server, token=self.token) as client:
            if fingerprint is not None:
                try:
                    client.attest(self.job_id, fingerprint)
                except ProblemError as error:
                    log.error("meshctx: attesting job %s: %s", self.job_id, error)
                except Exception as error:
                    log.warning("meshctx: attesting job %s failed (will heartbeat on): %s", self.job_id, error)
            while True:
                try:
                    job = client.heartbeat(self.job_id)
                    self.beats += 1
                    lease = job.get("lease_seconds") or 0
                    self.interval_s = max(0.2, lease / 3) if lease else DEFAULT_INTERVAL_S
                except ProblemError as error:
                    if error.problem.get("code") == "job_ended":
                        self.ended = str(error.problem.get("state"))
                        log.warning(
                            "meshctx: job %s has ended in the registry (%s): heartbeat stops", self.job_id, self.ended
                        )
                        return
                    log.warning("meshctx: heartbeat for job %s refused: %s", self.job_id, error)
                except Exception as error:
                    log.warning("meshctx: heartbeat for job %s failed: %s", self.job_id, error)
                if self._stop.wait(self.interval_s):
                    return


def is_rank_zero(environ: Mapping[str, str]) -> bool:
    """torchrun (and its twins) give every process ``RANK``; a process without one is the only one."""
    return environ.get("RANK", "0").strip() == "0"


def start_job_heartbeat(ctx: Fingerprinted | None, environ: Mapping[str, str] | None = None) -> Heartbeat | None:
    """On rank 0 of a launch that names the registry, attest ``ctx``'s fingerprint and heartbeat the job until the
    process exits; ``None`` (nothing started) otherwise."""
    env = os.environ if environ is None else environ
    job_id, server = env.get(ENV_JOB_ID, "").strip(), env.get(ENV_SERVER, "").strip()
    if not job_id or not server or not is_rank_zero(env):
        return None
    fingerprint = ctx.fingerprint() if ctx is not None else None
    beat = Heartbeat(job_id, server, token=env.get("MESHCTX_TOKEN") or None)
    _RUNNING.append(beat)
    return beat.start(fingerprint)


#: Every heartbeat this process started (kept referenced for as long as the process runs).
_RUNNING: list[Heartbeat] = []
