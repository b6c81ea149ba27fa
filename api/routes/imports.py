"""Imports from other tools: ``POST /imports/n8n`` makes a draft workflow from an n8n export."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, Field

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import ValidationFailed
from api.services import audit
from api.services import workflows as service
from api.workflow_schemas import check_tags
from flows.importers.n8n import N8nImportError, import_n8n

router = APIRouter(prefix="/imports", tags=["imports"])


class ImportResult(BaseModel):
    """The draft workflow an import created and what the import found."""

    workflow_id: str = Field(description="Id of the new draft workflow.")
    name: str = Field(description="Its name.")
    report: dict[str, Any] = Field(
        description="mapped nodes, placeholders (with reasons), expressions not translated "
        "(node id and field path), credentials needed (name and Gorax type), notes, skipped items."
    )


@router.post("/n8n", response_model=ImportResult, status_code=status.HTTP_201_CREATED)
async def import_n8n_workflow(
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    document: Any = Body(description="An n8n workflow as n8n exports it (nodes, connections, ...)."),
    name: str | None = Query(default=None, max_length=200, description="Name of the draft (default: n8n's)."),
    principal: Principal = Requires(Permission.WORKFLOW_CREATE),
) -> ImportResult:
    """Create a draft workflow in the caller's tenant from an n8n workflow JSON.

    Nodes without a Gorax equivalent become placeholders (the draft validates; publishing refuses
    it until they are replaced); the report lists them with the reason. 422 names the JSON path
    when the body is not an n8n workflow.
    """
    try:
        result = import_n8n(document, name=name.strip() if name and name.strip() else None)
    except N8nImportError as exc:
        raise ValidationFailed(
            f"not an n8n workflow: {exc}", details={"path": exc.path or "$", "field": exc.path or "$"}
        ) from None
    graph = result.graph
    tenant_id = principal.required_tenant_id()
    workflow = await service.create_workflow(
        session,
        tenant_id=tenant_id,
        name=graph["name"],
        description=graph.get("description", ""),
        tags=check_tags(["imported-n8n"]),
        graph=graph,
        actor=principal.actor,
        context=context,
    )
    summary = result.report.to_dict()["summary"]
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.import",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        details={"source": "n8n", **summary},
    )
    await session.commit()
    response.headers["Location"] = f"/api/v1/workflows/{workflow.id}"
    return ImportResult(workflow_id=workflow.id, name=workflow.name, report=result.report.to_dict())
