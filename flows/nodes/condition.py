"""``control.condition``: route the run down ``true`` or ``false``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType, Routed


class Condition(NodeType):
    type = "control.condition"
    version = 1
    display_name = "Condition"
    category = "control"
    description = "Route by a CEL expression: the 'true' or the 'false' output."
    icon = "branch"
    example = {"expression": "trigger.amount > 100"}
    outputs = ("true", "false")
    expression_fields = ("expression",)
    output_schema = {"type": "object", "properties": {"result": {"type": "boolean"}}}

    class Config(NodeConfig):
        expression: str = Field(
            min_length=1, description="Bare CEL that yields a bool, e.g. trigger.body.status == 'success'."
        )

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """Evaluate the expression; the handle is ``true`` or ``false``."""
        return Ejected(
            body="""passed = cel(config["expression"], scope)
if not isinstance(passed, bool):
    raise TypeError(f"the expression yielded {passed!r}, not a bool")
return {"result": passed}, "true" if passed else "false"
""",
            routes=True,
        )

    async def run(self, config: Config, ctx: NodeContext) -> Routed:
        """Evaluate the expression; a non-bool result is an error, not a truthiness guess."""
        value = ctx.evaluate("expression")
        if not isinstance(value, bool):
            raise TypeError(
                f"condition {ctx.node_id!r}: expression yielded {type(value).__name__} {value!r}, not a bool"
            )
        return Routed(output={"result": value}, handles=("true" if value else "false",))
