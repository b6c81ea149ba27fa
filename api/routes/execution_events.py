"""``WS /api/v1/executions/{id}/events``: node state changes of a run, live, for the editor.

Authentication as for the collaboration socket: ``?token=`` (access token or API key) or the
session cookie from the API's own origin, ``?tenant=`` for the tenant; ``execution:read`` is
required and a run of another tenant is closed as not found.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.auth.deps import _authenticate
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.collab.routes import _HandshakeView, _same_origin
from api.errors import ApiError, Forbidden, NotFound, Unauthorized
from api.prefect import get_prefect
from api.services.executions import get_run
from api.services.run_events import node_events

router = APIRouter(tags=["executions"])

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


async def _principal(websocket: WebSocket) -> Principal:
    view = _HandshakeView(websocket)
    if view.cookies and not _same_origin(websocket):
        raise Forbidden("cross-origin connection refused", details={"header": "Origin"})
    return await _authenticate(websocket.app.state.gorax, view)  # type: ignore[arg-type]


@router.websocket("/executions/{execution_id}/events")
async def execution_events(websocket: WebSocket, execution_id: str) -> None:
    """Stream ``{node_id, status, at, ...}`` per node state change, then ``{type: "run", status}``."""
    await websocket.accept()
    try:
        principal = await _principal(websocket)
        if principal.tenant_id is None or not principal.can(Permission.EXECUTION_READ):
            await websocket.close(code=CLOSE_FORBIDDEN, reason="execution:read is required")
            return
        prefect = get_prefect(websocket)
        run = await get_run(prefect, tenant_id=principal.tenant_id, execution_id=execution_id)
        async for message in node_events(run, client=prefect):
            await websocket.send_json(message)
    except ApiError as exc:
        code = (
            CLOSE_UNAUTHORIZED
            if isinstance(exc, Unauthorized)
            else CLOSE_NOT_FOUND
            if isinstance(exc, NotFound)
            else CLOSE_FORBIDDEN
        )
        await websocket.close(code=code, reason=exc.message[:120])
        return
    except WebSocketDisconnect:
        return
    try:
        await websocket.close()
    except WebSocketDisconnect:
        pass  # the client left first, having read the final message
