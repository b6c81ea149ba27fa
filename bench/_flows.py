"""Hand-written async Prefect flows: the baselines Gorax graphs are measured against.

Each does what the matching Gorax graph does, the way a Prefect user would write it by hand.
"""

from __future__ import annotations

from prefect import flow, task


def fibo(n: int) -> int:
    """Naive recursive Fibonacci (the same work as the ``bench.fibo`` node)."""
    return n if n < 2 else fibo(n - 1) + fibo(n - 2)


@task
async def fibo_task(n: int) -> int:
    return fibo(n)


@task
async def transform_task(value: dict) -> dict:
    return {"value": value, "ok": True}


@flow
async def fibo_chain(tasks: int = 40, n: int = 10) -> int:
    """``tasks`` fibo tasks in sequence."""
    result = 0
    for _ in range(tasks):
        result = await fibo_task(n)
    return result


@flow
async def transform_chain(tasks: int = 1) -> dict:
    """``tasks`` small transform tasks in sequence (the latency and throughput baseline)."""
    value: dict = {"hello": "world"}
    for _ in range(tasks):
        value = await transform_task(value)
    return value
