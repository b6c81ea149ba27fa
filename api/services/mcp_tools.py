"""Workflows as MCP tools: the per-workflow setting, the tenant's tools and one call of a tool.

A workflow opts in with ``mcp_tool: {enabled, name, description}`` (``PUT
/workflows/{id}/mcp-tool``, audited). The tenant's MCP server (:mod:`api.mcp`) lists the
published, deployed workflows whose setting is enabled; a tool's input schema is what the trigger
a call fires declares (:meth:`translator.nodetypes.TriggerType.input_schema`), else any object.
Every query here filters on the tenant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, NotFound, ValidationFailed
from api.models.workflows import Workflow, WorkflowVersion
from api.services import audit
from api.services.audit import AuditContext
from api.services.workflows import get_workflow
from translator.nodetypes import TriggerType, get_registry

#: What MCP clients accept as a tool name (letters, digits, ``_`` and ``-``; at most 64).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_DESCRIPTION = 2000
#: The input schema of a tool whose trigger declares none: any JSON object.
OPEN_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


def default_name(workflow_name: str) -> str:
    """A tool name made from a workflow's name (``Send invoice`` -> ``send_invoice``)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", workflow_name.strip()).strip("_").lower()
    return (name or "workflow")[:64]


def setting_of(workflow: Workflow) -> dict[str, Any]:
    """The workflow's MCP tool setting, with defaults when it was never set."""
    stored = workflow.mcp_tool or {}
    return {
        "enabled": bool(stored.get("enabled", False)),
        "name": stored.get("name") or default_name(workflow.name),
        "description": stored.get("description") or "",
    }


def _invalid(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"mcp_tool.{path}: {message}", details={"errors": [{"path": f"mcp_tool.{path}", "message": message}]}
    )


async def set_setting(
    session: AsyncSession,
    *,
    tenant_id: str,
    workflow_id: str,
    enabled: bool,
    name: str | None,
    description: str | None,
    context: AuditContext,
) -> Workflow:
    """Set a workflow's MCP tool setting (unique name among the tenant's enabled tools); audited
    in the caller's transaction."""
    workflow = await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    chosen = name if name is not None and name != "" else default_name(workflow.name)
    if not NAME_PATTERN.match(chosen):
        raise _invalid("name", f"{chosen!r} is not a tool name: 1 to 64 letters, digits, '_' or '-'")
    text = (description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise _invalid("description", f"at most {MAX_DESCRIPTION} characters ({len(text)} given)")
    if enabled:
        others = (
            await session.execute(
                select(Workflow.id, Workflow.name, Workflow.mcp_tool).where(
                    Workflow.tenant_id == tenant_id, Workflow.id != workflow_id, Workflow.mcp_tool.is_not(None)
                )
            )
        ).all()
        for other_id, other_name, other in others:
            if (other or {}).get("enabled") and (other or {}).get("name") == chosen:
                raise Conflict(
                    f"workflow {other_name!r} already is the MCP tool {chosen!r}",
                    details={"field": "mcp_tool.name", "workflow_id": other_id},
                )
    before = setting_of(workflow) if workflow.mcp_tool is not None else None
    after = {"enabled": enabled, "name": chosen, "description": text}
    workflow.mcp_tool = after
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.mcp_tool",
        context=context,
        resource_type="workflow",
        resource_id=workflow_id,
        before=before,
        after=after,
    )
    return workflow


@dataclass(frozen=True)
class Tool:
    """A published workflow as an MCP tool."""

    name: str
    description: str
    input_schema: dict[str, Any]
    workflow_id: str
    workflow_name: str
    deployment_id: str
    version: int


def _fired_trigger(graph: dict[str, Any]) -> tuple[type[TriggerType], dict[str, Any]] | None:
    """The trigger a run without a named trigger fires (the one that fires by default, else the
    first), as its type and config; None when the graph has no trigger the registry knows."""
    registry = get_registry()
    found: list[tuple[type[TriggerType], dict[str, Any]]] = []
    for node in graph.get("nodes") or []:
        if not isinstance(node, dict) or node.get("disabled"):
            continue
        node_type = registry.get(str(node.get("type")), node.get("version"))
        if node_type is not None and issubclass(node_type, TriggerType):
            found.append((node_type, node.get("config") or {}))
    return next((f for f in found if f[0].fires_by_default), found[0] if found else None)


def input_schema_of(graph: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema: the fired trigger's declared schema when it describes an object,
    else any JSON object (MCP tool arguments are always an object)."""
    fired = _fired_trigger(graph)
    if fired is None:
        return dict(OPEN_OBJECT)
    node_type, config = fired
    try:
        schema = node_type.input_schema(node_type.Config.model_validate(config))
    except ValueError:
        return dict(OPEN_OBJECT)
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return dict(OPEN_OBJECT)
    return schema


async def _published(session: AsyncSession, tenant_id: str) -> list[tuple[Workflow, WorkflowVersion]]:
    rows = (
        await session.execute(
            select(Workflow, WorkflowVersion)
            .join(
                WorkflowVersion,
                (WorkflowVersion.workflow_id == Workflow.id) & (WorkflowVersion.number == Workflow.latest_version),
            )
            .where(
                Workflow.tenant_id == tenant_id,
                WorkflowVersion.tenant_id == tenant_id,
                Workflow.mcp_tool.is_not(None),
                Workflow.deployment_id.is_not(None),
                Workflow.status != "archived",
            )
            .order_by(Workflow.name, Workflow.id)
        )
    ).all()
    return [(w, v) for w, v in rows if (w.mcp_tool or {}).get("enabled")]


def _tool(workflow: Workflow, version: WorkflowVersion) -> Tool:
    setting = setting_of(workflow)
    return Tool(
        name=setting["name"],
        description=setting["description"] or workflow.description or f"Runs the workflow {workflow.name!r}.",
        input_schema=input_schema_of(version.graph),
        workflow_id=workflow.id,
        workflow_name=workflow.name,
        deployment_id=str(workflow.deployment_id),
        version=version.number,
    )


async def list_tools(session: AsyncSession, *, tenant_id: str) -> list[Tool]:
    """The tenant's tools: published, deployed, not archived workflows that opted in."""
    return [_tool(w, v) for w, v in await _published(session, tenant_id)]


async def find_tool(session: AsyncSession, *, tenant_id: str, name: str) -> Tool:
    """The tenant's tool called ``name``; NotFound otherwise (another tenant's tools included)."""
    for tool in await list_tools(session, tenant_id=tenant_id):
        if tool.name == name:
            return tool
    raise NotFound(f"no tool {name!r}", details={"tool": name})
