"""``data.transform``: build a value from templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType


class Transform(NodeType):
    type = "data.transform"
    version = 1
    display_name = "Transform"
    category = "data"
    description = "Build a new value (any JSON shape) from trigger data and earlier steps with CEL templates."
    icon = "wand"
    example = {"value": {"name": "{{ trigger.first + ' ' + trigger.last }}", "count": "{{ size(trigger.items) }}"}}

    class Config(NodeConfig):
        value: Any = Field(
            default=None,
            description="Any JSON; each string may hold {{ CEL }}; a string that is one template keeps its type.",
        )

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The rendered value."""
        return Ejected(body='return config["value"]' if "value" in config else "return None")

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The rendered value."""
        return config.value
