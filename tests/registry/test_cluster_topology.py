"""A cluster's physical topology and a job's placement through the repository layer, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from meshctx.config import ParallelismSizes
from meshctx.place import Topology, place
from meshctx.plan import ClusterShape, plan_mesh
from meshctx.plan.request import TopologyRequest
from meshctx_service.registry import InvalidInputError, InvalidTopologyError, Registry
from tests.registry.registrar import fsdp2


def racks(count: int = 4, gpus: int = 4) -> dict[str, Any]:
    """``count`` nodes gpu1.. in two NVLink domains (odd, even), so hostname order splits every tp pair."""
    return {
        "nodes": [
            {"name": f"gpu{i}", "gpus": gpus, "nvlink_domain": f"nvl{i % 2}", "leaf": "leaf0", "spine": None}
            for i in range(1, count + 1)
        ]
    }


def tp8(world_size: int = 16) -> TopologyRequest:
    return TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=8), world_size=world_size)


def test_topology_stored_returned_replaced_and_removed(registry: Registry) -> None:
    created, _ = registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=racks())
    assert created.topology == Topology.from_dict(racks()).to_dict()
    assert registry.get_cluster("acme", "east").to_dict()["topology"] == created.topology
    same, _ = registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=racks())
    assert same == created  # the same topology again changes nothing
    moved = racks()
    moved["nodes"][0]["leaf"] = "leaf1"
    changed, _ = registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=moved)
    assert changed.topology is not None and changed.topology["nodes"][0]["leaf"] == "leaf1"
    assert changed.updated_at > created.updated_at
    cleared, _ = registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4)
    assert cleared.topology is None and registry.get_cluster("acme", "east").topology is None


def test_topology_must_match_the_shape(registry: Registry) -> None:
    with pytest.raises(InvalidInputError) as err:
        registry.put_cluster("acme", "east", nodes=3, gpus_per_node=8, topology=racks())
    fields = {e["field"]: e["detail"] for e in err.value.errors}
    assert "lists 4 nodes but the cluster has nodes=3" in fields["topology.nodes"]
    assert "gpus_per_node=8" in fields["topology.nodes.gpus"] and "gpu1" in fields["topology.nodes.gpus"]
    with pytest.raises(InvalidInputError) as err:
        registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=racks(), max_nodes=3)
    assert "4 nodes exceed the 3" in err.value.errors[0]["detail"]
    twice = racks()
    twice["nodes"][1]["name"] = "gpu1"
    with pytest.raises(InvalidInputError) as err:
        registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=twice)
    assert err.value.errors[0]["field"] == "topology" and "repeated: gpu1" in err.value.errors[0]["detail"]
    assert registry.list_clusters("acme").items == []  # nothing stored


def test_job_allocation_is_placed_and_stored(registry: Registry) -> None:
    registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=racks())
    request = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=8), world_size=16)
    job = registry.register_job("acme", "j", request, cluster="east", nodes="gpu[1-4]").job
    # The registry's placement is the placement core's, for the plan made on the cluster's shape.
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=16, cluster=ClusterShape(gpus_per_node=4))
    expected = place(plan, Topology.from_dict(racks()), "gpu[1-4]").to_dict()
    assert job.placement is not None
    assert job.placement == {k: expected[k] for k in ("order", "gpus_per_node", "axes")}
    assert job.placement["axes"]["tp"]["crossing"]["nvlink_domain"] == 0  # each tp group kept in one domain
    assert registry.get_job("acme", "j").placement == job.placement
    again = registry.register_job("acme", "j", request, cluster="east", nodes="gpu[1-4]")
    assert not again.changed  # idempotent with the same allocation
    moved = registry.register_job(
        "acme", "j", request, cluster="east", nodes=["gpu4", "gpu3", "gpu2", "gpu1"], if_match=job.etag
    ).job
    assert moved.version == 2 and moved.placement is not None
    registry.put_cluster("acme", "bare", nodes=1, gpus_per_node=4)
    plain = registry.register_job("acme", "k", fsdp2(4), cluster="bare").job
    assert plain.placement is None and plain.to_dict()["placement"] is None


def test_bad_allocations_are_refused_naming_nodes(registry: Registry) -> None:
    registry.put_cluster("acme", "east", nodes=4, gpus_per_node=4, topology=racks())
    registry.put_cluster("acme", "bare", nodes=4, gpus_per_node=4)
    with pytest.raises(InvalidTopologyError) as err:
        registry.register_job("acme", "j", tp8(), cluster="east", nodes="gpu[1-2],gpu9")
    assert err.value.code == "invalid_placement" and str(err.value).startswith("nodes: ")
    codes = {p["code"] for p in err.value.problems}
    assert {"unknown_node", "allocation_size_mismatch"} <= codes, codes
    assert all(any(f == "nodes" for f in p["fields"]) for p in err.value.problems)  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError) as bare:
        registry.register_job("acme", "j", tp8(), cluster="bare", nodes="gpu1")  # held, not placed: too few
    assert bare.value.errors[0]["field"] == "nodes" and "allocate at least 4 hosts" in bare.value.errors[0]["detail"]
    with pytest.raises(InvalidInputError) as nowhere:
        registry.register_job("acme", "j", tp8(), nodes="gpu[1-4]")
    assert "name the cluster" in nowhere.value.errors[0]["detail"]
    with pytest.raises(InvalidInputError) as malformed:
        registry.register_job("acme", "j", tp8(), cluster="east", nodes="gpu[1-")
    assert malformed.value.errors[0]["field"] == "nodes"
    assert registry.list_jobs("acme").items == []
    held = registry.get_cluster("acme", "east")
    assert held.to_dict()["gpus"] == 16
