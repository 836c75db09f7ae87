"""The HTTP limits ``meshctx serve`` adds to uvicorn's protocol (``http/protocol.py``), on a real server: a huge
request head is a quick 431 while ``/livez`` keeps answering, a silent or trickling client is disconnected, idle
connections past the limit make room for new ones, and an unexpected error's 500 leaves the connection usable."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.test_http_protocol import _connect, _read_response, _request
from tests.support.servers import LiveServer, free_port, start_server

LIVEZ_S = 1.0


#: The server's file descriptor limit: a connection past it is never accepted, so without a connection limit enough
#: idle clients keep every new one (the probes') out. 1,024 is a common default soft limit.
FD_LIMIT = 1024


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    port = free_port()
    serve = (
        "import resource, sys; from meshctx.cli import main; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT})); "
        f"sys.exit(main(['serve', '--port', '{port}']))"
    )
    server = start_server(
        Path(tmp_path_factory.mktemp("limits")),
        port=port,
        args=("-c", serve),
        MESHCTX_HEADER_TIMEOUT_S="1",
        MESHCTX_MAX_CONNECTIONS="64",
        MESHCTX_ACCESS_LOG="0",
    )
    yield server
    server.stop()


def _livez_s(server: LiveServer) -> float:
    start = time.perf_counter()
    assert httpx.get(server.url + "/livez", timeout=10.0).status_code == 200
    return time.perf_counter() - start


def test_a_64_mb_url_is_a_431_and_livez_keeps_answering(limited_server: LiveServer) -> None:
    answers: list[bytes] = []

    def send_huge() -> None:
        with _connect(limited_server) as sock:
            with contextlib.suppress(OSError):  # the server answered and closed before the rest was sent
                sock.sendall(b"GET /livez?" + b"a" * (64 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            try:
                while chunk := sock.recv(1 << 16):
                    received += chunk
            except OSError:
                pass
            answers.append(received)

    sender = threading.Thread(target=send_huge)
    sender.start()
    slowest = 0.0
    while sender.is_alive():
        slowest = max(slowest, _livez_s(limited_server))
        time.sleep(0.02)
    sender.join()
    assert slowest < LIVEZ_S, f"/livez took {slowest:.2f} s during the 64 MB URL"
    assert answers and answers[0].startswith(b"HTTP/1.1 431 "), answers[:1]
    assert b"MESHCTX_MAX_HEADER_BYTES" in answers[0]


def test_a_client_that_never_finishes_its_head_is_disconnected(limited_server: LiveServer) -> None:
    with _connect(limited_server) as silent, _connect(limited_server) as trickling:
        trickling.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        start = time.monotonic()
        assert silent.recv(1) == b"" and trickling.recv(1) == b""
        assert time.monotonic() - start < 5  # MESHCTX_HEADER_TIMEOUT_S=1, with slack for a loaded machine


def test_idle_connections_past_the_limit_never_keep_livez_out(limited_server: LiveServer) -> None:
    idle = [_connect(limited_server) for _ in range(2 * FD_LIMIT)]  # 32 × MESHCTX_MAX_CONNECTIONS
    try:
        assert _livez_s(limited_server) < LIVEZ_S
        with _connect(limited_server) as sock:  # a kept-alive client too
            pending = bytearray()
            for _ in range(3):
                sock.sendall(_request("GET", "/livez"))
                assert _read_response(sock, pending)[0] == 200
    finally:
        for sock in idle:
            sock.close()


def test_after_a_problem_response_the_connection_stays_usable(limited_server: LiveServer) -> None:
    with _connect(limited_server) as sock:
        pending = bytearray()
        sock.sendall(_request("POST", "/v1/validate", b"{not json") + _request("GET", "/livez"))
        assert _read_response(sock, pending)[0] == 422
        assert _read_response(sock, pending)[0] == 200


def test_after_an_unexpected_error_the_next_request_on_the_connection_is_answered(tmp_path: Path) -> None:
    """A 500 (an error no handler expected; here a route added to the real app that raises) used to reach uvicorn,
    which closes the connection: the client's next, pipelined request was reset."""
    import asyncio

    import uvicorn

    from meshctx_service.app import create_app
    from meshctx_service.http.protocol import HttpProtocol
    from meshctx_service.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, access_log=False))

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, http=HttpProtocol, log_level="critical", access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started:
                break
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            pending = bytearray()
            sock.sendall(_request("GET", "/boom") + _request("GET", "/livez"))
            status, _, body = _read_response(sock, pending)
            assert status == 500 and b"Traceback" not in body
            assert _read_response(sock, pending)[0] == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)
