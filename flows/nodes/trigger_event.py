"""``trigger.event``: runs when a matching Prefect event is emitted (through an automation)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from flows.registry import NodeConfig, NodeContext, NodeType


class EventTrigger(NodeType):
    type = "trigger.event"
    version = 1
    display_name = "Event"
    category = "trigger"
    description = "Start the workflow when an event whose name and resource match is emitted."
    expression_fields = ("filter",)

    class Config(NodeConfig):
        event: str = Field(
            min_length=1,
            description="Event name or pattern; '*' matches any suffix, e.g. 'gorax.workflow.*'.",
        )
        resource: dict[str, str] = Field(
            default_factory=dict,
            description="Resource labels the event must carry, e.g. {'prefect.resource.id': 'github.repo.*'}.",
        )
        filter: str | None = Field(
            default=None, description="Bare CEL over `trigger` (the event); false: no run."
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The event as the node's output."""
        return ctx.scope.get("trigger")
