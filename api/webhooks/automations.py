"""Trigger sync: webhook endpoints and Prefect automations for a published workflow.

Called by publishing (:func:`sync_triggers`) inside its transaction, after the deployment
exists. For every ``trigger.webhook`` node the workflow keeps one :class:`Webhook` row (its
token survives republishing) and one Prefect automation: an EventTrigger on
``gorax.webhook.received`` about ``gorax.workflow.<id>`` from that node, whose RunDeployment
action passes the event payload as ``trigger`` and the node id as ``trigger_node``. A
``trigger.event`` node gets an automation on the event it names. Every automation also requires
the tenant's tag as a related resource, so a trigger only ever sees its own tenant's events
(:func:`require_tenants` rebuilds automations made before that). Automations are named
``<deployment name>--trigger-<node>``, so pausing, resuming and archiving the workflow
(:mod:`api.services.publishing`) reach them by the deployment name prefix.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any
from uuid import UUID

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.errors import ValidationFailed
from api.models.workflows import Workflow, WorkflowVersion
from api.webhooks.dispatcher import EVENT_NAME, tenant_related, workflow_resource
from api.webhooks.models import Webhook
from api.webhooks.secrets_cache import secret_cache
from translator.errors import GraphError

log = logging.getLogger("gorax.webhooks.automations")

TRIGGER_TYPES = ("trigger.webhook", "trigger.event")


def new_token() -> str:
    """An unguessable webhook URL token."""
    return secrets.token_urlsafe(32)


def automation_name(tenant_id: str, workflow_id: str, node_id: str) -> str:
    """The automation of one trigger node (prefixed by the deployment name)."""
    from flows.deploy import deployment_name

    return f"{deployment_name(tenant_id, workflow_id)}--trigger-{node_id}"


#: Every run of a deployment goes through these; Prefect refuses a RunDeployment automation on
#: them that matches every flow run, since each run would start the next one. The tenant filter
#: below hides such a trigger from Prefect's check, so it is made here.
_EVERY_RUN_EVENTS = frozenset({"prefect.flow-run.Scheduled", "prefect.flow-run.Pending",
                               "prefect.flow-run.Running", "prefect.flow-run.*"})


def check_triggers(graph: dict[str, Any]) -> None:
    """ValidationFailed (before anything is deployed) for an event trigger that would start its
    own workflow from each of its runs."""
    errors = []
    for node in _trigger_nodes(graph):
        config = node.get("config") or {}
        resource = dict(config.get("resource") or {})
        if node["type"] == "trigger.event" and config.get("event") in _EVERY_RUN_EVENTS and resource in (
                {}, {"prefect.resource.id": "prefect.flow-run.*"}):
            errors.append(GraphError(
                node_id=node["id"], path="config.resource", code="self_starting_trigger",
                message=f"on {config['event']} this trigger matches every flow run of the tenant, its "
                        "own included: each run would start the next; narrow it with 'resource'"))
    if errors:
        raise ValidationFailed(f"{errors[0]}", details={"errors": [e.to_dict() for e in errors]})


def _trigger_nodes(graph: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in graph.get("nodes", []) if n.get("type") in TRIGGER_TYPES and not n.get("disabled")]


def _trigger_of(tenant_id: str, workflow_id: str, node: dict[str, Any]) -> Any:
    from prefect.events.schemas.automations import EventTrigger, Posture

    config = node.get("config") or {}
    # Whatever the node's own filter says, only the tenant's events match: Gorax's carry the
    # tenant as a related resource, Prefect's relate the run's tenant tag.
    mine = [tenant_related(tenant_id)]
    if node["type"] == "trigger.webhook":
        return EventTrigger(
            expect={EVENT_NAME},
            match={"prefect.resource.id": workflow_resource(workflow_id),
                   "gorax.trigger-node": node["id"]},
            match_related=mine, posture=Posture.Reactive, threshold=1)
    return EventTrigger(expect={config["event"]}, match=dict(config.get("resource") or {}),
                        match_related=mine, posture=Posture.Reactive, threshold=1)


def automation_of(*, tenant_id: str, workflow_id: str, deployment_id: str,
                  node: dict[str, Any], enabled: bool) -> Any:
    """The Prefect automation that runs the deployment when the node's event arrives.

    It passes no ``env``: the run reads the tenant's variables when it starts (the deployment
    carries the tenant), so a variable changed after publishing is seen by the next run.
    """
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore

    trigger = "{{ event.payload }}" if node["type"] == "trigger.webhook" else "{{ event }}"
    parameters: dict[str, Any] = {"trigger": trigger, "trigger_node": node["id"]}
    return AutomationCore(
        name=automation_name(tenant_id, workflow_id, node["id"]),
        description=f"Gorax {node['type']} {node['id']} of workflow {workflow_id}",
        enabled=enabled,
        trigger=_trigger_of(tenant_id, workflow_id, node),
        actions=[RunDeployment(source="selected", deployment_id=UUID(deployment_id),
                               parameters=parameters)],
    )


async def _sync_webhooks(session: AsyncSession, *, tenant_id: str, workflow_id: str,
                         nodes: list[dict[str, Any]]) -> None:
    existing = {w.node_id: w for w in (await session.execute(select(Webhook).where(
        Webhook.tenant_id == tenant_id, Webhook.workflow_id == workflow_id))).scalars()}
    wanted = {n["id"]: n for n in nodes if n["type"] == "trigger.webhook"}
    now = utcnow()
    for node_id, node in wanted.items():
        config = dict(node.get("config") or {})
        webhook = existing.get(node_id)
        if webhook is None:
            session.add(Webhook(id=new_id(), tenant_id=tenant_id, workflow_id=workflow_id,
                                node_id=node_id, token=new_token(), config=config, active=True,
                                created_at=now, updated_at=now))
        else:
            webhook.config, webhook.active, webhook.updated_at = config, True, now
        name = (config.get("signature") or {}).get("secret")
        if name:
            secret_cache.forget(tenant_id, name)
            try:  # warm the cache so deliveries verify even if Prefect goes away later
                await secret_cache.get(tenant_id, name)
            except Exception:
                log.warning("credential %r of webhook node %s cannot be read yet", name, node_id)
    for node_id, webhook in existing.items():
        if node_id not in wanted and webhook.active:
            webhook.active, webhook.updated_at = False, now


async def sync_triggers(session: AsyncSession, *, tenant_id: str, workflow: Any,
                        graph: dict[str, Any]) -> None:
    """Make the workflow's webhooks and automations match ``graph`` (after it was deployed)."""
    from prefect.client.orchestration import get_client

    nodes = _trigger_nodes(graph)
    await _sync_webhooks(session, tenant_id=tenant_id, workflow_id=workflow.id, nodes=nodes)
    if not workflow.deployment_id:
        return
    from flows.deploy import deployment_name

    prefix = deployment_name(tenant_id, workflow.id) + "--trigger-"
    async with get_client() as client:
        current = {a.name: a for a in await client.read_automations() if a.name.startswith(prefix)}
        wanted = set()
        for node in nodes:
            automation = automation_of(tenant_id=tenant_id, workflow_id=workflow.id,
                                       deployment_id=workflow.deployment_id, node=node,
                                       enabled=workflow.status != "paused")
            wanted.add(automation.name)
            if automation.name in current:
                await client.update_automation(current[automation.name].id, automation)
            else:
                await client.create_automation(automation)
        for name, stale in current.items():
            if name not in wanted:
                await client.delete_automation(stale.id)


def _requires_tenant(automation: Any) -> bool:
    related = getattr(automation.trigger, "match_related", None)
    specs = related if isinstance(related, list) else [related]
    return any(str(getattr(spec, "root", {}).get("prefect.resource.id", "")).startswith("prefect.tag.tenant:")
               for spec in specs if spec is not None)


async def require_tenants(db: Database) -> int:
    """Rebuild the trigger automations built before they required the tenant (from each
    workflow's published version, paused ones staying paused); returns how many were rebuilt."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        stale = {a.name: a for a in await client.read_automations()
                 if "--trigger-" in a.name and not _requires_tenant(a)}
        if not stale:
            return 0
        async with db.system_scope() as session:
            rows = (await session.execute(
                select(Workflow, WorkflowVersion.graph).join(WorkflowVersion, and_(
                    WorkflowVersion.workflow_id == Workflow.id,
                    WorkflowVersion.number == Workflow.latest_version))
                .where(Workflow.deployment_id.is_not(None)))).all()
        rebuilt = 0
        for workflow, graph in rows:
            for node in _trigger_nodes(graph):
                old = stale.get(automation_name(workflow.tenant_id, workflow.id, node["id"]))
                if old is None:
                    continue
                await client.update_automation(old.id, automation_of(
                    tenant_id=workflow.tenant_id, workflow_id=workflow.id,
                    deployment_id=workflow.deployment_id, node=node, enabled=old.enabled))
                rebuilt += 1
    if rebuilt:
        log.warning("%d trigger automations built before triggers required their tenant were rebuilt", rebuilt)
    return rebuilt


async def keep_requiring_tenants(db: Database, *, retry_seconds: float = 5.0) -> None:
    """:func:`require_tenants` once, retried while Prefect cannot be reached (an API's startup)."""
    while True:
        try:
            await require_tenants(db)
            return
        except Exception as exc:  # Prefect not up yet: the stale automations cannot fire either
            log.info("checking trigger automations for their tenant filter failed (%s); retrying",
                     type(exc).__name__)
            await asyncio.sleep(retry_seconds)


async def deactivate_webhooks(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> None:
    """Stop accepting deliveries for an archived workflow (its URLs answer 404)."""
    rows = (await session.execute(select(Webhook).where(
        Webhook.tenant_id == tenant_id, Webhook.workflow_id == workflow_id))).scalars()
    for webhook in rows:
        webhook.active = False
