"""Gorax as an MCP server: a tenant's published workflows that opted in, as tools.

``/mcp`` (:mod:`api.routes.mcp`) speaks MCP's streamable HTTP transport through the ``mcp``
SDK's session manager, stateless with JSON responses: every POST stands alone, so any API
replica answers it and nothing is kept between requests. The route authenticates the Gorax API
key (or access token) and counts the request against the tenant's rate limit like every API
route; it hands the SDK the request with an :class:`McpCaller` (who, and whether they may run
workflows) in its scope, which the handlers here read.

- ``tools/list``: the tenant's tools (:func:`api.services.mcp_tools.list_tools`).
- ``tools/call``: runs the tool's published workflow with the arguments as its input (needs
  ``execution:run``; counts as an execution against the ``execute`` rate limit and the run
  quota), waits up to ``GORAX_MCP_CALL_WAIT_SECONDS`` and answers the masked output, or the run
  id when the run takes longer. Every call is audited (``mcp.tool_call``: who, tool, run id).
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import jsonschema
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.types import Receive, Scope, Send

from api.auth.principal import Principal
from api.errors import ApiError
from api.prefect import runs as prefect_runs
from api.services import audit, mcp_tools, quotas
from api.services import executions as runs
from api.services.audit import AuditContext
from api.state import AppState
from blocks.redact import mask

log = logging.getLogger("gorax.api.mcp")

#: The MCP server's path on the API.
MCP_PATH = "/mcp"
#: Where the route leaves the caller in the request's ASGI scope.
SCOPE_KEY = "gorax.mcp_caller"
#: JSON-RPC error codes of ours (the -32000..-32099 range is the server's).
FORBIDDEN = -32003
RATE_LIMITED = -32029
NOT_FOUND = -32004
API_ERROR = -32000
_API_CODES = {403: FORBIDDEN, 404: NOT_FOUND, 429: RATE_LIMITED}


@dataclass(frozen=True)
class McpCaller:
    """Who sends an MCP request, and what the route's dependencies decided they may do."""

    principal: Principal
    may_run: bool
    context: AuditContext

    @property
    def tenant_id(self) -> str:
        return self.principal.required_tenant_id()


def api_error(exc: ApiError) -> MCPError:
    """An API error as the MCP error a client sees (the API's code and details in ``data``)."""
    code = _API_CODES.get(exc.status_code, API_ERROR)
    return MCPError(code=code, message=exc.message, data={"code": exc.code, "details": json_safe(exc.details)})


def jsonrpc_error(exc: ApiError) -> dict[str, Any]:
    """The JSON-RPC error body of an API error raised before the MCP server saw the request
    (authentication, rate limit): the MCP client reads it as an :class:`MCPError`."""
    error = api_error(exc)
    return {"jsonrpc": "2.0", "id": None, "error": error.error.model_dump(mode="json", exclude_none=True)}


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON (dates and other values as their text)."""
    return json.loads(json.dumps(value, default=str))


def _caller(ctx: Any) -> McpCaller:
    request = ctx.request
    caller = request.scope.get(SCOPE_KEY) if request is not None else None
    if not isinstance(caller, McpCaller):  # only reachable through the route, which sets it
        raise MCPError(code=FORBIDDEN, message="authentication required")
    return caller


class McpGateway:
    """The MCP server of one API app and the SDK's session manager that serves it."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.server: Server[Any] = Server(
            "gorax",
            version="1",
            instructions="Each tool runs one of this tenant's published workflows with the arguments as its input.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self.sessions = StreamableHTTPSessionManager(self.server, stateless=True, json_response=True)

    def run(self) -> AbstractAsyncContextManager[None]:
        """The session manager's lifetime (entered once, by the app's lifespan)."""
        return self.sessions.run()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request of the transport (the route put the caller in ``scope``)."""
        await self.sessions.handle_request(scope, receive, send)

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        caller = _caller(ctx)
        async with self.state.db.tenant_scope(tenant_id=caller.tenant_id) as session:
            tools = await mcp_tools.list_tools(session, tenant_id=caller.tenant_id)
        return types.ListToolsResult(
            tools=[types.Tool(name=t.name, description=t.description, input_schema=t.input_schema) for t in tools]
        )

    async def _audit(self, caller: McpCaller, tool: str, *, workflow_id: str | None, **details: Any) -> None:
        outcome = details.pop("outcome", "success")
        await audit.record_now(
            self.state.db,
            tenant_id=caller.tenant_id,
            action="mcp.tool_call",
            context=caller.context,
            resource_type="workflow" if workflow_id else None,
            resource_id=workflow_id,
            outcome=outcome,
            details={"tool": tool, **details},
        )

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        caller = _caller(ctx)
        name = params.name
        arguments = params.arguments or {}
        if not caller.may_run:
            await self._audit(caller, name, workflow_id=None, outcome="denied", permission="execution:run")
            raise MCPError(
                code=FORBIDDEN,
                message="execution:run is required to call a tool",
                data={"code": "FORBIDDEN", "permission": "execution:run", "role": caller.principal.role},
            )
        try:
            return await self._run_tool(caller, name, arguments)
        except ApiError as exc:
            raise api_error(exc) from None

    async def _run_tool(self, caller: McpCaller, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        state, tenant_id = self.state, caller.tenant_id
        prefect = state.prefect
        if prefect is None:  # only between the app's start and its lifespan
            raise MCPError(code=API_ERROR, message="the API is starting; retry")
        decision = await state.limiter.hit_class(f"tenant:{tenant_id}", "execute")
        if not decision.allowed:
            raise MCPError(
                code=RATE_LIMITED,
                message="rate limit of executions exceeded; retry later",
                data={"code": "RATE_LIMITED", "limit": decision.limit, "reset": decision.reset},
            )
        async with state.db.tenant_scope(tenant_id=tenant_id) as session:
            tool = await mcp_tools.find_tool(session, tenant_id=tenant_id, name=name)
            problems = sorted(
                jsonschema.validators.validator_for(tool.input_schema)(tool.input_schema).iter_errors(arguments),
                key=lambda e: list(e.absolute_path),
            )
            if problems:
                where = "/".join(map(str, problems[0].absolute_path)) or "(root)"
                raise MCPError(
                    code=types.INVALID_PARAMS,
                    message=f"arguments of tool {name!r} do not match its input schema: {where}: {problems[0].message}",
                    data={"tool": name, "path": where},
                )
            await quotas.check_new_run(session, prefect, tenant_id=tenant_id, config=state.config)
        run = await runs.start_run(
            prefect,
            tenant_id=tenant_id,
            workflow_id=tool.workflow_id,
            deployment_id=tool.deployment_id,
            trigger=arguments,
            trigger_type="mcp",
        )
        execution_id = str(run.id)
        await self._audit(caller, name, workflow_id=tool.workflow_id, execution_id=execution_id, version=tool.version)
        final = await prefect_runs.wait_for_final(prefect, run.id, state.config.mcp_call_wait_seconds)
        if final is None:
            started = {"execution_id": execution_id, "status": "running"}
            return types.CallToolResult(
                content=[
                    types.TextContent(
                        text=f"The run {execution_id} is still going; read it with GET /api/v1/executions/{execution_id}."
                    )
                ],
                structured_content=started,
            )
        status = runs.status_of(final.state)
        if status != "completed":
            error = mask(final.state.message if final.state is not None else None) or status
            return types.CallToolResult(
                content=[types.TextContent(text=f"The run {execution_id} ended {status}: {error}")],
                structured_content={"execution_id": execution_id, "status": status, "error": error},
                is_error=True,
            )
        output = json_safe(mask(await runs.run_output(final)))
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(output, ensure_ascii=False))],
            structured_content={"execution_id": execution_id, "status": status, "output": output},
        )
