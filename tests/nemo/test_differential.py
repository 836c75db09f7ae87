"""meshctx's ``MeshContext`` against NeMo Automodel 0.7.0's, side by side on torch's ``fake`` backend.

Each generated case builds both contexts in the same job (one process playing one rank) from NeMo's own config
objects, then compares error-versus-success, the exception type and message prefix, every property, both kwargs
dicts, the policy fields, every axis's ranks and process group, and what NeMo's ``mesh_utils`` helpers make of
the meshes. Any difference must be a row of docs/nemo-compat.md, named here by its id.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import meshctx
import meshctx.mesh
from meshctx import TopologyError
from tests.nemo.nemo_loader import load_nemo
from tests.nemo.nemo_worlds import outcome, snapshot
from tests.torch.torch_worlds import fake_world

NEMO = load_nemo()
DOC = Path(__file__).resolve().parents[2] / "docs" / "nemo-compat.md"
DOCUMENTED = set(re.findall(r"^\| `([a-z0-9-]+)` \|", DOC.read_text(), flags=re.MULTILINE))
EXAMPLES = int(os.environ.get("MESHCTX_NEMO_EXAMPLES", "150"))
SIZE_FIELDS = ("dp_size", "dp_replicate_size", "tp_size", "pp_size", "cp_size", "ep_size")


@dataclass(frozen=True)
class Case:
    strategy: str
    job: int
    rank: int
    sizes: dict[str, int | None]
    world_size: int | None
    ranks: tuple[int, ...] | None
    timeout_minutes: int | None
    cp_ring_degree: int
    cp_ulysses_degree: int | None
    meshctx_types: bool  # meshctx's own config and sizes classes on meshctx's side (else NeMo's on both)

    def nemo_config(self) -> Any:
        return {"fsdp2": NEMO.config.FSDP2Config, "megatron_fsdp": NEMO.config.MegatronFSDPConfig}.get(
            self.strategy, NEMO.config.DDPConfig
        )()

    def meshctx_config(self, nemo_config: Any) -> Any:
        if not self.meshctx_types:
            return nemo_config
        return {"fsdp2": meshctx.FSDP2Config, "megatron_fsdp": meshctx.MegatronFSDPConfig}.get(
            self.strategy, meshctx.DDPConfig
        )()

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "world_size": self.world_size,
            "timeout_minutes": self.timeout_minutes,
            "ranks": list(self.ranks) if self.ranks is not None else None,
        }
        if (self.cp_ring_degree, self.cp_ulysses_degree) != (1, None):
            out |= {"cp_ring_degree": self.cp_ring_degree, "cp_ulysses_degree": self.cp_ulysses_degree}
        return out


@st.composite
def cases(draw: st.DrawFn) -> Case:
    strategy = draw(st.sampled_from(["fsdp2", "fsdp2", "megatron_fsdp", "ddp"]))
    job = draw(st.sampled_from([1, 2, 4, 4, 6, 8, 8, 12, 16, 16]))
    sizes: dict[str, int | None] = {
        "tp_size": draw(st.sampled_from([1, 1, 1, 2, 2, 4, 3, 0])),
        "pp_size": draw(st.sampled_from([1, 1, 2])),
        "cp_size": draw(st.sampled_from([1, 1, 1, 2, 4])),
        "ep_size": draw(st.sampled_from([1, 1, 1, 2, 4, 8])),
        "dp_size": draw(st.sampled_from([None] * 6 + [1, 2, 3, 4, 8, 0])),
        "dp_replicate_size": draw(st.sampled_from([None, None, None, 1, 2, 2, 4])),
    }
    ranks: tuple[int, ...] | None = None
    world_size: int | None = None
    if strategy != "ddp" and draw(st.integers(0, 3)) == 0:  # a rank subset (NeMo's separate KD meshes)
        order = draw(st.permutations(list(range(job))))
        ranks = tuple(order[: draw(st.integers(1, job))])
        world_size = draw(st.sampled_from([len(ranks), len(ranks), None, job]))
    else:
        world_size = draw(st.sampled_from([None] * 6 + [job, max(1, job // 2), 2 * job]))
    ring, ulysses = draw(st.sampled_from([(1, None)] * 6 + [(2, None), (2, 2), (1, 2), (2, 1)]))
    return Case(
        strategy,
        job,
        draw(st.integers(0, job - 1)),
        sizes,
        world_size,
        ranks,
        draw(st.sampled_from([None, 5])),
        ring,
        ulysses,
        draw(st.booleans()),
    )


def _divisor(draw: st.DrawFn, n: int) -> int:
    return draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))


@st.composite
def valid_cases(draw: st.DrawFn) -> Case:
    """Topologies both packages build, so most examples compare groups rather than errors."""
    strategy = draw(st.sampled_from(["fsdp2", "fsdp2", "fsdp2", "megatron_fsdp"]))
    job = draw(st.sampled_from([2, 4, 6, 8, 12, 16, 24, 32]))
    ranks: tuple[int, ...] | None = None
    world = job
    if draw(st.integers(0, 3)) == 0:
        world = _divisor(draw, job)
        ranks = tuple(draw(st.permutations(list(range(job))))[:world])
    tp = _divisor(draw, world)
    cp = _divisor(draw, world // tp)
    pp = _divisor(draw, world // (tp * cp)) if strategy == "fsdp2" else 1
    dp = world // (tp * cp * pp)
    sizes: dict[str, int | None] = {"tp_size": tp, "cp_size": cp, "pp_size": pp, "ep_size": 1}
    sizes["dp_size"] = draw(st.sampled_from([None, dp]))
    sizes["dp_replicate_size"] = None
    if strategy == "fsdp2":
        replicate = _divisor(draw, dp)
        sizes["dp_replicate_size"] = draw(st.sampled_from([None, replicate if replicate < dp else 1]))
        sizes["ep_size"] = _divisor(draw, dp * cp * tp)
    ring = _divisor(draw, cp)
    return Case(
        strategy,
        job,
        draw(st.integers(0, job - 1)),
        sizes,
        world if ranks is not None else draw(st.sampled_from([None, job])),
        ranks,
        draw(st.sampled_from([None, 5])),
        ring,
        draw(st.sampled_from([None, cp // ring])),
        draw(st.booleans()),
    )


def _degree(value: int | None) -> int:
    return value if isinstance(value, int) and value > 0 else 1


def documented(case: Case) -> set[str]:
    """The rows of docs/nemo-compat.md this case falls under."""
    s = case.sizes
    rows: set[str] = set()
    if any(v is not None and v < 1 for v in s.values()):
        rows.add("invalid-size")
    tp, cp, pp = (_degree(s[f]) for f in ("tp_size", "cp_size", "pp_size"))
    cp_axis = cp if case.strategy != "ddp" else 1
    ulysses = case.cp_ulysses_degree if case.cp_ulysses_degree is not None else cp_axis // case.cp_ring_degree
    if case.cp_ring_degree * ulysses != cp_axis:
        rows.add("cp-degrees")
    world = case.world_size if case.world_size is not None else case.job
    if case.strategy == "ddp":
        if s["dp_size"] is not None and s["dp_size"] != world:
            rows.add("ddp-dp-size")
        if world != case.job:
            rows.add("partial-mesh")
        return rows
    pp = pp if case.strategy == "fsdp2" else 1
    dp = s["dp_size"] if s["dp_size"] is not None and s["dp_size"] > 0 else world // (tp * cp * pp) or 1
    if case.ranks is None and dp * tp * cp * pp < case.job:
        rows.add("partial-mesh")
    if case.ranks is not None:
        if _degree(s["ep_size"]) > 1:
            rows.add("stage-helper")
        if case.world_size is None:
            rows.add("subset-default-world")
        if case.rank not in case.ranks:
            rows.add("outside-subset")
    return rows


def _build(cls: Any, config: Any, sizes: Any, case: Case) -> tuple[str, Any]:
    return outcome(lambda: cls.build(config, sizes, **case.kwargs()))


SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)


@pytest.mark.torch
@SETTINGS
@given(case=cases())
def test_meshctx_builds_what_nemo_builds(case: Case) -> None:
    """Any request, invalid ones included: error versus success, exception type and message, then everything."""
    compare(case)


@pytest.mark.torch
@SETTINGS
@given(case=valid_cases())
def test_meshctx_builds_the_same_groups_as_nemo(case: Case) -> None:
    """Valid topologies (HSDP, CP, PP, EP, rank subsets): every group of every axis, every property, both kwargs."""
    compare(case)


def compare(case: Case) -> None:
    note(repr(case))
    rows = documented(case)
    assert rows <= DOCUMENTED, f"rows {rows - DOCUMENTED} are missing from {DOC}"
    nemo_sizes = NEMO.mesh.ParallelismSizes(**case.sizes)
    ours_sizes = meshctx.ParallelismSizes(**case.sizes) if case.meshctx_types else nemo_sizes
    config = case.nemo_config()
    with fake_world(case.job, case.rank):
        nemo = _build(NEMO.mesh.MeshContext, config, nemo_sizes, case)
        ours = _build(meshctx.mesh.MeshContext, case.meshctx_config(config), ours_sizes, case)
        if nemo[0] == "ok" and ours[0] == "ok":
            if case.meshctx_types:  # the same policy objects on both sides
                ours[1].strategy_config = config
            theirs, mine = snapshot(nemo[1], NEMO.mesh_utils, case.rank), snapshot(ours[1], NEMO.mesh_utils, case.rank)
    event(f"NeMo {nemo[0]}, meshctx {ours[0]}")
    where = f"{case} documented={sorted(rows)}"
    if nemo[0] == "error" and ours[0] == "error":
        err, nemo_err = ours[1], nemo[1]
        assert isinstance(err, TopologyError), f"{where}: meshctx raised {err!r} before planning"
        # On a rank left out of a partial mesh NeMo fails inside torch: a RuntimeError, an IndexError before torch
        # 2.10 (docs/nemo-compat.md); meshctx refuses on every rank with one exception type.
        torch_internal = "partial-mesh" in rows and isinstance(nemo_err, IndexError)
        assert torch_internal or isinstance(err, type(nemo_err)), (
            f"{where}: {type(err).__mro__} is not a {type(nemo_err)}"
        )
        if not rows:  # NeMo's message first, then meshctx's codes and hints
            assert str(err).startswith(str(nemo_err)), f"{where}: {err} does not start with NeMo's {nemo_err}"
        assert err.problems and all(p.hint for p in err.problems), where
        return
    if nemo[0] != ours[0]:
        assert rows, f"{where}: NeMo {nemo[0]} ({nemo[1]!r}) but meshctx {ours[0]} ({ours[1]!r})"
        if ours[0] == "error":  # meshctx refuses what NeMo builds wrongly: still NeMo's exception type
            assert isinstance(ours[1], ValueError) and isinstance(ours[1], TopologyError), where
            assert ours[1].problems and all(p.hint for p in ours[1].problems), where
        return
    differing = {k for k in theirs.keys() | mine.keys() if theirs.get(k) != mine.get(k)}
    if "stage-helper" in rows:
        differing -= {"flattened", "flat:dp_replicate_dp_shard_cp_tp"}
    if "outside-subset" in rows:  # NeMo's properties raise there; meshctx reads the subset's sizes
        differing -= {k for k in differing if str(theirs.get(k)).startswith("raises ")}
    assert not differing, f"{where}: " + "; ".join(
        f"{k}: NeMo {theirs.get(k)!r} vs meshctx {mine.get(k)!r}" for k in sorted(differing)
    )
