"""Credential uses reported for the audit log, as Prefect events.

A node that uses a credential (``ctx.credential(name)``, a ``credentials.<name>`` template)
emits one ``gorax.credential.used`` event per (flow run, credential, node): names and type,
never a value. The event's id is derived from those three, so a node that runs again (a retry,
a loop iteration, the flow body after a resume) repeats the id and Prefect keeps one. Prefect's
events client sends events in batches in the background and drains them when the process ends,
so a worker needs nothing but Prefect for this; the API turns a run's events into one audit
entry per credential (:mod:`api.services.credential_audit`).
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from typing import Any

from prefect.events import emit_event

log = logging.getLogger(__name__)

CREDENTIAL_USED = "gorax.credential.used"
#: Names event ids (uuid5) of credential uses.
_NAMESPACE = uuid.UUID("5b0c6f5e-1d7a-4a8e-9a57-6c0de4c2a9d1")
#: Event ids already emitted by this process, most recent last: a loop of a thousand
#: iterations emits its node's use once. Bounded; an id forgotten and sent again is dropped
#: by Prefect and by the API.
_SENT: OrderedDict[uuid.UUID, None] = OrderedDict()
_SENT_LIMIT = 10_000


def use_id(flow_run_id: Any, credential: str, node_id: str) -> uuid.UUID:
    """The event id of node ``node_id`` of a flow run using ``credential``."""
    return uuid.uuid5(_NAMESPACE, f"{flow_run_id}/{credential}/{node_id}")


def report_use(*, flow_run_id: Any, tenant_id: str | None, credential: str, credential_type: str, node_id: str) -> None:
    """Emit the use of ``credential`` by ``node_id`` in this run (once per run and node)."""
    if flow_run_id is None or not tenant_id:
        return  # a run outside Prefect, or without a tenant, has nobody to answer to
    event_id = use_id(flow_run_id, credential, node_id)
    if event_id in _SENT:
        return
    payload = {
        "tenant_id": tenant_id,
        "flow_run_id": str(flow_run_id),
        "credential": credential,
        "credential_type": credential_type,
        "node_id": node_id,
    }
    emitted = emit_event(
        event=CREDENTIAL_USED,
        resource={
            "prefect.resource.id": f"gorax.credential.{tenant_id}.{credential}",
            "prefect.resource.name": credential,
            "gorax.tenant": tenant_id,
            "gorax.credential-type": credential_type,
        },
        payload=payload,
        id=event_id,
    )
    if emitted is None:
        log.warning("the use of credential %r by node %r was not reported: Prefect events are off", credential, node_id)
    _SENT[event_id] = None  # said once, either way
    if len(_SENT) > _SENT_LIMIT:
        _SENT.popitem(last=False)
