"""The gateway's own HTTP/1.1 client for forwarding a request whose body is in hand (none, or read whole).

aiohttp's client was the largest part of what the gateway cost a request (its session's checks, header objects,
timers and URL handling); a request forwarded here is one write of bytes on a kept-alive connection and an answer
parsed by httptools, the parser the gateway's server already uses. A streamed upload still goes through aiohttp,
which writes the body while the answer may already be coming.

Timeouts are aiohttp's as the gateway set them: connecting within the connect timeout, then no more than the
upstream timeout between any two reads of the answer. A connection the service closed, or one whose answer was
not read to its end, is never used again.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

# Answer bytes held unread before the connection stops reading from the service (a slow caller of a big answer).
_HIGH_WATER = 256 * 1024
# A connection idle longer is not used again: uvicorn closes one after 5 s idle, and a request sent just as it does
# would be lost with it.
IDLE_SECONDS = 4.0
# Sent with `content-length: 0` when they carry no body, as aiohttp sent them.
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})


class ConnectFailed(OSError):
    """No connection could be made: the request was certainly never sent."""


class Dropped(ConnectionError):
    """The connection closed, or the answer could not be parsed, before the answer was complete."""


class Connection(asyncio.Protocol):
    """One kept-alive connection to a replica, one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.parts: deque[bytes] = deque()
        self.buffered = 0
        self.head_done = self.done = self.informational = self.keep_alive = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.high_water: float = _HIGH_WATER
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Dropped(f"unparsable answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done:
            self._fail(Dropped("connection closed by the service"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.informational = self.status < 200  # a 1xx before the answer: skipped
        if self.informational:
            self.headers = []
            return
        self.head_done = True
        # Asked now: once the message is complete the parser has forgotten it.
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)
        self.buffered += len(body)
        if self.buffered > self.high_water and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.done = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    async def _wait(self, timeout: float) -> None:
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        timer = loop.call_later(timeout, self._timed_out, self.waiter)
        try:
            await self.waiter
        finally:
            timer.cancel()
            self.waiter = None

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self.close()  # the answer may still come: this connection cannot be used again
            waiter.set_exception(TimeoutError())

    # the exchange
    def send(self, head: bytes) -> None:
        self.status, self.headers, self.buffered = 0, [], 0
        self.parts.clear()
        self.head_done = self.done = False
        self.high_water = _HIGH_WATER
        self.transport.write(head)  # type: ignore[union-attr]

    async def head(self, timeout: float) -> None:
        while not self.head_done:
            await self._wait(timeout)

    async def read(self, timeout: float) -> bytes:
        self.high_water = math.inf  # read whole: held until it is complete
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        while not self.done:
            await self._wait(timeout)
        body = b"".join(self.parts)
        self.parts.clear()
        return body

    async def chunks(self, timeout: float) -> AsyncIterator[bytes]:
        while True:
            while self.parts:
                part = self.parts.popleft()
                self.buffered -= len(part)
                if self.paused and self.buffered <= _HIGH_WATER // 2 and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                yield part
            if self.done:
                return
            await self._wait(timeout)

    def reusable(self) -> bool:
        return self.done and self.keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Replica:
    """Kept-alive connections to one replica's base URL."""

    def __init__(self, url: str, connect_timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        default = (parts.scheme, self.port) in {("http", 80), ("https", 443)}
        self.authority = (self.host if default else f"{self.host}:{self.port}").encode("idna")
        self.prefix = parts.path.rstrip("/").encode()
        self.connect_timeout = connect_timeout
        self.idle: list[Connection] = []

    async def acquire(self) -> Connection:
        if self.idle:
            now = time.monotonic()
            while self.idle:
                connection = self.idle.pop()
                if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                    return connection
                connection.close()
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(Connection, self.host, self.port, ssl=self.ssl), self.connect_timeout)
        except TimeoutError as exc:
            raise ConnectFailed("connection timed out") from exc
        except OSError as exc:
            raise ConnectFailed("connection refused") from exc
        return connection

    def release(self, connection: Connection) -> None:
        if connection.reusable():
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        else:
            connection.close()

    def request_head(self, method: bytes, target: str, headers: list[tuple[bytes, bytes]],
                     body: bytes | None) -> bytes:
        lines = [b"%s %s%s HTTP/1.1\r\nhost: %s\r\n" % (method, self.prefix, target.encode("ascii"), self.authority)]
        lines.extend(b"%s: %s\r\n" % pair for pair in headers)
        if body is not None or method in _BODY_METHODS:
            lines.append(b"content-length: %d\r\n" % len(body or b""))
        lines.append(b"\r\n")
        if body:
            lines.append(body)
        return b"".join(lines)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
