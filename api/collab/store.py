"""The draft documents as the REST API sees them: ``read_draft`` and ``write_draft``.

They go through the collaboration server running on the caller's event loop (the API's
lifespan starts it), so a REST write reaches the editors of every replica and a REST read sees
what every replica stored.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.collab.graphdoc import set_pin
from api.collab.server import CollabServer

#: The running collaboration server of each event loop: an app serves its requests on one loop,
#: so several apps in one process (tests, embedded use) never reach each other's rooms.
_servers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CollabServer] = weakref.WeakKeyDictionary()


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


def _server() -> CollabServer:
    server = get_server()
    if server is None:
        raise RuntimeError(
            "no collaboration server runs on this event loop: drafts are read and "
            "written inside the API (its lifespan starts the server)"
        )
    return server


async def read_draft(workflow_id: str, *, tenant_id: str) -> dict[str, Any] | None:
    """The workflow's draft as ``gorax/graph@1`` JSON, or None when no draft document exists yet."""
    return await _server().read(workflow_id, tenant_id)


async def write_draft(
    workflow_id: str, graph: dict[str, Any], *, tenant_id: str, session: AsyncSession | None = None
) -> None:
    """Make the draft hold ``graph``; connected editors receive only what changed.

    With ``session`` the change is stored in its transaction and reaches the editors when it
    commits; without, it is stored when this returns. Raises ``ValueError`` when ``graph`` lacks
    node ids or edge ends.
    """
    await _server().write(workflow_id, tenant_id, graph, session=session)


async def read_pins(workflow_id: str, *, tenant_id: str) -> dict[str, dict[str, Any]]:
    """The draft's pinned outputs by node id (empty when none)."""
    return await _server().pins(workflow_id, tenant_id)


async def write_pin(
    workflow_id: str,
    node_id: str,
    pin: dict[str, Any] | None,
    *,
    tenant_id: str,
    session: AsyncSession | None = None,
) -> None:
    """Pin a node's output in the draft document (``pin``), or unpin it (None); connected editors
    see it as they see graph edits. Raises ``ValueError`` when ``pin`` cannot be stored."""
    await _server().change(
        workflow_id, tenant_id, lambda doc: set_pin(doc, node_id, pin, origin="rest"), session=session
    )


async def delete_draft(workflow_id: str, *, tenant_id: str) -> None:
    """Forget a workflow's draft document (after the workflow is deleted for good)."""
    await _server().delete(workflow_id, tenant_id)
