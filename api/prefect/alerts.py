"""Alert and error-workflow automations: Prefect watches the runs, Gorax decides and sends.

Each enabled alert rule gets one Prefect automation (``gorax-alert-<rule id>``) and each workflow
with an error workflow gets one (``gorax-on-failure-<workflow id>``). Prefect does the watching:

- ``failure``: a reactive trigger on the tenant's ``prefect.flow-run.Failed``/``Crashed`` events;
- ``failure_burst``: the same with ``threshold`` N ``within`` M minutes;
- ``webhook_failures``: a reactive trigger on the tenant's ``gorax.webhook.delivery.failed``
  events (one per delivery rejected for its signature or turned dead letter) with ``threshold``
  N ``within`` M minutes;
- ``long_running``: a proactive trigger: after ``prefect.flow-run.Running`` no final state
  within N seconds, per run (``for_each`` the run);

every one requires the tenant's tag (and the workflow's when it is scoped to one). Its one action
is Prefect's ``CallWebhook`` through a ``Webhook`` block (``gorax-alert-callback``) that posts
the automation's verdict to the API's internal ``/internal/alerts/fire``, which renders the
alert, applies grouping and cool-down and sends it (:mod:`api.services.alerts`): Prefect has no
Slack/e-mail templating per tenant credential nor a cool-down across firings.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import PrefectClient
from prefect.events.actions import CallWebhook
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.types import SecretDict

from api.prefect.automations import tenant_related
from flows import workflow_tag

#: The Webhook block the alert automations post through.
CALLBACK_BLOCK = "gorax-alert-callback"
#: One failed webhook delivery (emitted by api.webhooks.failures).
WEBHOOK_FAILED_EVENT = "gorax.webhook.delivery.failed"
FAILED_EVENTS = frozenset({"prefect.flow-run.Failed", "prefect.flow-run.Crashed"})
_FINAL_EVENTS = frozenset(
    {
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.Paused",
        "prefect.flow-run.Suspended",
    }
)


def rule_automation_name(rule_id: str) -> str:
    return f"gorax-alert-{rule_id}"


def error_automation_name(workflow_id: str) -> str:
    return f"gorax-on-failure-{workflow_id}"


async def ensure_callback_block(client: PrefectClient, *, url: str, token: str) -> UUID:
    """The Webhook block that posts to the API's alert endpoint as the worker principal."""
    block = Webhook(
        method="POST",
        url=url,
        headers=SecretDict({"Authorization": f"Bearer {token}", "Content-Type": "application/json"}),
        allow_private_urls=True,
    )
    block_id = await block.asave(CALLBACK_BLOCK, overwrite=True, client=client)
    return UUID(str(block_id))


def _related(tenant_id: str, workflow_id: str | None) -> list[dict[str, str]]:
    related = [tenant_related(tenant_id)]
    if workflow_id:
        related.append(
            {"prefect.resource.id": f"prefect.tag.{workflow_tag(workflow_id)}", "prefect.resource.role": "tag"}
        )
    return related


def _payload(fields: dict[str, str], run_template: str) -> str:
    """The JSON body the action posts: ``fields`` and the run the automation fired for (a template)."""
    return json.dumps({**fields, "run": "__RUN__"}).replace('"__RUN__"', f'"{run_template}"')


def _callback(block_id: UUID, payload: str) -> CallWebhook:
    return CallWebhook(block_document_id=block_id, payload=payload)


def rule_automation(
    *,
    rule_id: str,
    tenant_id: str,
    kind: str,
    workflow_id: str | None,
    threshold: int | None,
    window_minutes: int | None,
    seconds: int | None,
    enabled: bool,
    block_id: UUID,
) -> AutomationCore:
    """The automation that watches for a rule's condition and posts it to the API."""
    related = _related(tenant_id, workflow_id)
    match = {"prefect.resource.id": "prefect.flow-run.*"}
    trigger: EventTrigger
    if kind == "long_running":
        trigger = EventTrigger(
            after={"prefect.flow-run.Running"},
            expect=set(_FINAL_EVENTS),
            match=match,
            match_related=related,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=max(int(seconds or 0), 10)),
        )
        run = "{{ labels['prefect.resource.id'] }}"
    elif kind == "webhook_failures":
        # Gorax's own event per rejected or dead-lettered delivery (api.webhooks.failures),
        # about the webhook and labelled with its tenant and workflow.
        webhook_match = {"prefect.resource.id": "gorax.webhook.*", "gorax.tenant": tenant_id}
        if workflow_id:
            webhook_match["gorax.workflow"] = workflow_id
        trigger = EventTrigger(
            expect={WEBHOOK_FAILED_EVENT},
            match=webhook_match,
            match_related=[tenant_related(tenant_id)],
            posture=Posture.Reactive,
            threshold=int(threshold or 1),
            within=timedelta(minutes=int(window_minutes or 1)),
        )
        run = "{{ event.resource.id }}"
    else:
        burst = kind == "failure_burst"
        trigger = EventTrigger(
            expect=set(FAILED_EVENTS),
            match=match,
            match_related=related,
            posture=Posture.Reactive,
            threshold=int(threshold or 1) if burst else 1,
            within=timedelta(minutes=int(window_minutes or 1)) if burst else timedelta(0),
        )
        run = "{{ event.resource.id }}"
    payload = _payload({"rule_id": rule_id}, run)
    return AutomationCore(
        name=rule_automation_name(rule_id),
        description=f"Gorax alert rule {rule_id} ({kind}) of tenant {tenant_id}.",
        enabled=enabled,
        trigger=trigger,
        actions=[_callback(block_id, payload)],
    )


def error_automation(*, workflow_id: str, tenant_id: str, block_id: UUID) -> AutomationCore:
    """The automation that tells the API a run of ``workflow_id`` failed (its error workflow)."""
    return AutomationCore(
        name=error_automation_name(workflow_id),
        description=f"Runs the error workflow of Gorax workflow {workflow_id} when one of its runs fails.",
        trigger=EventTrigger(
            expect=set(FAILED_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=_related(tenant_id, workflow_id),
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[_callback(block_id, _payload({"error_workflow_of": workflow_id}, "{{ event.resource.id }}"))],
    )


async def put_automation(client: PrefectClient, automation: AutomationCore) -> None:
    """Create or replace the automation of that name (duplicates removed)."""
    existing = await client.read_automations_by_name(automation.name)
    if not existing:
        await client.create_automation(automation)
        return
    first, *duplicates = existing
    for duplicate in duplicates:
        await client.delete_automation(duplicate.id)
    await client.update_automation(first.id, automation)


async def delete_named(client: PrefectClient, name: str) -> None:
    """Delete every automation of that name."""
    for automation in await client.read_automations_by_name(name):
        await client.delete_automation(automation.id)


def run_id_of(resource: Any) -> str | None:
    """The flow run id in ``prefect.flow-run.<id>`` (None for anything else)."""
    text = str(resource or "")
    prefix = "prefect.flow-run."
    if not text.startswith(prefix):
        return None
    try:
        return str(UUID(text[len(prefix) :]))
    except ValueError:
        return None
