"""``control.output``: set the run's result."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from translator.nodetypes import NodeConfig, NodeContext, NodeType


class Output(NodeType):
    type = "control.output"
    version = 1
    display_name = "Output"
    category = "control"
    description = "Set the run's result, returned by synchronous runs and webhook responses."
    is_result = True

    class Config(NodeConfig):
        value: Any = Field(default=None, description="The result: any JSON, with {{ }} templates.")

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The rendered value."""
        return config.value
