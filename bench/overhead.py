"""Per-node overhead on Windmill's benchmark shape, against a hand-written Prefect flow.

Three shapes: 40 sequential nodes each computing fibo(10), 10 computing fibo(33), and 40
``code.javascript`` nodes each computing fibo(10) in the V8 sandbox. The Gorax side is the real
thing: the graph deployed by ``deploy_workflow`` and run by ``run_graph`` with ``bench.fibo``
nodes from the bench plugin (or the sandboxed code node). The baseline is a hand-written async Prefect flow
with the same tasks (``bench/_flows.py``). Both run on the same warm worker of the same server,
alternately. Times come from Prefect's own timestamps: the flow run's start and end, and its
task runs' start and end (per-task overhead = (flow time - computing time) / tasks).
Goal: <= 1.15x the hand-written flow. References (Windmill's 2026-09 re-run): Prefect 3.8.6
3.4 ms per task, Windmill dedicated workers 9.8 ms, Temporal 19 ms, Hatchet 30.9 ms.

Run: .venv/bin/python bench/overhead.py [--reps 12] [--heavy-reps 3] [--database sqlite|postgres|both]
     [--shapes fibo,heavy,javascript]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    chain_graph,
    create_pool,
    deploy_flow,
    deploy_graph,
    load_note,
    per_database,
    report,
    seconds,
    start_prefect,
    start_worker,
    wait_final,
)

GOAL = "<= 1.15x hand-written"
#: fibo(n) as a code.javascript node: the same work as ``bench.fibo``, in the sandbox.
JS_FIBO = "const f = (n) => (n < 2 ? n : f(n - 1) + f(n - 2));\nreturn f(input.n);"
_NODE_RUN = re.compile(r"^(n\d+|fibo_task-.*)$")


def _compute_seconds(n: int, repeat: int) -> float:
    from _flows import fibo

    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fibo(n)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _compute_seconds_js(n: int, repeat: int) -> float:
    """fibo(n) in a warm V8 isolate, called directly (the work alone, no sandbox around it)."""
    from py_mini_racer import MiniRacer

    samples = []
    with MiniRacer() as racer:
        racer.eval("var f = (n) => (n < 2 ? n : f(n - 1) + f(n - 2))")
        for _ in range(repeat):
            start = time.perf_counter()
            racer.eval(f"f({n})")
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def _node_task_runs(client, run_id, expected: int, timeout: float = 300):
    """The run's node task runs, finished; Prefect records task runs from events, so they trail."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=200)
        # Gorax names a node's task run after the node (n1..nN); Prefect names fibo_task-<id>.
        tasks = [t for t in tasks if t.start_time and t.end_time and _NODE_RUN.match(t.name)]
        if len(tasks) >= expected:
            return sorted(tasks, key=lambda t: t.start_time)
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id}: expected {expected} finished node task runs, found {len(tasks)}")
        await asyncio.sleep(0.3)


async def _measure(client, deployment_id, reps: int, node_tasks: int, parameters: dict | None = None):
    """Per run: (flow seconds, median task-run seconds, median gap between task runs,
    flow start to first node, last node to flow end)."""
    out = []
    for _ in range(reps):
        run = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters or {})
        (run,) = await wait_final(client, [run.id])
        if run.state.type.value != "COMPLETED":
            raise SystemExit(f"run {run.id} ended {run.state.type.value}: {run.state.message}")
        tasks = await _node_task_runs(client, run.id, node_tasks)
        durations = [seconds(t.start_time, t.end_time) for t in tasks]
        gaps = [seconds(a.end_time, b.start_time) for a, b in itertools.pairwise(tasks)]
        out.append(
            (
                seconds(run.start_time, run.end_time),
                statistics.median(durations),
                statistics.median(gaps) if gaps else 0.0,
                seconds(run.start_time, tasks[0].start_time),
                seconds(tasks[-1].end_time, run.end_time),
            )
        )
    return out


async def main(reps: int, heavy_reps: int, database: str = "sqlite", only: str = "fibo,heavy,javascript") -> None:
    print(load_note(), flush=True)
    _, home = start_prefect(database=database)
    on = f" (Prefect on {database})"
    from prefect.client.orchestration import get_client

    pool = "bench-overhead"
    await create_pool(pool, "gorax")
    await start_worker(pool, "gorax", home, env={"GORAX_WORKER_PRELOAD": "flows.run_graph,bench._flows"})
    shapes = [
        ("fibo", "40 x fibo(10)", 40, 10, reps, "bench.fibo", {"n": 10}),
        ("heavy", "10 x fibo(33)", 10, 33, heavy_reps, "bench.fibo", {"n": 33}),
        ("javascript", "40 x code.javascript fibo(10)", 40, 10, reps, "code.javascript",
         {"code": JS_FIBO, "input": {"n": 10}}),
    ]  # fmt: skip
    wanted = set(only.split(","))
    async with get_client() as client:
        for key, label, count, n, shape_reps, node_type, config in shapes:
            if not shape_reps or key not in wanted:
                continue
            name = f"{key}-{count}-{n}"
            graph_id = await deploy_graph(pool, chain_graph(name, count, node_type, config), name)
            hand_id = await deploy_flow(pool, "fibo_chain", {"tasks": count, "n": n})
            if n < 25:  # one unmeasured run each: the first run imports code and fills caches
                await _measure(client, graph_id, 1, count)
                await _measure(client, hand_id, 1, count)
            gorax, hand = [], []
            for _ in range(shape_reps):  # alternate, so drift in machine load hits both alike
                gorax += await _measure(client, graph_id, 1, count)
                hand += await _measure(client, hand_id, 1, count)
            if n >= 25:
                compute = 0.0
            else:
                compute = _compute_seconds_js(n, 50) if node_type == "code.javascript" else _compute_seconds(n, 50)
            label += on

            def per_task(rows: list, count: int = count, compute: float = compute) -> list[float]:
                return [(row[0] - count * compute) / count * 1000 for row in rows]

            if n < 25:  # with seconds of compute per task, the subtraction is only noise
                report(
                    "overhead",
                    f"{label}: per-task overhead",
                    "ms",
                    per_task(gorax),
                    per_task(hand),
                    "hand-written Prefect flow",
                    GOAL,
                    note=f"fibo({n}) computes in {compute * 1000:.3g} ms here"
                    + (" (V8, a direct call)" if node_type == "code.javascript" else ""),
                )
            report(
                "overhead",
                f"{label}: flow run time",
                "s",
                [r[0] for r in gorax],
                [r[0] for r in hand],
                "hand-written Prefect flow",
                GOAL if n == 33 else "",
            )
            # The fixed part of a run is what happens before the first node and after the last.
            for column, figure in enumerate(
                ("task run duration", "gap between task runs", "flow start to first node", "last node to flow end"), 1
            ):
                report(
                    "overhead",
                    f"{label}: {figure}",
                    "ms",
                    [r[column] * 1000 for r in gorax],
                    [r[column] * 1000 for r in hand],
                    "hand-written Prefect flow",
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=12, help="measured runs per side, 40 x fibo(10)")
    parser.add_argument("--heavy-reps", type=int, default=3, help="measured runs per side, 10 x fibo(33)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="the Prefect server's database (both: one process each, in turn)",
    )
    parser.add_argument("--shapes", default="fibo,heavy,javascript", help="comma-separated shapes to run")
    args = parser.parse_args()
    argv = ["--reps", str(args.reps), "--heavy-reps", str(args.heavy_reps), "--shapes", args.shapes]
    if not per_database(__file__, argv, args.database):
        asyncio.run(main(args.reps, args.heavy_reps, args.database, args.shapes))
