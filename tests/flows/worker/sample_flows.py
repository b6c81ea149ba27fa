"""Flows the warm-worker tests deploy (async, like ``run_graph``)."""

from __future__ import annotations

import asyncio
import os

from prefect import flow, task


@task
async def double(x: int) -> int:
    return x * 2


@task
async def add_one(x: int) -> int:
    return x + 1


@flow
async def quick(x: int = 1) -> int:
    """Two tasks in sequence."""
    return await add_one(await double(x))


@flow
async def slow(seconds: float = 1.0) -> float:
    """Sleeps in a task, so concurrent runs overlap and a long one can be cancelled."""

    @task
    async def nap(s: float) -> float:
        await asyncio.sleep(s)
        return s

    return await nap(seconds)


#: Arrivals per rendezvous key; shared because runs execute in the worker's own process.
_ARRIVED: dict[str, int] = {}


@flow
async def rendezvous(key: str, n: int, patience: float = 60.0) -> int:
    """Completes only once ``n`` runs with ``key`` are running at the same time in this process."""
    _ARRIVED[key] = _ARRIVED.get(key, 0) + 1
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    while _ARRIVED[key] < n:
        if loop.time() > give_up:
            raise TimeoutError(f"only {_ARRIVED[key]} of {n} runs arrived")
        await asyncio.sleep(0.05)
    return _ARRIVED[key]


@flow
async def crashing(kind: str = "exit") -> None:
    """Dies the way broken user code does: a BaseException, or the whole process."""
    if kind == "exit":
        raise SystemExit(3)
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "os_exit":
        os._exit(7)
    raise ValueError(f"failing on purpose ({kind})")


@flow
async def steps(count: int = 100, seconds: float = 0.1) -> int:
    """``count`` short tasks in sequence (a run that can be suspended between two of them)."""

    @task
    async def step(i: int) -> int:
        await asyncio.sleep(seconds)
        return i

    for i in range(count):
        await step(i)
    return count


@flow
async def waits_first_time(marker: str, seconds: float = 600.0) -> str:
    """Waits ``seconds`` the first time it runs (it writes ``marker``), returns at once after."""
    if os.path.exists(marker):
        return "again"
    with open(marker, "w") as handle:
        handle.write("started")
    await asyncio.sleep(seconds)
    return "first"
