"""The offline CLI's words: counts in the singular where they are one, the world named as given, and the service's
listing limit applied offline too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshctx.config import ParallelismSizes as P
from meshctx.launch import LaunchSpec, render
from meshctx.plan import plan_mesh
from tests.cli.test_cli_offline import run


def test_one_problem_is_one_problem() -> None:
    done = run("validate", "--world-size", "60", "--tp", "8", "--pp", "2")
    assert done.returncode == 1 and done.stdout.startswith("fsdp2 on 60 ranks: INVALID (1 problem)\n")
    two = run("validate", "--world-size", "60", "--tp", "8", "--pp", "2", "--heads", "7")
    assert two.stdout.startswith("fsdp2 on 60 ranks: INVALID (2 problems)\n"), two.stdout
    assert "problem(s)" not in done.stdout + two.stdout


@pytest.mark.parametrize(("given", "words"), [("0", "on world_size 0:"), ("-4", "on world_size -4:")])
def test_an_invalid_world_is_named_as_given(given: str, words: str) -> None:
    done = run("validate", "--world-size", given)
    assert done.returncode == 1 and words in done.stdout.splitlines()[0] and "?" not in done.stdout


def test_listing_every_group_is_refused_offline_above_the_services_limit() -> None:
    done = run("layout", "--world-size", "262144", "--tp", "8", "--groups")
    assert done.returncode == 2 and done.stdout == ""
    assert "--groups" in done.stderr and "131072" in done.stderr and "--rank N" in done.stderr
    assert run("layout", "--world-size", "131072", "--tp", "8", "--rank", "5").returncode == 0


def test_the_kueue_note_counts_pods_in_words() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8), world_size=16)
    one = render("kueue", plan, LaunchSpec(nnodes=2, nproc_per_node=8, slice_topology="rack")).notes[0]
    two = render("kueue", plan, LaunchSpec(nnodes=4, nproc_per_node=4, slice_topology="rack")).notes[0]
    assert "= 1 pod of 8 processes" in one and "= 2 pods of 4 processes" in two


def test_place_without_a_world_names_the_unknown_host(tmp_path: Path) -> None:
    nodes = [{"name": f"gb{i:03d}", "gpus": 4, "nvlink_domain": f"r{(i - 1) // 18}"} for i in range(1, 37)]
    topology = tmp_path / "topology.json"
    topology.write_text(json.dumps({"nodes": nodes}))
    done = run("place", "--topology", str(topology), "--nodes", "gb[001-015],gb999", "--tp", "4")
    assert done.returncode == 1, done.stderr
    assert "unknown_node" in done.stdout and "gb999" in done.stdout and "--world-size" not in done.stderr
