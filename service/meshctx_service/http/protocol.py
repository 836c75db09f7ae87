"""The HTTP/1.1 protocol ``meshctx serve`` runs: uvicorn's httptools protocol, with the limits it lacks, its writes
sent once per loop turn (``fast_paths.TurnWrites``) unless ``MESHCTX_FAST_PATHS=off``.

A client that sends its request and then half-closes (``shutdown(SHUT_WR)``) still gets the answer: the end of
its input closes the connection only once every request it sent has been answered. And the limits uvicorn's
httptools protocol lacks (contract.md "Bounded work"): a request line and headers longer than ``MAX_HEAD_BYTES`` get
a 431 (uvicorn would keep appending a 64 MB URL, quadratically); a connection that has not finished its request
head within ``HEAD_TIMEOUT_S`` is closed (a silent or trickling client holds nothing); and past
``MAX_CONNECTIONS`` a new connection closes an idle one (no request running), so idle connections can never
keep ``/livez`` out. ``configure`` sets them and the writes from the service's settings in each worker. With TLS, the
certificate is reloaded when its files change (``http/tls.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .fast_paths import TurnWrites
from .tls import CertificateFiles

#: The serving certificate's files, reloaded when they change (``http/tls.py``).
CERTIFICATE = CertificateFiles()


_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol (``uvicorn.run(http=HttpProtocol)``) with the limits above, writing
    through ``TurnWrites`` while ``TURN_WRITES`` (``MESHCTX_FAST_PATHS``)."""

    MAX_HEAD_BYTES = 1 << 16
    HEAD_TIMEOUT_S = 10.0
    MAX_CONNECTIONS = 1024
    TURN_WRITES = True

    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None
    _eof = False
    _oversized = False

    @classmethod
    def configure(cls, max_head_bytes: int, head_timeout_s: float, max_connections: int, turn_writes: bool) -> None:
        cls.MAX_HEAD_BYTES, cls.HEAD_TIMEOUT_S, cls.MAX_CONNECTIONS = max_head_bytes, head_timeout_s, max_connections
        cls.TURN_WRITES = turn_writes

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        CERTIFICATE.check(config)  # before this connection's TLS handshake: a renewed certificate is served at once

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writes = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        super().connection_made(TurnWrites(writes, self.loop) if self.TURN_WRITES else writes)
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
