"""MCP servers as the editor sees them: "List tools" of an agent's MCP tool source."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth.deps import Requires, StateDep
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadGateway, ValidationFailed
from blocks.errors import CredentialError
from blocks.loader import load_credential
from blocks.redact import mask
from flows import McpError, list_mcp_tools

router = APIRouter(tags=["mcp"])


class McpServerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000, description="Streamable HTTP endpoint.")
    stdio: str | None = Field(default=None, max_length=100, description="A stdio server the operator declared.")

    @model_validator(mode="after")
    def _one(self) -> McpServerRef:
        if (self.url is None) == (self.stdio is None):
            raise ValueError("set exactly one of 'url' and 'stdio'")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("'url' must be an http or https URL with a host")
        return self


class McpToolsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: McpServerRef
    credential: str | None = Field(default=None, max_length=63, description="An http-auth credential of the tenant.")


class McpTool(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class McpTools(BaseModel):
    tools: list[McpTool]


@router.post("/mcp/tools", response_model=McpTools)
async def list_tools(
    body: McpToolsRequest, state: StateDep, principal: Principal = Requires(Permission.WORKFLOW_EDIT)
) -> McpTools:
    """The tools an MCP server offers now (fetched on demand, never cached): an agent's tool
    source in the editor. 422 for an unknown credential, 502 when the server cannot be listed."""
    tenant_id = principal.required_tenant_id()
    headers: dict[str, str] = {}
    if body.credential:
        try:
            block = await load_credential(body.credential, tenant_id=tenant_id)
        except CredentialError as exc:
            raise ValidationFailed(
                mask(str(exc)),
                details={"errors": [{"field": "credential", "path": "credential", "code": "unknown_credential"}]},
            ) from None
        make_headers = getattr(block, "headers", None)
        if not callable(make_headers):
            raise ValidationFailed(
                f"credential {body.credential!r} is not an http-auth credential",
                details={"errors": [{"field": "credential", "path": "credential", "code": "wrong_type"}]},
            )
        headers = dict(make_headers())
    runtime = state.settings.runtime
    if body.server.stdio is not None:
        try:
            runtime.mcp_stdio_server(body.server.stdio)
        except LookupError as exc:
            raise ValidationFailed(
                str(exc), details={"errors": [{"field": "stdio", "path": "server.stdio", "code": "unknown_server"}]}
            ) from None
    try:
        tools = await list_mcp_tools(
            url=body.server.url,
            stdio=body.server.stdio,
            headers=headers,
            allowed=runtime.allowed_networks,
            runtime=runtime,
        )
    except McpError as exc:
        raise BadGateway(mask(str(exc)), details={"server": body.server.url or f"stdio:{body.server.stdio}"}) from None
    return McpTools(tools=[McpTool.model_validate(t) for t in tools])
