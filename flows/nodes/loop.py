"""``control.loop``: run the body (nodes whose ``parentId`` is the loop) per item or while a condition holds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType


class Loop(NodeType):
    type = "control.loop"
    version = 1
    display_name = "Loop"
    category = "control"
    description = "Repeat the nodes inside it for each item of a list, or while a condition holds."
    icon = "loop"
    example = {"mode": "foreach", "items": "{{ trigger.orders }}", "concurrency": 4}
    expression_fields = ("condition",)
    holds_slot = False
    has_body = True

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
        concurrency: int = Field(default=1, ge=1, le=64, description="foreach: how many iterations run at once.")
        max_iterations: int = Field(
            default=1000, ge=1, le=100000, description="Upper bound on iterations; more is an error."
        )

        @model_validator(mode="after")
        def _mode_fields(self) -> Loop.Config:
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

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """foreach: the task returns the items and the flow iterates them; while: the flow checks
        the condition before each iteration. Iterations run one after another."""
        bound = int(config.get("max_iterations", 1000))
        notes: tuple[str, ...] = ()
        if int(config.get("concurrency", 1)) > 1:
            notes = (f"ran {config['concurrency']} iterations at once in Gorax; here they run in turn.",)
        if config.get("mode", "foreach") == "while":
            return Ejected(
                body="return None  # the flow runs the iterations while the condition holds",
                iterates="while",
                condition=str(config.get("condition")),
                max_iterations=bound,
                notes=notes,
            )
        return Ejected(
            body=f"""items = config["items"]
if not isinstance(items, list):
    raise TypeError(f"items must be a list, got {{type(items).__name__}}")
if len(items) > {bound}:
    raise ValueError(f"{{len(items)}} items exceed max_iterations ({bound})")
return items
""",
            iterates="foreach",
            max_iterations=bound,
            notes=notes,
        )

    async def run(self, config: Config, ctx: NodeContext) -> list[Any]:
        """Run the body per item or while the condition holds; the list of iteration results."""
        if not ctx.runtime.has_body():
            return []
        if config.mode == "foreach":
            return await _foreach(config, ctx)
        return await _while(config, ctx)


async def _foreach(config: Loop.Config, ctx: NodeContext) -> list[Any]:
    items = config.items
    if not isinstance(items, list):
        raise ValueError(f"loop '{ctx.node_id}': items must be a list, got {type(items).__name__}")
    if len(items) > config.max_iterations:
        raise ValueError(f"loop '{ctx.node_id}': {len(items)} items exceed max_iterations ({config.max_iterations})")
    gate = asyncio.Semaphore(config.concurrency)
    steps = dict(ctx.scope["steps"])

    async def one(index: int, item: Any) -> Any:
        async with gate:
            result, _ = await ctx.runtime.run_body(loop={"item": item, "index": index}, index=index, steps=steps)
            return result

    results = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


async def _while(config: Loop.Config, ctx: NodeContext) -> list[Any]:
    results: list[Any] = []
    steps = dict(ctx.scope["steps"])
    index = 0
    while True:
        holds = ctx.evaluate("condition", {"steps": steps, "loop": {"index": index}})
        if not isinstance(holds, bool):
            raise ValueError(f"loop '{ctx.node_id}': condition yielded {type(holds).__name__} {holds!r}, not a bool")
        if not holds:
            return results
        if index >= config.max_iterations:
            raise ValueError(
                f"loop '{ctx.node_id}': reached max_iterations ({config.max_iterations}) while its condition still held"
            )
        result, steps = await ctx.runtime.run_body(loop={"index": index}, index=index, steps=steps)
        results.append(result)
        index += 1
