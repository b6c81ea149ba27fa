"""Workflow templates: the gallery (search, categories), one template with its graph, and
"use this template", which creates a draft workflow and says which credentials it still needs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import BadRequest, NotFound
from api.models.identity import Tenant
from api.models.workflows import Workflow
from api.prefect import PrefectDep
from api.services import audit
from api.services import templates as catalogue
from api.services import variables as variable_service
from api.services import workflows as workflow_service
from api.services.templates import CATEGORIES, CredentialNeed, Template
from api.workflow_schemas import check_tags
from blocks import service as credential_service

router = APIRouter(prefix="/templates", tags=["templates"])
TemplateId = Path(max_length=80, description="The template's id, e.g. 'incident-page-and-announce'.")


class TemplateSummary(BaseModel):
    """A gallery card."""

    id: str
    title: str
    description: str
    category: str
    tags: list[str]
    node_count: int
    node_types: list[str] = Field(description="The node types the graph uses (for icons).")
    trigger_type: str | None = Field(description="The node type of the trigger that starts it.")
    credentials: list[str] = Field(description="Names of the credentials it needs.")


class CategoryCount(BaseModel):
    id: str
    label: str
    count: int = Field(description="Templates of this category that match the search.")


class TemplateList(BaseModel):
    items: list[TemplateSummary]
    total: int
    categories: list[CategoryCount]


class TemplateDetail(TemplateSummary):
    """A template with everything the preview shows."""

    author: str
    license: str
    graph: dict[str, Any] = Field(description="The gorax/graph@1 graph.")
    trigger_node: str | None = Field(description="The trigger the sample payload is for.")
    sample_trigger: Any = Field(description="What the run's `trigger` holds when that trigger fires.")
    credentials_needed: list[CredentialNeed]
    variables: list[str] = Field(description="Tenant variables (env.<NAME>) the graph reads.")


class UseTemplate(BaseModel):
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="The new workflow's name (default: the title)."
    )


class CredentialStatus(CredentialNeed):
    present: bool = Field(description="Whether the tenant has a credential of this name and an accepted type.")
    found_type: str | None = Field(description="The type of the tenant's credential of this name, if any.")


class VariableStatus(BaseModel):
    name: str
    present: bool


class TemplateUsed(BaseModel):
    workflow_id: str
    name: str
    template_id: str
    credentials: list[CredentialStatus]
    variables: list[VariableStatus]


def _template(template_id: str) -> Template:
    found = catalogue.get_template(template_id)
    if found is None:
        raise NotFound(f"template {template_id!r} not found", details={"template_id": template_id})
    return found


def _summary(template: Template) -> TemplateSummary:
    meta = template.meta
    nodes = meta.graph.get("nodes", [])
    trigger = next((n.get("type") for n in nodes if n.get("id") == template.trigger_node), None)
    return TemplateSummary(
        id=meta.id,
        title=meta.title,
        description=meta.description,
        category=meta.category,
        tags=meta.tags,
        node_count=len(nodes),
        node_types=list(template.node_types),
        trigger_type=trigger,
        credentials=[c.name for c in template.credentials],
    )


@router.get("", response_model=TemplateList)
async def list_templates(
    q: str | None = Query(default=None, max_length=200, description="Words to find in title, description or tags."),
    category: str | None = Query(default=None, max_length=50, description="Only this category."),
    principal: Principal = Requires(Permission.WORKFLOW_READ),
) -> TemplateList:
    """Templates matching the search, and every category with its count for the search."""
    if category is not None and category not in CATEGORIES:
        raise BadRequest(
            f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}", details={"field": "category"}
        )
    items = [_summary(t) for t in catalogue.search(q, category)]
    counts = [CategoryCount(**c) for c in catalogue.category_counts(q)]
    return TemplateList(items=items, total=len(items), categories=counts)


@router.get("/{template_id}", response_model=TemplateDetail)
async def read_template(
    template_id: str = TemplateId, principal: Principal = Requires(Permission.WORKFLOW_READ)
) -> TemplateDetail:
    """One template: its graph for the preview, the credentials and variables it needs, a sample payload."""
    template = _template(template_id)
    return TemplateDetail(
        **_summary(template).model_dump(),
        author=template.meta.author,
        license=template.meta.license,
        graph=template.graph(),
        trigger_node=template.trigger_node,
        sample_trigger=template.meta.sample_trigger,
        credentials_needed=list(template.credentials),
        variables=list(template.variables),
    )


async def _free_name(session: AsyncSession, tenant_id: str, wanted: str) -> str:
    """``wanted``, or ``wanted (2)``, ``(3)``... when the tenant already has a workflow so named."""
    rows = await session.execute(
        select(Workflow.name).where(Workflow.tenant_id == tenant_id, Workflow.name.startswith(wanted, autoescape=True))
    )
    taken = {row[0] for row in rows}
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted} ({n})" in taken:
        n += 1
    return f"{wanted[: 200 - len(f' ({n})')]} ({n})"


async def _credential_status(session: AsyncSession, tenant_id: str, template: Template) -> list[CredentialStatus]:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    have = {
        info.name: info.type
        for info in await credential_service.list_credentials(tenant_id=tenant_id, tenant_slug=tenant.slug)
    }
    return [
        CredentialStatus(
            **need.model_dump(),
            present=need.name in have and (not need.types or have[need.name] in need.types),
            found_type=have.get(need.name),
        )
        for need in template.credentials
    ]


@router.post("/{template_id}/use", response_model=TemplateUsed, status_code=status.HTTP_201_CREATED)
async def use_template(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    template_id: str = TemplateId,
    body: UseTemplate | None = Body(default=None),
    principal: Principal = Requires(Permission.WORKFLOW_CREATE),
) -> TemplateUsed:
    """Create a draft workflow from the template; lists its credentials and variables, each
    marked present or missing in the tenant."""
    template = _template(template_id)
    tenant_id = principal.required_tenant_id()
    wanted = (body.name if body and body.name else template.meta.title).strip()
    if not wanted:
        raise BadRequest("name must not be blank", details={"field": "name"})
    name = await _free_name(session, tenant_id, wanted) if not (body and body.name) else wanted
    graph = template.graph()
    graph["name"] = name
    graph["description"] = template.meta.description
    credentials = await _credential_status(session, tenant_id, template)
    existing = {k.lower() for k in await variable_service.list_variables(prefect, tenant_id=tenant_id)}
    variables = [VariableStatus(name=v, present=v.lower() in existing) for v in template.variables]
    workflow = await workflow_service.create_workflow(
        session,
        tenant_id=tenant_id,
        name=name,
        description=template.meta.description,
        tags=check_tags(template.meta.tags),
        graph=graph,
        actor=principal.actor,
        context=context,
    )
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="template.use",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        details={
            "template_id": template.id,
            "missing_credentials": [c.name for c in credentials if not c.present],
            "missing_variables": [v.name for v in variables if not v.present],
        },
    )
    await session.commit()
    return TemplateUsed(
        workflow_id=workflow.id, name=name, template_id=template.id, credentials=credentials, variables=variables
    )
