"""What a new user meets: torchrun's spellings, help and --version, errors that name the subcommand and never
a traceback, output safe against a closed pipe, one output format per render target, processes per node checked
against GPUs per node, and ``--server`` mistakes with the right exit status. Real subprocesses throughout."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshctx.cli import build_parser
from meshctx.cli.text import group_text

from .serving import cli_env, free_port, meshctx_serve


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshctx.cli", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=120,
        check=False,
    )


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


def test_torchrun_spellings_are_aliases() -> None:
    dashed = run("validate", "--nnodes", "2", "--nproc-per-node", "8", "--tp", "8", "--json")
    underscored = run("validate", "--nnodes", "2", "--nproc_per_node", "8", "--tp", "8", "--json")
    equals = run("validate", "--nnodes=2", "--nproc_per_node=8", "--tp=8", "--gpus_per_node=8", "--json")
    assert dashed.returncode == underscored.returncode == equals.returncode == 0
    assert json.loads(dashed.stdout) == json.loads(underscored.stdout)
    assert json.loads(equals.stdout)["plan"]["world_size"] == 16


def test_unknown_flag_names_the_subcommand_and_a_close_spelling() -> None:
    done = run("validate", "--world-size", "8", "--nproc-pernode", "8")
    assert done.returncode == 2
    assert "meshctx validate: error: unrecognized arguments: --nproc-pernode" in done.stderr
    assert "did you mean --nproc-per-node?" in done.stderr
    no_traceback(done)


def _parsers(parser: argparse.ArgumentParser, name: str = "meshctx") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _parsers(sub, f"{name} {sub_name}")
    return found


def test_every_flag_has_help_and_there_is_a_version() -> None:
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("meshctx ")
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in _parsers(build_parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    assert missing == []


def test_render_usage_errors_name_render() -> None:
    done = run("render", "torchrun", "--world-size", "8")
    assert done.returncode == 2
    assert done.stderr.startswith("meshctx render: error:"), done.stderr


def test_more_processes_than_gpus_per_node_is_invalid_and_not_rendered() -> None:
    flags = ("--nnodes", "2", "--nproc-per-node", "8", "--gpus-per-node", "4", "--tp", "8")
    done = run("validate", *flags, "--json")
    body = json.loads(done.stdout)
    assert done.returncode == 1 and [p["code"] for p in body["problems"]] == ["nproc_exceeds_gpus_per_node"]
    assert body["suggestions"] == []
    rendered = run("render", "slurm", *flags)
    assert rendered.returncode == 1 and rendered.stdout == "" and "nproc_exceeds_gpus_per_node" in rendered.stderr


def test_the_node_count_wins_when_fewer_processes_than_gpus() -> None:
    done = run("validate", "--nnodes", "4", "--nproc-per-node", "4", "--gpus-per-node", "8", "--tp", "8", "--json")
    cluster = json.loads(done.stdout)["plan"]["cluster"]
    assert done.returncode == 0
    assert cluster["nodes"] == 4 and cluster["nproc_per_node"] == 4 and cluster["spans"]["tp"] == {"nodes": 2}
    rendered = run("render", "slurm", "--nnodes", "4", "--nproc-per-node", "4", "--gpus-per-node", "8", "--tp", "4")
    assert rendered.returncode == 0 and "--nodes=4" in rendered.stdout and "--gpus-per-node=4" in rendered.stdout


def test_processes_without_nodes_is_a_usage_error_and_nvlink_defaults_to_the_processes() -> None:
    done = run("validate", "--world-size", "16", "--nproc-per-node", "8")
    assert done.returncode == 2 and "--nproc-per-node needs --nnodes" in done.stderr
    domain = run("validate", "--nnodes", "2", "--nproc-per-node", "8", "--nvlink-domain", "8", "--tp", "16", "--json")
    body = json.loads(domain.stdout)
    assert domain.returncode == 0 and body["plan"]["cluster"]["gpus_per_node"] == 8
    assert [w["code"] for w in body["warnings"]] == ["axis_spans_nvlink_domain"]


def test_a_world_that_disagrees_with_its_nodes_gets_no_useless_suggestion() -> None:
    done = run("validate", "--world-size", "16", "--nnodes", "2", "--nproc-per-node", "4", "--tp", "8")
    assert done.returncode == 1 and "suggestions:" not in done.stdout


def test_closed_pipe_keeps_the_exit_status_and_prints_no_traceback() -> None:
    command = [sys.executable, "-m", "meshctx.cli", "layout", "--world-size", "4096", "--tp", "8", "--groups", "--json"]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    assert producer.stdout is not None and producer.stderr is not None
    producer.stdout.read(10)
    producer.stdout.close()  # the reader goes away, as `| head -c 10` does
    stderr = producer.stderr.read().decode()
    assert producer.wait(timeout=120) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


@pytest.mark.parametrize("target", ["trainjob", "kueue", "skypilot"])
def test_render_yaml_is_the_same_with_and_without_pyyaml(target: str, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "yaml.py").write_text("raise ImportError('PyYAML is not installed here')\n")
    flags = ("render", target, "--nnodes", "2", "--nproc-per-node", "8", "--tp", "8", "--image", "repo/img:1")
    flags += ("--accelerator", "H100")
    if target == "kueue":  # a TrainJob refuses Kueue's topology settings (its runtime's pod template takes them)
        flags += ("--slice-topology", "cloud.google.com/gce-topology-block")
    with_yaml = run(*flags)
    env = cli_env()
    env["PYTHONPATH"] = f"{blocker}:{env['PYTHONPATH']}"
    without = run(*flags, env=env)
    assert with_yaml.returncode == without.returncode == 0, with_yaml.stderr + without.stderr
    assert with_yaml.stdout == without.stdout
    data = json.loads(run(*flags, "--json").stdout)["rendering"]["data"]
    assert yaml.safe_load(with_yaml.stdout) == data
    assert json.loads(run(*flags, "--format", "json").stdout) == data
    assert yaml.safe_load(run(*flags, "--format", "yaml").stdout) == data


def test_rank_view_text_of_a_million_ranks_is_short() -> None:
    done = run("layout", "--world-size", "1048576", "--tp", "8", "--pp", "4", "--rank", "5")
    assert done.returncode == 0
    assert len(done.stdout) < 2000 and len(done.stdout.splitlines()) < 20, done.stdout
    assert "32768 ranks" in done.stdout


def test_group_text_reads_either_form_of_a_big_group() -> None:
    assert group_text({"start": 5, "sizes": [8, 4096], "strides": [1, 256]}) == (
        "32768 ranks from 5, layout (8,4096):(1,256)"
    )
    assert group_text(list(range(3, 3 + 8 * 5000, 8))) == "[3, 11, 19, 27, …, 39995] (5000 ranks, step 8)"
    assert group_text(list(range(64))) == "0-63 (64 ranks)"
    assert group_text([0, 8]) == "[0, 8]"


def test_server_without_a_scheme_is_a_usage_error() -> None:
    done = run("validate", "--world-size", "8", "--server", "localhost:8000")
    assert done.returncode == 2 and "http://localhost:8000" in done.stderr
    no_traceback(done)


def test_unreachable_server_exits_3() -> None:
    done = run("validate", "--world-size", "8", "--server", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 3 and "no answer" in done.stderr
    no_traceback(done)


def test_validate_over_http_equals_offline_and_strategy_defaults_to_fsdp2(tmp_path: Path) -> None:
    flags = ("validate", "--nnodes", "2", "--nproc-per-node", "8", "--tp", "4", "--json")
    with meshctx_serve(tmp_path) as url:
        remote = run(*flags, "--server", url)
        import httpx

        answer = httpx.post(f"{url}/v1/validate", json={"world_size": 8, "sizes": {"tp_size": 2}})
        busy = run("serve", "--port", url.rsplit(":", 1)[1])
    assert remote.returncode == 0 and json.loads(remote.stdout) == json.loads(run(*flags).stdout)
    assert answer.status_code == 200 and answer.json()["plan"]["strategy"] == "fsdp2"
    assert busy.returncode == 2 and "choose another with --port" in busy.stderr
    no_traceback(busy)
