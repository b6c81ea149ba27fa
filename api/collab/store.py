"""The draft documents as the REST API sees them: ``read_draft`` and ``write_draft``.

With the API running they go through the live room (so editors see a REST write at once);
without it (CLI, tests) they read and write the persisted document file directly.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Any

from pycrdt import Doc

from api.collab.graphdoc import apply_graph, doc_to_graph, is_initialized
from api.collab.server import CollabServer, check_workflow_id

#: The running collaboration server of each event loop: an app serves its requests on one loop,
#: so several apps in one process (tests, embedded use) never reach each other's rooms.
_servers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CollabServer]" = weakref.WeakKeyDictionary()
_file_locks: dict[str, asyncio.Lock] = {}


def set_server(server: CollabServer | None) -> None:
    """Register (or, with None, forget) the collaboration server of the running loop (the lifespan does this)."""
    loop = asyncio.get_running_loop()
    if server is None:
        _servers.pop(loop, None)
    else:
        _servers[loop] = server


def get_server() -> CollabServer | None:
    """The collaboration server running on this event loop, if any."""
    try:
        return _servers.get(asyncio.get_running_loop())
    except RuntimeError:
        return None


def _directory() -> Path:
    from flows.settings import get_settings

    return get_settings().state_dir / "collab"


def _file(workflow_id: str) -> Path:
    return _directory() / f"{check_workflow_id(workflow_id)}.ydoc"


async def read_draft(workflow_id: str) -> dict[str, Any] | None:
    """The workflow's draft as ``gorax/graph@1`` JSON, or None when no draft document exists yet."""
    server = get_server()
    if server is not None:
        return await server.read(workflow_id)
    try:
        state = _file(workflow_id).read_bytes()
    except FileNotFoundError:
        return None
    doc = Doc()
    doc.apply_update(state)
    return doc_to_graph(doc) if is_initialized(doc) else None


async def write_draft(workflow_id: str, graph: dict[str, Any]) -> None:
    """Make the draft hold ``graph``; connected editors receive only what changed.

    Raises ``ValueError`` when ``graph`` lacks node ids or edge ends.
    """
    server = get_server()
    if server is not None:
        await server.write(workflow_id, graph)
        return
    lock = _file_locks.setdefault(workflow_id, asyncio.Lock())
    async with lock:
        path = _file(workflow_id)
        doc = Doc()
        try:
            doc.apply_update(path.read_bytes())
        except FileNotFoundError:
            pass
        apply_graph(doc, graph, origin="rest")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(doc.get_update())
        tmp.replace(path)


async def delete_draft(workflow_id: str) -> None:
    """Forget a workflow's draft document (after the workflow is deleted for good)."""
    server = get_server()
    if server is not None:
        room = server._rooms.pop(workflow_id, None)
        if room is not None:
            await room.room.stop()
        path = server.path_of(workflow_id)
    else:
        path = _file(workflow_id)
    path.unlink(missing_ok=True)
