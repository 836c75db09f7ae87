"""``meshctx serve`` start-up, run for real in a subprocess: where the embedded registry lives when the home
cannot be created, and the token file in both documented formats. A setting the service cannot start with is
exit 2 with a message naming the setting (and the file and line), never a traceback."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import REPO, LiveServer, free_port, service_env, start_server, wait_ready

#: A home that can never be created: /proc refuses new directories.
NO_HOME = "/proc/meshctx-no-such-home"


def _env_without_data_dir(**extra: str) -> dict[str, str]:
    env = service_env(HOME=NO_HOME, **extra)
    for name in ("MESHCTX_DATA_DIR", "XDG_DATA_HOME", "STATE_DIRECTORY"):
        if name not in extra:
            env.pop(name, None)
    return env


def _serve_fails(env: dict[str, str]) -> str:
    """Run ``meshctx serve``; assert it exits 2 without a traceback and return what it printed."""
    command = [sys.executable, "-m", "meshctx.cli", "serve", "--port", str(free_port())]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert output.startswith("meshctx serve: error: invalid settings:"), output
    return output


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def _start(servers: list[LiveServer], tmp_path: Path, **env: str) -> LiveServer:
    server = start_server(tmp_path, **env)
    servers.append(server)
    return server


def test_data_dir_setting_serves_when_the_home_cannot_be_created(tmp_path: Path, servers: list[LiveServer]) -> None:
    data = tmp_path / "registry"
    server = _start(servers, tmp_path, HOME=NO_HOME, MESHCTX_DATA_DIR=str(data))
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
    assert (data / "meshctx.db").is_file()
    assert not Path(NO_HOME).exists()


def test_without_a_home_the_systemd_state_directory_is_used(tmp_path: Path, servers: list[LiveServer]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    port, log = free_port(), tmp_path / "state.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshctx.cli", "serve", "--port", str(port)],
            cwd=REPO,
            env=_env_without_data_dir(STATE_DIRECTORY=str(state)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    servers.append(server := LiveServer(process, f"http://127.0.0.1:{port}", log))
    wait_ready(server)
    assert (state / "meshctx.db").is_file()


def test_nothing_writable_is_exit_2_naming_the_setting() -> None:
    output = _serve_fails(_env_without_data_dir())
    assert "no writable directory for the embedded registry" in output
    assert f"{NO_HOME}/.local/share/meshctx" in output and "set MESHCTX_DATA_DIR" in output


def test_an_unusable_data_dir_setting_is_exit_2_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    output = _serve_fails(_env_without_data_dir(MESHCTX_DATA_DIR=str(blocker / "db")))
    assert f"MESHCTX_DATA_DIR {blocker / 'db'}:" in output


def test_one_token_per_line_file_is_served(tmp_path: Path, servers: list[LiveServer]) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# operators\nfirst-long-random-token\n\nsecond-long-random-token==\n")
    server = _start(servers, tmp_path, MESHCTX_TOKENS_FILE=str(tokens), MESHCTX_HOST="127.0.0.1")
    cluster = {"nodes": 4, "gpus_per_node": 8}
    assert httpx.put(f"{server.url}/v1/clusters/pool", json=cluster).status_code == 401
    for token in ("first-long-random-token", "second-long-random-token=="):
        answer = httpx.put(f"{server.url}/v1/clusters/pool", json=cluster, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code in (200, 201), answer.text  # the admin role: clusters may be written
    listed = httpx.get(f"{server.url}/v1/clusters", headers={"Authorization": "Bearer second-long-random-token=="})
    assert [c["name"] for c in listed.json()["items"]] == ["pool"]  # both tokens: the one tenant "default"


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        ("good-token\nnot a token\n", ["line 2: not a token", "one per line"]),
        ("replace-me-with-a-long-random-token\n", ["line 1: still the placeholder token"]),
        # the placeholder in the mapping format the shipped Secret uses, and as its digest
        ("replace-me-with-a-long-random-token: {tenant: default, role: write}\n", ["line 1: still the placeholder"]),
        (
            "sha256:" + hashlib.sha256(b"replace-me-with-a-long-random-token").hexdigest() + "\n",
            ["line 1: still the placeholder token"],
        ),
        ("x\n", ["line 1: a token must have at least 16 characters"]),
        ("x: {tenant: a, role: write}\n", ["line 1: a token must have at least 16 characters"]),
        ("tok: {tenant: a, role: write}\nbad: {tenant: b, role: owner}\n", ["line 2: 'role' must be read"]),
        ("tok: {tenant: a, role: write}\nbad: {tenant: b\n", ["line 3: not a valid YAML mapping"]),
        ("# only a comment\n", ["no tokens in the file"]),
    ],
)
def test_bad_token_file_is_exit_2_naming_file_and_line(tmp_path: Path, text: str, phrases: list[str]) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(text)
    output = _serve_fails(service_env(MESHCTX_TOKENS_FILE=str(tokens), MESHCTX_DATA_DIR=str(tmp_path / "data")))
    assert f"MESHCTX_TOKENS_FILE: {tokens}" in output
    for phrase in phrases:
        assert phrase in output
    assert "good-token" not in output and "tok:" not in output  # never the tokens themselves


def test_a_token_file_others_may_write_is_exit_2(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("first-long-random-token\n")
    for mode, who in ((0o666, "writable by others"), (0o664, "writable by its group")):
        tokens.chmod(mode)
        output = _serve_fails(service_env(MESHCTX_TOKENS_FILE=str(tokens), MESHCTX_DATA_DIR=str(tmp_path / "data")))
        assert who in output and "chmod go-w" in output


def test_unreadable_token_file_is_exit_2(tmp_path: Path) -> None:
    output = _serve_fails(service_env(MESHCTX_TOKENS_FILE=str(tmp_path / "missing"), MESHCTX_DATA_DIR=str(tmp_path)))
    assert "Cannot read token file" in output and "No such file or directory" in output


#: Start-up and the first registry requests, in one process: SQLAlchemy loaded or not after each.
FIRST_USE = """
import sys
from fastapi.testclient import TestClient
from meshctx_service.app import create_app
from meshctx_service.settings import Settings

with TestClient(create_app(Settings(data_dir={data!r}))) as client:
    print("readyz", client.get("/readyz").status_code, "sqlalchemy" in sys.modules)
    print("clusters", client.get("/v1/clusters").status_code, "sqlalchemy" in sys.modules)
    print("jobs", client.get("/v1/jobs").status_code)
"""


def test_ready_without_sqlalchemy_which_the_first_registry_request_loads(tmp_path: Path) -> None:
    """Start-up checks (or creates) the SQLite schema with sqlite3 alone and says ready; the registry, with
    SQLAlchemy, opens on its first request — on a fresh database and on the same one at the newest revision."""
    program = FIRST_USE.format(data=str(tmp_path / "data"))
    for database in ("fresh", "migrated"):
        done = subprocess.run(
            [sys.executable, "-c", program], cwd=REPO, env=service_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["readyz 200 False", "clusters 200 True", "jobs 200"], database
