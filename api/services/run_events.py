"""Node state changes of one flow run, relayed from Prefect events.

Prefect emits an event for every task-run and flow-run state change
(``prefect.task-run.Running``, ``prefect.flow-run.Completed``, ...), each task-run event related
to its flow run. :func:`node_events` subscribes with a filter on the flow run resource (Prefect
replays what already happened, then streams), turns task-run events into
``{node_id, name, status, at, attempt?, error?}`` and ends with ``{type: "run", status}``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from api.prefect import FlowRun, PrefectClient
from api.prefect import events as prefect_events
from api.prefect import runs as prefect_runs
from api.services.executions import FINAL_TYPES, status_of
from blocks.redact import mask

_ITERATION = re.compile(r"( \[\d+\])+$")
_STATUS = {
    "SCHEDULED": "pending",
    "PENDING": "pending",
    "RUNNING": "running",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "CANCELLING": "cancelled",
    "CRASHED": "crashed",
    "PAUSED": "paused",
}
#: How often the run's own state is checked, in case its final event is older than the replay.
_POLL_SECONDS = 2.0


def node_ids_by_label(graph: Any) -> dict[str, str]:
    """Task run label (the node's name, else its id) -> node id."""
    labels: dict[str, str] = {}
    for node in (graph or {}).get("nodes", []) if isinstance(graph, dict) else []:
        if isinstance(node, dict) and node.get("id"):
            labels[str(node.get("name") or node["id"])] = str(node["id"])
    return labels


def is_node_label(task_run_name: str, labels: dict[str, str]) -> bool:
    """Whether ``task_run_name`` is a node's label (`` [i]`` per loop level allowed)."""
    return _ITERATION.sub("", task_run_name) in labels


def node_id_of(task_run_name: str, labels: dict[str, str]) -> str:
    """The node id of a task run named ``task_run_name`` (its label, `` [i]`` per loop level)."""
    base = _ITERATION.sub("", task_run_name)
    return labels.get(base, base)


def _event_status(state_type: str | None, state_name: str | None) -> str:
    if state_name == "TimedOut":
        return "timed_out"
    if state_type == "COMPLETED" and state_name in ("Skipped", "Disabled"):
        return "skipped"
    return _STATUS.get(state_type or "", (state_type or "unknown").lower())


def node_message(event: Any, labels: dict[str, str]) -> dict[str, Any] | None:
    """The WebSocket message of one task-run state event (None for other events)."""
    if not event.event.startswith("prefect.task-run."):
        return None
    resource = event.resource
    label = resource.get("prefect.resource.name") or ""
    base = _ITERATION.sub("", label)
    state_type = resource.get("prefect.state-type")
    state_name = resource.get("prefect.state-name")
    message: dict[str, Any] = {
        "node_id": labels.get(base, base),
        "name": label,
        "status": _event_status(state_type, state_name),
        "at": event.occurred.isoformat(),
    }
    state = (event.payload or {}).get("validated_state") or {}
    run_count = (event.payload or {}).get("task_run", {}).get("run_count")
    if isinstance(run_count, int) and run_count > 0:
        message["attempt"] = run_count
    if state_type in ("FAILED", "CRASHED") and state.get("message"):
        message["error"] = mask(str(state["message"]))[:2000]
    return message


async def node_events(run: FlowRun, *, client: PrefectClient) -> AsyncIterator[dict[str, Any]]:
    """Every node state change of ``run`` in order, then the run's final status."""
    labels = node_ids_by_label((run.parameters or {}).get("graph"))
    flow_resource = f"prefect.flow-run.{run.id}"
    since = (run.created or run.expected_start_time or datetime.now(UTC)) - timedelta(minutes=1)
    async with prefect_events.follow(prefect_events.of_run(run.id, since=since)) as subscriber:
        stream = subscriber.__aiter__()
        while True:
            try:
                event = await asyncio.wait_for(stream.__anext__(), timeout=_POLL_SECONDS)
            except TimeoutError:
                current = await prefect_runs.read_run(client, run.id)
                if current is not None and current.state is not None and current.state.type.value in FINAL_TYPES:
                    yield {"type": "run", "status": status_of(current.state)}
                    return
                continue
            except StopAsyncIteration:
                return
            if event.event.startswith("prefect.flow-run.") and str(event.resource.id) == flow_resource:
                state_type = event.resource.get("prefect.state-type")
                if state_type in FINAL_TYPES:
                    yield {"type": "run", "status": _event_status(state_type, event.resource.get("prefect.state-name"))}
                    return
                continue
            message = node_message(event, labels)
            if message is not None:
                yield message
