"""``trigger.schedule``: runs from the deployment's Prefect schedule (cron with a timezone)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from flows.nodes._common import check_cron
from flows.registry import NodeConfig, NodeContext, NodeType


class ScheduleTrigger(NodeType):
    type = "trigger.schedule"
    version = 1
    display_name = "Schedule"
    category = "trigger"
    description = "Start the workflow on a cron schedule (or a fixed interval) in a timezone."

    class Config(NodeConfig):
        cron: str | None = Field(
            default=None, description="Cron expression, five fields, e.g. '*/5 * * * *'."
        )
        timezone: str = Field(default="UTC", description="IANA timezone the cron is read in.")
        interval_seconds: int | None = Field(
            default=None, ge=60, description="Run every this many seconds instead of a cron."
        )

        @field_validator("cron")
        @classmethod
        def _valid_cron(cls, value: str | None) -> str | None:
            return check_cron(value) if value is not None else None

        @field_validator("timezone")
        @classmethod
        def _valid_timezone(cls, value: str) -> str:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown timezone {value!r}") from exc
            return value

        @model_validator(mode="after")
        def _one_schedule(self) -> "ScheduleTrigger.Config":
            if (self.cron is None) == (self.interval_seconds is None):
                raise ValueError("set exactly one of 'cron' and 'interval_seconds'")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The trigger input (``scheduled_at``) as the node's output."""
        return ctx.scope.get("trigger")
