"""Workflows: CRUD with ETags, clone, import/export, validate, publish, pause and resume."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from fastapi.responses import PlainTextResponse

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest
from api.models.workflows import Workflow
from api.prefect import PrefectClient, PrefectDep
from api.schemas import Page
from api.services import eject, executions, publishing, quotas, testing
from api.services import workflows as service
from api.workflow_schemas import (
    LastRun,
    PublishRequest,
    ValidateRequest,
    ValidationResult,
    VersionPublic,
    WorkflowClone,
    WorkflowCreate,
    WorkflowPublic,
    WorkflowSummary,
    WorkflowUpdate,
    check_tags,
)

log = logging.getLogger("gorax.api.workflows")
router = APIRouter(prefix="/workflows", tags=["workflows"])
WorkflowId = Path(max_length=64, description="The workflow's id.")


async def _last_run(prefect: PrefectClient, tenant_id: str, workflow_id: str) -> LastRun | None:
    summary = await executions.last_run(prefect, tenant_id=tenant_id, workflow_id=workflow_id)
    if summary is None:
        return None
    return LastRun(
        id=summary["id"], status=summary["status"], started_at=summary["started_at"], ended_at=summary["ended_at"]
    )


async def _public(
    workflow: Workflow, response: Response | None = None, *, prefect: PrefectClient | None = None
) -> WorkflowPublic:
    graph = await service.read_current_graph(workflow)
    etag = service.compute_etag(workflow, graph)
    if response is not None:
        response.headers["ETag"] = etag
    last_run = None
    if prefect is not None:
        try:
            last_run = await _last_run(prefect, workflow.tenant_id, workflow.id)
        except Exception:  # Prefect unreachable: the workflow itself is still worth showing
            log.warning("could not read the last run of workflow %s", workflow.id, exc_info=True)
    return WorkflowPublic(
        id=workflow.id,
        name=workflow.name,
        description=workflow.description,
        tags=workflow.tags,
        status=workflow.status,
        graph=graph,
        version=workflow.latest_version,
        created_by=workflow.created_by,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        etag=etag,
        last_run=last_run,
    )


def _summary(workflow: Workflow) -> WorkflowSummary:
    return WorkflowSummary(
        id=workflow.id,
        name=workflow.name,
        description=workflow.description,
        tags=workflow.tags,
        status=workflow.status,
        version=workflow.latest_version,
        created_by=workflow.created_by,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
    )


@router.get("", response_model=Page[WorkflowSummary])
async def list_workflows(
    session: TenantSession,
    q: str | None = Query(default=None, max_length=200, description="Search in name and description."),
    status_: str | None = Query(default=None, alias="status", pattern="^(draft|active|paused|archived)$"),
    tag: str | None = Query(default=None, max_length=50),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=300),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> Page[WorkflowSummary]:
    """The tenant's workflows, most recently updated first (archived ones with ?status=archived)."""
    if tag is not None:
        check_tags([tag])
    rows, next_cursor, total = await service.list_workflows(
        session, tenant_id=principal.required_tenant_id(), q=q, status=status_, tag=tag, limit=limit, cursor=cursor
    )
    return Page(items=[_summary(w) for w in rows], next_cursor=next_cursor, total=total)


@router.post("", response_model=WorkflowPublic, status_code=status.HTTP_201_CREATED)
async def create_workflow(
    body: WorkflowCreate,
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    state: StateDep,
    principal: Principal = Requires(Permission.WORKFLOW_CREATE),
) -> WorkflowPublic:
    """Create a draft workflow (any graph is accepted as a draft; publishing validates it);
    413 when the tenant is at its storage quota."""
    await quotas.check_storage(
        session, tenant_id=principal.required_tenant_id(), config=state.config, action="saving a workflow"
    )
    workflow = await service.create_workflow(
        session,
        tenant_id=principal.required_tenant_id(),
        name=body.name,
        description=body.description,
        tags=check_tags(body.tags),
        graph=body.graph,
        actor=principal.actor,
        context=context,
    )
    await session.commit()
    return await _public(workflow, response)


@router.post("/import", response_model=WorkflowPublic, status_code=status.HTTP_201_CREATED)
async def import_workflow(
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    graph: dict[str, Any] = Body(description="A gorax/graph@1 document."),
    principal: Principal = Requires(Permission.WORKFLOW_CREATE),
) -> WorkflowPublic:
    """Create a workflow from an exported ``gorax/graph@1`` document."""
    if graph.get("format") != service.GRAPH_FORMAT:
        raise BadRequest(f"format must be {service.GRAPH_FORMAT!r}", details={"field": "format"})
    name = graph.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("the graph needs a 'name'", details={"field": "name"})
    description = graph.get("description")
    if not isinstance(description, str):
        description = ""
    workflow = await service.create_workflow(
        session,
        tenant_id=principal.required_tenant_id(),
        name=name.strip()[:200],
        description=description,
        graph=graph,
        actor=principal.actor,
        context=context,
    )
    await session.commit()
    return await _public(workflow, response)


@router.get("/{workflow_id}", response_model=WorkflowPublic)
async def read_workflow(
    session: TenantSession,
    response: Response,
    prefect: PrefectDep,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> WorkflowPublic:
    """One workflow with its current draft; the ETag header is what ``If-Match`` wants back."""
    workflow = await service.get_workflow(session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id)
    return await _public(workflow, response, prefect=prefect)


@router.put("/{workflow_id}", response_model=WorkflowPublic)
async def update_workflow(
    body: WorkflowUpdate,
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    state: StateDep,
    workflow_id: str = WorkflowId,
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Principal = Requires(Permission.WORKFLOW_EDIT),
) -> WorkflowPublic:
    """Change name, description, tags or draft graph; 412 unless If-Match is the current ETag;
    a new draft graph is 413 when the tenant is at its storage quota."""
    changes = body.model_dump(exclude_unset=True)
    if "graph" in changes:
        await quotas.check_storage(
            session, tenant_id=principal.required_tenant_id(), config=state.config, action="saving a draft"
        )
    if "tags" in changes:
        changes["tags"] = check_tags(changes["tags"])
    workflow = await service.update_workflow(
        session,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        if_match=if_match,
        changes=changes,
        context=context,
    )
    await session.commit()
    return await _public(workflow, response)


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT)
async def archive_workflow(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_DELETE),
) -> None:
    """Archive: history and versions stay; the Prefect deployment and its automations go."""
    await publishing.archive_workflow(
        session, prefect, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id, context=context
    )
    await session.commit()


@router.post("/{workflow_id}/clone", response_model=WorkflowPublic, status_code=status.HTTP_201_CREATED)
async def clone_workflow(
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    body: WorkflowClone | None = None,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_CREATE),
) -> WorkflowPublic:
    """A new draft workflow with a copy of this one's draft."""
    workflow = await service.clone_workflow(
        session,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        name=body.name if body else None,
        actor=principal.actor,
        context=context,
    )
    await session.commit()
    return await _public(workflow, response)


@router.get("/{workflow_id}/export")
async def export_workflow(
    session: TenantSession, workflow_id: str = WorkflowId, principal: Principal = Requires(Permission.WORKFLOW_READ)
) -> dict[str, Any]:
    """The draft as a ``gorax/graph@1`` document, named after the workflow."""
    workflow = await service.get_workflow(session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id)
    graph = await service.read_current_graph(workflow)
    return {"format": service.GRAPH_FORMAT, "name": workflow.name, "description": workflow.description, **graph}


@router.get(
    "/{workflow_id}/eject",
    # A bare Response: the file is text/x-python, while errors stay documented as JSON.
    response_class=Response,
    responses={
        200: {
            "content": {"text/x-python": {"schema": {"type": "string"}}},
            "description": "The flow file, or its CEL helper.",
        }
    },
)
async def eject_workflow(
    session: TenantSession,
    workflow_id: str = WorkflowId,
    version: int | None = Query(default=None, ge=1, le=1_000_000, description="Version (default: published)."),
    file: Literal["flow", "helper"] = Query(
        default="flow", description="'flow': the flow file; 'helper': gorax_cel.py, written beside it."
    ),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> PlainTextResponse:
    """A version of the workflow as a Prefect flow file that runs without Gorax (docs/eject.md)."""
    document = await eject.stored_document(
        session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id, version=version
    )
    ejected = eject.eject_document(document)
    name, text = (
        (ejected.filename, ejected.source) if file == "flow" else (ejected.helper_filename, ejected.helper_source)
    )
    return PlainTextResponse(
        text, media_type="text/x-python", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/{workflow_id}/validate", response_model=ValidationResult)
async def validate_workflow(
    session: TenantSession,
    body: ValidateRequest | None = None,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> ValidationResult:
    """Check the draft (or a given graph) with the translator; every problem is listed."""
    workflow = await service.get_workflow(session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id)
    graph = body.graph if body and body.graph is not None else await service.read_current_graph(workflow)
    errors = publishing.validation_errors(graph)
    return ValidationResult(valid=not errors, errors=errors)


@router.post("/{workflow_id}/publish", response_model=VersionPublic, status_code=status.HTTP_201_CREATED)
async def publish_workflow(
    session: TenantSession,
    context: AuditCtx,
    state: StateDep,
    prefect: PrefectDep,
    body: PublishRequest | None = None,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_PUBLISH),
) -> VersionPublic:
    """Validate the draft (422 with every problem), store it as the next version, deploy it; 409
    naming the failing tests when the tenant requires passing tests and the draft's do not pass."""
    await testing.publish_gate(
        session,
        prefect,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        context=context,
        work_pool=state.settings.work_pool,
    )
    version = await publishing.publish_workflow(
        session,
        prefect,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        message=body.message if body else "",
        author=principal.actor,
        context=context,
        work_pool=state.settings.work_pool,
    )
    await session.commit()
    return VersionPublic(
        number=version.number,
        author=version.author,
        message=version.message,
        created_at=version.created_at,
        graph=version.graph,
    )


async def _pause(
    session: Any,
    context: Any,
    prefect: PrefectClient,
    principal: Principal,
    workflow_id: str,
    paused: bool,
    response: Response,
) -> WorkflowPublic:
    workflow = await publishing.set_paused(
        session,
        prefect,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        paused=paused,
        context=context,
    )
    await session.commit()
    return await _public(workflow, response)


@router.post("/{workflow_id}/pause", response_model=WorkflowPublic)
async def pause_workflow(
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    prefect: PrefectDep,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_PUBLISH),
) -> WorkflowPublic:
    """Pause the workflow's schedules and triggers (manual runs still work)."""
    return await _pause(session, context, prefect, principal, workflow_id, True, response)


@router.post("/{workflow_id}/resume", response_model=WorkflowPublic)
async def resume_workflow(
    session: TenantSession,
    context: AuditCtx,
    response: Response,
    prefect: PrefectDep,
    workflow_id: str = WorkflowId,
    principal: Principal = Requires(Permission.WORKFLOW_PUBLISH),
) -> WorkflowPublic:
    """Resume the workflow's schedules and triggers."""
    return await _pause(session, context, prefect, principal, workflow_id, False, response)
