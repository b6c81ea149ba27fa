"""The collaboration server: one pycrdt-websocket room per workflow draft, shared by every replica.

Each connection goes through :class:`GuardedChannel`, which enforces what the room itself cannot
know per client: viewers' document updates are dropped (they still sync and share presence), one
message may not exceed ``max_message_bytes``, the document may not grow past
``max_document_bytes``, and document updates are rate limited per connection (a token bucket).
Breaking a limit closes the connection with a 44xx code and a reason; the client's edits stay in
its local document and merge again when it reconnects within the limits.

Rooms are created under one lock: two clients opening a new room at once can otherwise deadlock
in pycrdt-websocket 0.16.5.

The database is the drafts' source of truth (:class:`~api.collab.draftlog.DraftLog`): every change
a room's document takes from its editors or a REST write is appended there, then published
through Redis (:class:`~api.collab.relay.RedisRelay`) to the other replicas, whose rooms apply it
and pass it to their editors. A room opens by subscribing, then reading the database, so it
misses nothing published before or after; REST reads and writes first apply what the database
holds, so they see every replica's persisted edits even before the relay delivers them. A change
that cannot be stored stays queued and is retried; shutdown stores what is queued. Without Redis
(one process) the database alone does it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import Lock
from pycrdt import Channel, Doc, TransactionEvent, YMessageType, YSyncMessageType, merge_updates
from pycrdt.websocket import WebsocketServer, YRoom, exception_logger
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.collab.draftlog import DraftLog
from api.collab.graphdoc import apply_graph, doc_to_graph, is_initialized, pins_of
from api.collab.relay import RedisRelay
from api.db.engine import Database

log = logging.getLogger("gorax.collab")

_WORKFLOW_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

#: Close codes (private range) sent with a reason the editor shows.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_LARGE = 4413
CLOSE_RATE_LIMITED = 4429

#: A Yjs update that changes nothing.
_EMPTY_UPDATE = b"\x00\x00"


@dataclass(frozen=True)
class CollabLimits:
    """Limits of one document and one connection."""

    max_document_bytes: int = 4_000_000
    max_message_bytes: int = 1_000_000
    updates_per_second: float = 60.0
    update_burst: int = 300
    #: Longest wait between retries of storing a change while the database fails.
    max_retry_seconds: float = 5.0
    #: Rows a draft may gather in the database before a room merges them into one.
    compact_after: int = 64


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

    def __init__(self, websocket: WebSocket, room: Room, *, can_write: bool, limits: CollabLimits) -> None:
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
                await self._close(
                    CLOSE_TOO_LARGE, f"message of {len(data)} bytes is over the {self._limits.max_message_bytes} limit"
                )
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


class Room:
    """One workflow's room: its document, size estimate, and the queue of changes to store."""

    def __init__(self, server: CollabServer, tenant_id: str, workflow_id: str, room: YRoom) -> None:
        self.server = server
        self.tenant_id = tenant_id
        self.workflow_id = workflow_id
        self.room = room
        self.size = len(room.ydoc.get_update())
        #: Changes made here and not yet stored, oldest first.
        self._pending: list[bytes] = []
        self._stored = asyncio.Event()
        self._stored.set()
        self._writer: asyncio.Task[None] | None = None
        self._applying_stored = False
        #: Rows this draft has in the database, as far as this room knows.
        self.stored_rows = 0
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

    def apply_stored(self, update: bytes) -> None:
        """Apply an update that is already in the database (relayed or read back): editors
        receive what is new to them, and nothing is stored again."""
        self._applying_stored = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying_stored = False

    def _changed(self, event: TransactionEvent) -> None:
        update = event.update
        self.size += len(update)
        if self._applying_stored or update == _EMPTY_UPDATE:
            return
        self._pending.append(update)
        self._stored.clear()
        self._start_writer()

    def _start_writer(self) -> None:
        if self._pending and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._store_pending())

    async def _store_pending(self) -> None:
        delay = 0.1
        while self._pending:
            batch = list(self._pending)
            try:
                await self.server.store_update(self.tenant_id, self.workflow_id, merge_updates(*batch))
            except IntegrityError:
                # The workflow is gone (deleted with its tenant): there is nothing to store into.
                log.error(
                    "draft changes of a deleted workflow were dropped",
                    extra={"workflow_id": self.workflow_id, "updates": len(batch)},
                )
                del self._pending[: len(batch)]
                continue
            except Exception:
                # Kept queued: an edit is never dropped because the database blinked.
                log.exception("storing a draft change failed; retrying", extra={"workflow_id": self.workflow_id})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.server.limits.max_retry_seconds)
                continue
            del self._pending[: len(batch)]
            delay = 0.1
            self.stored_rows += 1
            if self.stored_rows > self.server.limits.compact_after:
                await self._compact()
        self._stored.set()

    async def _compact(self) -> None:
        try:
            await self.server.log.compact(tenant_id=self.tenant_id, workflow_id=self.workflow_id)
        except Exception:
            # Only the next read is slower; the rows are all still there.
            log.exception("compacting a draft failed", extra={"workflow_id": self.workflow_id})
        self.stored_rows = 1

    async def flush(self) -> None:
        """Return once every change made so far is in the database (and relayed)."""
        self._start_writer()
        await self._stored.wait()

    async def catch_up(self) -> None:
        """Apply what the database holds (other replicas' changes the relay has not brought yet)."""
        updates = await self.server.load(self.tenant_id, self.workflow_id)
        if updates:
            self.apply_stored(merge_updates(*updates))


class CollabServer:
    """Rooms of workflow drafts over pycrdt-websocket, stored in ``database``, relayed through
    Redis at ``redis_url`` to the other replicas when one is given."""

    def __init__(
        self,
        database: Database,
        limits: CollabLimits | None = None,
        seed: SeedLoader | None = None,
        authorize: WorkflowAuthorizer | None = None,
        *,
        redis_url: str | None = None,
        legacy_directory: Path | None = None,
    ) -> None:
        self.log = DraftLog(database)
        self.limits = limits or CollabLimits()
        #: Loads a workflow's stored graph for a document that has never held one.
        self.seed = seed
        #: Checks that a principal may open a workflow's draft (None: nobody may).
        self.authorize = authorize
        #: Where drafts were kept as files before they moved to the database (imported on start).
        self.legacy_directory = legacy_directory
        self.relay = RedisRelay(redis_url, self._relayed, self._resync) if redis_url else None
        self._ws = WebsocketServer(
            rooms_ready=True, auto_clean_rooms=False, exception_handler=exception_logger, log=log
        )
        self._rooms: dict[str, Room] = {}
        #: Relayed updates of rooms being opened, applied once the room exists.
        self._opening: dict[str, list[bytes]] = {}
        self._publishing: set[asyncio.Task[None]] = set()
        self._lock = Lock()

    async def __aenter__(self) -> CollabServer:
        #: The loop the rooms run on (callers from other threads submit work to it).
        self.loop = asyncio.get_running_loop()
        await self._import_draft_files()
        await self._ws.__aenter__()
        if self.relay is not None:
            await self.relay.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.wait_for(self.flush(), timeout=30)
        except TimeoutError:
            log.error(
                "draft changes could not be stored before shutdown",
                extra={"workflows": [r.workflow_id for r in self._rooms.values() if r._pending]},
            )
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)
        if self.relay is not None:
            await self.relay.stop()
        await self._ws.__aexit__(None, None, None)

    async def load(self, tenant_id: str, workflow_id: str) -> list[bytes]:
        """The stored updates of a draft (never writes: a request may hold SQLite's write lock)."""
        return await self.log.load(tenant_id=tenant_id, workflow_id=workflow_id)

    async def _import_draft_files(self) -> None:
        """Store the draft files an older version kept in ``legacy_directory`` (once: an imported
        file is renamed), for the workflows whose draft the database does not hold yet."""
        if self.legacy_directory is None or not self.legacy_directory.is_dir():
            return
        for path in sorted(self.legacy_directory.glob("*.ydoc")):
            workflow_id = path.stem
            try:
                tenant_id = await self.log.tenant_of(workflow_id)
                if tenant_id is None:
                    continue  # a workflow deleted since
                if await self.log.load(tenant_id=tenant_id, workflow_id=workflow_id):
                    # Another replica's file came first; merging a second history could
                    # bring back what was changed since.
                    log.warning(
                        "a draft file was not imported: the database has the draft",
                        extra={"workflow_id": workflow_id, "path": str(path)},
                    )
                    continue
                await self.log.append(tenant_id=tenant_id, workflow_id=workflow_id, update=path.read_bytes())
                path.rename(path.with_suffix(".ydoc.imported"))
                log.info("imported a draft file into the database", extra={"workflow_id": workflow_id})
            except Exception:
                log.exception("importing a draft file failed", extra={"path": str(path)})

    async def store_update(self, tenant_id: str, workflow_id: str, update: bytes) -> None:
        """Append an update to the database, then relay it to the other replicas."""
        await self.log.append(tenant_id=tenant_id, workflow_id=workflow_id, update=update)
        if self.relay is not None:
            await self.relay.publish(tenant_id, workflow_id, update)

    def _relayed(self, tenant_id: str, workflow_id: str, update: bytes) -> None:
        room = self._rooms.get(workflow_id)
        if room is not None and room.tenant_id == tenant_id:
            room.apply_stored(update)
        elif workflow_id in self._opening:
            self._opening[workflow_id].append(update)

    async def _resync(self) -> None:
        """After the relay reconnected: updates sent meanwhile are only in the database."""
        for room in list(self._rooms.values()):
            try:
                await room.catch_up()
            except Exception:
                log.exception("catching up a draft failed", extra={"workflow_id": room.workflow_id})

    async def room(self, workflow_id: str, tenant_id: str) -> Room:
        """The running room of a workflow, loading (or seeding) its document on first use."""
        check_workflow_id(workflow_id)
        existing = self._rooms.get(workflow_id)
        if existing is None:
            async with self._lock:
                existing = self._rooms.get(workflow_id)
                if existing is None:
                    existing = await self._open(workflow_id, tenant_id)
        if existing.tenant_id != tenant_id:
            raise ValueError(f"workflow {workflow_id!r} is not a workflow of tenant {tenant_id!r}")
        return existing

    async def _open(self, workflow_id: str, tenant_id: str) -> Room:
        self._opening[workflow_id] = []
        try:
            # Subscribe before reading: an update is published after it is stored, so each
            # one is either in what we read or among what we receive.
            if self.relay is not None:
                await self.relay.subscribe(tenant_id, workflow_id)
            doc: Doc = Doc()
            updates = await self.load(tenant_id, workflow_id)
            for update in updates:
                doc.apply_update(update)
            seeded = False
            if not updates and self.seed is not None:
                graph = await self.seed(workflow_id)
                if graph:
                    apply_graph(doc, graph)
                    seeded = True
            yroom = YRoom(ready=True, ydoc=doc, exception_handler=exception_logger, log=log)
            self._ws.rooms[workflow_id] = yroom
            await self._ws.start_room(yroom)
            room = Room(self, tenant_id, workflow_id, yroom)
            room.stored_rows = len(updates)
            self._rooms[workflow_id] = room
            for update in self._opening[workflow_id]:
                room.apply_stored(update)
        finally:
            self._opening.pop(workflow_id, None)
        if seeded:
            room._pending.append(doc.get_update())
            room._stored.clear()
            await room.flush()
        return room

    async def serve(self, websocket: WebSocket, workflow_id: str, tenant_id: str, *, can_write: bool) -> None:
        """Serve an accepted WebSocket in the workflow's room until it disconnects."""
        room = await self.room(workflow_id, tenant_id)
        channel = GuardedChannel(websocket, room, can_write=can_write, limits=self.limits)
        try:
            await room.room.serve(channel)
        finally:
            await room.flush()

    async def _document(self, workflow_id: str, tenant_id: str) -> tuple[Doc, Room | None]:
        """The draft document brought up to what the database holds: the open room's, else one
        read from the database."""
        check_workflow_id(workflow_id)
        room = self._rooms.get(workflow_id)
        if room is not None:
            if room.tenant_id != tenant_id:
                raise ValueError(f"workflow {workflow_id!r} is not a workflow of tenant {tenant_id!r}")
            await room.catch_up()
            return room.doc, room
        doc: Doc = Doc()
        for update in await self.load(tenant_id, workflow_id):
            doc.apply_update(update)
        return doc, None

    async def read(self, workflow_id: str, tenant_id: str) -> dict[str, Any] | None:
        """The draft as graph JSON, or None when the document never held a graph."""
        doc, _ = await self._document(workflow_id, tenant_id)
        return doc_to_graph(doc) if is_initialized(doc) else None

    async def write(
        self, workflow_id: str, tenant_id: str, graph: dict[str, Any], *, session: AsyncSession | None = None
    ) -> None:
        """Replace the draft with ``graph``: only the differences are stored and travel to the
        editors of every replica.

        With ``session``, the change is stored in its transaction (with the caller's other
        changes, or not at all) and reaches the rooms once it commits; else it is stored when
        this returns.
        """
        await self.change(workflow_id, tenant_id, lambda doc: apply_graph(doc, graph, origin="rest"), session=session)

    async def pins(self, workflow_id: str, tenant_id: str) -> dict[str, dict[str, Any]]:
        """The draft's pinned outputs by node id."""
        doc, _ = await self._document(workflow_id, tenant_id)
        return pins_of(doc)

    async def change(
        self,
        workflow_id: str,
        tenant_id: str,
        edit: Callable[[Doc], None],
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Apply ``edit`` (which changes the document in place) to the draft, stored as
        :meth:`write` describes."""
        doc, room = await self._document(workflow_id, tenant_id)
        if session is not None:
            await self._write_in(session, doc, workflow_id, tenant_id, edit)
            return
        if room is not None:
            edit(doc)
            await room.flush()
            return
        before = doc.get_state()
        edit(doc)
        change = doc.get_update(before)
        if change != _EMPTY_UPDATE:
            await self.store_update(tenant_id, workflow_id, change)

    async def _write_in(
        self, session: AsyncSession, current: Doc, workflow_id: str, tenant_id: str, edit: Callable[[Doc], None]
    ) -> None:
        draft: Doc = Doc()
        draft.apply_update(current.get_update())
        before = draft.get_state()
        edit(draft)
        change = draft.get_update(before)
        if change == _EMPTY_UPDATE:
            return
        await self.log.append_in(session, tenant_id=tenant_id, workflow_id=workflow_id, update=change)
        outcome: dict[str, bool] = {}

        def rolled_back(_session: Any, _transaction: Any = None) -> None:
            outcome["rolled_back"] = True

        def committed(_session: Any) -> None:
            if not outcome.get("rolled_back"):
                self._stored_elsewhere(tenant_id, workflow_id, change)

        event.listen(session.sync_session, "after_commit", committed, once=True)
        event.listen(session.sync_session, "after_rollback", rolled_back, once=True)

    def _stored_elsewhere(self, tenant_id: str, workflow_id: str, update: bytes) -> None:
        """An update another transaction stored: into the open room, and to the other replicas."""
        room = self._rooms.get(workflow_id)
        if room is not None and room.tenant_id == tenant_id:
            room.apply_stored(update)
        if self.relay is not None:
            task = self.loop.create_task(self.relay.publish(tenant_id, workflow_id, update))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def close_room(self, workflow_id: str) -> None:
        """Store what the room has queued and stop it (its editors are disconnected)."""
        room = self._rooms.pop(workflow_id, None)
        if room is None:
            return
        await room.flush()
        self._ws.rooms.pop(workflow_id, None)
        await room.room.stop()
        if self.relay is not None:
            await self.relay.unsubscribe(room.tenant_id, workflow_id)

    async def delete(self, workflow_id: str, tenant_id: str) -> None:
        """Forget a workflow's draft (after the workflow is deleted for good)."""
        await self.close_room(workflow_id)
        await self.log.delete(tenant_id=tenant_id, workflow_id=workflow_id)

    async def flush(self) -> None:
        """Store every queued change now."""
        for room in list(self._rooms.values()):
            await room.flush()
