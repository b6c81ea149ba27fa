"""``control.merge``: join branches, waiting for all live inputs or the first one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from translator.nodetypes import Ejected, JoinRule, NodeConfig, NodeContext, NodeType


class Merge(NodeType):
    type = "control.merge"
    version = 1
    display_name = "Merge"
    category = "control"
    description = "Join branches: wait for every live input ('all') or go on with the first ('any')."
    icon = "merge"
    example = {"mode": "all"}

    class Config(NodeConfig):
        mode: Literal["all", "any"] = Field(
            default="all",
            description="'all': run when every upstream node finished; 'any': run as soon as the first live input completes.",
        )

    @classmethod
    def join_for(cls, config: Mapping[str, Any]) -> JoinRule:
        """``mode`` is the join rule."""
        return "any" if config.get("mode") == "any" else "all"

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The upstream outputs by node id (the flow waited for them)."""
        return Ejected(body="return inputs", takes_inputs=True)

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """A map from upstream node id to its output, for the inputs that arrived live."""
        return dict(ctx.inputs)
