"""``control.output``: set the run's result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType


class Output(NodeType):
    type = "control.output"
    version = 1
    display_name = "Output"
    category = "control"
    description = "Set the run's result, returned by synchronous runs and webhook responses."
    icon = "flag"
    example = {"value": {"id": "{{ steps.create.id }}", "ok": True}}
    is_result = True

    class Config(NodeConfig):
        value: Any = Field(default=None, description="The result: any JSON, with {{ }} templates.")

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The rendered value (the flow returns it)."""
        return Ejected(body='return config["value"]' if "value" in config else "return None")

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The rendered value."""
        return config.value
