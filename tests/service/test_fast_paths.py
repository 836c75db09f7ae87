"""``MESHCTX_FAST_PATHS`` (``http/fast_paths.py``): with the speed tricks on (the default) and off, two real servers
answer the same bytes — every stateless route of the golden set (``tests/golden/corpus.py``), and kept-alive and
pipelined connections byte for byte on the wire (status lines, headers but the date, bodies, chunked listings,
a malformed request's 400) — while the switch does turn both tricks off."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.golden.corpus import http_requests
from tests.service.test_http_protocol import BODY, _connect, _read_response, _request, _segments_received
from tests.support.servers import LiveServer, start_server

DATE = re.compile(rb"\r\ndate: [^\r]*", re.IGNORECASE)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    tmp = tmp_path_factory.mktemp("fast-paths")
    on, off = start_server(tmp), start_server(tmp, MESHCTX_FAST_PATHS="off")
    yield on, off
    on.stop()
    off.stop()


def test_the_golden_requests_get_the_same_answers_both_ways(servers: tuple[LiveServer, LiveServer]) -> None:
    on, off = servers
    compared = 0
    with httpx.Client(base_url=on.url, timeout=60) as fast, httpx.Client(base_url=off.url, timeout=60) as plain:
        for name, method, path, body in http_requests():
            ours, theirs = fast.request(method, path, json=body), plain.request(method, path, json=body)
            assert ours.status_code == theirs.status_code, (name, ours.text[:300], theirs.text[:300])
            assert ours.headers.get("content-type") == theirs.headers.get("content-type"), name
            assert ours.content == theirs.content, name
            compared += 1
    assert compared > 400


class Recorded:
    """A socket's receiving side that keeps every byte it hands out (``_read_response`` reads through ``recv``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = bytearray()

    def recv(self, size: int) -> bytes:
        chunk = self.sock.recv(size)
        self.received += chunk
        return chunk


def _wire(server: LiveServer, requests: bytes, answers: int, half_close: bool = False) -> bytes:
    """The bytes the server sends back for ``requests``, written at once on one connection: ``answers`` whole
    responses (after a half-close, through to the server's close), the date headers taken out."""
    with _connect(server) as sock:
        sock.sendall(requests)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        recorded, pending = Recorded(sock), bytearray()
        for _ in range(answers):
            _read_response(recorded, pending)
        assert not pending, bytes(pending[:200])
        if half_close:
            assert sock.recv(1) == b""  # closed once every answer is sent
    return DATE.sub(b"", bytes(recorded.received))


VALID = _request("POST", "/v1/validate", BODY)
INVALID = _request("POST", "/v1/validate", b'{"strategy": "fsdp2", "world_size": 96, "sizes": {"tp_size": 7}}')
BAD_JSON = _request("POST", "/v1/validate", b'{"strategy": ')
LIVEZ = _request("GET", "/livez")
LISTING = _request(
    "POST", "/v1/layout?groups=true", b'{"strategy": "fsdp2", "world_size": 8192, "sizes": {"tp_size": 8}}'
)
CONVERSATIONS = {
    "kept alive": ([VALID, LIVEZ, INVALID, BAD_JSON, VALID], False),
    "pipelined": ([VALID + INVALID + BAD_JSON + LIVEZ + VALID + LISTING + VALID], False),
    "pipelined, then a half-close": ([VALID + BAD_JSON + LIVEZ + INVALID], True),
}


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_kept_alive_and_pipelined_connections_get_the_same_bytes(
    servers: tuple[LiveServer, LiveServer], name: str
) -> None:
    writes, half_close = CONVERSATIONS[name]
    answers = sum(write.count(b" HTTP/1.1\r\n") for write in writes)
    wires = []
    for server in servers:
        if len(writes) == 1:
            wires.append(_wire(server, writes[0], answers, half_close))
        else:  # one request at a time on one connection, each answer read before the next request
            with _connect(server) as sock:
                recorded, pending = Recorded(sock), bytearray()
                for write in writes:
                    sock.sendall(write)
                    _read_response(recorded, pending)
                wires.append(DATE.sub(b"", bytes(recorded.received)))
    on, off = wires
    assert on.count(b"HTTP/1.1 200 ") >= 2 and b"HTTP/1.1 422 " in on
    assert on == off


def test_a_malformed_request_gets_the_same_400_and_close_both_ways(servers: tuple[LiveServer, LiveServer]) -> None:
    wires = []
    for server in servers:
        with _connect(server) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            received = b""
            while chunk := sock.recv(1 << 16):
                received += chunk
        wires.append(DATE.sub(b"", received))
    assert wires[0].startswith(b"HTTP/1.1 400 ") and wires[0] == wires[1]


def test_the_switch_turns_both_tricks_off(servers: tuple[LiveServer, LiveServer], tmp_path: Path) -> None:
    from meshctx_service.app import create_app
    from meshctx_service.settings import Settings

    # Validate's direct path: only while on (and validate open).
    assert create_app(Settings(data_dir=tmp_path)).direct is not None
    assert create_app(Settings(data_dir=tmp_path, fast_paths=False)).direct is None
    # One write per loop turn: with it, each response is one TCP segment; without, uvicorn's head and body writes.
    segments = []
    for server in servers:
        with _connect(server) as sock:
            pending = bytearray()
            for _ in range(10):
                sock.sendall(VALID)
                _read_response(sock, pending)
            segments.append(_segments_received(sock))
    assert segments[0] == 10 and segments[1] > 10, segments
