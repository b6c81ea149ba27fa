"""``bench.fibo``: the CPU-bound node of Windmill's orchestration benchmark, as a Gorax plugin.

Installed by ``make bench`` (``uv pip install -e bench/plugin``); it shows the ``gorax.nodes``
entry point at work: a third-party package adds a node type without touching Gorax.
"""

from __future__ import annotations

from pydantic import Field

from translator.nodetypes import NodeConfig, NodeContext, NodeType


def fibo(n: int) -> int:
    """Naive recursive Fibonacci, on purpose: the benchmark's fixed unit of CPU work."""
    return n if n < 2 else fibo(n - 1) + fibo(n - 2)


class BenchFibo(NodeType):
    type = "bench.fibo"
    version = 1
    display_name = "Fibonacci (benchmark)"
    category = "bench"
    description = "Compute fibo(n) recursively: a fixed amount of CPU work for benchmarks."

    class Config(NodeConfig):
        n: int = Field(default=10, ge=0, le=40, description="Which Fibonacci number to compute.")

    async def run(self, config: Config, ctx: NodeContext) -> int:
        """Return fibo(n), computed in the node (as the hand-written baseline task does)."""
        return fibo(config.n)
