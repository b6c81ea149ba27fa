"""A TCP relay on 127.0.0.1 whose network can fail the way a real one does.

A browser that loses its network keeps its WebSockets open: nothing tells it the peer is gone, so
what it writes goes nowhere and nothing arrives until the connection times out. Playwright's
``set_offline`` only emulates the browser's side (new requests fail, ``navigator.onLine`` turns
false); an already open socket keeps working. Pages opened through :class:`Link` reach the API
over real TCP connections that the test can silence (``down()``: bytes both ways are discarded,
connections stay open, new ones are refused) and bring back (``up()``: the silenced connections
are reset, as a router does after an outage, and new ones go through).
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.peers import free_port


class Link:
    """Relay ``127.0.0.1:<port>`` to ``target_port``; ``down()``/``up()`` fail and restore it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.is_down = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Link:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._reset_all()
        await self._server.wait_closed()

    def down(self) -> None:
        """Lose the network: open connections go silent, new ones are refused."""
        self.is_down = True

    def up(self) -> None:
        """The network is back: connections silenced meanwhile are reset, new ones relay again."""
        self._reset_all()
        self.is_down = False

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.is_down:
                continue  # lost on the way, as on a dead network
            writer.write(data)
            await writer.drain()
        # One side closed: pass the end of stream on so the other side closes too.
        with contextlib.suppress(Exception):
            writer.write_eof()
