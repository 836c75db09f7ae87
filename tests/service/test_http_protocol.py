"""``meshctx serve``'s HTTP protocol (``http/protocol.py``) on a real server over loopback TCP: each response goes
out in one write (the kernel's own segment count says so), and every answer is whole and in order — kept-alive,
pipelined, streamed past the flush size, and a malformed request's 400 before the close."""

from __future__ import annotations

import json
import socket
import struct

from meshctx.config import ParallelismSizes
from meshctx.plan.request import TopologyRequest
from meshctx_service.http.fast_paths import TurnWrites
from tests.support.servers import LiveServer

#: ``struct tcp_info`` (linux/tcp.h): ``tcpi_data_segs_in``, the data segments this socket received, at byte 152.
DATA_SEGS_IN = struct.Struct("=I")
DATA_SEGS_IN_OFFSET = 152
REQUEST = TopologyRequest(world_size=64, sizes=ParallelismSizes(tp_size=8))
BODY = json.dumps(REQUEST.to_dict()).encode()


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    return (head + ("Content-Type: application/json\r\n" if body else "") + "\r\n").encode() + body


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _more(sock: socket.socket, pending: bytearray) -> None:
    chunk = sock.recv(1 << 16)
    assert chunk, f"the server closed the connection mid-response after {bytes(pending[:200])!r}"
    pending += chunk


def _read_response(sock: socket.socket, pending: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response off ``sock`` (``pending``: bytes already read past the previous one), by its Content-Length or
    its chunks."""
    while b"\r\n\r\n" not in pending:
        _more(sock, pending)
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    pending[:] = rest
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(pending) < length:
            _more(sock, pending)
        body = bytes(pending[:length])
        del pending[:length]
    else:
        assert headers.get("transfer-encoding") == "chunked", headers
        body = b""
        while True:
            while b"\r\n" not in pending:
                _more(sock, pending)
            size_line, _, _ = bytes(pending).partition(b"\r\n")
            size = int(size_line, 16)
            while len(pending) < len(size_line) + 2 + size + 2:
                _more(sock, pending)
            body += bytes(pending[len(size_line) + 2 : len(size_line) + 2 + size])
            del pending[: len(size_line) + 2 + size + 2]
            if size == 0:
                break
    return int(status_line.split()[1]), headers, body


def _segments_received(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(DATA_SEGS_IN.unpack_from(info, DATA_SEGS_IN_OFFSET)[0])


def test_each_response_arrives_as_one_segment(live_server: LiveServer) -> None:
    # uvicorn writes a head and a body; sent as they come, each response is two segments on the wire.
    with _connect(live_server) as sock:
        pending = bytearray()
        answers = []
        for request in [_request("POST", "/v1/validate", BODY), _request("GET", "/livez")] * 10:
            sock.sendall(request)
            answers.append(_read_response(sock, pending))
        assert _segments_received(sock) == 20
    assert all(status == 200 for status, _, _ in answers)
    assert json.loads(answers[0][2]) == REQUEST.validate().to_dict()
    assert len({body for _, _, body in answers[::2]}) == 1


def test_pipelined_requests_are_answered_whole_and_in_order(live_server: LiveServer) -> None:
    bodies = [
        json.dumps({"strategy": "fsdp2", "world_size": 8 * k, "sizes": {"tp_size": 8}}).encode() for k in (1, 2, 3)
    ]
    with _connect(live_server) as sock:
        sock.sendall(b"".join(_request("POST", "/v1/validate", body) for body in bodies) + _request("GET", "/livez"))
        pending = bytearray()
        answers = [_read_response(sock, pending) for _ in range(4)]
    assert [json.loads(body)["plan"]["world_size"] for _, _, body in answers[:3]] == [8, 16, 24]
    assert answers[3][0] == 200 and json.loads(answers[3][2]) == {"status": "ok"}


def test_a_streamed_listing_larger_than_the_flush_size_arrives_whole(live_server: LiveServer) -> None:
    topology = TopologyRequest(world_size=8192, sizes=ParallelismSizes(tp_size=8, pp_size=2))
    with _connect(live_server) as sock:
        sock.sendall(_request("POST", "/v1/layout?groups=true", json.dumps(topology.to_dict()).encode()))
        status, _, body = _read_response(sock, bytearray())
    assert status == 200 and len(body) > 4 * TurnWrites.FLUSH_BYTES
    assert json.loads(body) == topology.validate().raise_for_problems().to_dict(groups=True)


def test_a_malformed_request_gets_its_400_before_the_connection_closes(live_server: LiveServer) -> None:
    with _connect(live_server) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        received = b""
        while chunk := sock.recv(1 << 16):
            received += chunk
    assert received.startswith(b"HTTP/1.1 400 ")


# ------------------------------------------------------------------------------ half-close and the limits
ELASTIC = json.dumps({"strategy": "fsdp2", "nnodes": "1:512", "nproc_per_node": 8, "sizes": {"tp_size": 8}}).encode()


def test_a_request_then_a_half_close_gets_its_answer(live_server: LiveServer) -> None:
    """``shutdown(SHUT_WR)`` after the request: the answer still comes, then the close — for a quick route and
    for one planned off the event loop (held writes used to be dropped when the end of input closed the socket)."""
    for request in [_request("GET", "/livez"), _request("POST", "/v1/validate", BODY)] * 10 + [
        _request("POST", "/v1/validate", ELASTIC)
    ]:
        with _connect(live_server) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(1 << 16):
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 "), received[:200]


def test_pipelined_requests_then_a_half_close_are_all_answered(live_server: LiveServer) -> None:
    with _connect(live_server) as sock:
        sock.sendall(_request("POST", "/v1/validate", ELASTIC) + _request("GET", "/livez") * 2)
        sock.shutdown(socket.SHUT_WR)
        pending = bytearray()
        statuses = [_read_response(sock, pending)[0] for _ in range(3)]
        assert statuses == [200, 200, 200] and sock.recv(1) == b""
