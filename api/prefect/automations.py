"""Automations: the Prefect side of trigger sync.

A trigger that asks for one (:meth:`~translator.nodetypes.TriggerType.automation`) gets a
Prefect automation whose ``RunDeployment`` action runs the workflow's deployment with the event
as ``trigger`` and the node id as ``trigger_node``. Every automation also requires the tenant's
tag as a related resource, so a trigger only ever sees its own tenant's events.

A workflow's automations are the ones Prefect relates to its deployment (through that action),
each known by the trigger node it passes: names are for people, and no name prefix has to
match. Which automations a workflow wants is decided in :mod:`api.webhooks.automations`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import Automation, AutomationCore, EventTrigger, Posture

from flows import tenant_tag
from translator.nodetypes import AutomationSpec


def tenant_related(tenant_id: str) -> dict[str, str]:
    """The related resource that says whose an event is: the tenant's tag, as Prefect relates a
    run's tags to its events. Every event Gorax emits carries it and every automation built for
    a tenant's trigger requires it."""
    return {"prefect.resource.id": f"prefect.tag.{tenant_tag(tenant_id)}", "prefect.resource.role": "tag"}


def automation_of(
    spec: AutomationSpec,
    *,
    name: str,
    description: str,
    tenant_id: str,
    deployment_id: str,
    trigger_node: str,
    enabled: bool,
) -> AutomationCore:
    """The automation that runs the deployment when the trigger's event (of the tenant) arrives.

    It passes no ``env``: the run reads the tenant's variables when it starts, so a variable
    changed after publishing is seen by the next run.
    """
    trigger = EventTrigger(
        expect=set(spec.expect),
        match=dict(spec.match),
        match_related=[tenant_related(tenant_id)],
        posture=Posture.Reactive,
        threshold=1,
    )
    return AutomationCore(
        name=name,
        description=description,
        enabled=enabled,
        trigger=trigger,
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=UUID(deployment_id),
                parameters={"trigger": spec.trigger, "trigger_node": trigger_node},
            )
        ],
    )


def trigger_node_of(automation: Any) -> str | None:
    """The trigger node a Gorax automation starts runs from (None: not a Gorax trigger's)."""
    for action in automation.actions:
        if isinstance(action, RunDeployment) and isinstance(action.parameters, dict):
            node = action.parameters.get("trigger_node")
            if isinstance(node, str):
                return node
    return None


def requires_tenant(automation: Any) -> bool:
    """Whether the automation only matches events related to a tenant's tag."""
    related = getattr(automation.trigger, "match_related", None)
    specs = related if isinstance(related, list) else [related]
    return any(
        str(getattr(spec, "root", {}).get("prefect.resource.id", "")).startswith("prefect.tag.tenant:")
        for spec in specs
        if spec is not None
    )


async def automations_of(client: PrefectClient, deployment_id: str) -> dict[str, Automation]:
    """The trigger automations of a deployment, by trigger node."""
    related = await client.read_resource_related_automations(f"prefect.deployment.{deployment_id}")
    found = {}
    for automation in related:
        node = trigger_node_of(automation)
        if node is not None:
            found[node] = automation
    return found


async def sync_automations(client: PrefectClient, deployment_id: str, wanted: dict[str, AutomationCore]) -> None:
    """Make the deployment's trigger automations exactly ``wanted`` (by trigger node)."""
    current = await automations_of(client, deployment_id)
    for node, automation in wanted.items():
        if node in current:
            await client.update_automation(current[node].id, automation)
        else:
            await client.create_automation(automation)
    for node, stale in current.items():
        if node not in wanted:
            await client.delete_automation(stale.id)


async def set_enabled(client: PrefectClient, deployment_id: str, *, enabled: bool, keep: Collection[str] = ()) -> None:
    """Pause or resume the trigger automations of the deployment, but those of the trigger
    nodes in ``keep``, which stay as they are."""
    for node, automation in (await automations_of(client, deployment_id)).items():
        if node in keep:
            continue
        if enabled:
            await client.resume_automation(automation.id)
        else:
            await client.pause_automation(automation.id)


async def delete_automations(client: PrefectClient, deployment_id: str) -> None:
    """Delete every trigger automation of the deployment."""
    for automation in (await automations_of(client, deployment_id)).values():
        await client.delete_automation(automation.id)


async def tenantless_automations(client: PrefectClient) -> list[Automation]:
    """Trigger automations built before automations required their tenant."""
    return [a for a in await client.read_automations() if trigger_node_of(a) is not None and not requires_tenant(a)]


def deployment_of(automation: Any) -> str | None:
    """The deployment a trigger automation runs."""
    for action in automation.actions:
        if isinstance(action, RunDeployment) and action.deployment_id is not None:
            return str(action.deployment_id)
    return None


async def replace_automation(client: PrefectClient, automation_id: UUID, automation: AutomationCore) -> None:
    """Replace an automation's definition (its id stays)."""
    await client.update_automation(automation_id, automation)
