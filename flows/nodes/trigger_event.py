"""``trigger.event``: runs when a matching Prefect event is emitted (through an automation)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import Field

from translator.errors import ExpressionError
from translator.nodetypes import AutomationSpec, Ejected, NodeConfig, NodeContext, TriggerSource, TriggerType


class EventTrigger(TriggerType):
    type = "trigger.event"
    version = 1
    display_name = "Event"
    description = "Start the workflow when an event whose name and resource match is emitted."
    icon = "bolt"
    example = {"event": "gorax.workflow.failed", "filter": "trigger.event.startsWith('gorax.workflow.')"}
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
        filter: str | None = Field(default=None, description="Bare CEL over `trigger` (the event); false: no run.")

    @classmethod
    def automation(cls, config: Config, source: TriggerSource) -> AutomationSpec:
        """The named event (the API scopes it to the tenant's own events)."""
        return AutomationSpec(
            expect=(config.event,), match=dict(config.resource), trigger="{{ event }}", narrowed_by="resource"
        )

    @classmethod
    def rejects(cls, config: Config, trigger: Any, evaluate: Callable[[str, dict[str, Any]], Any]) -> str | None:
        """Prefect matches the event by name and resource; the CEL filter over the whole event is
        applied here, at run start (a broken filter says so, never silently)."""
        if not config.filter:
            return None
        try:
            passed = evaluate("filter", {"trigger": trigger})
        except ExpressionError as exc:
            return f"the filter failed: {exc}"
        return None if passed is True else f"the filter {config.filter!r} is {passed!r} for this event"

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The event is the run input; the filter ends the run at once when false."""
        return Ejected(
            body='return scope["trigger"]',
            accepts=config.get("filter"),
            notes=(
                f"starts on the Prefect event {config.get('event')!r} in Gorax: make a Prefect",
                "    automation that runs the deployment with the event as `trigger`.",
            ),
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The event as the node's output."""
        return ctx.scope.get("trigger")
