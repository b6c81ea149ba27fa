"""Executions: the tenant's Prefect flow runs, started, read, listed, cancelled and retried.

A Gorax execution *is* a Prefect flow run of a workflow's deployment. Every run carries the tags
``tenant:<tenant id>`` and ``workflow:<workflow id>`` (from the deployment and set again at
creation); every read filters on the tenant tag, and a run without it is NotFound, exactly like
an id that does not exist. Step detail comes from the runtime's step records
(:func:`flows.read_steps`). Prefect is reached through :mod:`api.prefect.runs` with the client
the caller passes.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from uuid import UUID

from api.errors import BadRequest, Conflict, GatewayTimeout, NotFound, ResultUnavailable
from api.prefect import FlowRun, PrefectClient, runs
from api.prefect.variables import read_tenant_variables
from flows import tenant_tag, tenant_test_tag, workflow_tag, workflow_test_tag

#: Prefect state type -> the API's status vocabulary.
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
STATUSES = ("pending", "running", "completed", "failed", "cancelled", "crashed", "paused", "timed_out")
FINAL_TYPES = runs.FINAL_TYPES


def status_of(state: Any) -> str:
    """The API status of a Prefect state (``timed_out`` for a TimedOut failure)."""
    if state is None:
        return "pending"
    if state.name == "TimedOut":
        return "timed_out"
    if state.type.value == "COMPLETED" and state.name in ("Skipped", "Disabled"):
        return "skipped"
    return _STATUS.get(state.type.value, state.type.value.lower())


def _state_types_for(status: str) -> list[str]:
    if status not in STATUSES:
        raise BadRequest(f"unknown status {status!r}; use one of {', '.join(STATUSES)}", details={"field": "status"})
    if status == "timed_out":
        return ["FAILED"]
    return [t for t, s in _STATUS.items() if s == status]


def _tag_value(tags: list[str], prefix: str) -> str | None:
    return next((t[len(prefix) :] for t in tags if t.startswith(prefix)), None)


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None


def summary_of(run: Any) -> dict[str, Any]:
    """The list form of an execution."""
    parameters = run.parameters or {}
    state = run.state
    error = state.message if state is not None and state.type.value in ("FAILED", "CRASHED") else None
    trigger_type = _tag_value(run.tags, "trigger:") or (
        "schedule"
        if run.auto_scheduled
        else "automation"
        if run.created_by and run.created_by.type == "AUTOMATION"
        else "manual"
    )
    return {
        "id": str(run.id),
        "workflow_id": _tag_value(run.tags, "workflow:")
        or _tag_value(run.tags, "test-workflow:")
        or parameters.get("workflow_id"),
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
        "node_id": record.node_id,
        "name": record.name,
        "type": record.type,
        "status": record.status,
        "attempts": record.attempts,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "duration_ms": _ms(record.started_at, record.ended_at),
        "iteration": record.iteration,
        "input": record.input,
        "output": record.output,
        "error": record.error,
        "attempt_history": [attempt.model_dump() for attempt in record.attempt_history],
    }


def prefect_run_url(prefect_api_url: str, run_id: Any) -> str:
    """The flow run's page in the Prefect UI (for operators)."""
    base = prefect_api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/runs/flow-run/{run_id}"


async def get_run(client: PrefectClient, *, tenant_id: str, execution_id: str) -> FlowRun:
    """The tenant's flow run; NotFound for a malformed id, a missing run or another tenant's."""
    try:
        run_id = UUID(str(execution_id))
    except ValueError:
        raise NotFound(f"execution {execution_id!r} not found") from None
    run = await runs.read_run(client, run_id)
    tags = run.tags or [] if run is not None else []
    if run is None or (tenant_tag(tenant_id) not in tags and tenant_test_tag(tenant_id) not in tags):
        raise NotFound(f"execution {execution_id!r} not found", details={"execution_id": execution_id})
    return run


async def run_output(run: FlowRun) -> Any:
    """The run's result when it completed (None otherwise, or when the run returned none).

    A completed run whose stored result cannot be read (deleted, stored on another machine's
    disk, storage unreachable, sealed under a key this process lacks) is ResultUnavailable.
    """
    if run.state is None or run.state.type.value != "COMPLETED":
        return None
    if run.state.data is None:
        return None  # the run ended without a result (a trigger filtered it): nothing was stored
    try:
        return await runs.read_result(run)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if getattr(run.state.data, "storage_block_id", False) is None:
            reason += (
                " (it was stored on the local disk of the worker that ran it: give every "
                "process the same shared GORAX_RESULTS_URL)"
            )
        raise ResultUnavailable(
            f"the result of execution {run.id} cannot be read: {reason}",
            details={"execution_id": str(run.id), "reason": reason},
        ) from exc


async def execution_detail(client: PrefectClient, run: FlowRun, *, prefect_api_url: str) -> dict[str, Any]:
    """Summary plus input, output, steps and the Prefect UI link."""
    steps = await runs.read_run_steps(client, run)
    return {
        **summary_of(run),
        "input": (run.parameters or {}).get("trigger"),
        "output": await run_output(run),
        "steps": [step_of(s) for s in steps],
        "prefect_url": prefect_run_url(prefect_api_url, run.id),
        "trace_id": runs.trace_id_of(run),
    }


async def read_execution_steps(client: PrefectClient, *, tenant_id: str, execution_id: str) -> list[dict[str, Any]]:
    """The step records of one of the tenant's runs."""
    run = await get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    return [step_of(s) for s in await runs.read_run_steps(client, run)]


async def start_run(
    client: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str,
    deployment_id: str,
    trigger: Any,
    trigger_type: str,
    graph: dict[str, Any] | None = None,
    version: int | None = None,
    parameters: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> FlowRun:
    """Create a flow run of the workflow's deployment with the tenant's variables as ``env``.

    ``graph``/``version`` run an older published version instead of the deployed one;
    ``parameters`` (a retry) replays a previous run's parameters; with ``idempotency_key``
    Prefect answers the run it already created under that key instead of a second one.
    """
    params = dict(parameters or {})
    params["trigger"] = trigger
    params["env"] = await read_tenant_variables(client, tenant_id)
    if graph is not None:
        params.update(graph=graph, workflow_version=version)
    tags = [tenant_tag(tenant_id), workflow_tag(workflow_id), f"trigger:{trigger_type}", "gorax"]
    return await runs.start_run(client, deployment_id, parameters=params, tags=tags, idempotency_key=idempotency_key)


async def wait_for_run(client: PrefectClient, run_id: UUID, timeout: float) -> FlowRun:
    """The run once it is final; GatewayTimeout naming the execution when it is not in time."""
    run = await runs.wait_for_final(client, run_id, timeout)
    if run is None:
        raise GatewayTimeout(
            f"execution {run_id} did not finish within {timeout:g} seconds", details={"execution_id": str(run_id)}
        )
    return run


async def last_run(client: PrefectClient, *, tenant_id: str, workflow_id: str) -> dict[str, Any] | None:
    """The summary of the workflow's newest run (None before its first)."""
    found = await runs.read_runs(client, run_filter(tenant_id=tenant_id, workflow_id=workflow_id), limit=1)
    return summary_of(found[0]) if found else None


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


def run_filter(
    *,
    tenant_id: str,
    workflow_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tests: bool = False,
) -> Any:
    """A Prefect flow run filter on the tenant tag (plus workflow, status and time range); with
    ``tests`` the tenant's test runs instead of its production runs."""
    if tests:
        tags = [tenant_test_tag(tenant_id)] + ([workflow_test_tag(workflow_id)] if workflow_id else [])
    else:
        tags = [tenant_tag(tenant_id)] + ([workflow_tag(workflow_id)] if workflow_id else [])
    return runs.run_filter(
        tags=tags,
        state_types=_state_types_for(status) if status else None,
        state_names=["TimedOut"] if status == "timed_out" else None,
        since=since,
        until=until,
    )


async def list_runs(
    client: PrefectClient,
    *,
    tenant_id: str,
    workflow_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    tests: bool = False,
) -> tuple[list[dict[str, Any]], str | None, int]:
    """A page of the tenant's executions (or, with ``tests``, its test runs), newest first, and
    the total matching."""
    offset = _offset_of(cursor)
    flt = run_filter(tenant_id=tenant_id, workflow_id=workflow_id, status=status, since=since, until=until, tests=tests)
    # Prefect pages are at most 200 (the API's own maximum): whether more follow comes from the count.
    page = await runs.read_runs(client, flt, limit=limit, offset=offset)
    total = await runs.count_runs(client, flt)
    next_cursor = _offset_cursor(offset + limit) if offset + len(page) < total and page else None
    return [summary_of(r) for r in page], next_cursor, total


async def cancel_run(client: PrefectClient, *, tenant_id: str, execution_id: str) -> FlowRun:
    """Cancel a run (Cancelling while it runs, Cancelled before it starts); Conflict when final."""
    run = await get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    kind = run.state.type.value if run.state else "SCHEDULED"
    if kind in FINAL_TYPES or kind == "CANCELLING":
        raise Conflict(
            f"execution {execution_id} is already {status_of(run.state)}", details={"execution_id": execution_id}
        )
    # A scheduled or suspended run has no process to stop: it is cancelled at once.
    return await runs.cancel_run(
        client, run.id, at_once=kind in ("SCHEDULED", "PENDING", "PAUSED"), message="Cancelled through the Gorax API"
    )


async def retry_run(client: PrefectClient, *, tenant_id: str, execution_id: str) -> FlowRun:
    """A new run with the same parameters (same version graph and trigger input)."""
    run = await get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    if run.deployment_id is None:
        raise Conflict("this execution has no deployment to run again", details={"execution_id": execution_id})
    parameters = dict(run.parameters or {})
    workflow_id = _tag_value(run.tags, "workflow:") or parameters.get("workflow_id") or ""
    try:
        return await start_run(
            client,
            tenant_id=tenant_id,
            workflow_id=workflow_id,
            deployment_id=str(run.deployment_id),
            trigger=parameters.get("trigger"),
            trigger_type="retry",
            parameters=parameters,
        )
    except runs.DeploymentGone:
        raise Conflict(
            "the workflow's deployment is gone (archived); it cannot run again", details={"execution_id": execution_id}
        ) from None
