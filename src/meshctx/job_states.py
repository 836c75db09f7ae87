"""A registered job's life: its states and the moves between them (the registry enforces them; clients show them).

A job is registered with a validated plan, runs once it attests the mesh it built, and ends finished or failed.
It may fail before it ever runs (e.g. the launch crashed before attesting). A job whose lease ran out (no
heartbeat, attestation or re-registration in time) is lost: it ended without telling anyone. Active jobs hold
their GPUs (and nodes) on their cluster; ended ones hold none and never change again. Standard library only, so
every layer can import it.
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    REGISTERED = "registered"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    LOST = "lost"

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        """Active jobs hold their GPUs on the cluster."""
        return self in ACTIVE

    @property
    def ended(self) -> bool:
        """Ended jobs are final: no state follows."""
        return self in ENDED


#: Legal next states of each state.
TRANSITIONS: dict[JobState, tuple[JobState, ...]] = {
    JobState.REGISTERED: (JobState.RUNNING, JobState.FAILED, JobState.LOST),
    JobState.RUNNING: (JobState.FINISHED, JobState.FAILED, JobState.LOST),
    JobState.FINISHED: (),
    JobState.FAILED: (),
    JobState.LOST: (),
}
ACTIVE: tuple[JobState, ...] = (JobState.REGISTERED, JobState.RUNNING)
ENDED: tuple[JobState, ...] = tuple(s for s, following in TRANSITIONS.items() if not following)
#: Every state's value, in life order: what a client may ask for or filter by.
NAMES: tuple[str, ...] = tuple(s.value for s in JobState)
