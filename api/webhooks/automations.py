"""Trigger sync: webhook endpoints and Prefect automations for a published workflow.

Called by publishing (:func:`sync_triggers`) inside its transaction, after the deployment
exists. Every trigger node whose type receives webhooks keeps one :class:`Webhook` row (its
token survives republishing). Every trigger whose type asks for an automation
(:meth:`~translator.nodetypes.TriggerType.automation`) gets one Prefect automation
(:mod:`api.prefect.automations`) whose RunDeployment action passes the event (as the type says)
as ``trigger`` and the node id as ``trigger_node``, and which requires the tenant's tag, so a
trigger only ever sees its own tenant's events whatever it asks for (:func:`require_tenants`
rebuilds automations made before that). Automations are named
``<deployment name>--trigger-<node>`` for people; pausing, resuming and archiving the workflow
(:mod:`api.services.publishing`) find them through the deployment they run.

Pausing a workflow pauses the automations of its other triggers, not those of its webhooks
(:func:`held_while_paused`): a paused workflow's webhooks refuse new deliveries (409, Retry-After)
and the dispatcher holds those already accepted until it is resumed. An automation re-enabled at
resume is taken up by Prefect's triggers service a moment after the commit, and an event in that
moment would start no run; a webhook automation that never paused has no such moment.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.errors import ValidationFailed
from api.models.workflows import Workflow, WorkflowVersion
from api.prefect import AutomationCore, PrefectClient
from api.prefect import automations as prefect_automations
from api.webhooks.credential_stamps import session_reader
from api.webhooks.dispatcher import EVENT_NAME, workflow_resource
from api.webhooks.models import Webhook
from api.webhooks.secrets_cache import secret_cache
from translator import GraphError, GraphValidationError, compile_graph
from translator.nodetypes import AutomationSpec, TriggerSource, TriggerType
from translator.plan import Plan, PlanNode

log = logging.getLogger("gorax.webhooks.automations")


def new_token() -> str:
    """An unguessable webhook URL token."""
    return secrets.token_urlsafe(32)


def automation_name(deployment_name: str, node_id: str) -> str:
    """The name of one trigger node's automation (after the deployment's, for people)."""
    return f"{deployment_name}--trigger-{node_id}"


#: Every run of a deployment goes through these; Prefect refuses a RunDeployment automation on
#: them that matches every flow run, since each run would start the next one. The tenant filter
#: below hides such a trigger from Prefect's check, so it is made here.
_EVERY_RUN_EVENTS = frozenset(
    {"prefect.flow-run.Scheduled", "prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.*"}
)
_ANY_FLOW_RUN: tuple[dict[str, str], ...] = ({}, {"prefect.resource.id": "prefect.flow-run.*"})


def _spec_of(workflow_id: str, node: PlanNode) -> AutomationSpec | None:
    """What the node's trigger type asks of Prefect (None: no automation)."""
    node_type = node.node_type
    if not issubclass(node_type, TriggerType):
        return None
    config = node_type.Config.model_validate(dict(node.config))
    source = TriggerSource(
        workflow_id=workflow_id,
        node_id=node.id,
        webhook_event=EVENT_NAME,
        workflow_resource=workflow_resource(workflow_id),
    )
    return node_type.automation(config, source)


def check_triggers(plan: Plan, workflow_id: str) -> None:
    """ValidationFailed (before anything is deployed) for a trigger that would start its own
    workflow from each of its runs."""
    errors = []
    for node in _trigger_nodes(plan):
        spec = _spec_of(workflow_id, node)
        if spec is not None and set(spec.expect) & _EVERY_RUN_EVENTS and spec.match in _ANY_FLOW_RUN:
            errors.append(
                GraphError(
                    node_id=node.id,
                    path=f"config.{spec.narrowed_by}" if spec.narrowed_by else "config",
                    code="self_starting_trigger",
                    message=f"on {', '.join(spec.expect)} this trigger matches every flow run of the tenant, "
                    f"its own included: each run would start the next; narrow it with "
                    f"'{spec.narrowed_by or 'its resource'}'",
                )
            )
    if errors:
        raise ValidationFailed(f"{errors[0]}", details={"errors": [e.to_dict() for e in errors]})


def _trigger_nodes(plan: Plan) -> list[PlanNode]:
    return [plan.nodes[n] for n in plan.triggers if not plan.nodes[n].disabled]


def automation_of(
    *, tenant_id: str, workflow_id: str, deployment_id: str, deployment_name: str, node: PlanNode, enabled: bool
) -> AutomationCore | None:
    """The Prefect automation that runs the deployment when the node's event arrives (None: the
    trigger needs none); whatever the trigger asks for, only the tenant's events match."""
    spec = _spec_of(workflow_id, node)
    if spec is None:
        return None
    return prefect_automations.automation_of(
        spec,
        name=automation_name(deployment_name, node.id),
        description=f"Gorax {node.type} {node.id} of workflow {workflow_id}",
        tenant_id=tenant_id,
        deployment_id=deployment_id,
        trigger_node=node.id,
        enabled=enabled,
    )


def _receives_webhooks(node: PlanNode) -> bool:
    return issubclass(node.node_type, TriggerType) and node.node_type.receives_webhooks


async def _sync_webhooks(session: AsyncSession, *, tenant_id: str, workflow_id: str, nodes: list[PlanNode]) -> None:
    existing = {
        w.node_id: w
        for w in (
            await session.execute(
                select(Webhook).where(Webhook.tenant_id == tenant_id, Webhook.workflow_id == workflow_id)
            )
        ).scalars()
    }
    wanted = {n.id: n for n in nodes if _receives_webhooks(n)}
    now = utcnow()
    for node_id, node in wanted.items():
        config = dict(node.config)
        webhook = existing.get(node_id)
        if webhook is None:
            session.add(
                Webhook(
                    id=new_id(),
                    tenant_id=tenant_id,
                    workflow_id=workflow_id,
                    node_id=node_id,
                    token=new_token(),
                    config=config,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            webhook.config, webhook.active, webhook.updated_at = config, True, now
        name = (config.get("signature") or {}).get("secret")
        if name:
            secret_cache.forget(tenant_id, name)
            try:  # warm the cache so deliveries verify even if Prefect goes away later
                await secret_cache.get(
                    tenant_id, name, read_stamp=session_reader(session, tenant_id=tenant_id, name=name)
                )
            except Exception:
                log.warning("credential %r of webhook node %s cannot be read yet", name, node_id)
    for node_id, webhook in existing.items():
        if node_id not in wanted and webhook.active:
            webhook.active, webhook.updated_at = False, now


async def held_while_paused(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> set[str]:
    """The trigger nodes of the workflow whose automations stay enabled while it is paused: its
    webhooks, whose deliveries the dispatcher holds instead."""
    return set(
        (
            await session.execute(
                select(Webhook.node_id).where(
                    Webhook.tenant_id == tenant_id, Webhook.workflow_id == workflow_id, Webhook.active.is_(True)
                )
            )
        ).scalars()
    )


async def sync_triggers(
    session: AsyncSession, prefect: PrefectClient, *, tenant_id: str, workflow: Any, deployment_name: str, plan: Plan
) -> None:
    """Make the workflow's webhooks and automations match ``plan`` (after it was deployed)."""
    nodes = _trigger_nodes(plan)
    await _sync_webhooks(session, tenant_id=tenant_id, workflow_id=workflow.id, nodes=nodes)
    if not workflow.deployment_id:
        return
    wanted = {}
    for node in nodes:
        automation = automation_of(
            tenant_id=tenant_id,
            workflow_id=workflow.id,
            deployment_id=workflow.deployment_id,
            deployment_name=deployment_name,
            node=node,
            enabled=workflow.status != "paused" or _receives_webhooks(node),
        )
        if automation is not None:
            wanted[node.id] = automation
    await prefect_automations.sync_automations(prefect, workflow.deployment_id, wanted)


async def require_tenants(db: Database, prefect: PrefectClient) -> int:
    """Rebuild the trigger automations built before they required the tenant (from each
    workflow's published version, paused ones staying paused); returns how many were rebuilt."""
    stale = {
        (prefect_automations.deployment_of(a), prefect_automations.trigger_node_of(a)): a
        for a in await prefect_automations.tenantless_automations(prefect)
    }
    if not stale:
        return 0
    async with db.system_scope() as session:
        rows = (
            await session.execute(
                select(Workflow, WorkflowVersion.graph)
                .join(
                    WorkflowVersion,
                    and_(WorkflowVersion.workflow_id == Workflow.id, WorkflowVersion.number == Workflow.latest_version),
                )
                .where(Workflow.deployment_id.in_({d for d, _ in stale if d is not None}))
            )
        ).all()
    rebuilt = 0
    for workflow, graph in rows:
        try:
            plan = compile_graph(graph)
        except GraphValidationError:  # a version of an older node catalogue: republishing fixes it
            log.warning(
                "workflow %s's published version no longer compiles; its triggers wait for the next publish",
                workflow.id,
            )
            continue
        for node in _trigger_nodes(plan):
            old = stale.get((workflow.deployment_id, node.id))
            if old is None:
                continue
            # The name stays: it is the one the deployment's name gave it when it was made.
            automation = automation_of(
                tenant_id=workflow.tenant_id,
                workflow_id=workflow.id,
                deployment_id=workflow.deployment_id,
                deployment_name=old.name.rsplit("--trigger-", 1)[0],
                node=node,
                enabled=old.enabled,
            )
            if automation is None:
                continue
            await prefect_automations.replace_automation(prefect, old.id, automation)
            rebuilt += 1
    if rebuilt:
        log.warning("%d trigger automations built before triggers required their tenant were rebuilt", rebuilt)
    return rebuilt


async def keep_requiring_tenants(db: Database, prefect: PrefectClient, *, retry_seconds: float = 5.0) -> None:
    """:func:`require_tenants` once, retried while Prefect cannot be reached (an API's startup)."""
    while True:
        try:
            await require_tenants(db, prefect)
            return
        except Exception as exc:  # Prefect not up yet: the stale automations cannot fire either
            log.info("checking trigger automations for their tenant filter failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(retry_seconds)


async def deactivate_webhooks(session: AsyncSession, *, tenant_id: str, workflow_id: str) -> None:
    """Stop accepting deliveries for an archived workflow (its URLs answer 404)."""
    rows = (
        await session.execute(select(Webhook).where(Webhook.tenant_id == tenant_id, Webhook.workflow_id == workflow_id))
    ).scalars()
    for webhook in rows:
        webhook.active = False
