"""``control.loop`` at run time: iterations of the body plan, each a level of its own."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from flows.runtime.errors import RunError
from flows.runtime.executor import Level, last_output

if TYPE_CHECKING:
    from flows.runtime.context import NodeRunContext


async def _iteration(ctx: "NodeRunContext", body: Any, index: int, loop: dict[str, Any], steps: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    level = Level(ctx.level.run, body, outer_steps=steps, loop=loop, path=ctx.level.path + (index,))
    outcomes = await level.execute()
    return last_output(body, outcomes), level.steps()


async def run_loop(ctx: "NodeRunContext", config: Any) -> list[Any]:
    """Run the loop ``ctx.node`` with its rendered ``config``; returns the iteration results in order."""
    node = ctx.node
    body = ctx.level.plan.bodies.get(node.id)
    if body is None or not body.nodes:
        return []
    steps = dict(ctx.scope["steps"])
    if config.mode == "foreach":
        items = config.items
        if not isinstance(items, list):
            raise RunError(
                f"loop '{node.id}': items must be a list, got {type(items).__name__}", node_id=node.id
            )
        if len(items) > config.max_iterations:
            raise RunError(
                f"loop '{node.id}': {len(items)} items exceed max_iterations ({config.max_iterations})",
                node_id=node.id,
            )
        gate = asyncio.Semaphore(config.concurrency)

        async def one(index: int, item: Any) -> Any:
            async with gate:
                result, _ = await _iteration(ctx, body, index, {"item": item, "index": index}, steps)
                return result

        results = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return list(results)

    results = []
    index = 0
    while True:
        scope = {**ctx.scope, "steps": steps, "loop": {"index": index}}
        holds = ctx.node.evaluate("condition", scope)
        if not isinstance(holds, bool):
            raise RunError(
                f"loop '{node.id}': condition yielded {type(holds).__name__} {holds!r}, not a bool",
                node_id=node.id,
            )
        if not holds:
            return results
        if index >= config.max_iterations:
            raise RunError(
                f"loop '{node.id}': reached max_iterations ({config.max_iterations}) while its condition still held",
                node_id=node.id,
            )
        result, steps = await _iteration(ctx, body, index, {"index": index}, steps)
        results.append(result)
        index += 1


__all__ = ["run_loop"]
