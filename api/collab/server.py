"""The collaboration server: one pycrdt-websocket room per workflow draft, persisted to a file.

Each connection goes through :class:`GuardedChannel`, which enforces what the room itself cannot
know per client: viewers' document updates are dropped (they still sync and share presence), one
message may not exceed ``max_message_bytes``, the document may not grow past
``max_document_bytes``, and document updates are rate limited per connection (a token bucket).
Breaking a limit closes the connection with a 44xx code and a reason; the client's edits stay in
its local document and merge again when it reconnects within the limits.

Rooms are created under one lock: two clients opening a new room at once can otherwise deadlock
in pycrdt-websocket 0.16.5. Each room's document is written to ``<directory>/<workflow id>.ydoc``
(the full state as one Yjs update) shortly after every change and on shutdown, so a restart
loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import Lock
from pycrdt import Channel, Doc, TransactionEvent, YMessageType, YSyncMessageType
from pycrdt.websocket import WebsocketServer, YRoom, exception_logger
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.collab.graphdoc import apply_graph, doc_to_graph, is_initialized

log = logging.getLogger("gorax.collab")

_WORKFLOW_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

#: Close codes (private range) sent with a reason the editor shows.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_LARGE = 4413
CLOSE_RATE_LIMITED = 4429


@dataclass(frozen=True)
class CollabLimits:
    """Limits of one document and one connection."""

    max_document_bytes: int = 4_000_000
    max_message_bytes: int = 1_000_000
    updates_per_second: float = 60.0
    update_burst: int = 300
    save_delay_seconds: float = 0.25


SeedLoader = Callable[[str], Awaitable[dict[str, Any] | None]]
#: Raises (the API's NotFound, Forbidden) unless ``principal`` may open workflow ``workflow_id``.
WorkflowAuthorizer = Callable[[Any, str], Awaitable[None]]


@dataclass(frozen=True)
class CollabHooks:
    """What the collaboration server needs from the rest of the API, given by ``create_app``:
    this package imports nothing of the services, and without an authorizer no draft opens."""

    authorize_workflow: WorkflowAuthorizer
    load_seed: SeedLoader | None = None


def check_workflow_id(workflow_id: str) -> str:
    """A workflow id safe to use as a room and file name, else ``ValueError``."""
    if not _WORKFLOW_ID.match(workflow_id):
        raise ValueError(f"workflow id {workflow_id!r} is not valid (letters, digits, '_' and '-', at most 64)")
    return workflow_id


class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class GuardedChannel(Channel):
    """A Starlette WebSocket as a pycrdt Channel that applies role and limits per connection."""

    def __init__(self, websocket: WebSocket, room: _Room, *, can_write: bool, limits: CollabLimits) -> None:
        self._ws = websocket
        self._room = room
        self.can_write = can_write
        self._limits = limits
        self._bucket = _Bucket(limits.updates_per_second, limits.update_burst)
        self.dropped_updates = 0
        self._closed = False

    @property
    def path(self) -> str:
        return self._room.workflow_id

    async def send(self, message: bytes) -> None:
        if self._closed:
            return
        try:
            await self._ws.send_bytes(message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed = True

    async def _close(self, code: int, reason: str) -> None:
        log.info("collab connection closed", extra={"workflow_id": self.path, "code": code, "reason": reason})
        self._closed = True
        try:
            await self._ws.close(code=code, reason=reason[:120])
        except (RuntimeError, OSError):
            pass

    def __aiter__(self) -> GuardedChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise StopAsyncIteration() from exc

    async def recv(self) -> bytes:
        while True:
            if self._closed:
                raise StopAsyncIteration()
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                self._closed = True
                raise StopAsyncIteration()
            data = message.get("bytes")
            if not data:
                continue  # text frames are not part of the Yjs protocol
            if len(data) > self._limits.max_message_bytes:
                await self._close(CLOSE_TOO_LARGE, f"message of {len(data)} bytes is over the {self._limits.max_message_bytes} limit")
                raise StopAsyncIteration()
            if not _is_document_update(data):
                return data
            if not self.can_write:
                # Viewers read only: their updates never reach the document.
                self.dropped_updates += 1
                continue
            if not self._bucket.take():
                await self._close(CLOSE_RATE_LIMITED, f"more than {self._limits.updates_per_second:g} updates a second")
                raise StopAsyncIteration()
            if not self._room.has_room_for(len(data)):
                await self._close(CLOSE_TOO_LARGE, f"the document would exceed {self._limits.max_document_bytes} bytes")
                raise StopAsyncIteration()
            return data


def _is_document_update(message: bytes) -> bool:
    return (
        len(message) > 1
        and message[0] == YMessageType.SYNC
        and message[1] in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE)
    )


class _Room:
    """One workflow's room, its document size estimate and its persistence."""

    def __init__(self, server: CollabServer, workflow_id: str, room: YRoom) -> None:
        self.server = server
        self.workflow_id = workflow_id
        self.room = room
        self.size = len(room.ydoc.get_update())
        self._save_task: asyncio.Task[None] | None = None
        self._dirty = False
        self._subscription = room.ydoc.observe(self._changed)

    @property
    def doc(self) -> Doc:
        return self.room.ydoc

    def has_room_for(self, incoming: int) -> bool:
        limit = self.server.limits.max_document_bytes
        if self.size + incoming <= limit:
            return True
        # The running sum overestimates (updates overlap); measure before refusing.
        self.size = len(self.doc.get_update())
        return self.size + incoming <= limit

    def _changed(self, event: TransactionEvent) -> None:
        self.size += len(event.update)
        self._dirty = True
        if self._save_task is None or self._save_task.done():
            self._save_task = asyncio.get_running_loop().create_task(self._save_later())

    async def _save_later(self) -> None:
        await asyncio.sleep(self.server.limits.save_delay_seconds)
        self.save()

    def save(self) -> None:
        """Write the whole document now (atomically: a crash leaves the old file)."""
        if not self._dirty:
            return
        self._dirty = False
        state = self.doc.get_update()
        self.size = len(state)
        self.server.write_state(self.workflow_id, state)


class CollabServer:
    """Rooms of workflow drafts over pycrdt-websocket, persisted under ``directory``."""

    def __init__(self, directory: Path, limits: CollabLimits | None = None, seed: SeedLoader | None = None,
                 authorize: WorkflowAuthorizer | None = None) -> None:
        self.directory = directory
        self.limits = limits or CollabLimits()
        #: Loads a workflow's stored graph for a document that has never held one.
        self.seed = seed
        #: Checks that a principal may open a workflow's draft (None: nobody may).
        self.authorize = authorize
        self._ws = WebsocketServer(rooms_ready=True, auto_clean_rooms=False, exception_handler=exception_logger, log=log)
        self._rooms: dict[str, _Room] = {}
        self._lock = Lock()

    async def __aenter__(self) -> CollabServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        #: The loop the rooms run on (callers from other threads submit work to it).
        self.loop = asyncio.get_running_loop()
        await self._ws.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.flush()
        await self._ws.__aexit__(None, None, None)

    def path_of(self, workflow_id: str) -> Path:
        return self.directory / f"{check_workflow_id(workflow_id)}.ydoc"

    def read_state(self, workflow_id: str) -> bytes | None:
        try:
            return self.path_of(workflow_id).read_bytes()
        except FileNotFoundError:
            return None

    def write_state(self, workflow_id: str, state: bytes) -> None:
        path = self.path_of(workflow_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(state)
        os.replace(tmp, path)

    async def room(self, workflow_id: str) -> _Room:
        """The running room of a workflow, loading (or seeding) its document on first use."""
        check_workflow_id(workflow_id)
        existing = self._rooms.get(workflow_id)
        if existing is not None:
            return existing
        async with self._lock:
            existing = self._rooms.get(workflow_id)
            if existing is not None:
                return existing
            doc = Doc()
            state = self.read_state(workflow_id)
            if state:
                doc.apply_update(state)
            elif self.seed is not None:
                graph = await self.seed(workflow_id)
                if graph:
                    apply_graph(doc, graph)
            yroom = YRoom(ready=True, ydoc=doc, exception_handler=exception_logger, log=log)
            self._ws.rooms[workflow_id] = yroom
            await self._ws.start_room(yroom)
            room = _Room(self, workflow_id, yroom)
            if not state and is_initialized(doc):
                room._dirty = True
                room.save()
            self._rooms[workflow_id] = room
            return room

    async def serve(self, websocket: WebSocket, workflow_id: str, *, can_write: bool) -> None:
        """Serve an accepted WebSocket in the workflow's room until it disconnects."""
        room = await self.room(workflow_id)
        channel = GuardedChannel(websocket, room, can_write=can_write, limits=self.limits)
        try:
            await room.room.serve(channel)
        finally:
            room.save()

    async def read(self, workflow_id: str) -> dict[str, Any] | None:
        """The draft as graph JSON, or None when the document never held a graph."""
        room = await self.room(workflow_id)
        return doc_to_graph(room.doc) if is_initialized(room.doc) else None

    async def write(self, workflow_id: str, graph: dict[str, Any]) -> None:
        """Replace the draft with ``graph`` (only the differences travel to the editors)."""
        room = await self.room(workflow_id)
        apply_graph(room.doc, graph, origin="rest")
        room.save()

    def flush(self) -> None:
        """Write every changed document now."""
        for room in self._rooms.values():
            room.save()
