"""Crashed runs run again, as the same flow run, as far as their policy allows.

A run crashes by infrastructure when its worker dies (its heartbeat stops and the automation
``gorax setup`` makes marks it Crashed) or when it is interrupted. The rule: a Crashed run of a
deployment is set back to ``AwaitingRetry`` (a Scheduled state, as Prefect's own retries use) and
a worker of its pool runs it again, as long as it crashed at most ``allowed`` times, where
``allowed`` is the flow's own ``retries`` or, if larger, ``GORAX_WORKER_CRASH_RETRIES``. The same
flow run, not a new one: a node that completed before the crash returns its stored result (its
results are keyed by flow run), so a webhook delivery's work is neither dropped nor done twice.
A run that crashed while it was being cancelled stays as it is.

Idempotent: every worker of the pool may see the same crash, and each proposes the same
transition, identified by the crashed state's id (Prefect rejects a transition it has already
made, ``PreventDuplicateTransitions``); a run no longer Crashed is left alone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

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
from prefect.states import AwaitingRetry

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun

#: Namespace of the transition ids of reruns (derived from the crashed state's id).
_RERUN_NAMESPACE = uuid.UUID("5f0c3a52-6a53-4c1e-9d43-7b0f6a0c2d11")
_PAGE = 200


async def rerun_if_allowed(client: PrefectClient, flow_run: FlowRun, *, crash_retries: int) -> str | None:
    """Set ``flow_run`` (as read just now) to run again if the rule allows; the reason if it did."""
    state = flow_run.state
    if state is None or state.type != StateType.CRASHED or flow_run.deployment_id is None:
        return None
    history = sorted(await client.read_flow_run_states(flow_run.id), key=lambda s: s.timestamp)
    crashes = [i for i, s in enumerate(history) if s.type == StateType.CRASHED]
    if not crashes or history[crashes[-1]].id != state.id:
        return None  # it moved on since it was read
    before = history[crashes[-1] - 1] if crashes[-1] > 0 else None
    if before is not None and before.type in (StateType.CANCELLING, StateType.CANCELLED):
        return None
    allowed = max(crash_retries, int(flow_run.empirical_policy.retries or 0))
    if len(crashes) > allowed:
        return None
    reason = f"Running again after a crash ({len(crashes)} of {allowed}): {state.message or 'no message'}"
    rerun = AwaitingRetry(scheduled_time=datetime.now(UTC), message=reason[:2000])
    rerun.state_details.transition_id = uuid.uuid5(_RERUN_NAMESPACE, str(state.id))
    result = await client.set_flow_run_state(flow_run.id, rerun)
    if result.status != SetStateStatus.ACCEPT:
        return None
    return reason


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
