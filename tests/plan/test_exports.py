"""What ``meshctx.plan`` exports: everything a caller needs to plan without reaching into its modules."""

from __future__ import annotations

import meshctx
import meshctx.plan


def test_plan_exports_the_sizes_it_plans_with() -> None:
    from meshctx.plan import ParallelismSizes, validate_topology

    assert ParallelismSizes is meshctx.ParallelismSizes is meshctx.ParallelSizes
    assert validate_topology("fsdp2", ParallelismSizes(tp_size=8), world_size=16).valid


def test_every_name_in_all_is_exported() -> None:
    for name in meshctx.plan.__all__:
        assert hasattr(meshctx.plan, name), name
