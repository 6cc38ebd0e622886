"""uvicorn's httptools protocol, writing each answer in one system call.

uvicorn writes a response's head (status line and headers) and its body with two
``transport.write`` calls, and uvloop sends each at once: two system calls and two TCP
segments per answer, the second right behind the first. On loopback the sender's call also
does the receiver's TCP work, so under load the two writes were ~40% of the event-loop
thread's CPU for the recommendations route (py-spy, 100k members, 1 worker under wrk).

:class:`CoalescingTransport` holds what is written during one step of the event loop and
sends it together at the next (``loop.call_soon``): an answer whose head and body are sent
in one go (every JSON answer) leaves in one write. A close, an EOF or 64 KiB held sends at
once; everything else is the transport's own. ``bookclub serve`` runs uvicorn with
``http="api.http_protocol:HttpToolsProtocol"``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol

FLUSH_BYTES = 64 * 1024  # held past this, the writes go out at once


class CoalescingTransport:
    """A transport whose writes within one event-loop step go out as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what is held (a no-op when nothing is, or the transport is closing)."""
        if not self._held:
            return
        held, self._held, self._size = self._held, [], 0
        if self._transport.is_closing():
            return
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held, self._size = [], 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:  # everything else: the transport's own
        return getattr(self._transport, name)


class HttpToolsProtocol(_HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)
