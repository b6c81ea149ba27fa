"""Executions: the tenant's Prefect flow runs, started, read, listed, cancelled and retried.

A Gorax execution *is* a Prefect flow run of a workflow's deployment. Every run carries the tags
``tenant:<tenant id>`` and ``workflow:<workflow id>`` (from the deployment and set again at
creation); every read filters on the tenant tag, and a run without it is NotFound, exactly like
an id that does not exist. Step detail comes from the runtime's step records
(:func:`flows.runtime.steps.read_steps`).
"""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from typing import Any
from uuid import UUID

from api.errors import BadRequest, Conflict, GatewayTimeout, NotFound

#: Prefect state type -> the API's status vocabulary.
_STATUS = {
    "SCHEDULED": "pending", "PENDING": "pending", "RUNNING": "running",
    "COMPLETED": "completed", "FAILED": "failed", "CANCELLED": "cancelled",
    "CANCELLING": "cancelled", "CRASHED": "crashed", "PAUSED": "paused",
}
STATUSES = ("pending", "running", "completed", "failed", "cancelled", "crashed", "paused",
            "timed_out")
FINAL_TYPES = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def tenant_tag(tenant_id: str) -> str:
    """The tag every flow run of the tenant carries."""
    return f"tenant:{tenant_id}"


def status_of(state: Any) -> str:
    """The API status of a Prefect state (``timed_out`` for a TimedOut failure)."""
    if state is None:
        return "pending"
    if state.name == "TimedOut":
        return "timed_out"
    if state.type.value == "COMPLETED" and state.name in ("Skipped", "Disabled"):
        return "skipped"
    return _STATUS.get(state.type.value, state.type.value.lower())


def _state_types_for(status: str) -> list[Any]:
    from prefect.client.schemas.objects import StateType

    if status not in STATUSES:
        raise BadRequest(f"unknown status {status!r}; use one of {', '.join(STATUSES)}",
                         details={"field": "status"})
    if status == "timed_out":
        return [StateType.FAILED]
    return [StateType(t) for t, s in _STATUS.items() if s == status]


def _tag_value(tags: list[str], prefix: str) -> str | None:
    return next((t[len(prefix):] for t in tags if t.startswith(prefix)), None)


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None


def summary_of(run: Any) -> dict[str, Any]:
    """The list form of an execution."""
    parameters = run.parameters or {}
    state = run.state
    error = state.message if state is not None and state.type.value in ("FAILED", "CRASHED") else None
    trigger_type = _tag_value(run.tags, "trigger:") or ("schedule" if run.auto_scheduled else
                                                      "automation" if run.created_by and
                                                      run.created_by.type == "AUTOMATION"
                                                      else "manual")
    return {
        "id": str(run.id),
        "workflow_id": _tag_value(run.tags, "workflow:") or parameters.get("workflow_id"),
        "workflow_name": run.name,
        "version": parameters.get("workflow_version"),
        "status": status_of(state),
        "started_at": run.start_time,
        "ended_at": run.end_time,
        "duration_ms": _ms(run.start_time, run.end_time),
        "trigger_type": trigger_type,
        "error": error,
    }


def step_of(record: Any) -> dict[str, Any]:
    """The API form of a runtime step record (already masked and size-capped by the runtime)."""
    return {
        "node_id": record.node_id, "name": record.name, "type": record.type,
        "status": record.status, "attempts": record.attempts,
        "started_at": record.started_at, "ended_at": record.ended_at,
        "duration_ms": _ms(record.started_at, record.ended_at),
        "iteration": record.iteration, "input": record.input, "output": record.output,
        "error": record.error,
    }


def prefect_run_url(prefect_api_url: str, run_id: Any) -> str:
    """The flow run's page in the Prefect UI (for operators)."""
    base = prefect_api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/runs/flow-run/{run_id}"


async def get_run(client: Any, *, tenant_id: str, execution_id: str) -> Any:
    """The tenant's flow run; NotFound for a malformed id, a missing run or another tenant's."""
    from prefect.exceptions import ObjectNotFound

    try:
        run_id = UUID(str(execution_id))
    except ValueError:
        raise NotFound(f"execution {execution_id!r} not found") from None
    try:
        run = await client.read_flow_run(run_id)
    except ObjectNotFound:
        run = None
    if run is None or tenant_tag(tenant_id) not in (run.tags or []):
        raise NotFound(f"execution {execution_id!r} not found",
                       details={"execution_id": execution_id})
    return run


async def run_output(run: Any) -> Any:
    """The run's result when it completed (None otherwise or when it cannot be read)."""
    if run.state is None or run.state.type.value != "COMPLETED":
        return None
    try:
        import blocks.results  # noqa: F401 - registers the sealed serializer runs persist with

        return await run.state.aresult(raise_on_failure=False)
    except Exception:  # result storage unreadable from the API: the steps still tell the story
        return None


async def execution_detail(client: Any, run: Any, *, prefect_api_url: str) -> dict[str, Any]:
    """Summary plus input, output, steps and the Prefect UI link."""
    from flows.runtime.steps import read_steps

    steps = await read_steps(run.id, client=client, ended_at=_ended_at(run))
    return {**summary_of(run), "input": (run.parameters or {}).get("trigger"),
            "output": await run_output(run), "steps": [step_of(s) for s in steps],
            "prefect_url": prefect_run_url(prefect_api_url, run.id)}


async def read_execution_steps(client: Any, *, tenant_id: str, execution_id: str) -> list[dict[str, Any]]:
    """The step records of one of the tenant's runs."""
    from flows.runtime.steps import read_steps

    run = await get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    return [step_of(s) for s in await read_steps(run.id, client=client, ended_at=_ended_at(run))]


def _ended_at(run: Any) -> Any:
    """When the run reached its final state (None while it is not over)."""
    if run.state is None or not run.state.is_final():
        return None
    return run.end_time or run.state.timestamp


async def start_run(
    client: Any, *, tenant_id: str, workflow_id: str, deployment_id: str,
    trigger: Any, trigger_type: str, graph: dict[str, Any] | None = None,
    version: int | None = None, parameters: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Any:
    """Create a flow run of the workflow's deployment with the tenant's variables as ``env``.

    ``graph``/``version`` run an older published version instead of the deployed one;
    ``parameters`` (a retry) replays a previous run's parameters; with ``idempotency_key``
    Prefect answers the run it already created under that key instead of a second one.
    """
    from flows.variables import tenant_env

    params = dict(parameters or {})
    params["trigger"] = trigger
    params["env"] = await tenant_env(tenant_id)
    if graph is not None:
        params.update(graph=graph, workflow_version=version)
    tags = [tenant_tag(tenant_id), f"workflow:{workflow_id}", f"trigger:{trigger_type}", "gorax"]
    return await client.create_flow_run_from_deployment(UUID(deployment_id), parameters=params,
                                                        tags=tags, idempotency_key=idempotency_key)


async def wait_for_run(client: Any, run_id: UUID, timeout: float) -> Any:
    """The run once it is final; GatewayTimeout naming the execution when it is not in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.1
    while True:
        run = await client.read_flow_run(run_id)
        if run.state is not None and run.state.type.value in FINAL_TYPES:
            return run
        if loop.time() >= deadline:
            raise GatewayTimeout(f"execution {run_id} did not finish within {timeout:g} seconds",
                                 details={"execution_id": str(run_id)})
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _offset_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset_of(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind == "o" and value.isdigit():
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise BadRequest("cursor is not valid", details={"field": "cursor"})


def run_filter(*, tenant_id: str, workflow_id: str | None = None, status: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> Any:
    """A Prefect flow run filter on the tenant tag (plus workflow, status and time range)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterState,
        FlowRunFilterStateName, FlowRunFilterStateType, FlowRunFilterTags,
    )

    tags = [tenant_tag(tenant_id)] + ([f"workflow:{workflow_id}"] if workflow_id else [])
    flt = FlowRunFilter(tags=FlowRunFilterTags(all_=tags))
    if status:
        state = FlowRunFilterState(type=FlowRunFilterStateType(any_=_state_types_for(status)))
        if status == "timed_out":
            state = FlowRunFilterState(name=FlowRunFilterStateName(any_=["TimedOut"]))
        flt.state = state
    if since or until:
        flt.expected_start_time = FlowRunFilterExpectedStartTime(after_=since, before_=until)
    return flt


async def list_runs(client: Any, *, tenant_id: str, workflow_id: str | None = None,
                    status: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 50,
                    cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None, int]:
    """A page of the tenant's executions, newest first, and the total matching."""
    from prefect.client.schemas.sorting import FlowRunSort

    offset = _offset_of(cursor)
    flt = run_filter(tenant_id=tenant_id, workflow_id=workflow_id, status=status,
                     since=since, until=until)
    # Prefect pages are at most 200 (the API's own maximum): whether more follow comes from the count.
    page = await client.read_flow_runs(flow_run_filter=flt, sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                                       limit=limit, offset=offset)
    total = await client.count_flow_runs(flow_run_filter=flt)
    next_cursor = _offset_cursor(offset + limit) if offset + len(page) < total and page else None
    return [summary_of(r) for r in page], next_cursor, total


async def cancel_run(client: Any, *, tenant_id: str, execution_id: str) -> Any:
    """Cancel a run (Cancelling while it runs, Cancelled before it starts); Conflict when final."""
    from prefect.states import Cancelled, Cancelling

    run = await get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    kind = run.state.type.value if run.state else "SCHEDULED"
    if kind in FINAL_TYPES or kind == "CANCELLING":
        raise Conflict(f"execution {execution_id} is already {status_of(run.state)}",
                       details={"execution_id": execution_id})
    # A scheduled or suspended run has no process to stop: it is cancelled at once.
    state = Cancelled(message="Cancelled through the Gorax API") if kind in (
        "SCHEDULED", "PENDING", "PAUSED") else Cancelling(message="Cancelled through the Gorax API")
    await client.set_flow_run_state(run.id, state, force=True)
    return await client.read_flow_run(run.id)


async def retry_run(client: Any, *, tenant_id: str, execution_id: str) -> Any:
    """A new run with the same parameters (same version graph and trigger input)."""
    from prefect.exceptions import ObjectNotFound

    run = await get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    if run.deployment_id is None:
        raise Conflict("this execution has no deployment to run again",
                       details={"execution_id": execution_id})
    parameters = dict(run.parameters or {})
    workflow_id = _tag_value(run.tags, "workflow:") or parameters.get("workflow_id") or ""
    try:
        return await start_run(client, tenant_id=tenant_id, workflow_id=workflow_id,
                               deployment_id=str(run.deployment_id),
                               trigger=parameters.get("trigger"), trigger_type="retry",
                               parameters=parameters)
    except ObjectNotFound:
        raise Conflict("the workflow's deployment is gone (archived); it cannot run again",
                       details={"execution_id": execution_id}) from None
