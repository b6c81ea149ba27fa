"""Published versions of a workflow: list, read, diff, rollback."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, status

from api.auth.deps import AuditCtx, Requires, StateDep, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.models.workflows import WorkflowVersion
from api.prefect import PrefectDep
from api.schemas import Page
from api.services import publishing
from api.services import workflows as service
from api.services.graph_diff import GraphDiff, diff_graphs
from api.workflow_schemas import VersionPublic

router = APIRouter(prefix="/workflows/{workflow_id}/versions", tags=["versions"])
WorkflowId = Path(max_length=64, description="The workflow's id.")


def _public(version: WorkflowVersion, *, with_graph: bool) -> VersionPublic:
    return VersionPublic(
        number=version.number,
        author=version.author,
        message=version.message,
        created_at=version.created_at,
        graph=version.graph if with_graph else None,
    )


@router.get("", response_model=Page[VersionPublic])
async def list_versions(
    session: TenantSession,
    workflow_id: str = WorkflowId,
    graphs: bool = Query(default=False, description="Include each graph."),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> Page[VersionPublic]:
    """Every published version, newest first."""
    versions = await service.list_versions(session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id)
    return Page(items=[_public(v, with_graph=graphs) for v in versions], total=len(versions))


@router.get("/{number}", response_model=VersionPublic)
async def read_version(
    session: TenantSession,
    workflow_id: str = WorkflowId,
    number: int = Path(ge=1, le=1_000_000),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> VersionPublic:
    """One version with its graph."""
    version = await service.get_version(
        session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id, number=number
    )
    return _public(version, with_graph=True)


@router.get("/{a}/diff/{b}", response_model=GraphDiff)
async def diff_versions(
    session: TenantSession,
    workflow_id: str = WorkflowId,
    a: int = Path(ge=1, le=1_000_000),
    b: int = Path(ge=1, le=1_000_000),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> GraphDiff:
    """What changed from version ``a`` to version ``b`` (nodes, edges, config paths)."""
    first = await service.get_version(
        session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id, number=a
    )
    second = await service.get_version(
        session, tenant_id=principal.required_tenant_id(), workflow_id=workflow_id, number=b
    )
    return diff_graphs(first.graph, second.graph)


@router.post("/{number}/rollback", response_model=VersionPublic, status_code=status.HTTP_201_CREATED)
async def rollback(
    session: TenantSession,
    context: AuditCtx,
    state: StateDep,
    prefect: PrefectDep,
    workflow_id: str = WorkflowId,
    number: int = Path(ge=1, le=1_000_000),
    principal: Principal = Requires(Permission.WORKFLOW_PUBLISH),
) -> VersionPublic:
    """Publish version ``number``'s graph again as the newest version and deploy it; the draft
    becomes that graph too (live for connected editors), so the next publish keeps it."""
    version = await publishing.rollback_workflow(
        session,
        prefect,
        tenant_id=principal.required_tenant_id(),
        workflow_id=workflow_id,
        number=number,
        author=principal.actor,
        context=context,
        work_pool=state.settings.work_pool,
    )
    await session.commit()
    return _public(version, with_graph=True)
