"""A Yjs client for tests and benchmarks: a pycrdt Doc synced over a `websockets` connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import websockets
from pycrdt import Channel, Doc, Provider


class WebsocketsChannel(Channel):
    """A `websockets` client connection as a pycrdt Channel."""

    def __init__(self, ws: websockets.ClientConnection, path: str) -> None:
        self._ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> WebsocketsChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except websockets.ConnectionClosed as exc:
            raise StopAsyncIteration() from exc

    async def send(self, message: bytes) -> None:
        try:
            await self._ws.send(message)
        except websockets.ConnectionClosed:
            pass

    async def recv(self) -> bytes:
        while True:
            message = await self._ws.recv()
            if isinstance(message, bytes):
                return message


@asynccontextmanager
async def yclient(url: str, doc: Doc | None = None, headers: dict[str, str] | None = None) -> AsyncIterator[tuple[Doc, websockets.ClientConnection]]:
    """Connect a document to a collaboration URL and wait for the first sync."""
    import anyio

    doc = doc or Doc()
    async with websockets.connect(url, additional_headers=headers or {}, max_size=None) as ws:
        async with Provider(doc, WebsocketsChannel(ws, url)) as provider:
            with anyio.fail_after(10):
                await provider.synced.wait()
            yield doc, ws
