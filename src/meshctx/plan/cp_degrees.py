"""Context parallelism split into ring attention × Ulysses: NeMo 0.7.0's ``cp_ring_degree`` and
``cp_ulysses_degree``. The mesh keeps one ``cp`` axis; the split only has to multiply out to it, which NeMo checks
late (when a runtime derives its ``("ring", "ulysses")`` mesh) and the planner checks before launch."""

from __future__ import annotations

from .arith import divisors, is_size
from .problems import Code, Problem

CP_DEGREE_FIELDS: tuple[str, ...] = ("cp_ring_degree", "cp_ulysses_degree")


def cp_degree_problems(cp: int | None, ring: object, ulysses: object) -> tuple[tuple[int, int] | None, list[Problem]]:
    """``(ring, ulysses)`` with the Ulysses degree resolved (unset: ``cp / ring``), and what is wrong.
    ``cp`` is ``None`` when it is itself invalid; then only the degrees' own values are checked."""
    problems: list[Problem] = []
    for name, value in (("cp_ring_degree", ring), ("cp_ulysses_degree", ulysses)):
        if (value is not None or name == "cp_ring_degree") and not is_size(value):
            unset = " or leave it unset (null) for cp / cp_ring_degree" if name == "cp_ulysses_degree" else ""
            problems.append(
                Problem.error(
                    Code.INVALID_SIZE,
                    (name,),
                    f"{name} must be an integer ≥ 1, got {value!r}.",
                    f"Set {name} to a positive integer such as 1{unset}.",
                )
            )
    if problems or cp is None:
        return None, problems
    assert isinstance(ring, int) and (ulysses is None or isinstance(ulysses, int))  # both checked above
    resolved_ulysses = ulysses if ulysses is not None else cp // ring
    if ring * resolved_ulysses != cp or cp % ring:
        splits = [f"{r}×{cp // r}" for r in divisors(cp)]
        unset = "cp_ulysses_degree unset (cp / cp_ring_degree)"
        shown = f"cp_ulysses_degree {ulysses}" if ulysses is not None else unset
        problems.append(
            Problem.error(
                Code.CP_DEGREES_MISMATCH,
                ("cp_ring_degree", "cp_ulysses_degree", "cp_size"),
                f"cp_ring_degree {ring} × {shown} does not multiply out to cp_size {cp}.",
                f"Split cp_size {cp} as ring × Ulysses, e.g. {', '.join(splits[:6])} "
                "(or set cp_ring_degree=1 and leave cp_ulysses_degree unset for pure Ulysses).",
            )
        )
        return None, problems
    return (ring, resolved_ulysses), problems
