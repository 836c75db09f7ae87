"""``meshctx serve`` over HTTPS (``MESHCTX_TLS_CERT_FILE``/``MESHCTX_TLS_KEY_FILE``), as the Kubernetes
API server calls the webhook: a self-signed certificate made here with openssl, a real uvicorn server."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.test_admission import admission_review, trainjob
from tests.support.servers import STARTUP_TIMEOUT_S, LiveServer, free_port, service_env, start_server

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "tls.crt", tmp / "tls.key"
    subject = ["-days", "1", "-subj", "/CN=meshctx.test", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", *subject, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def https_server(certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    cert, key = certificate
    server = start_server(
        tmp_path_factory.mktemp("https"), wait=False, MESHCTX_TLS_CERT_FILE=str(cert), MESHCTX_TLS_KEY_FILE=str(key)
    )
    server.url = server.url.replace("http://", "https://")
    trust = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.stop()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", verify=trust, timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                pytest.fail(f"HTTPS server not ready:\n{server.stop()[-3000:]}")
            time.sleep(0.05)
    yield server
    server.stop()


def test_webhook_answers_over_https_with_the_configured_certificate(
    https_server: LiveServer, certificate: tuple[Path, Path]
) -> None:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    review = admission_review(trainjob({"meshctx.io/tp-size": "3"}))
    with httpx.Client(base_url=https_server.url, verify=trust, timeout=10.0) as client:
        answer = client.post("/v1/admission/kubernetes", json=review)
    assert answer.status_code == 200 and answer.url.scheme == "https"
    assert answer.json()["response"]["allowed"] is False
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https_server.url}/livez", timeout=5.0)  # self-signed: untrusted by the system store


def test_plain_http_gets_no_answer_from_the_https_port(https_server: LiveServer) -> None:
    plain = https_server.url.replace("https://", "http://")
    try:
        status = httpx.get(f"{plain}/livez", timeout=5.0).status_code
    except httpx.TransportError:
        status = None
    assert status != 200


def serve(*env: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "serve", "--port", str(free_port())],
        env=service_env(**dict(env)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_half_or_missing_tls_settings_are_usage_errors(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    key_only = serve(("MESHCTX_TLS_KEY_FILE", str(certificate[1])))
    assert key_only.returncode == 2 and "MESHCTX_TLS_KEY_FILE is set without MESHCTX_TLS_CERT_FILE" in key_only.stderr
    missing = serve(("MESHCTX_TLS_CERT_FILE", str(tmp_path / "absent.crt")))
    assert missing.returncode == 2 and "absent.crt" in missing.stderr
    assert "Traceback" not in key_only.stderr + missing.stderr


def healthcheck_argv() -> list[str]:
    """The ``HEALTHCHECK ... CMD [...]`` of the image, as Docker runs it."""
    text = (REPO / "deploy" / "Dockerfile").read_text()
    line = next(line for line in text.splitlines() if line.strip().startswith('CMD ["python"'))
    return list(json.loads(line.strip().removeprefix("CMD ")))


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_image_healthcheck_works_with_and_without_tls(
    scheme: str, https_server: LiveServer, integration_server: LiveServer, certificate: tuple[Path, Path]
) -> None:
    server = https_server if scheme == "https" else integration_server
    env = service_env(MESHCTX_PORT=server.url.rsplit(":", 1)[1])
    env.pop("MESHCTX_TLS_CERT_FILE", None)
    if scheme == "https":
        env["MESHCTX_TLS_CERT_FILE"] = str(certificate[0])
    argv = healthcheck_argv()
    assert argv[0] == "python"
    done = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------------------- certificate renewal
def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _signed_pair(tmp: Path, ca: str) -> tuple[Path, Path, Path]:
    """A CA named ``ca`` and a server certificate for 127.0.0.1 it signed: (CA certificate, certificate, key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_crt, ca_key = tmp / f"{ca}.crt", tmp / f"{ca}.key"
    _openssl("req", "-x509", *ec, "-days", "1", "-subj", f"/CN={ca}", "-keyout", str(ca_key), "-out", str(ca_crt))
    csr, key, crt = tmp / f"{ca}-server.csr", tmp / f"{ca}-server.key", tmp / f"{ca}-server.crt"
    _openssl("req", *ec, "-subj", "/CN=meshctx.test", "-keyout", str(key), "-out", str(csr))
    extensions = tmp / f"{ca}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "1", "-out", str(crt), "-extfile", str(extensions),
    )  # fmt: skip
    return ca_crt, crt, key


def _kubelet_swap(mount: Path, crt: Path, key: Path, version: str) -> None:
    """What the kubelet does to a mounted Secret: a new timestamped directory, then ``..data`` renamed onto it."""
    directory = mount / f"..{version}"
    directory.mkdir()
    shutil.copy(crt, directory / "tls.crt")
    shutil.copy(key, directory / "tls.key")
    (mount / "..data_tmp").symlink_to(directory.name)
    (mount / "..data_tmp").rename(mount / "..data")


def _answers(url: str, ca: Path) -> bool:
    try:
        return (
            httpx.get(f"{url}/livez", verify=ssl.create_default_context(cafile=str(ca)), timeout=5).status_code == 200
        )
    except httpx.TransportError:
        return False


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    """cert-manager renews the certificate under a new CA and the kubelet swaps the Secret's ``..data`` symlink:
    the running server serves the new pair (clients trusting only the new CA get through, the old CA's do not)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    first_ca, first_crt, first_key = _signed_pair(tmp_path, "ca-one")
    second_ca, second_crt, second_key = _signed_pair(tmp_path, "ca-two")
    mount = tmp_path / "secret"
    mount.mkdir()
    _kubelet_swap(mount, first_crt, first_key, "2026_01_01")
    for name in ("tls.crt", "tls.key"):
        (mount / name).symlink_to(f"..data/{name}")
    server = start_server(
        tmp_path, wait=False, MESHCTX_TLS_CERT_FILE=str(mount / "tls.crt"), MESHCTX_TLS_KEY_FILE=str(mount / "tls.key")
    )
    url = server.url.replace("http://", "https://")
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _answers(url, first_ca):
            assert server.process.poll() is None and time.monotonic() < deadline, server.stop()[-3000:]
            time.sleep(0.1)
        assert not _answers(url, second_ca)
        _kubelet_swap(mount, second_crt, second_key, "2026_02_01")
        deadline = time.monotonic() + 30
        while not _answers(url, second_ca):
            assert time.monotonic() < deadline, "the renewed certificate was never served"
            time.sleep(0.2)
        assert not _answers(url, first_ca)
    finally:
        log = server.stop()
    assert "TLS certificate reloaded" in log
