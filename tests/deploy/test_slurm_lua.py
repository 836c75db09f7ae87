"""The Slurm Lua scripts run by real Lua interpreters (5.1, which Debian's Slurm links, and 5.4 when installed)
with a stubbed ``slurm`` table, fed the values Slurm 22.05 really hands them (tests/slurm checks the same
scripts inside a real cluster).

job_submit.lua must agree with the meshctx planner on every case of a grid without touching io/os per job;
cli_filter.lua runs the real ``meshctx validate`` CLI; both read the job through the one meshctx_job.lua.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshctx.config import ParallelismSizes as P
from meshctx.plan import validate_topology

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "deploy" / "slurm"
LUAS = sorted({os.path.realpath(p) for n in ("lua5.1", "lua5.4", "lua5.3", "lua", "luajit") if (p := shutil.which(n))})
pytestmark = pytest.mark.skipif(
    not LUAS, reason="NO LUA INTERPRETER: install one (apt-get install lua5.1) to test deploy/slurm/*.lua"
)
NO_VAL, NO_VAL16 = 4294967294, 65534


@pytest.fixture(params=LUAS or ["none"], ids=lambda p: Path(p).name)
def lua(request: pytest.FixtureRequest) -> str:
    return str(request.param)


STUB = """
NO_VAL, NO_VAL16 = 4294967294, 65534
slurm = {SUCCESS = 0, ERROR = -1, NO_VAL = NO_VAL, NO_VAL64 = 18446744073709551614, messages = {}}
local function logger(fmt, ...) table.insert(slurm.messages, string.format(fmt, ...)) end
slurm.log_user, slurm.log_error, slurm.log_info, slurm.log_debug = logger, logger, logger, logger
"""


def run_lua(lua: str, program: str, *, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [lua, "-"], input=STUB + program, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


STRATEGIES = ("fsdp2", "megatron_fsdp", "ddp")
GRID = list(itertools.product(STRATEGIES, (1, 2, 3, 8), (1, 2), (1, 2), (1, 4), (None, 2, 4), (None, 2), (1, 2, 3)))


def test_job_submit_agrees_with_the_planner_without_io_or_os_per_job(lua: str) -> None:
    cases = []
    for strategy, tp, pp, cp, ep, dp, rep, nodes in GRID:
        fields = [f"strategy={strategy}", f"tp={tp}", f"pp={pp}", f"cp={cp}", f"ep={ep}", "nproc=8"]
        fields += [f"dp={dp}"] if dp else []
        fields += [f"dp_replicate={rep}"] if rep else []
        cases.append(f'{{comment = "meshctx:{",".join(fields)}", min_nodes = {nodes}, max_nodes = {nodes}}}')
    program = f"""
    dofile({lua_string(str(SLURM / "job_submit.lua"))})  -- loading reads meshctx_job.lua once, as in slurmctld
    local real_io = io
    io, os, require, dofile, loadfile = nil, nil, nil, nil, nil  -- what slurmctld must never need per job
    local cases = {{ {", ".join(cases)} }}
    for i, job in ipairs(cases) do
      slurm.messages = {{}}
      real_io.write(slurm_job_submit(job, {{}}, 1000), "\\t", slurm.messages[1] or "", "\\n")
    end
    """
    lines = run_lua(lua, program)
    assert len(lines) == len(GRID)
    for (strategy, tp, pp, cp, ep, dp, rep, nodes), line in zip(GRID, lines, strict=True):
        code, _, message = line.partition("\t")
        sizes = P(tp_size=tp, pp_size=pp, cp_size=cp, ep_size=ep, dp_size=dp, dp_replicate_size=rep)
        valid = validate_topology(strategy, sizes, nnodes=nodes, nproc_per_node=8).valid
        assert (code == "0") == valid, (strategy, sizes, nodes, message)
        assert valid or message.startswith("meshctx: ")


# (job_desc fields as Slurm 22.05 hands them, verdict, a phrase of the message). Unset counts are NO_VAL /
# NO_VAL16 exactly as slurmctld passes them; GRES strings are "gres:gpu:N" (22.05) or "gres/gpu:N" (newer).
SUBMIT_CASES = [
    ('comment = "nightly run", min_nodes = 3, max_nodes = NO_VAL', 0, ""),
    # --nodes not given: Slurm's default of one node is checked, not skipped
    (
        f'comment = "meshctx:tp=3", min_nodes = NO_VAL, max_nodes = NO_VAL, tres_per_node = "gres:gpu:8",'
        f" ntasks_per_node = {NO_VAL16}, num_tasks = NO_VAL",
        -1,
        "1 nodes x 8 processes",
    ),
    ('comment = "meshctx:tp=8", min_nodes = NO_VAL, max_nodes = NO_VAL, tres_per_node = "gres:gpu:8"', 0, ""),
    # ranges: every count is checked
    ('comment = "meshctx:tp=8", min_nodes = 2, max_nodes = 4, tres_per_node = "gres/gpu:h100:8"', 0, ""),
    (
        'comment = "meshctx:tp=8,dp=2", min_nodes = 2, max_nodes = 4, tres_per_node = "gres:gpu:8"',
        -1,
        "3 nodes x 8 processes",
    ),
    # --gres=gpu:N among other GRES
    (
        'comment = "meshctx:tp=3", min_nodes = 2, max_nodes = 2, tres_per_node = "gres:nic:1,gres:gpu:h100:2"',
        -1,
        "2 nodes x 2 processes",
    ),
    # --gpus=N (the job's total): the world is N ranks
    ('comment = "meshctx:tp=8", min_nodes = 2, max_nodes = 2, tres_per_job = "gres:gpu:16"', 0, ""),
    ('comment = "meshctx:tp=8", min_nodes = NO_VAL, max_nodes = NO_VAL, tres_per_job = "gres:gpu:12"', -1, "12 ranks"),
    # --ntasks-per-node above 1: each task is a rank (beats the GPU count); the comment's nproc beats both
    (
        'comment = "meshctx:tp=8", min_nodes = 1, max_nodes = 1, ntasks_per_node = 4, tres_per_node = "gres:gpu:8"',
        -1,
        "1 nodes x 4 processes",
    ),
    ('comment = "meshctx:tp=8,nproc=8", min_nodes = 1, max_nodes = 1, ntasks_per_node = 4', 0, ""),
    # --ntasks with --ntasks-per-node and no --nodes: Slurm derives the node count
    (
        'comment = "meshctx:tp=4,dp=4", min_nodes = NO_VAL, max_nodes = NO_VAL, num_tasks = 16, ntasks_per_node = 4',
        0,
        "",
    ),
    (
        'comment = "meshctx:tp=4,dp=2", min_nodes = NO_VAL, max_nodes = NO_VAL, num_tasks = 16, ntasks_per_node = 4',
        -1,
        "4 nodes x 4 processes",
    ),
    # unreadable comments are refused, naming the key
    ('comment = "meshctx:tp=eight,nproc=8", min_nodes = 2, max_nodes = NO_VAL', -1, "tp in the job's comment"),
    ('comment = "meshctx:tpp=8,nproc=8", min_nodes = 2, max_nodes = NO_VAL', -1, "unknown key tpp"),
    ('comment = "meshctx:strategy=zero3,nproc=8", min_nodes = 2', -1, "unknown strategy zero3"),
    # sizes but no process count anywhere: refused with the fix
    ('comment = "meshctx:tp=8", min_nodes = 2, max_nodes = 2', -1, "add nproc=N"),
    # more processes per node than GPUs per node (-N1 --gpus-per-node=4, nproc=8): each process drives one GPU
    (
        'comment = "meshctx:tp=8,nproc=8", min_nodes = 1, max_nodes = 1, tres_per_node = "gres:gpu:4"',
        -1,
        "8 processes per node on 4 GPUs per node",
    ),
    (
        'comment = "meshctx:tp=4", min_nodes = 1, max_nodes = 1, ntasks_per_node = 8, tres_per_node = "gres/gpu:4"',
        -1,
        "8 processes per node on 4 GPUs per node",
    ),
    ('comment = "meshctx:tp=4,nproc=4", min_nodes = 2, max_nodes = 2, tres_per_node = "gres:gpu:8"', 0, ""),
]


def test_job_submit_reads_every_way_users_ask_for_nodes_and_gpus(lua: str) -> None:
    runs = "\n".join(f"run({{{fields}}})" for fields, _, _ in SUBMIT_CASES)
    program = f"""
    dofile({lua_string(str(SLURM / "job_submit.lua"))})
    local function run(job)
      slurm.messages = {{}}
      print(slurm_job_submit(job, {{}}, 1000) .. "\\t" .. (slurm.messages[1] or ""))
    end
    {runs}
    """
    lines = run_lua(lua, program)
    assert len(lines) == len(SUBMIT_CASES)
    for (fields, verdict, phrase), line in zip(SUBMIT_CASES, lines, strict=True):
        code, _, message = line.partition("\t")
        assert int(code) == verdict, (fields, message)
        assert phrase in message, (fields, message)


def test_job_modify_rechecks_the_job_as_the_update_would_leave_it(lua: str) -> None:
    # job_ptr is the stored job (22.05 keeps "nodes not given" as min 1, max 0); job_desc holds only the change.
    stored = 'comment = "meshctx:tp=8", min_nodes = 1, max_nodes = 0, tres_per_node = "gres:gpu:8"'
    unset = f"min_nodes = NO_VAL, max_nodes = NO_VAL, ntasks_per_node = {NO_VAL16}, num_tasks = NO_VAL"
    program = f"""
    dofile({lua_string(str(SLURM / "job_submit.lua"))})
    local function run(desc, ptr)
      slurm.messages = {{}}
      print(slurm_job_modify(desc, ptr, {{}}, 0) .. "\\t" .. (slurm.messages[1] or ""))
    end
    run({{comment = "meshctx:tp=3", {unset}}}, {{{stored}}})             -- a bad comment
    run({{comment = "meshctx:tp=4", {unset}}}, {{{stored}}})             -- a good one
    run({{min_nodes = 3, max_nodes = NO_VAL}}, {{comment = "meshctx:tp=8,dp=2", min_nodes = 2, max_nodes = 2,
        tres_per_node = "gres:gpu:8"}})                                  -- NumNodes=3 breaks dp=2
    run({{comment = "meshctx:tp=8,dp=2", min_nodes = 2, max_nodes = NO_VAL}}, {{{stored}}})  -- both at once
    run({{comment = "no longer a meshctx job", {unset}}}, {{{stored}}})
    run({{time_limit = 10, {unset}}}, {{comment = "meshctx:tp=3", min_nodes = 1, max_nodes = 0}})  -- untouched
    """
    lines = [line.partition("\t") for line in run_lua(lua, program)]
    assert [code for code, _, _ in lines] == ["-1", "0", "-1", "0", "0", "0"]
    assert "1 nodes x 8 processes" in lines[0][2]
    assert "3 nodes x 8 processes" in lines[2][2]


def test_both_scripts_read_the_job_through_the_one_meshctx_job_lua_next_to_them(lua: str, tmp_path: Path) -> None:
    """Slurm loads each script by path from the slurm.conf directory: each must load meshctx_job.lua from its
    own directory (no module path on the controller), and the comment parser must exist only there."""
    for name in ("job_submit.lua", "cli_filter.lua"):
        shutil.copy(SLURM / name, tmp_path / name)
    real = (SLURM / "meshctx_job.lua").read_text()
    (tmp_path / "meshctx_job.lua").write_text(
        real.replace(
            "return M\n",
            "M.loaded_from = 'tmp'\nPARSED = 0\nlocal parse = M.parse_comment\n"
            "function M.parse_comment(c) PARSED = PARSED + 1; return parse(c) end\nreturn M\n",
        )
    )
    program = f"""
    package.path = ""  -- nothing may come from a module search
    dofile({lua_string(str(tmp_path / "job_submit.lua"))})
    dofile({lua_string(str(tmp_path / "cli_filter.lua"))})
    slurm_job_submit({{comment = "meshctx:tp=8,nproc=8", min_nodes = 1, max_nodes = 1}}, {{}}, 0)
    print(PARSED)
    slurm_cli_pre_submit({{comment = "meshctx:tp=8,nproc=8", nodes = "1"}}, 0)
    print(PARSED)
    """
    assert run_lua(lua, program) == ["1", "2"]
    for name in ("job_submit.lua", "cli_filter.lua"):
        text = (SLURM / name).read_text()
        assert 'local HELPER = script_dir() .. "meshctx_job.lua"' in text and "pcall(dofile, HELPER)" in text
        assert "meshctx:(%S*)" not in text and "gmatch(spec" not in text, f"{name} has a comment parser of its own"


def cli_filter_run(lua: str, options: str, *, cli: str | None = None) -> list[str]:
    env = os.environ | {
        "MESHCTX_CLI": cli or f"{sys.executable} -m meshctx.cli",
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'service'}",
    }
    program = f"""
    dofile({lua_string(str(SLURM / "cli_filter.lua"))})
    local rc = slurm_cli_pre_submit({options}, 0)
    print("RC=" .. rc)
    print(table.concat(slurm.messages, "\\n"))
    """
    return run_lua(lua, program, env=env)


def test_cli_filter_runs_meshctx_validate_and_refuses_with_its_report(lua: str) -> None:
    good = cli_filter_run(lua, '{type = "sbatch", nodes = "4", ["gpus-per-node"] = "8", comment = "meshctx:tp=8,pp=2"}')
    assert good[0] == "RC=0", good
    bad = cli_filter_run(
        lua, '{type = "sbatch", nodes = "2-3", ["gpus-per-node"] = "h100:8", comment = "meshctx:tp=8,dp=2"}'
    )
    assert bad[0] == "RC=-1"
    report = "\n".join(bad)
    assert "meshctx refused" in report and "elastic_range_invalid" in report and "hint" in report


def test_cli_filter_reads_unset_nodes_gres_gpus_and_tasks_as_slurm_hands_them(lua: str) -> None:
    # 22.05 hands an unset --nodes as "1-0" and an unset --ntasks-per-node as "-2", --ntasks defaults to "1".
    base = 'type = "sbatch", ntasks = "1", ["ntasks-per-node"] = "-2"'
    cases = [
        (f'{base}, nodes = "1-0", ["gpus-per-node"] = "8", comment = "meshctx:tp=8"', "RC=0"),
        (f'{base}, nodes = "1-0", ["gpus-per-node"] = "8", comment = "meshctx:tp=3"', "RC=-1"),
        (f'{base}, nodes = "2", gres = "gres:gpu:4", comment = "meshctx:tp=8"', "RC=0"),
        (f'{base}, nodes = "2", gres = "gres:gpu:4", comment = "meshctx:tp=8,dp=2"', "RC=-1"),
        (f'{base}, nodes = "1-0", gpus = "16", comment = "meshctx:tp=8"', "RC=0"),
        (f'{base}, nodes = "1-0", gpus = "h100:12", comment = "meshctx:tp=8"', "RC=-1"),
        (
            'type = "srun", ntasks = "8", ["ntasks-per-node"] = "4", nodes = "1-0", comment = "meshctx:tp=4,dp=2"',
            "RC=0",
        ),
        ('type = "salloc", ntasks = "1", ["ntasks-per-node"] = "4", nodes = "1", comment = "meshctx:tp=3"', "RC=-1"),
    ]
    for options, expected in cases:
        lines = cli_filter_run(lua, "{" + options + "}")
        assert lines[0] == expected, (options, lines)
        assert "usage:" not in "\n".join(lines), (options, lines)


def test_cli_filter_lets_jobs_pass_when_the_cli_is_missing_or_broken(lua: str) -> None:
    options = '{type = "sbatch", nodes = "1", ["gpus-per-node"] = "8", comment = "meshctx:tp=3"}'
    for cli in ("/nonexistent/meshctx", f"{sys.executable} -c 'import meshctx_not_installed'", "false"):
        lines = cli_filter_run(lua, options, cli=cli)
        assert lines[0] == "RC=0", (cli, lines)
        assert "not checked here (job_submit.lua still checks it)" in lines[1], (cli, lines)
        assert "Traceback" not in "\n".join(lines)


def test_cli_filter_refuses_unreadable_comments_and_shell_metacharacters(lua: str) -> None:
    assert cli_filter_run(lua, '{type = "sbatch", nodes = "2", comment = "nightly"}')[0] == "RC=0"
    hostile = cli_filter_run(lua, '{type = "sbatch", nodes = "2;rm -rf ~", comment = "meshctx:tp=8,nproc=8"}')
    assert hostile[0] == "RC=-1" and "cannot read --nodes" in hostile[1]
    hostile = cli_filter_run(lua, '{type = "sbatch", nodes = "2", comment = "meshctx:tp=8;id,nproc=8"}')
    assert hostile[0] == "RC=-1" and "tp in the job's comment must be an integer" in hostile[1]
    no_count = cli_filter_run(lua, '{type = "sbatch", nodes = "2", comment = "meshctx:tp=8"}')
    assert no_count[0] == "RC=-1" and "add nproc=N" in no_count[1]


def test_cli_filter_refuses_more_processes_than_gpus_per_node_with_the_planners_report(lua: str) -> None:
    lines = cli_filter_run(
        lua, '{type = "sbatch", nodes = "1", ["gpus-per-node"] = "4", comment = "meshctx:tp=8,nproc=8"}'
    )
    assert lines[0] == "RC=-1", lines
    assert "nproc_exceeds_gpus_per_node" in "\n".join(lines)


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


BAD = '{type = "sbatch", nodes = "1", ["gpus-per-node"] = "8", comment = "meshctx:tp=3"}'
GOOD = '{type = "sbatch", nodes = "1", ["gpus-per-node"] = "8", comment = "meshctx:tp=8"}'


def test_cli_filter_runs_the_cli_only_for_jobs_the_rules_refuse(lua: str, tmp_path: Path) -> None:
    """A job that passes the shared rules costs no subprocess (the CLI start-up was 0.25-1 s per sbatch); a job
    that breaks them gets the CLI's report."""
    marker = tmp_path / "ran"
    cli = _script(tmp_path / "meshctx", f'echo "$@" >> {marker}\nexec {sys.executable} -m meshctx.cli "$@"\n')
    assert cli_filter_run(lua, GOOD, cli=cli)[0] == "RC=0"
    assert not marker.exists()
    refused = cli_filter_run(lua, BAD, cli=cli)
    assert refused[0] == "RC=-1" and "INVALID" in "\n".join(refused), refused
    assert marker.read_text().startswith("validate --strategy fsdp2 --nnodes 1 --nproc-per-node 8 --gpus-per-node 8")


def test_cli_filter_passes_a_usage_error_to_job_submit(lua: str, tmp_path: Path) -> None:
    """Exit 2 (argparse's usage error: an older CLI, a missing extra) is not a verdict: the job goes on to
    job_submit.lua, as the docs say, instead of being refused."""
    cli = _script(
        tmp_path / "meshctx", 'echo "usage: meshctx validate [-h]" >&2\necho "meshctx: error: no" >&2\nexit 2\n'
    )
    lines = cli_filter_run(lua, BAD, cli=cli)
    assert lines[0] == "RC=0", lines
    assert "exited with 2" in lines[1] and "not checked here (job_submit.lua still checks it)" in lines[1], lines


def test_cli_filter_gives_up_on_a_hung_cli_after_its_timeout(lua: str, tmp_path: Path) -> None:
    cli = _script(tmp_path / "meshctx", "sleep 60\n")
    env = os.environ | {"MESHCTX_CLI": cli, "MESHCTX_CLI_TIMEOUT": "1"}
    program = f"""
    dofile({lua_string(str(SLURM / "cli_filter.lua"))})
    print("RC=" .. slurm_cli_pre_submit({BAD}, 0))
    print(table.concat(slurm.messages, "\\n"))
    """
    started = time.monotonic()
    lines = run_lua(lua, program, env=env)
    assert time.monotonic() - started < 10
    assert lines[0] == "RC=0" and "took longer than 1 s (MESHCTX_CLI_TIMEOUT)" in lines[1], lines


# meshctx_job.lua as an admin might leave it: gone, half-written, failing, or another file.
BROKEN_HELPERS = {
    "missing": None,
    "syntax error": "local M = {\nfunction M.parse_comment(",
    "error when loaded": "error('disk full')\n",
    "not a module": "return 42\n",
    "an old version": "return { parse_comment = function() return {} end }\n",
}


@pytest.mark.parametrize("helper", BROKEN_HELPERS.values(), ids=BROKEN_HELPERS.keys())
def test_a_missing_or_broken_meshctx_job_lua_never_stops_slurm_and_never_opens_the_gate(
    lua: str, tmp_path: Path, helper: str | None
) -> None:
    """slurmctld exits when job_submit.lua fails to load (every sbatch on the cluster fails). Both scripts load
    their helper defensively: one log line; job_submit passes jobs that did not opt in and refuses those that did
    (it cannot check them); cli_filter lets every job on to job_submit."""
    for name in ("job_submit.lua", "cli_filter.lua"):
        shutil.copy(SLURM / name, tmp_path / name)
    if helper is not None:
        (tmp_path / "meshctx_job.lua").write_text(helper)
    program = f"""
    dofile({lua_string(str(tmp_path / "job_submit.lua"))})
    print(#slurm.messages, slurm.messages[1])
    local function run(fn, ...)
      slurm.messages = {{}}
      print(fn(...), slurm.messages[1] or "")
    end
    run(slurm_job_submit, {{comment = "nightly", min_nodes = 1, max_nodes = 1}}, {{}}, 0)
    run(slurm_job_submit, {{comment = "meshctx:tp=8", min_nodes = 1, max_nodes = 1, tres_per_node = "gres:gpu:8"}},
        {{}}, 0)
    run(slurm_job_modify, {{min_nodes = 2}}, {{comment = "meshctx:tp=8", job_id = 7}}, {{}}, 0)
    slurm.messages = {{}}
    dofile({lua_string(str(tmp_path / "cli_filter.lua"))})
    run(slurm_cli_pre_submit, {GOOD}, 0)
    """
    lines = [line.split("\t") for line in run_lua(lua, program)]
    assert lines[0][0] == "1" and "job_submit.lua cannot use" in lines[0][1], lines
    assert lines[1] == ["0", ""]
    assert lines[2][0] == "-1" and "this job cannot be checked" in lines[2][1], lines
    assert lines[3][0] == "-1" and "this job cannot be checked" in lines[3][1], lines
    assert lines[4][0] == "0" and "cli_filter.lua cannot use" in lines[4][1], lines
    assert "not checked here (job_submit.lua still checks it)" in lines[4][1]


def test_an_error_while_checking_one_job_refuses_that_job_in_job_submit_and_passes_it_in_cli_filter(
    lua: str, tmp_path: Path
) -> None:
    for name in ("job_submit.lua", "cli_filter.lua"):
        shutil.copy(SLURM / name, tmp_path / name)
    real = (SLURM / "meshctx_job.lua").read_text()
    (tmp_path / "meshctx_job.lua").write_text(
        real.replace("return M\n", "function M.verdict() error('a bug') end\nreturn M\n")
    )
    program = f"""
    dofile({lua_string(str(tmp_path / "job_submit.lua"))})
    dofile({lua_string(str(tmp_path / "cli_filter.lua"))})
    print(slurm_job_submit({{comment = "meshctx:tp=8,nproc=8", min_nodes = 1}}, {{}}, 0), #slurm.messages)
    print(slurm.messages[#slurm.messages])
    print(slurm_cli_pre_submit({GOOD}, 0), slurm.messages[#slurm.messages])
    """
    lines = run_lua(lua, program)
    assert lines[0] == "-1\t2"  # one line for the log, one for the user
    assert "could not be checked" in lines[1] and "a bug" in lines[1]
    assert lines[2].startswith("0\tmeshctx: cli_filter.lua failed") and "a bug" in lines[2]
