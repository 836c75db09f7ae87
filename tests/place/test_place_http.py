"""``POST /v1/place`` and ``POST /v1/topology/import`` on a real uvicorn server (``meshctx serve`` on loopback):
the CLI's JSON, ``--server`` printing what the offline command prints, limits and 422s naming the field."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshctx import ParallelismSizes, plan_mesh
from meshctx.cli import main
from meshctx.place import Node, Topology, place
from meshctx.place.answer import place_answer
from meshctx.plan.request import TopologyRequest
from tests.support.servers import LiveServer, start_server

MAX_NODES = 16
MAX_TEXT = 4000
MAX_BODY = 1 << 20
MAX_PLACE_BODY = 2 << 20
NODES = [Node(f"node{i}", 4, f"nvl{i % 2}", f"leaf{i % 2}", "spine0") for i in range(1, 9)]
TOPOLOGY = Topology.of(NODES)
BODY: dict[str, Any] = {"strategy": "fsdp2", "world_size": 32, "sizes": {"tp_size": 8}, "topology": TOPOLOGY.to_dict()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(
        tmp_path_factory.mktemp("place"),
        MESHCTX_MAX_PLACE_NODES=str(MAX_NODES),
        MESHCTX_MAX_TOPOLOGY_TEXT_BYTES=str(MAX_TEXT),
        MESHCTX_MAX_BODY_BYTES=str(MAX_BODY),
        MESHCTX_MAX_PLACE_BODY_BYTES=str(MAX_PLACE_BODY),
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def errors_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["detail"] for e in response.json()["errors"]}


def test_place_answers_the_library_placement(http: httpx.Client) -> None:
    answer = http.post("/v1/place", json={**BODY, "nodes": "node[1-8]", "command": ["train.py", "--cfg", "a b"]})
    assert answer.status_code == 200, answer.text
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=32)
    expected = place(plan, TOPOLOGY, "node[1-8]", command=("train.py", "--cfg", "a b")).to_dict()
    assert answer.json() == expected
    assert answer.json()["axes"]["tp"]["crossing"]["nvlink_domain"] == 0
    assert "'a b'" in answer.json()["launch"]["torchrun"]["command"]


def test_nodes_as_a_list_and_absent_mean_the_same_allocation(http: httpx.Client) -> None:
    listed = http.post("/v1/place", json={**BODY, "nodes": [n.name for n in reversed(NODES)]}).json()
    every = http.post("/v1/place", json=BODY).json()
    assert listed["order"] and sorted(listed["order"]) == sorted(every["order"])
    assert listed["axes"] == every["axes"]


def test_problems_are_a_200_with_valid_false(http: httpx.Client) -> None:
    answer = http.post("/v1/place", json={**BODY, "nodes": "node[1-3],ghost7"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False and body["plan"] is None
    assert {p["code"] for p in body["problems"]} == {"unknown_node", "allocation_size_mismatch"}
    invalid = http.post("/v1/place", json={**BODY, "sizes": {"tp_size": 3}}).json()
    assert invalid["valid"] is False and invalid["problems"][0]["code"] == "world_size_not_divisible"
    assert invalid["suggestions"]


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"topology": {"nodes": [{"name": "a", "gpus": "4"}]}}, "topology.nodes[0].gpus", "integer"),
        ({"topology": {"nodes": [{"name": "a", "gpus": 4, "rack": "r1"}]}}, "topology.nodes[0].rack", "unknown field"),
        ({"topology": {"nodes": []}}, "topology.nodes", "at least 1"),
        ({"topology": None}, "topology", "required"),
        ({"nodes": "node[1-"}, "nodes", "never closed"),
        ({"nodes": "node[1-100000]"}, "nodes", f"more than {MAX_NODES}"),
        ({"nodes": "a" * 300 + ",node1"}, "nodes", "(300 characters) is longer than 253 characters"),
        ({"nodes": [f"n{i}" for i in range(MAX_NODES + 1)]}, "nodes", f"{MAX_NODES + 1} nodes exceed the {MAX_NODES}"),
        (
            {"topology": {"nodes": [{"name": f"n{i}", "gpus": 4} for i in range(MAX_NODES + 1)]}},
            "topology.nodes",
            "MESHCTX_MAX_PLACE_NODES",
        ),
        ({"topology": {"nodes": [{"name": "a", "gpus": 4}, {"name": "a", "gpus": 4}]}}, "topology", "repeated: a"),
        ({"nnodes": "2:8", "nproc_per_node": 4, "world_size": None}, "nnodes", "elastic range"),
        ({"master_port": 0}, "master_port", "greater than or equal to 1"),
        ({"search": "deep"}, "search", "'default' or 'exhaustive'"),
    ],
)
def test_malformed_requests_are_422_naming_the_field(
    http: httpx.Client, change: dict[str, Any], field: str, needle: str
) -> None:
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}  # None: leave the field out
    errors = errors_of(http.post("/v1/place", json=body))
    assert field in errors, errors
    assert needle in errors[field], errors[field]


def test_server_prints_what_the_offline_command_prints(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topo = tmp_path / "topology.json"
    topo.write_text(__import__("json").dumps(TOPOLOGY.to_dict()))
    for args in (
        ["--tp", "8"],
        ["--tp", "8", "--json"],
        ["--tp", "4", "--pp", "2", "--nodes", "node[1-8]", "--command", "train.py --x 1", "--master-port", "29400"],
        ["--tp", "8", "--nodes", "node[1-3]", "--world-size", "32"],
        ["--tp", "3", "--json"],
        ["--tp", "4", "--pp", "2", "--search", "exhaustive"],
        ["--tp", "4", "--pp", "2", "--search", "exhaustive", "--json"],
    ):
        argv = ["place", "--topology", str(topo), *args]
        local = main(argv), capsys.readouterr()
        remote = main([*argv, "--server", server.url]), capsys.readouterr()
        assert remote == local, args


def test_search_mode_is_the_bodys_and_the_answer_says_which_ran(http: httpx.Client) -> None:
    body = {**BODY, "sizes": {"tp_size": 4, "pp_size": 2}}
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=4, pp_size=2), world_size=32)
    for search in ("default", "exhaustive"):
        answer = http.post("/v1/place", json={**body, "search": search})
        assert answer.status_code == 200, answer.text
        assert answer.json() == place(plan, TOPOLOGY, search=search).to_dict()
        assert answer.json()["search"]["mode"] == search
    assert http.post("/v1/place", json=body).json()["search"]["mode"] == "default"


def test_place_answer_is_the_http_body(http: httpx.Client) -> None:
    request = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=4, pp_size=2), world_size=32)
    answer = http.post("/v1/place", json={**request.to_dict(), "topology": TOPOLOGY.to_dict()})
    assert answer.json() == place_answer(request, TOPOLOGY, None)


# -- importers over HTTP --------------------------------------------------------------------------------

CONF = "SwitchName=s0 Nodes=gpu[1-2]\nSwitchName=s1 Nodes=gpu[3-4]\nSwitchName=top Switches=s[0-1]\n"
YAML = """
- topology: main
  cluster_default: true
  block:
    block_sizes: [2]
    blocks:
      - block: b0
        nodes: gpu[1-2]
      - block: b1
        nodes: gpu[3-4]
"""


def test_import_slurm_conf_and_yaml(http: httpx.Client) -> None:
    answer = http.post("/v1/topology/import", json={"format": "slurm-conf", "text": CONF, "gpus_per_node": 8})
    assert answer.status_code == 200, answer.text
    nodes = {n["name"]: n for n in answer.json()["nodes"]}
    assert nodes["gpu3"] == {"name": "gpu3", "gpus": 8, "nvlink_domain": None, "leaf": "s1", "spine": "top"}
    answer = http.post("/v1/topology/import", json={"format": "slurm-yaml", "text": YAML, "gpus_per_node": 4})
    assert answer.status_code == 200, answer.text
    assert {n["name"]: n["nvlink_domain"] for n in answer.json()["nodes"]} == {
        "gpu1": "b0",
        "gpu2": "b0",
        "gpu3": "b1",
        "gpu4": "b1",
    }
    # the answer is a topology /v1/place takes as it is
    placed = http.post(
        "/v1/place", json={"strategy": "fsdp2", "world_size": 16, "sizes": {"tp_size": 8}, "topology": answer.json()}
    )
    assert placed.status_code == 200 and placed.json()["axes"]["tp"]["crossing"]["nvlink_domain"] == 0


def test_import_kubectl_object(http: httpx.Client) -> None:
    items = [
        {
            "metadata": {"name": f"gke-{i}", "labels": {"nvidia.com/gpu.clique": f"c{i // 2}"}},
            "status": {"allocatable": {"nvidia.com/gpu": "4"}},
        }
        for i in range(4)
    ] + [{"metadata": {"name": "cpu-only"}, "status": {"allocatable": {"cpu": "8"}}}]
    answer = http.post("/v1/topology/import", json={"format": "kubectl", "object": {"items": items}})
    assert answer.status_code == 200, answer.text
    assert [n["name"] for n in answer.json()["nodes"]] == ["gke-0", "gke-1", "gke-2", "gke-3"]
    assert answer.json()["nodes"][3]["nvlink_domain"] == "c1"


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"format": "slurm-conf", "text": CONF}, "gpus_per_node", "no GPU counts"),
        ({"format": "slurm-conf", "gpus_per_node": 8}, "text", "contents as text"),
        ({"format": "slurm-conf", "text": "SwitchName=s0 Nodes\n", "gpus_per_node": 8}, "text", "line 1"),
        ({"format": "slurm-conf", "text": "#" * (MAX_TEXT + 1), "gpus_per_node": 8}, "text", f"{MAX_TEXT + 1} bytes"),
        (
            {"format": "slurm-conf", "text": "SwitchName=s Nodes=n[1-100]", "gpus_per_node": 8},
            "text",
            "more than 16 nodes",
        ),
        ({"format": "slurm-yaml", "text": "- topology: x\n  flat: true\n", "gpus_per_node": 8}, "text", "flat"),
        ({"format": "kubectl", "object": {"kind": "List"}}, "object", "items"),
        ({"format": "kubectl", "object": {"items": [5]}}, "object", "items[0]: expected a mapping"),
        ({"format": "kubectl", "object": {"items": []}}, "object", "lists no nodes"),
        ({"format": "slurm-yaml", "text": "Z\u009d", "gpus_per_node": 4}, "text", "not YAML"),
        ({"format": "kubectl"}, "object", "kubectl get nodes"),
        ({"format": "kubectl", "text": "{"}, "text", "Expecting"),
        ({"format": "lsf", "text": ""}, "format", "slurm-conf"),
        ({"format": "slurm-conf", "text": CONF, "gpus_per_node": 0}, "gpus_per_node", "greater than"),
    ],
)
def test_import_refusals_name_the_field(http: httpx.Client, body: dict[str, Any], field: str, needle: str) -> None:
    errors = errors_of(http.post("/v1/topology/import", json=body))
    assert field in errors, errors
    assert needle in errors[field], errors[field]


def test_openapi_documents_both_routes(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    place_op = paths["/v1/place"]["post"]
    assert set(place_op["responses"]) >= {"200", "422", "503"}
    assert "application/problem+json" in place_op["responses"]["422"]["content"]
    assert "/v1/topology/import" in paths


def test_livez_answers_while_the_largest_placement_runs(tmp_path: Path) -> None:
    """16,384 nodes (the default node limit; 1.4 MB, so the body limit is raised): parsing and placing run in
    the worker pool, so /livez is not held up behind them."""
    live = start_server(tmp_path, MESHCTX_MAX_BODY_BYTES=str(4 << 20))
    nodes = [
        {"name": f"g{i}", "gpus": 4, "nvlink_domain": f"n{i // 18}", "leaf": f"l{i // 36}", "spine": f"s{i // 288}"}
        for i in range(16384)
    ]
    body = {"strategy": "fsdp2", "world_size": 16384 * 4, "sizes": {"tp_size": 8, "ep_size": 32, "pp_size": 2}}
    answer: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            worker = threading.Thread(
                target=lambda: answer.update(r=client.post("/v1/place", json={**body, "topology": {"nodes": nodes}}))
            )
            started = time.perf_counter()
            worker.start()
            waits = []
            while worker.is_alive():
                sent = time.perf_counter()
                assert client.get("/livez").status_code == 200
                waits.append(time.perf_counter() - sent)
                time.sleep(0.005)
            worker.join()
            took = time.perf_counter() - started
    finally:
        live.stop()
    assert answer["r"].status_code == 200, answer["r"].text[:500]
    assert len(answer["r"].json()["order"]) == 16384
    print(f"placement {took * 1000:.0f} ms; /livez worst {max(waits) * 1000:.1f} ms over {len(waits)} calls")
    assert max(waits) < max(0.15, took / 3), (took, sorted(waits)[-5:])


# -- the allocation counts, not the topology; /v1/place has its own body limit; the CLI trims (issue 24) ----------

WIDE = Topology.of([Node(f"w{i}", 4, f"nvl{i // 4}", f"leaf{i // 8}", "spine0") for i in range(MAX_NODES + 8)])


def test_the_node_limit_counts_the_allocation_not_the_topology(http: httpx.Client) -> None:
    body = {"strategy": "fsdp2", "world_size": 32, "sizes": {"tp_size": 4}, "topology": WIDE.to_dict()}
    answer = http.post("/v1/place", json={**body, "nodes": "w[8-15]"})
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["order"]) == sorted(f"w{i}" for i in range(8, 16))
    every = {**body, "world_size": 4 * len(WIDE.nodes)}  # no allocation: every node of the topology is placed
    assert (
        f"{len(WIDE.nodes)} nodes exceed the {MAX_NODES}"
        in errors_of(http.post("/v1/place", json=every))["topology.nodes"]
    )


def test_place_has_a_body_limit_of_its_own(http: httpx.Client) -> None:
    """1.5 MB is over the general limit (413 on /v1/validate) but within /v1/place's; 2.5 MB is over both."""
    padding = {"strategy": "fsdp2", "world_size": 8, "command": ["x" * 1000] * 1, "topology": {"nodes": []}}
    mid = json.dumps({**padding, "nodes": [f"n{i:08d}" for i in range(110_000)]}).encode()
    assert MAX_BODY < len(mid) < MAX_PLACE_BODY
    assert http.post("/v1/validate", content=mid, headers={"content-type": "application/json"}).status_code == 413
    within = http.post("/v1/place", content=mid, headers={"content-type": "application/json"})
    assert within.status_code == 422 and "nodes" in within.json()["errors"][0]["field"], within.text[:300]
    big = mid + b" " * MAX_PLACE_BODY
    over = http.post("/v1/place", content=big, headers={"content-type": "application/json"})
    assert over.status_code == 413 and "MESHCTX_MAX_PLACE_BODY_BYTES" in over.json()["detail"]


def test_server_sends_the_topology_trimmed_to_the_allocation(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cluster has more nodes than the service places; the job's 8 do not: the CLI sends only those."""
    topo = tmp_path / "wide.json"
    topo.write_text(json.dumps(WIDE.to_dict()))
    argv = ["place", "--topology", str(topo), "--tp", "4", "--nodes", "w[4-11]", "--json"]
    local = main(argv), capsys.readouterr()
    remote = main([*argv, "--server", server.url]), capsys.readouterr()
    assert local[0] == 0 and remote == local, remote


def test_import_kubectl_label_map_and_warnings(http: httpx.Client) -> None:
    items = [
        {
            "metadata": {"name": f"k{i}", "labels": {"example.com/rack": f"r{i // 2}"}},
            "status": {"allocatable": {"nvidia.com/gpu": "4"}},
        }
        for i in range(4)
    ]
    plain = http.post("/v1/topology/import", json={"format": "kubectl", "object": {"items": items}})
    assert plain.status_code == 200, plain.text
    assert "4 of 4 GPU node(s) carry none of" in plain.json()["warnings"][0]
    mapped = http.post(
        "/v1/topology/import",
        json={"format": "kubectl", "object": {"items": items}, "label_map": {"leaf": "example.com/rack"}},
    )
    assert mapped.status_code == 200, mapped.text
    assert "warnings" not in mapped.json()
    assert [n["leaf"] for n in mapped.json()["nodes"]] == ["r0", "r0", "r1", "r1"]
    assert mapped.json()["labels"] == {"leaf": "example.com/rack"}
    refused = {"format": "slurm-conf", "text": CONF, "gpus_per_node": 8, "label_map": {"leaf": "x"}}
    assert "kubectl" in errors_of(http.post("/v1/topology/import", json=refused))["label_map"]
