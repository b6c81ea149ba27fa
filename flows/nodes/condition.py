"""``control.condition``: route the run down ``true`` or ``false``."""

from __future__ import annotations

from pydantic import Field

from translator.nodetypes import NodeConfig, NodeContext, NodeType, Routed


class Condition(NodeType):
    type = "control.condition"
    version = 1
    display_name = "Condition"
    category = "control"
    description = "Route by a CEL expression: the 'true' or the 'false' output."
    outputs = ("true", "false")
    expression_fields = ("expression",)

    class Config(NodeConfig):
        expression: str = Field(
            min_length=1, description="Bare CEL that yields a bool, e.g. trigger.body.status == 'success'."
        )

    async def run(self, config: Config, ctx: NodeContext) -> Routed:
        """Evaluate the expression; a non-bool result is an error, not a truthiness guess."""
        value = ctx.evaluate("expression")
        if not isinstance(value, bool):
            raise TypeError(
                f"condition {ctx.node_id!r}: expression yielded {type(value).__name__} {value!r}, not a bool"
            )
        return Routed(output={"result": value}, handles=("true" if value else "false",))
