"""A run's log lines: ``GET /api/v1/executions/{id}/logs`` (paged) and
``WS /api/v1/executions/{id}/logs/stream`` (backlog, then live until the run is final).

Both take the same filters: ``level`` (minimum: debug, info, warning, error), ``q`` (text in the
message or node id, any case) and ``node`` (one node id). The socket authenticates as the run's
events socket does (``?token=`` or the same-origin session cookie, ``?tenant=``), needs
``execution:read`` and closes a run of another tenant as not found (4404); a bad filter closes it
with 4400 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from api.auth.deps import Requires
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import ApiError, BadRequest, NotFound, Unauthorized
from api.prefect import PrefectDep, get_prefect
from api.routes.execution_events import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_UNAUTHORIZED, _principal
from api.routes.executions import ExecutionId
from api.schemas import Page
from api.services import run_logs
from api.services.executions import get_run

router = APIRouter(tags=["executions"])

CLOSE_BAD_REQUEST = 4400

LevelQuery = Query(default=None, max_length=10, description="Minimum level: debug, info, warning or error.")
SearchQuery = Query(default=None, max_length=200, description="Text the message (or node id) contains, any case.")
NodeQuery = Query(default=None, max_length=200, description="Only this node's lines.")


class LogLine(BaseModel):
    """One log line of a run (masked)."""

    id: str = Field(description="Prefect's log id.")
    ts: datetime = Field(description="When it was logged.")
    level: Literal["debug", "info", "warning", "error", "critical"]
    node_id: str | None = Field(description="The node that logged it; null for the run's own lines.")
    logger: str = Field(description="The logger's name (prefect.flow_runs, prefect.task_runs, ...).")
    message: str


@router.get("/executions/{execution_id}/logs", response_model=Page[LogLine])
async def read_execution_logs(
    prefect: PrefectDep,
    execution_id: str = ExecutionId,
    level: str | None = LevelQuery,
    q: str | None = SearchQuery,
    node: str | None = NodeQuery,
    limit: int = Query(default=100, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=20),
    principal: Principal = Requires(Permission.EXECUTION_READ),
) -> Page[LogLine]:
    """The run's log lines, oldest first, filtered by level, text and node (masked).

    The same lines follow live on ``WS /api/v1/executions/{id}/logs/stream`` (same filters).
    """
    if cursor is not None and (not cursor.isdigit() or len(cursor) > 12):
        raise BadRequest("cursor is not one this endpoint returned", details={"field": "cursor"})
    flt = run_logs.LineFilter(level=level, q=q, node=node)
    run = await get_run(prefect, tenant_id=principal.required_tenant_id(), execution_id=execution_id)
    lines, following = await run_logs.read_lines(prefect, run, flt, cursor=int(cursor or 0), limit=limit)
    return Page(
        items=[LogLine(**line) for line in lines], next_cursor=str(following) if following is not None else None
    )


@router.websocket("/executions/{execution_id}/logs/stream")
async def execution_logs_stream(
    websocket: WebSocket,
    execution_id: str,
    level: str | None = None,
    q: str | None = None,
    node: str | None = None,
) -> None:
    """``{type: "line", id, ts, level, node_id, logger, message}`` per line, then ``{type: "end", status}``."""
    await websocket.accept()
    try:
        flt = run_logs.LineFilter(level=level, q=(q or "")[:200], node=(node or "")[:200])
        principal = await _principal(websocket)
        if principal.tenant_id is None or not principal.can(Permission.EXECUTION_READ):
            await websocket.close(code=CLOSE_FORBIDDEN, reason="execution:read is required")
            return
        prefect = get_prefect(websocket)
        run = await get_run(prefect, tenant_id=principal.tenant_id, execution_id=execution_id)
        async for message in run_logs.follow_lines(prefect, run, flt):
            await websocket.send_json(message)
    except ApiError as exc:
        code = (
            CLOSE_UNAUTHORIZED
            if isinstance(exc, Unauthorized)
            else CLOSE_NOT_FOUND
            if isinstance(exc, NotFound)
            else CLOSE_BAD_REQUEST
            if isinstance(exc, BadRequest)
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
