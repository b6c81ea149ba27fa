"""Flow runs: start, read, list, wait for, cancel, resume, and read what a run left behind.

Plain Prefect operations on the client the caller passes; what a run means to a tenant (its
tag check, the API's status names, errors) is :mod:`api.services.executions`'.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import tags as prefect_tags
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort, LogSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling

import blocks.results  # noqa: F401 - registers the sealed serializer runs persist their results with
from flows import STEP_ARTIFACT_TYPE, StepRecord, read_steps, tracing

#: State types a run ends in.
FINAL_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
#: Prefect's largest page of runs.
PAGE = 200


class DeploymentGone(LookupError):
    """The deployment a run was asked of no longer exists (its workflow was archived)."""


def run_filter(
    *,
    tags: list[str],
    state_types: list[str] | None = None,
    state_names: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    expected_after: datetime | None = None,
) -> FlowRunFilter:
    """Runs carrying every tag of ``tags``, in those states, expected to start in that range."""
    flt = FlowRunFilter(tags=FlowRunFilterTags(all_=tags))
    if state_names:
        flt.state = FlowRunFilterState(name=FlowRunFilterStateName(any_=state_names))
    elif state_types:
        flt.state = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(t) for t in state_types]))
    if since or until or expected_after:
        flt.expected_start_time = FlowRunFilterExpectedStartTime(after_=since or expected_after, before_=until)
    return flt


async def read_run(client: PrefectClient, run_id: UUID) -> FlowRun | None:
    """A flow run (None when it does not exist)."""
    try:
        return await client.read_flow_run(run_id)
    except ObjectNotFound:
        return None


async def read_runs(client: PrefectClient, flt: FlowRunFilter, *, limit: int = PAGE, offset: int = 0) -> list[FlowRun]:
    """One page of matching runs, newest (expected start) first."""
    return await client.read_flow_runs(
        flow_run_filter=flt, sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit, offset=offset
    )


async def count_runs(client: PrefectClient, flt: FlowRunFilter) -> int:
    """How many runs match."""
    return await client.count_flow_runs(flow_run_filter=flt)


async def read_runs_by_id(client: PrefectClient, run_ids: Iterable[str]) -> dict[str, FlowRun]:
    """The runs of those ids that exist, by id."""
    ids = sorted({str(i) for i in run_ids})
    found: dict[str, FlowRun] = {}
    for start in range(0, len(ids), PAGE):
        chunk = [uuid.UUID(i) for i in ids[start : start + PAGE]]
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk)
        )
        found.update((str(run.id), run) for run in runs)
    return found


async def start_run(
    client: PrefectClient,
    deployment_id: str,
    *,
    parameters: dict[str, Any],
    tags: list[str],
    idempotency_key: str | None = None,
) -> FlowRun:
    """A new run of the deployment (with an idempotency key, Prefect answers the run it already
    created under that key); DeploymentGone when the deployment does not exist. Started inside a
    traced request, the run's spans continue the request's trace (its ``__OTEL_TRACEPARENT`` label)."""
    try:
        return await client.create_flow_run_from_deployment(
            UUID(deployment_id),
            parameters=parameters,
            tags=tags,
            idempotency_key=idempotency_key,
            labels=tracing.run_labels() or None,
        )
    except ObjectNotFound as exc:
        raise DeploymentGone(f"deployment {deployment_id} does not exist") from exc


def run_tags(*names: str) -> AbstractContextManager[Any]:
    """Tags every flow run started in-process inside the block (a local test run's tags)."""
    return prefect_tags(*names)


async def wait_for_final(client: PrefectClient, run_id: UUID, timeout: float) -> FlowRun | None:
    """The run once it is final (None when it is not within ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.1
    while True:
        run = await client.read_flow_run(run_id)
        if run.state is not None and run.state.type.value in FINAL_TYPES:
            return run
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def read_result(run: FlowRun) -> Any:
    """The result a completed run persisted (raises when its storage cannot be read)."""
    if run.state is None:
        return None
    return await run.state.aresult(raise_on_failure=False)


async def read_run_steps(client: PrefectClient, run: FlowRun) -> list[StepRecord]:
    """The step records the run left (all of them once its final state is visible)."""
    return await read_steps(run.id, client=client)


async def read_steps_of_runs(client: PrefectClient, run_ids: list[UUID]) -> dict[UUID, list[StepRecord]]:
    """Every step record of many runs at once (a page of artifacts covers many runs), by run;
    records in the order Prefect stores them (analytics sums them, it does not order them)."""
    found: dict[UUID, list[StepRecord]] = {run_id: [] for run_id in run_ids}
    for start in range(0, len(run_ids), 100):
        flt = ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=run_ids[start : start + 100]),
            type=ArtifactFilterType(any_=[STEP_ARTIFACT_TYPE]),
        )
        offset = 0
        while True:
            batch = await client.read_artifacts(artifact_filter=flt, limit=PAGE, offset=offset)
            for artifact in batch:
                data, run_id = artifact.data, artifact.flow_run_id
                if run_id not in found or not isinstance(data, dict):
                    continue
                items = data["steps"] if isinstance(data.get("steps"), list) else [data]
                found[run_id] += [StepRecord.model_validate(item) for item in items]
            if len(batch) < PAGE:
                break
            offset += PAGE
    return found


def trace_id_of(run: FlowRun) -> str | None:
    """The id of the trace the run's spans belong to (None when it was not traced)."""
    return tracing.trace_id_of((run.labels or {}).get(tracing.TRACEPARENT_LABEL))


async def read_log_lines(client: PrefectClient, run_id: UUID, *, limit: int = 200) -> list[str]:
    """The run's log lines as Prefect holds them, oldest first (a deployed run logs on its worker)."""
    logs = await client.read_logs(
        LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), sort=LogSort.TIMESTAMP_ASC, limit=limit
    )
    return [f"{log.timestamp:%H:%M:%S} | {log.name} - {log.message}" for log in logs]


async def cancel_run(client: PrefectClient, run_id: UUID, *, at_once: bool, message: str) -> FlowRun:
    """Cancel a run: ``at_once`` when it has no process to stop (scheduled, suspended), else ask
    its worker to stop it (Cancelling). Returns the run as it is now."""
    state: State[Any] = Cancelled(message=message) if at_once else Cancelling(message=message)
    await client.set_flow_run_state(run_id, state, force=True)
    return await client.read_flow_run(run_id)


class ResumeRefused(RuntimeError):
    """Prefect refused to resume the run (its pause timed out, or it moved on)."""


async def resume_run(client: PrefectClient, run_id: UUID, run_input: dict[str, Any]) -> None:
    """Resume a paused run with ``run_input`` (the input its suspension waits for)."""
    response = await client.resume_flow_run(run_id, run_input=run_input)
    if response.status == SetStateStatus.REJECT:
        reason = getattr(response.details, "reason", None) or "rejected"
        raise ResumeRefused(f"run {run_id} cannot be resumed: {reason}")
