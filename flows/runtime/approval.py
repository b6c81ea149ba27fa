"""Human approval at run time: record the task in Gorax, then suspend the flow run for a decision.

A node's task cannot suspend its own flow run (Prefect suspends flows, not tasks), so the
``human.approval`` node's task only records the human task and returns a marker; the executor,
at flow level, then suspends the run with a typed input (:class:`ApprovalDecision`) keyed per
node and loop iteration. No worker slot or process is held while people think. When the API
resumes the run with the decision, the flow body starts again from the top: completed nodes
return their persisted results, the approval task returns its marker from cache, and the same
suspend key makes Prefect hand back the stored decision instead of suspending again.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any

import httpx
from prefect.input import RunInput

#: Key of the marker a human.approval task returns instead of its final output.
AWAIT_DECISION = "__gorax_await_decision__"
#: How long an undeployed (``gorax run --local``) run blocks waiting for a decision.
LOCAL_PAUSE_SECONDS = 24 * 3600


#: A node id Prefect takes in a key as it is: lowercase letters and digits only.
_PLAIN_ID = re.compile(r"[a-z0-9]+")
_NOT_KEY_CHARACTER = re.compile(r"[^a-z0-9]")


def suspend_key(node_id: str, path: Sequence[int] = ()) -> str:
    """The key an approval node suspends its flow run with: one per node and loop iteration.

    Prefect takes only lowercase letters, digits and '-' in a run-input key, and a node id may
    hold '_'. An id of letters and digits is used as it is (a run suspended before this rule
    resumes under the same key); any other id has each other character replaced by '-' and
    gets 'h' and eight hex digits of its hash, which keep ids that would read alike apart
    ('a_1' and 'a-1', or 'a_1' and node 'a' in iteration 1). The loop path comes last.
    """
    if _PLAIN_ID.fullmatch(node_id):
        name = node_id
    else:
        digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
        name = f"{_NOT_KEY_CHARACTER.sub('-', node_id.lower())}-h{digest}"
    return "approval-" + name + "".join(f"-{int(index)}" for index in path)


class ApprovalDecision(RunInput):
    """What the API passes to a suspended run when a human task is decided."""

    value: str | None
    comment: str | None = None
    decided_by: str
    decided_at: str
    expired: bool = False


class ApprovalExpired(Exception):
    """Nobody decided before the task's timeout and no escalation decided for them."""


def awaiting_decision(output: Any) -> dict[str, Any] | None:
    """The marker of an approval task's output, else None."""
    if isinstance(output, dict) and AWAIT_DECISION in output:
        return output[AWAIT_DECISION]
    return None


def worker_token() -> str:
    """The bearer token of the worker principal (GORAX_WORKER_TOKEN, else the API's state file)."""
    from flows.settings import get_settings

    token = os.environ.get("GORAX_WORKER_TOKEN")
    if token:
        return token
    # Written by the API on its first start (api/auth/secrets.py): same state directory.
    return (get_settings().state_dir / "worker.token").read_text().strip()


async def record_human_task(request: dict[str, Any]) -> dict[str, Any]:
    """Create (idempotently) the human task through the API's internal endpoint."""
    from flows.settings import get_settings

    url = f"{get_settings().effective_api_url}/api/v1/internal/human-tasks"
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            url, json=request, headers={"Authorization": f"Bearer {worker_token()}"}
        )
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:
            message = response.text[:300]
        raise RuntimeError(
            f"recording the human task failed: POST {url} answered {response.status_code}: {message}"
        )
    return response.json()


async def await_decision(node_id: str, marker: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Suspend the flow run until the task is decided; the node's output and handle."""
    from prefect.context import FlowRunContext
    from prefect.flow_runs import apause_flow_run, asuspend_flow_run

    context = FlowRunContext.get()
    key = marker["key"]
    if context is not None and context.flow_run is not None and context.flow_run.deployment_id:
        decision = await asuspend_flow_run(wait_for_input=ApprovalDecision, key=key)
    else:
        # Only a deployment's run can be suspended and resubmitted; a local run waits in place.
        decision = await apause_flow_run(
            wait_for_input=ApprovalDecision, key=key, timeout=LOCAL_PAUSE_SECONDS, poll_interval=2
        )
    if decision.expired or decision.value is None:
        raise ApprovalExpired(
            f"node '{node_id}': nobody decided human task {marker.get('task_id')} before it expired"
        )
    output = {
        "decision": decision.value,
        "comment": decision.comment,
        "decided_by": decision.decided_by,
        "decided_at": decision.decided_at,
    }
    return output, (decision.value,)
