"""A workflow's MCP tool setting: whether its published version is a tool of the tenant's MCP
server (``/mcp``), under which name and description."""

from __future__ import annotations

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.models.workflows import Workflow
from api.services import mcp_tools as service
from api.services.workflows import get_workflow

router = APIRouter(tags=["mcp"])
WorkflowId = Path(max_length=64, description="The workflow's id.")


class McpToolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(description="Whether the published version is an MCP tool.")
    name: str | None = Field(
        default=None, max_length=64, description="The tool's name (default: made from the workflow's name)."
    )
    description: str | None = Field(
        default=None, max_length=service.MAX_DESCRIPTION, description="What the tool does, for the calling model."
    )


class McpToolPublic(BaseModel):
    workflow_id: str
    enabled: bool
    name: str
    description: str
    published: bool = Field(description="Whether the workflow has a deployed published version to call.")


def _public(workflow: Workflow) -> McpToolPublic:
    return McpToolPublic(
        workflow_id=workflow.id,
        published=bool(workflow.deployment_id) and workflow.status != "archived",
        **service.setting_of(workflow),
    )


@router.get("/workflows/{workflow_id}/mcp-tool", response_model=McpToolPublic)
async def get_mcp_tool(
    session: TenantSession, workflow_id: str = WorkflowId, principal: Principal = Requires(Permission.WORKFLOW_READ)
) -> McpToolPublic:
    """The workflow's MCP tool setting (disabled, with a name from the workflow's, when never set)."""
    workflow = await get_workflow(session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id)
    return _public(workflow)


@router.put("/workflows/{workflow_id}/mcp-tool", response_model=McpToolPublic)
async def set_mcp_tool(
    session: TenantSession,
    context: AuditCtx,
    body: McpToolBody = Body(),
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_EDIT),
) -> McpToolPublic:
    """Opt the workflow in or out of the tenant's MCP tools (audited: ``workflow.mcp_tool``);
    409 when another workflow already is an enabled tool of that name."""
    workflow = await service.set_setting(
        session,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        enabled=body.enabled,
        name=body.name,
        description=body.description,
        context=context,
    )
    await session.commit()
    return _public(workflow)
