"""Clusters through the repository layer on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from meshctx_service.registry import ClusterInUseError, InvalidInputError, NotFoundError, Registry
from tests.registry.registrar import fsdp2


def test_put_get_replace_list_delete(registry: Registry) -> None:
    created, was_new = registry.put_cluster("acme", "east", nodes=4, gpus_per_node=8, nvlink_domain=8)
    assert was_new and created.gpus == 32 and created.to_dict()["nvlink_domain"] == 8
    same, was_new = registry.put_cluster("acme", "east", nodes=4, gpus_per_node=8, nvlink_domain=8)
    assert not was_new and same == created  # an identical PUT changes nothing, not even updated_at
    grown, _ = registry.put_cluster("acme", "east", nodes=8, gpus_per_node=8, nvlink_domain=8)
    assert grown.nodes == 8 and grown.updated_at > created.updated_at and grown.created_at == created.created_at
    assert registry.get_cluster("acme", "east") == grown
    for name in ("west", "north", "south"):
        registry.put_cluster("acme", name, nodes=1, gpus_per_node=4)
    first = registry.list_clusters("acme", limit=3)
    rest = registry.list_clusters("acme", limit=3, cursor=first.next_cursor)
    assert [c.name for c in first.items + rest.items] == ["east", "north", "south", "west"]
    assert rest.next_cursor is None
    registry.delete_cluster("acme", "west")
    with pytest.raises(NotFoundError):
        registry.get_cluster("acme", "west")


def test_bad_cluster_fields_are_all_reported(registry: Registry) -> None:
    with pytest.raises(InvalidInputError) as err:
        registry.put_cluster("acme", "-bad", nodes=0, gpus_per_node=True, nvlink_domain=-1)
    assert {e["field"] for e in err.value.errors} == {"name", "nodes", "gpus_per_node", "nvlink_domain"}


def test_cluster_with_active_jobs_cannot_be_deleted_or_reshaped(registry: Registry) -> None:
    registry.put_cluster("acme", "pool", nodes=4, gpus_per_node=8)
    registry.register_job("acme", "a", fsdp2(16), cluster="pool")
    with pytest.raises(ClusterInUseError) as err:
        registry.delete_cluster("acme", "pool")
    assert (err.value.active_jobs, err.value.held) == (1, 16)
    with pytest.raises(ClusterInUseError):
        registry.put_cluster("acme", "pool", nodes=1, gpus_per_node=8)  # 8 GPUs < the 16 held
    with pytest.raises(ClusterInUseError):
        registry.put_cluster("acme", "pool", nodes=8, gpus_per_node=4)  # the job was planned on 8 per node
    assert registry.put_cluster("acme", "pool", nodes=2, gpus_per_node=8)[0].gpus == 16  # still fits
    registry.set_state("acme", "a", "failed")
    registry.delete_cluster("acme", "pool")
    assert registry.get_job("acme", "a").cluster == "pool"  # history keeps the name
