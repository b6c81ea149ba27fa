"""``control.loop``: run the body (nodes whose ``parentId`` is the loop) per item or while a condition holds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from flows.registry import NodeConfig, NodeContext, NodeType


class Loop(NodeType):
    type = "control.loop"
    version = 1
    display_name = "Loop"
    category = "control"
    description = "Repeat the nodes inside it for each item of a list, or while a condition holds."
    expression_fields = ("condition",)

    class Config(NodeConfig):
        mode: Literal["foreach", "while"] = Field(
            default="foreach", description="'foreach': once per item of `items`; 'while': while `condition` holds."
        )
        items: Any = Field(
            default=None,
            description="foreach: the list to iterate, usually one template such as '{{ trigger.items }}'.",
        )
        condition: str | None = Field(
            default=None,
            description="while: bare CEL checked before each iteration; `loop.index` and the last "
            "iteration's `steps` are in scope.",
        )
        concurrency: int = Field(
            default=1, ge=1, le=64, description="foreach: how many iterations run at once."
        )
        max_iterations: int = Field(
            default=1000, ge=1, le=100000, description="Upper bound on iterations; more is an error."
        )

        @model_validator(mode="after")
        def _mode_fields(self) -> "Loop.Config":
            if self.mode == "foreach":
                if self.items is None:
                    raise ValueError("mode 'foreach' needs 'items'")
                if self.condition is not None:
                    raise ValueError("'condition' belongs to mode 'while'; foreach iterates 'items'")
                if not isinstance(self.items, (list, str)):
                    raise ValueError("'items' must be a list or a template that yields one")
            else:
                if not self.condition:
                    raise ValueError("mode 'while' needs 'condition'")
                if self.items is not None:
                    raise ValueError("'items' belongs to mode 'foreach'")
                if self.concurrency != 1:
                    raise ValueError("'concurrency' applies to mode 'foreach' only (while is sequential)")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Run the body through the runtime; the output is the list of iteration results."""
        return await ctx.run_loop(config)  # type: ignore[attr-defined]
