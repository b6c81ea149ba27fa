"""Acme's node types: a router whose outputs are its config, and a ticking trigger.

This package stands for a third-party plugin. It is installed beside Gorax (``make test`` does
so) and registered by its ``gorax.nodes`` entry point alone: no Gorax file names these types.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from translator.nodetypes import NodeConfig, NodeContext, NodeType, Routed, ScheduleSpec, TriggerType


class Router(NodeType):
    type = "acme.route"
    version = 1
    display_name = "Lane router"
    category = "acme"
    description = "Send the run down the lane named by 'pick'; 'other' when no lane matches."
    outputs = ("other",)
    handles_from = "lanes.*"

    class Config(NodeConfig):
        lanes: list[str] = Field(min_length=1, description="Lane names; each is an output.")
        pick: str = Field(description="The lane to take; templates allowed.")

    async def run(self, config: Config, ctx: NodeContext) -> Routed:
        """The picked lane, or 'other'."""
        lane = config.pick if config.pick in config.lanes else "other"
        return Routed(output={"lane": lane}, handles=(lane,))


class Tick(TriggerType):
    type = "acme.tick"
    version = 1
    display_name = "Tick"
    description = "Start the workflow every few minutes, in a lane."

    class Config(NodeConfig):
        every_minutes: int = Field(ge=1, le=1440, description="Minutes between runs.")
        lane: str = Field(default="fast", description="The lane runs start in.")

        @field_validator("lane")
        @classmethod
        def _lane(cls, value: str) -> str:
            if not value.isidentifier():
                raise ValueError("a lane is a name")
            return value

    @classmethod
    def schedules(cls, config: Config) -> list[ScheduleSpec]:
        """An interval schedule."""
        return [ScheduleSpec(interval_seconds=config.every_minutes * 60)]

    @classmethod
    def trigger_input(cls, config: Config, trigger: Any, scheduled_at: str) -> Any:
        """When the tick was due and its lane."""
        return {"ticked_at": scheduled_at, "lane": config.lane}

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The tick as the node's output."""
        return ctx.scope.get("trigger")
