"""Trigger sync: webhook endpoints and Prefect automations for a published workflow.

Called by publishing (:func:`sync_triggers`) inside its transaction, after the deployment
exists. Every trigger node whose type receives webhooks keeps one :class:`Webhook` row (its
token survives republishing). Every trigger whose type asks for an automation
(:meth:`~translator.nodetypes.TriggerType.automation`) gets one Prefect automation whose
RunDeployment action passes the event (as the type says) as ``trigger`` and the node id as
``trigger_node``. Automations are named ``<deployment name>--trigger-<node>``, so pausing,
resuming and archiving the workflow (:mod:`api.services.publishing`) reach them by the
deployment name prefix.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.webhooks.dispatcher import EVENT_NAME, workflow_resource
from api.webhooks.models import Webhook
from api.webhooks.secrets_cache import secret_cache
from flows.naming import deployment_name
from translator.nodetypes import TriggerSource, TriggerType
from translator.plan import Plan, PlanNode

log = logging.getLogger("gorax.webhooks.automations")

def new_token() -> str:
    """An unguessable webhook URL token."""
    return secrets.token_urlsafe(32)


def automation_name(tenant_id: str, workflow_id: str, node_id: str) -> str:
    """The automation of one trigger node (prefixed by the deployment name)."""
    return f"{deployment_name(tenant_id, workflow_id)}--trigger-{node_id}"


def automation_of(*, tenant_id: str, workflow_id: str, deployment_id: str, node: PlanNode,
                  enabled: bool) -> AutomationCore | None:
    """The Prefect automation that runs the deployment when the node's event arrives (None: the
    trigger needs none).

    It passes no ``env``: the run reads the tenant's variables when it starts (the deployment
    carries the tenant), so a variable changed after publishing is seen by the next run.
    """
    node_type = node.node_type
    if not issubclass(node_type, TriggerType):
        return None
    config = node_type.Config.model_validate(dict(node.config))
    source = TriggerSource(workflow_id=workflow_id, node_id=node.id, webhook_event=EVENT_NAME,
                           workflow_resource=workflow_resource(workflow_id))
    spec = node_type.automation(config, source)
    if spec is None:
        return None
    trigger = EventTrigger(expect=set(spec.expect), match=dict(spec.match), posture=Posture.Reactive,
                           threshold=1)
    return AutomationCore(
        name=automation_name(tenant_id, workflow_id, node.id),
        description=f"Gorax {node.type} {node.id} of workflow {workflow_id}",
        enabled=enabled,
        trigger=trigger,
        actions=[RunDeployment(source="selected", deployment_id=UUID(deployment_id),
                               parameters={"trigger": spec.trigger, "trigger_node": node.id})],
    )


def _receives_webhooks(node: PlanNode) -> bool:
    return issubclass(node.node_type, TriggerType) and node.node_type.receives_webhooks


async def _sync_webhooks(session: AsyncSession, *, tenant_id: str, workflow_id: str,
                         nodes: list[PlanNode]) -> None:
    existing = {w.node_id: w for w in (await session.execute(select(Webhook).where(
        Webhook.tenant_id == tenant_id, Webhook.workflow_id == workflow_id))).scalars()}
    wanted = {n.id: n for n in nodes if _receives_webhooks(n)}
    now = utcnow()
    for node_id, node in wanted.items():
        config = dict(node.config)
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


async def sync_triggers(session: AsyncSession, *, tenant_id: str, workflow: Any, plan: Plan) -> None:
    """Make the workflow's webhooks and automations match ``plan`` (after it was deployed)."""
    nodes = [plan.nodes[n] for n in plan.triggers if not plan.nodes[n].disabled]
    await _sync_webhooks(session, tenant_id=tenant_id, workflow_id=workflow.id, nodes=nodes)
    if not workflow.deployment_id:
        return
    prefix = deployment_name(tenant_id, workflow.id) + "--trigger-"
    async with get_client() as client:
        current = {a.name: a for a in await client.read_automations() if a.name.startswith(prefix)}
        wanted = set()
        for node in nodes:
            automation = automation_of(tenant_id=tenant_id, workflow_id=workflow.id,
                                       deployment_id=workflow.deployment_id, node=node,
                                       enabled=workflow.status != "paused")
            if automation is None:
                continue
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
