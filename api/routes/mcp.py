"""``/mcp``: the tenant's MCP server (streamable HTTP), served by :mod:`api.mcp`.

The route authenticates like every API route (``Authorization: Bearer gx_...``, or an access
token), counts the request against the tenant's ``mcp`` rate limit, and needs
``workflow:read``; whether the caller may also run workflows (``tools/call``) is answered by
``Allows(execution:run)`` and handed to the MCP handlers with the caller. The server is
stateless, so only ``POST`` is served: there is no session to stream (``GET``) or end
(``DELETE``), and both are 405.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.types import Receive, Scope, Send

from api.auth.deps import Allows, Requires, audit_context
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.mcp import MCP_PATH, SCOPE_KEY, McpCaller, McpGateway

ROOT = True
router = APIRouter(tags=["mcp"])


class _Transport(Response):
    """The response of ``/mcp``: the SDK's transport answers the request itself."""

    def __init__(self, gateway: McpGateway) -> None:
        super().__init__()
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gateway.handle(scope, receive, send)


@router.api_route(MCP_PATH, methods=["POST"], include_in_schema=False)
async def mcp_endpoint(
    request: Request,
    may_run: bool = Allows(Permission.EXECUTION_RUN),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> Response:
    """MCP over streamable HTTP: ``tools/list`` and ``tools/call`` of the tenant's workflow tools."""
    request.scope[SCOPE_KEY] = McpCaller(principal=principal, may_run=may_run, context=audit_context(request))
    return _Transport(request.app.state.mcp)
