"""The gateway's own forwarding client against a real socket server that answers as services (and broken ones) do:
answers of every framing come through whole, kept-alive connections are reused only while the service keeps
them, and a service that drops, hangs or refuses is the problem the aiohttp client gave."""

import asyncio

import pytest

from gateway.proxy.service import Upstreams
from shared.errors import Problem
from tests.test_e2e import _free_ports

BIG = bytes(range(256)) * 2400  # 600 KB: more than the client holds unread before it stops reading


async def _answer(path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
    """Writes the answer for `path`; False when the connection is to be closed."""
    if path == "/chunked":
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    elif path == "/big":
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BIG) + BIG)
    elif path == "/echo":
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: %d\r\nX-Seen: yes\r\n\r\n" % len(body) + body)
    elif path == "/continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    elif path == "/close":
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbye")
        return False
    elif path == "/drop":
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        return False
    elif path == "/hang":
        await asyncio.sleep(3600)
    else:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi")
    await writer.drain()
    return True


class _Service:
    """Counts its connections and records each request's head and body."""

    def __init__(self, down: bool = False) -> None:
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.down = down  # answers everything with a bare 503, as a proxy in front of a dead replica does

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                if self.down:
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\ndown")
                    await writer.drain()
                elif not await _answer(head.split(b" ")[1].decode(), body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _with_service(check, timeout: float = 2.0):  # noqa: ANN001, ANN202
    service = _Service()
    server = await asyncio.start_server(service.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    upstreams = Upstreams({"customer": [url]}, timeout=timeout, connect_timeout=1.0, client="wire")
    try:
        return await check(upstreams, service)
    finally:
        await upstreams.aclose()
        server.close()


async def _get(upstreams: Upstreams, path: str, method: str = "GET", body: bytes | None = None,
               stream: bool = False) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    answer = await upstreams.forwarder.send("customer", method, path, [(b"accept", b"*/*")], body)
    try:
        content = b"".join([c async for c in answer.chunks()]) if stream else await answer.read()
        return answer.status, answer.headers, content
    finally:
        await answer.close()


def test_answers_of_every_framing_come_through_whole_on_one_kept_alive_connection():
    async def check(upstreams, service):  # noqa: ANN001, ANN202
        chunked = await _get(upstreams, "/chunked", stream=True)
        big = await _get(upstreams, "/big", stream=True)
        big_whole = await _get(upstreams, "/big")
        echoed = await _get(upstreams, "/echo", "POST", b'{"name": "x"}')
        empty_post = await _get(upstreams, "/echo", "POST")
        informational = await _get(upstreams, "/continue")
        return chunked, big, big_whole, echoed, empty_post, informational, service

    chunked, big, big_whole, echoed, empty_post, informational, service = asyncio.run(_with_service(check))
    assert chunked[0] == 200 and chunked[2] == b"hello world" and (b"content-type", b"text/plain") in chunked[1]
    assert big[2] == BIG and big_whole[2] == BIG  # streamed with pauses, and read whole without any
    assert echoed[0] == 201 and echoed[2] == b'{"name": "x"}' and (b"x-seen", b"yes") in echoed[1]
    assert empty_post[2] == b"" and b"content-length: 0\r\n" in service.requests[4][0]
    assert informational[:1] == (200,) and informational[2] == b"ok"  # the 100 before it is skipped
    assert service.connections == 1
    assert service.requests[0][0].startswith(b"GET /chunked HTTP/1.1\r\nhost: 127.0.0.1:")


def test_a_connection_the_service_closes_is_not_used_again():
    async def check(upstreams, service):  # noqa: ANN001, ANN202
        closing = await _get(upstreams, "/close")
        await asyncio.sleep(0.05)
        return closing, await _get(upstreams, "/"), service

    closing, after, service = asyncio.run(_with_service(check))
    assert closing[2] == b"bye" and after[2] == b"hi" and service.connections == 2


@pytest.mark.parametrize(("path", "status"), [("/drop", 502), ("/hang", 504)])
def test_a_service_that_drops_or_hangs_is_a_problem_naming_it(path, status):
    async def check(upstreams, _service):  # noqa: ANN001, ANN202
        with pytest.raises(Problem) as problem:
            answer = await upstreams.forwarder.send("customer", "POST", path, [], b"{}")
            try:
                await answer.read()
            finally:
                await answer.close()
        return problem.value

    problem = asyncio.run(_with_service(check, timeout=0.5))
    assert problem.status == status and problem.extra["service"] == "customer"


def test_a_service_that_refuses_connections_is_a_503_and_taken_out():
    async def check() -> tuple[Problem, list]:
        upstreams = Upstreams({"customer": [f"http://127.0.0.1:{_free_ports(1)[0]}"]}, timeout=1.0,
                              connect_timeout=1.0, client="wire")
        try:
            with pytest.raises(Problem) as problem:
                await upstreams.forwarder.send("customer", "GET", "/", [], None)
            return problem.value, upstreams.report()["customer"]
        finally:
            await upstreams.aclose()

    problem, report = asyncio.run(check())
    assert problem.status == 503 and "connection refused" in problem.detail
    assert report[0]["state"] == "down"


def test_a_bare_503_takes_the_replica_out_and_the_request_goes_to_another():
    async def check() -> tuple[tuple, list, _Service]:
        down, up = _Service(down=True), _Service()
        servers = [await asyncio.start_server(s.handle, "127.0.0.1", 0) for s in (down, up)]
        urls = [f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}" for server in servers]
        upstreams = Upstreams({"customer": urls}, timeout=1.0, connect_timeout=1.0, client="wire")
        try:
            answers = [await _get(upstreams, "/") for _ in range(2)]
            return answers, upstreams.report()["customer"], down
        finally:
            await upstreams.aclose()
            for server in servers:
                server.close()

    answers, report, down = asyncio.run(check())
    assert [(status, body) for status, _, body in answers] == [(200, b"hi"), (200, b"hi")]
    assert report[0]["state"] == "down" and report[0]["reason"] == "answered 503" and report[1]["state"] == "up"
    assert len(down.requests) <= 1  # once out, it gets nothing more


def test_a_connection_idle_for_longer_than_the_service_keeps_it_is_not_used(monkeypatch):
    """uvicorn closes a connection idle for 5 s: one sent on just then would be lost, so it is left alone."""
    from gateway.proxy import wire

    async def check(upstreams, service):  # noqa: ANN001, ANN202
        await _get(upstreams, "/")
        monkeypatch.setattr(wire, "IDLE_SECONDS", 0.01)
        await asyncio.sleep(0.05)
        await _get(upstreams, "/")
        return service

    assert asyncio.run(_with_service(check)).connections == 2
