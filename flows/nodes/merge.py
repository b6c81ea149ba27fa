"""``control.merge``: join branches, waiting for all live inputs or the first one."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from flows.registry import NodeConfig, NodeContext, NodeType


class Merge(NodeType):
    type = "control.merge"
    version = 1
    display_name = "Merge"
    category = "control"
    description = "Join branches: wait for every live input ('all') or go on with the first ('any')."

    class Config(NodeConfig):
        mode: Literal["all", "any"] = Field(
            default="all",
            description="'all': run when every upstream node finished; 'any': run as soon as the first live input completes.",
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """A map from upstream node id to its output, for the inputs that arrived live."""
        return dict(ctx.inputs)  # type: ignore[attr-defined]
