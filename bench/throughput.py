"""Sustained throughput of a 10-node workflow on the warm worker, against a hand-written flow.

The Gorax workflow is a manual trigger and nine ``data.transform`` nodes in sequence (ten task
runs); the baseline is a hand-written async Prefect flow of ten transform tasks. Each side in
turn is kept busy (twice the worker's limit of runs waiting or running) for a fixed window;
completed runs per second and task runs per second come from what the Prefect server recorded
in that window (flow and task run end times). The Prefect server's CPU use over the window is
printed with them: near one full core, the single server process is the ceiling.

Run: .venv/bin/python bench/throughput.py [--seconds 45] [--limit 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    chain_graph,
    cpu_seconds,
    create_pool,
    deploy_flow,
    deploy_graph,
    load_note,
    per_database,
    process_tree,
    report,
    start_prefect,
    start_worker,
)


async def _count(client, path: str, body: dict) -> int:
    response = await client._client.post(path, json=body)
    response.raise_for_status()
    return int(response.json())


async def _side(client, deployment_id, backlog: int, window: float, warmup: float, server_pid: int):
    """Keep ``backlog`` runs queued or running; return (runs/s, task runs/s, server CPU %)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.exceptions import PrefectHTTPStatusError

    created: list = []
    refused = 0
    open_states = ["SCHEDULED", "PENDING", "RUNNING"]
    start = time.monotonic()
    window_start = window_end = None
    cpu_start = 0.0
    pids = process_tree(server_pid)
    while True:
        now = time.monotonic()
        if window_start is None and now - start >= warmup:
            window_start = datetime.now(UTC)
            cpu_start = sum(cpu_seconds(p) for p in pids)
        if window_start is not None and now - start >= warmup + window:
            window_end = datetime.now(UTC)
            cpu = sum(cpu_seconds(p) for p in pids) - cpu_start
            break
        busy = await client.count_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=created[-backlog * 3:]) if created else None,
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=open_states)),
        )) if created else 0  # fmt: skip
        for _ in range(max(0, backlog - busy)):
            try:
                created.append((await client.create_flow_run_from_deployment(deployment_id)).id)
            except PrefectHTTPStatusError as exc:  # the server sheds load (SQLite busy): back off
                if exc.response.status_code != 503:
                    raise
                refused += 1
                await asyncio.sleep(1)
                break
        await asyncio.sleep(0.5)
    span = (window_end - window_start).total_seconds()
    flows_done = await _count(client, "/flow_runs/count", {"flow_runs": {
        "id": {"any_": [str(i) for i in created]},
        "end_time": {"after_": window_start.isoformat(), "before_": window_end.isoformat()},
        "state": {"type": {"any_": ["COMPLETED"]}}}})  # fmt: skip
    # Task runs are recorded from their events, which a busy server digests long after the
    # runs ended (its task-run recorder was tens of seconds behind at the end of the window):
    # count those that ended in the window once the count has stopped growing.
    tasks_done, settle_deadline = -1, time.monotonic() + 120
    while time.monotonic() < settle_deadline:
        counted = await _count(client, "/task_runs/count", {
            "flow_runs": {"id": {"any_": [str(i) for i in created]}},
            "task_runs": {"end_time": {"after_": window_start.isoformat(), "before_": window_end.isoformat()}},
        })  # fmt: skip
        if counted == tasks_done and counted:
            break
        tasks_done = counted
        await asyncio.sleep(3)
    failed = await client.count_flow_runs(flow_run_filter=FlowRunFilter(
        id=FlowRunFilterId(any_=created), state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=["FAILED", "CRASHED"]))))  # fmt: skip
    if failed:
        print(
            f"  {failed} runs failed or crashed (an overloaded Prefect server answers 503 to the "
            f"worker's submission calls; Prefect then crashes the run)",
            flush=True,
        )
    if refused:
        print(f"  the Prefect server refused {refused} run creations (503) during the window", flush=True)
    # Drain: stop feeding and let the backlog finish before the other side starts.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if not await client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=created),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=open_states)),
            )
        ):
            break
        await asyncio.sleep(1)
    return flows_done / span, tasks_done / span, 100 * cpu / span, failed


async def main(window: float, limit: int, database: str) -> None:
    print(load_note(), flush=True)
    server, home = start_prefect(database=database)
    from prefect.client.orchestration import get_client

    pool = "bench-throughput"
    await create_pool(pool, "gorax")
    await start_worker(
        pool,
        "gorax",
        home,
        limit=limit,
        env={
            "GORAX_WORKER_PRELOAD": "flows.run_graph,bench._flows",
            "PREFECT_LOGGING_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
        },
    )
    graph_id = await deploy_graph(
        pool, chain_graph("throughput", 9, "data.transform", {"value": {"ok": True}}), "throughput"
    )
    hand_id = await deploy_flow(pool, "transform_chain", {"tasks": 10})
    print(f"  server ({database}) and worker up; {window:.0f} s per side", flush=True)
    async with get_client() as client:
        hand = await _side(client, hand_id, 2 * limit, window, 5, server.pid)
        gorax = await _side(client, graph_id, 2 * limit, window, 5, server.pid)
    note = f"Prefect on {database}, worker limit {limit}, {window:.0f} s window"
    label = f" (Prefect on {database})"
    report(
        "throughput",
        "10-node workflow runs per second" + label,
        "runs/s",
        [gorax[0]],
        [hand[0]],
        "hand-written Prefect flow",
        note=note,
    )
    report(
        "throughput",
        "task runs per second recorded by the Prefect server" + label,
        "tasks/s",
        [gorax[1]],
        [hand[1]],
        "hand-written Prefect flow",
        note=note,
    )
    report(
        "throughput",
        "runs failed or crashed (server overload)" + label,
        "runs",
        [gorax[3]],
        [hand[3]],
        "hand-written Prefect flow",
    )
    report(
        "throughput",
        "Prefect server CPU during the window" + label,
        "% of one core",
        [gorax[2]],
        [hand[2]],
        "hand-written Prefect flow",
        note="near 100% means the single Prefect server process is the ceiling",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45, help="measured window per side")
    parser.add_argument("--limit", type=int, default=8, help="the warm worker's concurrent runs")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="the Prefect server's database (both: one process each, in turn)",
    )
    args = parser.parse_args()
    if not per_database(__file__, ["--seconds", str(args.seconds), "--limit", str(args.limit)], args.database):
        asyncio.run(main(args.seconds, args.limit, args.database))
