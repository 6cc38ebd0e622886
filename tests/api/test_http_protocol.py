"""api.http_protocol: an answer's writes coalesced into one, the bytes unchanged."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import uvicorn

from api.http_protocol import FLUSH_BYTES, CoalescingTransport, HttpToolsProtocol


class Recording:
    """A transport that records its writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


def test_writes_of_one_step_go_out_as_one() -> None:
    async def main() -> Recording:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        transport.write(bytearray(b"body"))
        assert real.writes == [] and transport.get_write_buffer_size() == 23
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        transport.writelines([b"a", b"b"])
        await asyncio.sleep(0)
        assert transport.get_extra_info("peername") == "info peername"  # the rest is the transport's
        return real

    real = asyncio.run(main())
    assert real.writes[1:] == [b"ab"]


def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        real = Recording()
        transport = CoalescingTransport(real, loop)  # type: ignore[arg-type]
        transport.write(b"last words")
        transport.close()
        assert real.writes == [b"last words"] and real.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing
        assert real.writes == [b"last words"]
        other = Recording()
        transport = CoalescingTransport(other, loop)  # type: ignore[arg-type]
        transport.write(b"never sent")
        transport.abort()
        await asyncio.sleep(0)
        assert other.writes == [] and other.aborted

    asyncio.run(main())


def test_a_large_write_goes_out_at_once() -> None:
    async def main() -> None:
        real = Recording()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head")
        transport.write(b"x" * FLUSH_BYTES)
        assert real.writes == [b"head" + b"x" * FLUSH_BYTES]

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    request = await receive()
    size = int(scope["path"].strip("/") or 0)
    body = (b"0123456789" * (size // 10 + 1))[:size] + request.get("body", b"")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    if size > FLUSH_BYTES:  # streamed in parts, the event loop turning in between
        for start in range(0, len(body), 50_000):
            await send({"type": "http.response.body", "body": body[start : start + 50_000], "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.body", "body": body})


def test_a_real_server_answers_whole_over_keep_alive() -> None:
    port = _free_port()
    config = uvicorn.Config(_app, port=port, http=HttpToolsProtocol, loop="uvloop", log_level="warning")
    server = uvicorn.Server(config)

    async def main() -> None:
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for size in (0, 5, 1000, 300_000, 7):
                    r = await client.get(f"/{size}")
                    assert r.status_code == 200 and len(r.content) == size
                    assert r.content == (b"0123456789" * (size // 10 + 1))[:size]
                r = await client.post("/3", content=b"posted")
                assert r.content == b"012posted"
                answers = await asyncio.gather(*(client.get(f"/{n}") for n in range(40)))
                assert [len(a.content) for a in answers] == list(range(40))
                head = await client.head("/12")
                assert head.status_code == 200 and head.content == b""
        finally:
            server.should_exit = True
            await serving

    asyncio.run(main())
