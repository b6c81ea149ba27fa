"""Publishing: validate the draft, store an immutable version, deploy it to Prefect.

A workflow's deployment is the runtime's ``run_graph`` deployment for (tenant, workflow)
(:func:`api.prefect.deployments.deploy_workflow`), tagged ``tenant:<tenant id>`` and
``workflow:<id>``, named for people after the tenant's slug and the workflow's name when it is
first published (the name stays when the workflow is renamed), described with the workflow's
description; its schedules come from the graph's schedule triggers. Pausing a workflow pauses
the deployment (its schedules stop) and its Prefect automations; archiving deletes both. Every
function takes ``tenant_id`` keyword-only.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.errors import ApiError, BadRequest, Conflict, ValidationFailed
from api.limits import graph_limit_exceeded
from api.models.identity import Tenant
from api.models.workflows import Workflow, WorkflowVersion
from api.prefect import PrefectClient, deployments
from api.prefect import automations as prefect_automations
from api.services import audit
from api.services.audit import AuditContext
from api.services.workflows import (
    get_version,
    get_workflow,
    last_version_number,
    read_current_graph,
    restore_draft,
)
from api.webhooks import automations
from translator import GraphError, GraphValidationError, Plan, compile_graph, validate_graph

log = logging.getLogger("gorax.api.publishing")


class DeployFailed(ApiError):
    """Prefect refused or could not be reached while deploying (502)."""

    status_code = 502
    code = "DEPLOY_FAILED"


def validation_errors(graph: Any) -> list[dict[str, Any]]:
    """The translator's problems with ``graph`` as JSON (empty when it is valid); a graph past
    the size limits gets that one problem, found before anything else is checked."""
    over = _too_large(graph)
    if over is not None:
        return [over]
    return [error.to_dict() for error in validate_graph(graph)]


def _too_large(graph: Any) -> dict[str, Any] | None:
    over = graph_limit_exceeded(graph)
    if over is None:
        return None
    return GraphError(path=over.path, code="graph_too_large", message=over.message).to_dict()


def _invalid(errors: list[dict[str, Any]]) -> ValidationFailed:
    """ValidationFailed (422) listing every problem, each with its node or edge id and path."""
    placed = sorted({e["node_id"] for e in errors if e.get("node_id")})
    where = f" (nodes: {', '.join(placed)})" if placed else ""
    return ValidationFailed(f"the graph has {len(errors)} problem(s){where}", details={"errors": errors})


def compile_checked(graph: Any) -> Plan:
    """The graph compiled once for deploy and trigger sync; ValidationFailed (422) when invalid."""
    over = _too_large(graph)
    if over is not None:
        raise _invalid([over])
    try:
        plan = compile_graph(graph)
    except GraphValidationError as exc:
        raise _invalid([error.to_dict() for error in exc.errors]) from None
    blockers = plan.publish_blockers()
    if blockers:
        raise _invalid([error.to_dict() for error in blockers])
    return plan


async def _deployment_name(session: AsyncSession, prefect: PrefectClient, workflow: Workflow, *, tenant_id: str) -> str:
    """The name the workflow's deployment has (a rename keeps it), else a new readable one."""
    current = await deployments.deployment_name_of(prefect, workflow.deployment_id)
    if current is not None:
        return current
    tenant = await session.get(Tenant, tenant_id)
    return deployments.readable_name(tenant.slug if tenant else tenant_id, workflow.name, workflow.id)


async def _deploy(
    session: AsyncSession,
    prefect: PrefectClient,
    workflow: Workflow,
    graph: dict[str, Any],
    plan: Plan,
    number: int,
    *,
    tenant_id: str,
    work_pool: str,
) -> deployments.DeployedWorkflow:
    try:
        return await deployments.deploy_workflow(
            prefect,
            graph,
            plan=plan,
            tenant=tenant_id,
            workflow_id=workflow.id,
            name=await _deployment_name(session, prefect, workflow, tenant_id=tenant_id),
            description=workflow.description or None,
            version=number,
            work_pool=work_pool,
            paused=workflow.status == "paused",
        )
    except deployments.WorkPoolMissing as exc:
        raise DeployFailed(
            f"deploying version {number} to Prefect failed: {exc}",
            details={"workflow_id": workflow.id, "work_pool": work_pool},
        ) from exc
    except Exception as exc:  # Prefect down or refusing: nothing is stored (the caller rolls back)
        log.exception("deploying workflow %s failed", workflow.id)
        raise DeployFailed(
            f"deploying version {number} to Prefect failed: {type(exc).__name__}", details={"workflow_id": workflow.id}
        ) from exc


async def _sync_triggers(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    workflow: Workflow,
    deployment_name: str,
    plan: Plan,
) -> None:
    """Make webhook endpoints and Prefect automations match the newly deployed graph."""
    try:
        await automations.sync_triggers(
            session, prefect, tenant_id=tenant_id, workflow=workflow, deployment_name=deployment_name, plan=plan
        )
    except ApiError:
        raise
    except Exception as exc:
        log.exception("syncing the triggers of workflow %s failed", workflow.id)
        raise DeployFailed(
            f"syncing the triggers of workflow {workflow.id} failed: {type(exc).__name__}",
            details={"workflow_id": workflow.id},
        ) from exc


async def publish_graph(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    workflow: Workflow,
    graph: dict[str, Any],
    message: str,
    author: str | None,
    context: AuditContext,
    work_pool: str,
    action: str = "workflow.publish",
    details: dict[str, Any] | None = None,
) -> WorkflowVersion:
    """Validate ``graph``, store it as the next version and deploy it (in the caller's transaction)."""
    if workflow.status == "archived":
        raise BadRequest("an archived workflow cannot be published", details={"field": "status"})
    plan = compile_checked(graph)
    automations.check_triggers(plan, workflow.id)  # before anything is deployed
    number = await last_version_number(session, tenant_id=tenant_id, workflow_id=workflow.id) + 1
    version = WorkflowVersion(
        id=new_id(),
        tenant_id=tenant_id,
        workflow_id=workflow.id,
        number=number,
        graph=copy.deepcopy(graph),
        message=message,
        author=author,
        created_at=utcnow(),
    )
    session.add(version)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "another publish of this workflow happened at the same time; retry", details={"workflow_id": workflow.id}
        ) from exc
    deployed = await _deploy(session, prefect, workflow, graph, plan, number, tenant_id=tenant_id, work_pool=work_pool)
    workflow.deployment_id = str(deployed.deployment_id)
    workflow.latest_version = number
    await _sync_triggers(
        session, prefect, tenant_id=tenant_id, workflow=workflow, deployment_name=deployed.name, plan=plan
    )
    if workflow.status == "draft":
        workflow.status = "active"
    workflow.updated_at = utcnow()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action=action,
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
        details={"version": number, "message": message, **(details or {})},
    )
    return version


async def publish_workflow(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str,
    message: str,
    author: str | None,
    context: AuditContext,
    work_pool: str,
) -> WorkflowVersion:
    """Publish the current draft as the next version."""
    workflow = await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    graph = await read_current_graph(workflow)
    return await publish_graph(
        session,
        prefect,
        tenant_id=tenant_id,
        workflow=workflow,
        graph=graph,
        message=message,
        author=author,
        context=context,
        work_pool=work_pool,
    )


async def rollback_workflow(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str,
    number: int,
    author: str | None,
    context: AuditContext,
    work_pool: str,
) -> WorkflowVersion:
    """Publish version ``number``'s graph again as the newest version; the draft becomes it too."""
    old = await get_version(session, tenant_id=tenant_id, workflow_id=workflow_id, number=number)
    workflow = await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    version = await publish_graph(
        session,
        prefect,
        tenant_id=tenant_id,
        workflow=workflow,
        graph=old.graph,
        message=f"Rollback to version {number}",
        author=author,
        context=context,
        work_pool=work_pool,
        action="workflow.rollback",
        details={"from_version": number, "draft": f"restored to version {number}"},
    )
    await restore_draft(
        session,
        tenant_id=tenant_id,
        workflow=workflow,
        version=old,
        context=context,
        reason=f"rollback to version {number}, published as version {version.number}",
    )
    return version


async def set_paused(
    session: AsyncSession,
    prefect: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str,
    paused: bool,
    context: AuditContext,
) -> Workflow:
    """Pause or resume the workflow's schedules and triggers (a webhook's deliveries are held)."""
    workflow = await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    if workflow.status == "archived":
        raise BadRequest("an archived workflow cannot be paused or resumed", details={"field": "status"})
    if workflow.deployment_id:
        await deployments.set_paused(prefect, workflow.deployment_id, paused=paused)
        # Resuming enables every trigger (webhooks paused by an older release included).
        keep = (
            await automations.held_while_paused(session, tenant_id=tenant_id, workflow_id=workflow.id) if paused else ()
        )
        await prefect_automations.set_enabled(prefect, workflow.deployment_id, enabled=not paused, keep=keep)
    workflow.status = "paused" if paused else ("active" if workflow.latest_version else "draft")
    workflow.updated_at = utcnow()
    await audit.record(
        session,
        tenant_id=tenant_id,
        context=context,
        action="workflow.pause" if paused else "workflow.resume",
        resource_type="workflow",
        resource_id=workflow.id,
    )
    return workflow


async def archive_workflow(
    session: AsyncSession, prefect: PrefectClient, *, tenant_id: str, workflow_id: str, context: AuditContext
) -> Workflow:
    """Archive: versions and run history stay; the deployment and its automations go."""
    workflow = await get_workflow(session, tenant_id=tenant_id, workflow_id=workflow_id)
    if workflow.deployment_id:
        await prefect_automations.delete_automations(prefect, workflow.deployment_id)
        await deployments.delete_deployment(prefect, workflow.deployment_id)
    await automations.deactivate_webhooks(session, tenant_id=tenant_id, workflow_id=workflow.id)
    workflow.deployment_id = None
    workflow.status = "archived"
    workflow.updated_at = utcnow()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.archive",
        context=context,
        resource_type="workflow",
        resource_id=workflow.id,
    )
    return workflow
