"""Failed webhook deliveries as Prefect events (``gorax.webhook.delivery.failed``).

A delivery fails when the receiver rejects its signature (stored as ``bad_signature``, answered
401) or when it became a dead letter (:mod:`api.deadletters.service`). Each one is one Prefect
event so that Prefect's automations can count them (the ``webhook_failures`` alert rule kind,
:mod:`api.prefect.alerts`): its resource is the webhook, labelled with the tenant, workflow,
trigger node, webhook and delivery ids, related to the tenant's tag like every Gorax event;
its payload is the reason and the delivery id, never the body, headers or a secret.

The receiver does not wait for the event: :func:`emit_soon` posts it in the background, and a
post that fails is logged (the delivery itself, with its status and reason, is stored either
way). Accepted deliveries emit nothing here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime
from typing import Any

from api.prefect import PrefectClient
from api.prefect import events as prefect_events
from api.prefect.alerts import WEBHOOK_FAILED_EVENT
from api.prefect.automations import tenant_related

log = logging.getLogger("gorax.webhooks.failures")

EVENT_NAME = WEBHOOK_FAILED_EVENT
#: The kinds of failure an event names (``payload.failure``).
BAD_SIGNATURE = "bad_signature"
DEAD_LETTER = "dead_letter"
_NAMESPACE = uuid.UUID("5f0d7a1e-0b8e-4c56-9a57-3c1f0b2d9e41")
_pending: set[asyncio.Task[None]] = set()


def webhook_resource(webhook_id: str) -> str:
    """The Prefect resource id failure events are about."""
    return f"gorax.webhook.{webhook_id}"


def event_of(
    *,
    delivery_id: str,
    tenant_id: str,
    workflow_id: str,
    webhook_id: str | None,
    node_id: str | None,
    failure: str,
    reason: str | None,
    occurred: datetime,
) -> dict[str, Any]:
    """The event of one failed delivery. Its id is derived from the delivery and the kind of
    failure (a delivery's ``gorax.webhook.received`` event already has the delivery's id), so
    posting it twice is one event to Prefect."""
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"{failure}:{delivery_id}")),
        "occurred": occurred.isoformat(),
        "event": EVENT_NAME,
        "resource": {
            "prefect.resource.id": webhook_resource(webhook_id or "unknown"),
            "gorax.tenant": tenant_id,
            "gorax.workflow": workflow_id,
            "gorax.webhook": webhook_id or "",
            "gorax.trigger-node": node_id or "",
            "gorax.delivery": delivery_id,
        },
        "related": [tenant_related(tenant_id)],
        "payload": {"delivery_id": delivery_id, "failure": failure, "reason": (reason or "")[:500]},
    }


async def emit(prefect: PrefectClient, events: list[dict[str, Any]]) -> None:
    """Post the events to Prefect now (raises when Prefect does not take them)."""
    if events:
        await prefect_events.post_events(prefect, json.dumps(events).encode())


async def _emit_logged(prefect: PrefectClient, events: list[dict[str, Any]]) -> None:
    try:
        await emit(prefect, events)
    except Exception as exc:  # the delivery is stored with its reason; only the count is late
        log.warning("could not post %d failed-delivery event(s) to Prefect: %s", len(events), exc)


def emit_soon(prefect: PrefectClient, events: list[dict[str, Any]]) -> None:
    """Post the events in the background (the caller answers without waiting)."""
    task = asyncio.get_running_loop().create_task(_emit_logged(prefect, events))
    _pending.add(task)
    task.add_done_callback(_pending.discard)
