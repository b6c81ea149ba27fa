"""Crashed runs run again, as the same flow run, as far as their policy allows.

A run crashes by infrastructure when its worker dies (its heartbeat stops and the automation
``gorax setup`` makes marks it Crashed) or when it is interrupted. The rule: a Crashed run of a
deployment is set back to ``AwaitingRetry`` (a Scheduled state, as Prefect's own retries use) and
a worker of its pool runs it again, as long as it crashed at most ``allowed`` times, where
``allowed`` is the flow's own ``retries`` or, if larger, ``GORAX_WORKER_CRASH_RETRIES``. The same
flow run, not a new one: a node that completed before the crash returns its stored result (its
results are keyed by flow run), so a webhook delivery's work is neither dropped nor done twice.
A run that crashed while it was being cancelled stays as it is.

Idempotent: every worker of the pool may see the same crash. A worker first claims it, by
creating the Prefect Variable ``gorax_rerun_<crashed state id>`` (a name the server holds once:
a second create is refused), then reads the run's current state and proposes the rerun only if
the run is still in that crashed state, then releases the claim. A worker that claims after the
release reads a run that has moved on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prefect.client.schemas.actions import VariableCreate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.states import AwaitingRetry

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun, State

#: Prefix of the Variables that claim a crash while one worker sets its run to run again.
CLAIM_PREFIX = "gorax_rerun_"
_PAGE = 200


async def rerun_if_allowed(client: PrefectClient, flow_run: FlowRun, *, crash_retries: int) -> str | None:
    """Set ``flow_run`` to run again if the rule allows; the reason if this call did."""
    state = flow_run.state
    if state is None or state.type != StateType.CRASHED or flow_run.deployment_id is None:
        return None
    claim = f"{CLAIM_PREFIX}{state.id.hex}"
    try:
        await client.create_variable(VariableCreate(name=claim, value=str(flow_run.id)))
    except ObjectAlreadyExists:
        return None  # another worker is on it
    try:
        return await _rerun_claimed(client, flow_run.id, state.id, crash_retries)
    finally:
        try:
            await client.delete_variable_by_name(claim)
        except ObjectNotFound:
            pass


async def _rerun_claimed(
    client: PrefectClient, flow_run_id: uuid.UUID, crash_id: uuid.UUID, crash_retries: int
) -> str | None:
    flow_run = await client.read_flow_run(flow_run_id)
    if flow_run.state is None or flow_run.state.id != crash_id:
        return None  # it moved on since it was read
    history = sorted(await client.read_flow_run_states(flow_run_id), key=lambda s: s.timestamp)
    crashes = [i for i, s in enumerate(history) if s.type == StateType.CRASHED]
    before = history[crashes[-1] - 1] if crashes and crashes[-1] > 0 else None
    if before is not None and before.type in (StateType.CANCELLING, StateType.CANCELLED):
        return None
    allowed = max(crash_retries, int(flow_run.empirical_policy.retries or 0))
    if len(crashes) > allowed:
        return None
    message = flow_run.state.message or "no message"
    reason = f"Running again after a crash ({len(crashes)} of {allowed}): {message}"
    rerun: State[Any] = AwaitingRetry(scheduled_time=datetime.now(UTC), message=reason[:2000])
    result = await client.set_flow_run_state(flow_run_id, rerun)
    return reason if result.status == SetStateStatus.ACCEPT else None


async def crashed_runs(client: PrefectClient, pool: str, *, since_seconds: float) -> list[FlowRun]:
    """The pool's runs that are Crashed and ended within ``since_seconds``: every page, read
    before any is changed (a run set to run again leaves the filter and would shift the pages)."""
    flow_run_filter = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
        end_time=FlowRunFilterEndTime(after_=datetime.now(UTC) - timedelta(seconds=since_seconds)),
    )
    runs: list[FlowRun] = []
    while True:
        page = await client.read_flow_runs(
            flow_run_filter=flow_run_filter,
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
            sort=FlowRunSort.ID_DESC,
            limit=_PAGE,
            offset=len(runs),
        )
        runs += page
        if len(page) < _PAGE:
            return runs
