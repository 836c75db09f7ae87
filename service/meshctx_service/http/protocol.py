"""The HTTP/1.1 protocol ``meshctx serve`` runs: uvicorn's httptools protocol, its writes sent once per loop turn.

uvicorn writes a response as two ``transport.write`` calls (the head, then the body) and uvloop sends each at
once, so under load the server alternates between running one request and sending one response as two TCP
segments, each send waking a client that then competes for the CPU. Holding the writes made during one turn of
the event loop and sending each connection's bytes as one write at the turn's end lets the server run every
ready request back to back and answer them together. Measured side by side (docs/benchmarks.md): 8–16 % less
CPU a request and 9–21 % more requests/s at 32 clients, p99 down by 3–7 ms; sending head and body joined as
soon as the body comes, without waiting for the turn's end, gained nothing. An idle server adds one loop
iteration to a response; more than ``FLUSH_BYTES`` held goes out at once (a streamed listing never piles up),
and closing sends what is held first.

A client that sends its request and then half-closes (``shutdown(SHUT_WR)``) still gets the answer: the end of
its input closes the connection only once every request it sent has been answered. And the limits uvicorn's
httptools protocol lacks (contract.md "Bounded work"): a request line and headers longer than ``MAX_HEAD_BYTES`` get
a 431 (uvicorn would keep appending a 64 MB URL, quadratically); a connection that has not finished its request
head within ``HEAD_TIMEOUT_S`` is closed (a silent or trickling client holds nothing); and past
``MAX_CONNECTIONS`` a new connection closes an idle one (no request running), so idle connections can never
keep ``/livez`` out. ``configure`` sets the three from the service's settings in each worker. With TLS, the
certificate is reloaded when its files change (``http/tls.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .tls import CertificateFiles

#: The serving certificate's files, reloaded when they change (``http/tls.py``).
CERTIFICATE = CertificateFiles()


class TurnWrites(asyncio.Transport):
    """A transport whose writes go out once per event-loop turn, in order, as one write of the real transport."""

    FLUSH_BYTES = 1 << 16

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data) if not isinstance(data, bytes) else data)
        self._held_bytes += len(data)
        if self._held_bytes >= self.FLUSH_BYTES:
            self.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held (a no-op when nothing is, as when the turn's flush finds it already sent)."""
        if not self._held:
            return
        held, self._held, self._held_bytes = self._held, [], 0
        if not self._transport.is_closing():  # a lost connection drops its unsent bytes, as the transport would
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held, self._held_bytes = [], 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()

    # -- the rest is the real transport's
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol writing through ``TurnWrites`` (``uvicorn.run(http=HttpProtocol)``),
    with the limits above."""

    MAX_HEAD_BYTES = 1 << 16
    HEAD_TIMEOUT_S = 10.0
    MAX_CONNECTIONS = 1024

    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None
    _eof = False
    _oversized = False

    @classmethod
    def configure(cls, max_head_bytes: int, head_timeout_s: float, max_connections: int) -> None:
        cls.MAX_HEAD_BYTES, cls.HEAD_TIMEOUT_S, cls.MAX_CONNECTIONS = max_head_bytes, head_timeout_s, max_connections

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        CERTIFICATE.check(config)  # before this connection's TLS handshake: a renewed certificate is served at once

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        super().connection_made(TurnWrites(cast(asyncio.Transport, transport), self.loop))
        self._arm_head_timer()
        if len(self.connections) > self.MAX_CONNECTIONS:
            self._close_idle(len(self.connections) - self.MAX_CONNECTIONS)

    def _close_idle(self, count: int) -> None:
        """Close up to ``count`` other connections that run no request (idle keep-alives, silent clients)."""
        for other in list(self.connections):
            if count <= 0:
                break
            if other is not self and isinstance(other, HttpProtocol) and other._idle():
                other.transport.close()
                self.connections.discard(other)
                count -= 1

    def _idle(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.HEAD_TIMEOUT_S, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing() and self._idle():
            self.transport.close()

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._arm_head_timer()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.MAX_HEAD_BYTES:
            self._oversized = True
            raise ValueError("request head too large")  # httptools stops parsing; data_received answers 431

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._oversized:
            super().send_400_response(msg)
            return
        text = f"The request line and headers exceed {self.MAX_HEAD_BYTES} bytes (MESHCTX_MAX_HEADER_BYTES).".encode()
        self.transport.write(_TOO_LARGE % (len(text), text))
        self.transport.close()

    def eof_received(self) -> bool:  # type: ignore[override]
        """The client sends nothing more (a half-close): answer what it asked, then close. Returning ``True``
        keeps the transport open for those answers (uvloop would otherwise close it at once)."""
        self._eof = True
        if self._idle():
            self.transport.close()
        return self.scheme != "https"  # TLS closes on the peer's close_notify whatever this says (and warns if True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._eof and self._idle() and not self.transport.is_closing():
            self.transport.close()
