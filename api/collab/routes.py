"""``WS /api/v1/workflows/{id}/collab``: the Yjs sync endpoint, and the lifespan that runs rooms.

Mounted like any route module (``api.collab.routes`` in ``ROUTE_MODULES``); the router carries
its lifespan, which FastAPI merges into the app's when the router is included.

Authentication is the API's own (:mod:`api.auth.deps`): the session cookie, or ``?token=`` with
an access token or API key (browsers cannot set headers on a WebSocket), and ``?tenant=`` in
place of the ``X-Tenant-ID`` header. Reading needs ``workflow:read``; only principals with
``workflow:edit`` may change the document. A cookie-authenticated connection must come from the
API's own origin, so another site cannot open a socket with the user's cookie.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, WebSocket
from starlette.datastructures import Headers

from api.auth.deps import _authenticate
from api.auth.permissions import Permission
from api.collab import store
from api.collab.server import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_UNAUTHORIZED,
    CollabHooks,
    CollabLimits,
    CollabServer,
    check_workflow_id,
)
from api.errors import ApiError, Forbidden, NotFound, Unauthorized

log = logging.getLogger("gorax.collab")


@dataclass(frozen=True)
class CollabAccess:
    """Who is connecting and whether they may change the draft."""

    principal: Any
    can_write: bool


class _HandshakeView:
    """What :func:`api.auth.deps._authenticate` reads from a request, built from a handshake."""

    method = "GET"

    def __init__(self, websocket: WebSocket) -> None:
        raw = [(k, v) for k, v in websocket.scope["headers"] if k not in (b"authorization", b"x-tenant-id")]
        token = websocket.query_params.get("token")
        if token:
            raw.append((b"authorization", f"Bearer {token}".encode()))
        else:
            raw.extend((k, v) for k, v in websocket.scope["headers"] if k == b"authorization")
        tenant = websocket.query_params.get("tenant")
        if tenant:
            raw.append((b"x-tenant-id", tenant.encode()))
        else:
            raw.extend((k, v) for k, v in websocket.scope["headers"] if k == b"x-tenant-id")
        self.headers = Headers(raw=raw)
        self.cookies = websocket.cookies if "authorization" not in self.headers else {}
        self.client = websocket.client
        self.url = websocket.url


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if not origin:
        return True  # not a browser
    host = websocket.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def authorize(websocket: WebSocket, workflow_id: str) -> CollabAccess:
    """Authenticate the handshake and check the principal may open this workflow's draft.

    Raises the API's ``Unauthorized``/``Forbidden``/``NotFound`` errors.
    """
    view = _HandshakeView(websocket)
    if view.cookies and not _same_origin(websocket):
        raise Forbidden("cross-origin collaboration connection refused", details={"header": "Origin"})
    state = websocket.app.state.gorax
    principal = await _authenticate(state, view)  # type: ignore[arg-type]
    if principal.tenant_id is None or not principal.can(Permission.WORKFLOW_READ):
        raise Forbidden("workflow:read is required", details={"permission": "workflow:read"})
    server: CollabServer | None = getattr(websocket.app.state, "collab", None)
    if server is None or server.authorize is None:
        # Never open a draft that nothing checked belongs to the principal's tenant.
        raise Forbidden(
            "collaboration cannot check workflows here: no draft can be opened", details={"workflow_id": workflow_id}
        )
    await server.authorize(principal, workflow_id)
    return CollabAccess(principal=principal, can_write=principal.can(Permission.WORKFLOW_EDIT))


@asynccontextmanager
async def collab_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the collaboration rooms for the app's lifetime, with the hooks ``create_app`` gave
    (``app.state.collab_hooks``): drafts in the app's database, relayed to the other replicas
    through the API's Redis when one is set."""
    state = getattr(app.state, "gorax", None)
    if state is None:
        # Drafts live in the app's database: an app without create_app's state has none.
        log.warning("collaboration is off: the app has no Gorax state (build it with create_app)")
        yield
        return
    hooks: CollabHooks | None = getattr(app.state, "collab_hooks", None)
    server = CollabServer(
        state.db,
        getattr(app.state, "collab_limits", None) or CollabLimits(),
        seed=hooks.load_seed if hooks else None,
        authorize=hooks.authorize_workflow if hooks else None,
        redis_url=state.config.redis_url,
        legacy_directory=state.settings.state_dir / "collab",
    )
    async with server:
        store.set_server(server)
        app.state.collab = server
        try:
            yield
        finally:
            store.set_server(None)


router = APIRouter(tags=["collaboration"], lifespan=collab_lifespan)


@router.websocket("/workflows/{workflow_id}/collab")
async def collaborate(websocket: WebSocket, workflow_id: str) -> None:
    """Sync one workflow draft (Yjs protocol) with presence; viewers receive but cannot change it."""
    await websocket.accept()
    try:
        check_workflow_id(workflow_id)
        access = await authorize(websocket, workflow_id)
    except (ApiError, ValueError) as exc:
        code = (
            CLOSE_UNAUTHORIZED
            if isinstance(exc, Unauthorized)
            else CLOSE_NOT_FOUND
            if isinstance(exc, (NotFound, ValueError))
            else CLOSE_FORBIDDEN
        )
        await websocket.close(code=code, reason=str(exc)[:120])
        return
    server: CollabServer = websocket.app.state.collab
    await server.serve(websocket, workflow_id, access.principal.tenant_id, can_write=access.can_write)
