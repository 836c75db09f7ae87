"""The Slurm Lua scripts run by a real Lua interpreter with a stubbed ``slurm`` table.

job_submit.lua must agree with the meshctx planner on every case of a grid, without touching io/os;
cli_filter.lua runs the real ``meshctx validate`` CLI.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshctx.config import ParallelismSizes as P
from meshctx.plan import validate_topology

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "deploy" / "slurm"
LUA = next((shutil.which(n) for n in ("lua5.4", "lua5.3", "lua", "luajit", "lua5.1") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    LUA is None, reason="NO LUA INTERPRETER: install one (apt-get install lua5.4) to test deploy/slurm/*.lua"
)

STUB = """
NO_VAL = 4294967294
slurm = {SUCCESS = 0, ERROR = -1, NO_VAL = NO_VAL, NO_VAL64 = 18446744073709551614, messages = {}}
local function logger(fmt, ...) table.insert(slurm.messages, string.format(fmt, ...)) end
slurm.log_user, slurm.log_error, slurm.log_info, slurm.log_debug = logger, logger, logger, logger
"""


def run_lua(program: str, *, env: dict[str, str] | None = None) -> list[str]:
    assert LUA is not None
    done = subprocess.run(
        [LUA, "-"], input=STUB + program, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


STRATEGIES = ("fsdp2", "megatron_fsdp", "ddp")
GRID = list(itertools.product(STRATEGIES, (1, 2, 3, 8), (1, 2), (1, 2), (1, 4), (None, 2, 4), (None, 2), (1, 2, 3)))


def test_job_submit_agrees_with_the_planner_without_io_or_os() -> None:
    cases = []
    for strategy, tp, pp, cp, ep, dp, rep, nodes in GRID:
        fields = [f"strategy={strategy}", f"tp={tp}", f"pp={pp}", f"cp={cp}", f"ep={ep}", "nproc=8"]
        fields += [f"dp={dp}"] if dp else []
        fields += [f"dp_replicate={rep}"] if rep else []
        cases.append(f'{{comment = "meshctx:{",".join(fields)}", min_nodes = {nodes}}}')
    program = f"""
    local real_io, real_os = io, os
    io, os, require, dofile, loadfile = nil, nil, nil, nil, nil  -- what slurmctld must never need
    local chunk = assert(load(JOB_SUBMIT))
    chunk()
    local cases = {{ {", ".join(cases)} }}
    for i, job in ipairs(cases) do
      job.max_nodes = NO_VAL
      slurm.messages = {{}}
      real_io.write(slurm_job_submit(job, {{}}, 1000), "\\t", slurm.messages[1] or "", "\\n")
    end
    """
    source = (SLURM / "job_submit.lua").read_text()
    lines = run_lua(f"JOB_SUBMIT = {lua_string(source)}\n" + program)
    assert len(lines) == len(GRID)
    for (strategy, tp, pp, cp, ep, dp, rep, nodes), line in zip(GRID, lines):
        code, _, message = line.partition("\t")
        sizes = P(tp_size=tp, pp_size=pp, cp_size=cp, ep_size=ep, dp_size=dp, dp_replicate_size=rep)
        valid = validate_topology(strategy, sizes, nnodes=nodes, nproc_per_node=8).valid
        assert (code == "0") == valid, (strategy, sizes, nodes, message)
        assert valid or message.startswith("meshctx: ")


def lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def test_job_submit_reads_ranges_gres_and_leaves_other_jobs_alone() -> None:
    program = f"""
    dofile({lua_string(str(SLURM / "job_submit.lua"))})
    local function run(job) slurm.messages = {{}}; print(slurm_job_submit(job, {{}}, 1000), slurm.messages[1]) end
    run({{comment = "nightly run", min_nodes = 3, max_nodes = NO_VAL}})
    run({{comment = "meshctx:tp=8", min_nodes = 2, max_nodes = 4, tres_per_node = "gres/gpu:h100:8"}})
    run({{comment = "meshctx:tp=8,dp=2", min_nodes = 2, max_nodes = 4, tres_per_node = "gres/gpu:8"}})
    run({{comment = "meshctx:tp=eight,nproc=8", min_nodes = 2, max_nodes = NO_VAL}})
    run({{comment = "meshctx:tp=8", min_nodes = NO_VAL, max_nodes = NO_VAL}})
    """
    lines = run_lua(program)
    assert lines[0].startswith("0")
    assert lines[1].startswith("0")
    assert lines[2].startswith("-1") and "3 nodes x 8 processes" in lines[2]
    assert lines[3].startswith("-1") and "tp must be an integer" in lines[3]
    assert lines[4].startswith("0")  # no node count to check against


def cli_filter_run(options: str) -> list[str]:
    cli = f"{sys.executable} -m meshctx.cli"
    env = os.environ | {"MESHCTX_CLI": cli, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'service'}"}
    program = f"""
    dofile({lua_string(str(SLURM / "cli_filter.lua"))})
    local rc = slurm_cli_pre_submit({options}, 0)
    print("RC=" .. rc)
    print(table.concat(slurm.messages, "\\n"))
    """
    return run_lua(program, env=env)


def test_cli_filter_runs_meshctx_validate_and_refuses_with_its_report() -> None:
    good = cli_filter_run('{type = "sbatch", nodes = "4", ["gpus-per-node"] = "8", comment = "meshctx:tp=8,pp=2"}')
    assert good[0] == "RC=0"
    bad = cli_filter_run(
        '{type = "sbatch", nodes = "2-3", ["gpus-per-node"] = "h100:8", comment = "meshctx:tp=8,dp=2"}'
    )
    assert bad[0] == "RC=-1"
    report = "\n".join(bad)
    assert "meshctx refused" in report and "elastic_range_invalid" in report and "hint" in report


def test_cli_filter_ignores_other_jobs_and_refuses_shell_metacharacters() -> None:
    assert cli_filter_run('{type = "sbatch", nodes = "2", comment = "nightly"}')[0] == "RC=0"
    hostile = cli_filter_run('{type = "sbatch", nodes = "2;rm -rf ~", comment = "meshctx:tp=8,nproc=8"}')
    assert hostile[0] == "RC=-1" and "unsafe value" in hostile[1]
