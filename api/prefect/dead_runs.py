"""The automation that marks a run Crashed when its heartbeat stops (Prefect's "zombie flow runs").

Each run the warm worker executes sends Prefect's ``prefect.flow-run.heartbeat`` every
``GORAX_WORKER_HEARTBEAT_SECONDS``. A proactive trigger expects, after each heartbeat, another one
or an event that ends the run's heartbeats (a final state, a pause, a new schedule) within
``GORAX_WORKER_DEAD_AFTER_SECONDS``; when none comes, its worker is gone, and the run is set
Crashed (a run already final refuses it). The worker's rerun rule then takes over
(``flows.worker.recovery``).
"""

from __future__ import annotations

from datetime import timedelta

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

#: The automation's name (one per Prefect server).
DEAD_RUN_AUTOMATION = "gorax-dead-runs"
HEARTBEAT = "prefect.flow-run.heartbeat"
#: States after which a run sends no more heartbeats, legitimately.
_QUIET_STATES = (
    "Completed",
    "Failed",
    "Cancelled",
    "Crashed",
    "Cancelling",
    "Paused",
    "Suspended",
    "Scheduled",
    "AwaitingRetry",
    "Late",
    "Pending",
)


def dead_run_automation(within_seconds: float, *, name: str = DEAD_RUN_AUTOMATION) -> AutomationCore:
    """A run heard from, then silent for ``within_seconds``, is set Crashed."""
    return AutomationCore(
        name=name,
        description="Marks a flow run Crashed when its heartbeat stops (its worker died).",
        trigger=EventTrigger(
            after={HEARTBEAT},
            expect={HEARTBEAT, *(f"prefect.flow-run.{state}" for state in _QUIET_STATES)},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {within_seconds:.0f}s: the worker running it is gone.",
            )
        ],
    )


async def ensure_dead_run_automation(
    client: PrefectClient, within_seconds: float, *, name: str = DEAD_RUN_AUTOMATION
) -> str:
    """Create or update the automation (idempotent); what was done, for the setup report."""
    wanted = dead_run_automation(within_seconds, name=name)
    existing = await client.read_automations_by_name(name)
    if not existing:
        await client.create_automation(wanted)
        return "created"
    first, *duplicates = existing
    for duplicate in duplicates:
        await client.delete_automation(duplicate.id)
    same = AutomationCore.model_validate(first.model_dump(exclude={"id"}))
    if same.trigger == wanted.trigger and same.actions == wanted.actions and same.enabled:
        return "already set up"
    await client.update_automation(first.id, wanted)
    return "updated"
