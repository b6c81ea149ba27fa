"""``control.subworkflow``: run another workflow (deployed or inline) as a subflow."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType


class Subworkflow(NodeType):
    type = "control.subworkflow"
    version = 1
    display_name = "Sub-workflow"
    category = "control"
    description = "Run another workflow as a sub-flow, wait for it, and use its output."
    icon = "workflow"
    example = {"workflow": "send-receipt", "input": {"order": "{{ trigger.id }}"}, "wait": True}
    holds_slot = False

    class Config(NodeConfig):
        workflow: str | None = Field(
            default=None,
            description="Id of a published workflow of the same tenant (its deployment runs the subflow).",
        )
        graph: dict[str, Any] | None = Field(
            default=None, description="An inline gorax/graph@1 graph to run instead of a published workflow."
        )
        input: Any = Field(default=None, description="The sub-workflow's trigger input; templates allowed.")
        wait: bool = Field(
            default=True, description="Wait for the sub-workflow and output its result (else its run id)."
        )
        max_depth: int = Field(
            default=5, ge=1, le=20, description="Deepest nesting of sub-workflows allowed from here."
        )

        @model_validator(mode="after")
        def _one_target(self) -> Subworkflow.Config:
            if (self.workflow is None) == (self.graph is None):
                raise ValueError("set exactly one of 'workflow' and 'graph'")
            return self

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """A clear TODO: the sub-workflow is ejected on its own, then called from here."""
        target = f"workflow {config['workflow']}" if config.get("workflow") else "the inline graph of this node"
        message = f"TODO: eject {target} as its own flow, then call that flow here with the input"
        return Ejected(
            body=f"raise NotImplementedError(\n    {json.dumps(message)}\n)\n",
            notes=(
                f"a sub-workflow ({target}): its task raises NotImplementedError until you call the",
                "    ejected sub-flow there (a flow called from a flow is a Prefect subflow).",
            ),
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Run the sub-workflow and return its result (or its run id when ``wait`` is false)."""
        depth = ctx.depth + 1
        if depth > config.max_depth:
            raise ValueError(
                f"sub-workflows nest too deep: this would be level {depth}, max_depth is {config.max_depth}"
            )
        if config.graph is not None and not config.wait:
            raise ValueError("an inline graph always runs with wait: true")
        parameters = {
            "trigger": config.input,
            "env": ctx.env,
            "tenant": ctx.tenant_id,
            "depth": depth,
            "allowed_networks": ctx.tenant_networks or None,
        }
        return await ctx.runtime.run_workflow(
            graph=config.graph, workflow=config.workflow, parameters=parameters, wait=config.wait
        )
