"""``data.transform``: build a value from templates."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from translator.nodetypes import NodeConfig, NodeContext, NodeType


class Transform(NodeType):
    type = "data.transform"
    version = 1
    display_name = "Transform"
    category = "data"
    description = "Build a new value (any JSON shape) from trigger data and earlier steps with CEL templates."

    class Config(NodeConfig):
        value: Any = Field(
            default=None,
            description="Any JSON; each string may hold {{ CEL }}; a string that is one template keeps its type.",
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The rendered value."""
        return config.value
