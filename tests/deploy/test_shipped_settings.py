"""The shipped deployments start as shipped: the real ``meshctx serve`` with the exact settings read from
deploy/ (the image's ENV and VOLUME, the Kubernetes ConfigMap and Secrets, the systemd unit), a HOME that
cannot be created (the image's user has none, the pod's root filesystem is read-only, the unit has
ProtectHome), answering ``/readyz``. Absolute paths from the files are re-rooted under a temporary
directory, which stands for the container's or the host's filesystem; nothing else is changed, except the
listening address (127.0.0.1 and a free port) and the placeholder database URL (a throwaway PostgreSQL).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.postgres import drop_database, fresh_database

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NO_HOME = "/proc/meshctx-no-home/home"  # mkdir fails here even as root


# ---------------------------------------------------------------------------------------------- the files
def dockerfile_runtime_stage() -> list[str]:
    """The last stage's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in dockerfile_runtime_stage():
        if line.upper().startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def dockerfile_volumes() -> list[str]:
    return [
        volume
        for line in dockerfile_runtime_stage()
        if line.upper().startswith("VOLUME ")
        for volume in json.loads(line[len("VOLUME ") :])
    ]


def k8s_documents() -> dict[tuple[str, str], dict[str, Any]]:
    docs = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc.get("metadata", {}).get("name", ""))] = doc
    return docs


def systemd_service() -> dict[str, list[str]]:
    """[Service] key -> every value, in order (Environment= repeats)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in (DEPLOY / "systemd" / "meshctx.service").read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    return entries


def systemd_env() -> dict[str, str]:
    env = {}
    for value in systemd_service().get("Environment", []):
        for pair in shlex.split(value):
            key, _, item = pair.partition("=")
            env[key] = item
    return env


# ---------------------------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def meshctx_cli() -> list[str]:
    script = Path(sys.executable).parent / "meshctx"
    return [str(script)] if script.exists() else [sys.executable, "-m", "meshctx.cli"]


class Served:
    def __init__(self, process: subprocess.Popen[str], base: str, context: ssl.SSLContext | None) -> None:
        self.process, self.base, self.context = process, base, context

    def get(self, path: str, token: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5, context=self.context) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def serve(settings: dict[str, str], *, cafile: Path | None = None, timeout: float = 90) -> Iterator[Served]:
    """``meshctx serve`` with exactly ``settings`` (plus PATH, HOME and the listening address) until /readyz."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": NO_HOME, "LANG": "C.UTF-8"}
    env |= settings | {"MESHCTX_HOST": "127.0.0.1", "MESHCTX_PORT": str(port)}
    scheme = "https" if settings.get("MESHCTX_TLS_CERT_FILE") else "http"
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    process = subprocess.Popen(
        [*meshctx_cli(), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    served = Served(process, f"{scheme}://127.0.0.1:{port}", context)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"meshctx serve exited {process.returncode} with the shipped settings:\n{output[-4000:]}")
            try:
                status, _ = served.get("/readyz")
                if status == 200:
                    break
            except (OSError, ssl.SSLError):
                pass
            assert time.monotonic() < deadline, "meshctx serve did not answer /readyz"
            time.sleep(0.2)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reroot(root: Path, path: str) -> Path:
    assert path.startswith("/"), path
    return root / path.lstrip("/")


# ---------------------------------------------------------------------------------------------- the image
def test_image_declares_its_data_volume_and_serves_without_a_home(tmp_path: Path) -> None:
    env = dockerfile_env()
    data_dir = env.get("MESHCTX_DATA_DIR")
    assert data_dir, "the image must set MESHCTX_DATA_DIR: its user has no home"
    assert data_dir in dockerfile_volumes(), "MESHCTX_DATA_DIR must be a declared VOLUME (writable, kept)"
    runs = " ".join(line for line in dockerfile_runtime_stage() if line.upper().startswith("RUN "))
    user = next(line.split()[1] for line in reversed(dockerfile_runtime_stage()) if line.upper().startswith("USER "))
    assert f"mkdir -p {data_dir}" in runs and f"chown {user} {data_dir}" in runs, "the volume must belong to USER"

    settings = {k: v for k, v in env.items() if k.startswith("MESHCTX_")}
    settings["MESHCTX_DATA_DIR"] = str(reroot(tmp_path, data_dir))
    reroot(tmp_path, data_dir).mkdir(parents=True)  # what the RUN line does in the image
    for served in serve(settings):
        assert served.get("/livez")[0] == 200
    assert (reroot(tmp_path, data_dir) / "meshctx.db").is_file()  # the registry went to the volume


# ---------------------------------------------------------------------------------------------- systemd
def test_systemd_unit_wires_its_state_directory_to_the_data_dir(tmp_path: Path) -> None:
    service = systemd_service()
    env = systemd_env()
    (state,) = service["StateDirectory"]
    assert env.get("MESHCTX_DATA_DIR") == f"/var/lib/{state}", "StateDirectory= must be MESHCTX_DATA_DIR"
    assert service["ProtectSystem"] == ["strict"] and service["ProtectHome"] == ["yes"]

    settings = {k: v for k, v in env.items() if k.startswith("MESHCTX_")}
    data_dir = reroot(tmp_path, settings["MESHCTX_DATA_DIR"])
    data_dir.mkdir(parents=True)  # systemd creates StateDirectory before ExecStart
    settings["MESHCTX_DATA_DIR"] = str(data_dir)
    tokens = reroot(tmp_path, settings["MESHCTX_TOKENS_FILE"])
    tokens.parent.mkdir(parents=True)
    example = k8s_documents()[("Secret", "meshctx-tokens")]["stringData"]
    (text,) = example.values()
    tokens.write_text(text)  # the format the docs give for /etc/meshctx/tokens (the Secret's example)
    settings["MESHCTX_TOKENS_FILE"] = str(tokens)
    _refused_with_the_placeholder(settings)
    text = _replace_placeholder(text)  # what the admin does before starting it
    tokens.write_text(text)
    for served in serve(settings):
        token = next(iter(yaml.safe_load(text)))
        assert served.get("/v1/clusters", token)[0] == 200
        assert served.get("/v1/clusters", "not-a-configured-token")[0] == 401
    assert (data_dir / "meshctx.db").is_file()


# ---------------------------------------------------------------------------------------------- Kubernetes
@pytest.fixture(scope="module")
def postgres_url(postgres_admin_url: str | None) -> Iterator[str]:
    """A fresh database on the run's one PostgreSQL server (``tests/support/postgres.py``)."""
    if postgres_admin_url is None:
        pytest.skip("NO POSTGRESQL SERVER for the Kubernetes settings (apt-get install postgresql; see the warning)")
    url = fresh_database(postgres_admin_url)
    try:
        yield url
    finally:
        drop_database(postgres_admin_url, url)


def _self_signed(directory: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("NO OPENSSL: cannot make the serving certificate cert-manager would mount")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=meshctx.meshctx.svc", "-addext", "subjectAltName=DNS:meshctx.meshctx.svc,IP:127.0.0.1",
         "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def test_kubernetes_deployment_serves_with_its_configmap_secrets_and_mounts(tmp_path: Path, postgres_url: str) -> None:
    docs = k8s_documents()
    deployment = docs[("Deployment", "meshctx")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}

    settings: dict[str, str] = {}
    for source in container.get("envFrom", []):
        settings |= docs[("ConfigMap", source["configMapRef"]["name"])]["data"]
    for item in container.get("env", []):
        ref = item["valueFrom"]["secretKeyRef"]
        secret = docs[("Secret", ref["name"])]
        assert ref["key"] in secret["stringData"], f"{item['name']}: the Secret has no key {ref['key']}"
        settings[item["name"]] = secret["stringData"][ref["key"]]
    # Several replicas: the registry must be a shared database, not an SQLite file per pod.
    assert settings.get("MESHCTX_DATABASE_URL", "").startswith("postgresql"), "replicas need a shared registry"
    assert deployment["spec"]["replicas"] >= 2
    settings["MESHCTX_DATABASE_URL"] = postgres_url  # the placeholder host -> a real server

    # Every file a setting names must come from a mounted volume; materialize them from the manifests.
    for key, value in list(settings.items()):
        if not key.endswith("_FILE"):
            continue
        mount = next((m for m in mounts if value.startswith(m.rstrip("/") + "/")), None)
        assert mount is not None, f"{key}={value} is on the read-only root filesystem, not on a mounted volume"
        directory = reroot(tmp_path, mount)
        directory.mkdir(parents=True, exist_ok=True)
        name = mounts[mount]["secret"]["secretName"]
        if ("Secret", name) in docs:
            for file, text in docs[("Secret", name)]["stringData"].items():
                (directory / file).write_text(text)
        else:  # cert-manager's Certificate writes this Secret: tls.crt, tls.key
            assert docs[("Certificate", "meshctx-webhook")]["spec"]["secretName"] == name
            _self_signed(directory)
        assert (reroot(tmp_path, value)).is_file(), f"{key}={value} is not a key of the Secret mounted there"
        settings[key] = str(reroot(tmp_path, value))
    assert "/tmp" in mounts and "emptyDir" in mounts["/tmp"], "Python's scratch needs a writable /tmp"

    tokens_file = Path(settings["MESHCTX_TOKENS_FILE"])
    _refused_with_the_placeholder(settings)
    tokens_file.write_text(_replace_placeholder(tokens_file.read_text()))  # what the admin does before applying it
    tokens = yaml.safe_load(tokens_file.read_text())
    for served in serve(settings, cafile=Path(settings["MESHCTX_TLS_CERT_FILE"])):
        assert served.base.startswith("https://")
        assert served.get("/v1/clusters", next(iter(tokens)))[0] == 200


# ---------------------------------------------------------------------------------------------- token files
PLACEHOLDER = "replace-me-with-a-long-random-token"


def _replace_placeholder(text: str) -> str:
    assert PLACEHOLDER in text, "the shipped token example no longer names the placeholder"
    return text.replace(PLACEHOLDER, secrets.token_hex(32))


def _refused_with_the_placeholder(settings: dict[str, str]) -> None:
    """The shipped tokens as they are must stop serve (exit 2, naming the placeholder), never grant access."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": NO_HOME, **settings, "MESHCTX_PORT": str(free_port())}
    done = subprocess.run([*meshctx_cli(), "serve"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "placeholder" in done.stderr and settings["MESHCTX_TOKENS_FILE"] in done.stderr, done.stderr[-2000:]


def test_a_broken_token_file_stops_serve_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token-of-many-chars: {tenant: team-a, role: emperor}\n")  # no such role
    env = {"PATH": os.environ.get("PATH", ""), "HOME": NO_HOME, "MESHCTX_DATA_DIR": str(tmp_path / "data")}
    env |= {"MESHCTX_TOKENS_FILE": str(tokens), "MESHCTX_PORT": str(free_port())}
    done = subprocess.run([*meshctx_cli(), "serve"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.returncode
    assert str(tokens) in done.stderr and "line 1" in done.stderr and "emperor" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
