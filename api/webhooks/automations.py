"""Trigger sync: webhook endpoints and Prefect automations for a published workflow.

Called by publishing (:func:`sync_triggers`) inside its transaction, after the deployment
exists. For every ``trigger.webhook`` node the workflow keeps one :class:`Webhook` row (its
token survives republishing) and one Prefect automation: an EventTrigger on
``gorax.webhook.received`` about ``gorax.workflow.<id>`` from that node, whose RunDeployment
action passes the event payload as ``trigger`` and the node id as ``trigger_node``. A
``trigger.event`` node gets an automation on the event it names. Automations are named
``<deployment name>--trigger-<node>``, so pausing, resuming and archiving the workflow
(:mod:`api.services.publishing`) reach them by the deployment name prefix.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.webhooks.credential_stamps import session_reader
from api.webhooks.dispatcher import EVENT_NAME, workflow_resource
from api.webhooks.models import Webhook
from api.webhooks.secrets_cache import secret_cache

log = logging.getLogger("gorax.webhooks.automations")

TRIGGER_TYPES = ("trigger.webhook", "trigger.event")


def new_token() -> str:
    """An unguessable webhook URL token."""
    return secrets.token_urlsafe(32)


def automation_name(tenant_id: str, workflow_id: str, node_id: str) -> str:
    """The automation of one trigger node (prefixed by the deployment name)."""
    from flows.deploy import deployment_name

    return f"{deployment_name(tenant_id, workflow_id)}--trigger-{node_id}"


def _trigger_of(workflow_id: str, node: dict[str, Any]) -> Any:
    from prefect.events.schemas.automations import EventTrigger, Posture

    config = node.get("config") or {}
    if node["type"] == "trigger.webhook":
        return EventTrigger(
            expect={EVENT_NAME},
            match={"prefect.resource.id": workflow_resource(workflow_id),
                   "gorax.trigger-node": node["id"]},
            posture=Posture.Reactive, threshold=1)
    return EventTrigger(expect={config["event"]}, match=dict(config.get("resource") or {}),
                        posture=Posture.Reactive, threshold=1)


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
        trigger=_trigger_of(workflow_id, node),
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
                await secret_cache.get(tenant_id, name, read_stamp=session_reader(
                    session, tenant_id=tenant_id, name=name))
            except Exception:
                log.warning("credential %r of webhook node %s cannot be read yet", name, node_id)
    for node_id, webhook in existing.items():
        if node_id not in wanted and webhook.active:
            webhook.active, webhook.updated_at = False, now


async def sync_triggers(session: AsyncSession, *, tenant_id: str, workflow: Any,
                        graph: dict[str, Any]) -> None:
    """Make the workflow's webhooks and automations match ``graph`` (after it was deployed)."""
    from prefect.client.orchestration import get_client

    nodes = [n for n in graph.get("nodes", [])
             if n.get("type") in TRIGGER_TYPES and not n.get("disabled")]
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


async def deactivate_webhooks(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> None:
    """Stop accepting deliveries for an archived workflow (its URLs answer 404)."""
    rows = (await session.execute(select(Webhook).where(
        Webhook.tenant_id == tenant_id, Webhook.workflow_id == workflow_id))).scalars()
    for webhook in rows:
        webhook.active = False
