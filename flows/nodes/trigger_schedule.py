"""``trigger.schedule``: runs from the deployment's Prefect schedule (cron with a timezone)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from translator.nodetypes import Ejected, NodeContext, Schedule, ScheduleSpec, TriggerType


class ScheduleTrigger(TriggerType):
    type = "trigger.schedule"
    version = 1
    display_name = "Schedule"
    description = "Start the workflow on a cron schedule (or a fixed interval) in a timezone."
    icon = "clock"
    example = {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}

    class Config(Schedule):
        """A cron in a timezone, or an interval."""

    @classmethod
    def schedules(cls, config: Config) -> list[ScheduleSpec]:
        """One deployment schedule."""
        return [ScheduleSpec.model_validate(config.model_dump())]

    @classmethod
    def trigger_input(cls, config: Config, trigger: Any, scheduled_at: str) -> Any:
        """A scheduled run's trigger says when it was due."""
        return trigger if trigger is not None else {"scheduled_at": scheduled_at}

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The run input, or when the run was due; the schedule is noted for the deployment."""
        timezone = config.get("timezone", "UTC")
        if config.get("cron"):
            schedule = f"Cron({config['cron']!r}, timezone={timezone!r})"
        else:
            schedule = f"Interval({config.get('interval_seconds')})"
        return Ejected(
            body='return scope["trigger"] or {"scheduled_at": datetime.now(UTC).isoformat()}',
            imports=("from datetime import UTC, datetime",),
            notes=(
                "a schedule in Gorax; give the deployment the same one:",
                f"    flow.serve(name=..., schedules=[{schedule}])",
                "    (Cron and Interval from prefect.schedules)",
            ),
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The trigger input (``scheduled_at``) as the node's output."""
        return ctx.scope.get("trigger")
