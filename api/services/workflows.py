"""Workflows and versions: create, read, update (ETag), archive, clone, import, list, restore a draft.

Every function takes ``tenant_id`` keyword-only and filters on it; a workflow of another tenant
is :class:`~api.errors.NotFound`. The draft graph lives in the collaboration document
(:mod:`api.collab`: stored in the database, shared by every API replica) when one exists; the
``graph`` column keeps the REST copy, which seeds a new document. A workflow's ETag is a hash of what a client sees, so an editor's live change to the
draft also makes an older ETag stale. Publishing and deployment are in
:mod:`api.services.publishing`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.collab import read_draft, write_draft
from api.db.base import new_id, utcnow
from api.errors import BadRequest, NotFound, PreconditionFailed
from api.limits import check_graph
from api.models.workflows import Workflow, WorkflowVersion
from api.services import audit
from api.services.audit import AuditContext

GRAPH_FORMAT = "gorax/graph@1"
STATUSES = ("draft", "active", "paused", "archived")


def empty_graph(name: str, description: str = "") -> dict[str, Any]:
    """A new workflow's graph: no nodes yet."""
    return {"format": GRAPH_FORMAT, "name": name, "description": description, "nodes": [], "edges": []}


async def read_current_graph(workflow: Workflow) -> dict[str, Any]:
    """The draft: the collaboration document when it holds one (with what every replica stored),
    else the stored REST copy."""
    draft = await read_draft(workflow.id, tenant_id=workflow.tenant_id)
    return draft if draft is not None else copy.deepcopy(workflow.graph)


async def _write_through(session: AsyncSession, workflow: Workflow, graph: dict[str, Any]) -> None:
    """Make the collaboration document hold ``graph``, in the session's transaction; connected
    editors (on every replica) see it when the transaction commits."""
    try:
        await write_draft(workflow.id, graph, tenant_id=workflow.tenant_id, session=session)
    except ValueError as exc:
        raise BadRequest(f"graph cannot be stored as a draft: {exc}", details={"field": "graph"}) from exc


def compute_etag(workflow: Workflow, graph: dict[str, Any]) -> str:
    """A strong ETag over everything ``GET /workflows/{id}`` shows that a client may change."""
    state = {
        "name": workflow.name,
        "description": workflow.description,
        "tags": workflow.tags,
        "status": workflow.status,
        "version": workflow.latest_version,
        "graph": graph,
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


async def get_workflow(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> Workflow:
    """The tenant's workflow; NotFound when it does not exist in this tenant."""
    workflow = (
        await session.execute(select(Workflow).where(Workflow.tenant_id == tenant_id, Workflow.id == workflow_id))
    ).scalar_one_or_none()
    if workflow is None:
        raise NotFound(f"workflow {workflow_id!r} not found", details={"workflow_id": workflow_id})
    return workflow


async def stored_graph(session: AsyncSession, *, workflow_id: str) -> dict[str, Any] | None:
    """The stored REST copy of a workflow's draft (seeds a new collaboration document)."""
    workflow = await session.get(Workflow, workflow_id)
    return copy.deepcopy(workflow.graph) if workflow is not None else None


async def create_workflow(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    description: str = "",
    tags: list[str] | None = None,
    graph: dict[str, Any] | None = None,
    actor: str | None,
    context: AuditContext,
) -> Workflow:
    """Create a draft workflow (the graph is stored as given, within the size limits;
    publishing validates it)."""
    check_graph(graph)
    now = utcnow()
    graph = copy.deepcopy(graph) if graph is not None else empty_graph(name, description)
    workflow = Workflow(
        id=new_id(),
        tenant_id=tenant_id,
        name=name,
        description=description,
        tags=list(tags or []),
        status="draft",
        graph=graph,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(workflow)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.create",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        after={"name": name, "tags": workflow.tags},
    )
    await _write_through(session, workflow, graph)
    return workflow


async def update_workflow(
    session: AsyncSession,
    *,
    tenant_id: str,
    workflow_id: str,
    if_match: str | None,
    changes: dict[str, Any],
    context: AuditContext,
) -> Workflow:
    """Apply ``changes`` (name, description, tags, graph) if ``if_match`` is the current ETag."""
    check_graph(changes.get("graph"))
    workflow = await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    current = await read_current_graph(workflow)
    etag = compute_etag(workflow, current)
    if not if_match:
        raise PreconditionFailed(
            "If-Match is required: send the ETag of your last read", details={"header": "If-Match", "etag": etag}
        )
    if if_match.strip() not in (etag, "*"):
        raise PreconditionFailed(
            "the workflow changed since you read it; reload and retry", details={"header": "If-Match", "etag": etag}
        )
    if workflow.status == "archived":
        raise BadRequest("an archived workflow cannot be changed", details={"field": "status"})
    before = {k: getattr(workflow, k) for k in ("name", "description", "tags")}
    for key in ("name", "description", "tags"):
        if key in changes and changes[key] is not None:
            setattr(workflow, key, changes[key])
    if changes.get("graph") is not None:
        workflow.graph = copy.deepcopy(changes["graph"])
        await _write_through(session, workflow, workflow.graph)
    workflow.updated_at = utcnow()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.update",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        before=before,
        details={"fields": sorted(k for k, v in changes.items() if v is not None)},
    )
    await session.flush()
    return workflow


async def restore_draft(
    session: AsyncSession,
    *,
    tenant_id: str,
    workflow: Workflow,
    version: WorkflowVersion,
    context: AuditContext,
    reason: str,
) -> None:
    """Make the draft equal ``version``'s graph (connected editors see it at once) and audit it.

    After a rollback the draft must not keep the newer graph: the next publish would bring it
    back without anyone asking for it.
    """
    before = await read_current_graph(workflow)
    workflow.graph = copy.deepcopy(version.graph)
    await _write_through(session, workflow, workflow.graph)
    workflow.updated_at = utcnow()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.draft_restore",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        details={"version": version.number, "reason": reason, "changed": before != workflow.graph},
    )


def _encode_cursor(updated_at: datetime, workflow_id: str) -> str:
    return base64.urlsafe_b64encode(f"{updated_at.isoformat()}|{workflow_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, _, workflow_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), workflow_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("cursor is not valid", details={"field": "cursor"}) from exc


async def list_workflows(
    session: AsyncSession,
    *,
    tenant_id: str,
    q: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Workflow], str | None, int]:
    """A page of workflows, most recently updated first; archived ones only when asked for."""
    query = select(Workflow).where(Workflow.tenant_id == tenant_id)
    if status:
        query = query.where(Workflow.status == status)
    else:
        query = query.where(Workflow.status != "archived")
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(func.lower(Workflow.name).like(pattern), func.lower(Workflow.description).like(pattern))
        )
    if tag:
        # Portable JSON-array membership: tags are checked to hold no quotes or wildcards.
        query = query.where(cast(Workflow.tags, String).like(f'%"{tag}"%'))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    if cursor:
        stamp, last_id = _decode_cursor(cursor)
        query = query.where(or_(Workflow.updated_at < stamp, (Workflow.updated_at == stamp) & (Workflow.id < last_id)))
    query = query.order_by(Workflow.updated_at.desc(), Workflow.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1].updated_at, page[-1].id) if len(rows) > limit else None
    return page, next_cursor, total


async def list_versions(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> list[WorkflowVersion]:
    """Every published version of a workflow, newest first."""
    await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    return list(
        (
            await session.execute(
                select(WorkflowVersion)
                .where(WorkflowVersion.tenant_id == tenant_id, WorkflowVersion.workflow_id == workflow_id)
                .order_by(WorkflowVersion.number.desc())
            )
        ).scalars()
    )


async def get_version(session: AsyncSession, *, tenant_id: str, workflow_id: str, number: int) -> WorkflowVersion:
    """One published version; NotFound when the workflow or the number does not exist."""
    await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    version = (
        await session.execute(
            select(WorkflowVersion).where(
                WorkflowVersion.tenant_id == tenant_id,
                WorkflowVersion.workflow_id == workflow_id,
                WorkflowVersion.number == number,
            )
        )
    ).scalar_one_or_none()
    if version is None:
        raise NotFound(
            f"workflow {workflow_id!r} has no version {number}", details={"workflow_id": workflow_id, "version": number}
        )
    return version


async def clone_workflow(
    session: AsyncSession,
    *,
    tenant_id: str,
    workflow_id: str,
    name: str | None,
    actor: str | None,
    context: AuditContext,
) -> Workflow:
    """A new draft workflow with a copy of this one's current draft."""
    source = await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    graph = await read_current_graph(source)
    new_name = name or f"{source.name} (copy)"
    graph["name"] = new_name
    return await create_workflow(
        session,
        tenant_id=tenant_id,
        name=new_name,
        description=source.description,
        tags=list(source.tags),
        graph=graph,
        actor=actor,
        context=context,
    )


async def last_version_number(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> int:
    """The highest published version number (0 when none)."""
    value = (
        await session.execute(
            select(func.max(WorkflowVersion.number)).where(
                WorkflowVersion.tenant_id == tenant_id, WorkflowVersion.workflow_id == workflow_id
            )
        )
    ).scalar_one()
    return int(value or 0)
