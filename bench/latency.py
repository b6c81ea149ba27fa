"""Trigger latency, warm ``gorax`` worker against the process worker: p50 and p95.

Two paths into a run of a published Gorax workflow (a manual trigger and one transform node,
deployed by ``deploy_workflow``):

* manual: the API creates a deployment run -> the flow body runs (flow run ``created`` to its
  Running timestamp, both from Prefect);
* event (the webhook path after Gorax's ingestion): a Prefect event -> the workflow's automation
  creates the run -> the flow body runs (the event's ``occurred`` to the Running timestamp).

Both workers poll every 2 s, so the difference is what each does once it has a run. The warm
worker is measured twice: stock, and with the opt-in shared suspension observer
(``GORAX_WORKER_SHARED_SUSPENSION_OBSERVER``, :mod:`flows.worker.suspension`), each against the
one before it.
Goal: p95 < 300 ms warm. Runs once with the Prefect server on SQLite (the embedded default) and
once on PostgreSQL. The server runs the patches ``GORAX_PREFECT_PATCHES`` selects (none: stock,
as ``gorax up`` runs it); run it with and without to compare (``flows/prefect_patches``).

Run: .venv/bin/python bench/latency.py [--warm 12] [--process 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    chain_graph,
    create_pool,
    deploy_graph,
    load_note,
    per_database,
    report,
    seconds,
    start_prefect,
    start_worker,
    wait_final,
)

GOAL = "p95 < 300 ms warm"
POLL = {"PREFECT_WORKER_QUERY_SECONDS": "2"}
#: The workers measured, in turn: (worker type, environment besides POLL).
WORKERS: dict[str, tuple[str, dict[str, str]]] = {
    "gorax": ("gorax", {}),
    "shared": ("gorax", {"GORAX_WORKER_SHARED_SUSPENSION_OBSERVER": "true"}),
    "process": ("process", {}),
}
SHARED_NOTE = "warm gorax worker, GORAX_WORKER_SHARED_SUSPENSION_OBSERVER=true"


async def _manual(client, deployment_id: uuid.UUID, count: int, phases: list | None = None) -> list[float]:
    out = []
    for _ in range(count):
        run = await client.create_flow_run_from_deployment(deployment_id)
        (run,) = await wait_final(client, [run.id])
        _check(run)
        out.append(seconds(run.created, run.start_time))
        if phases is not None:
            phases.append(await _phases(client, run))
    return out


async def _phases(client, run) -> tuple[float, float]:
    """(created -> Pending: pick-up, Pending -> Running: start-up) from the run's state history."""
    states = await client.read_flow_run_states(run.id)
    pending = min((s.timestamp for s in states if s.type.value == "PENDING"), default=run.start_time)
    return seconds(run.created, pending), seconds(pending, run.start_time)


async def _event(
    client, deployment_id: uuid.UUID, resource: str, count: int, phases: list | None = None
) -> list[float]:
    """Emit an event the automation turns into a run; time from the event to the flow body."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.events import emit_event

    existing = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    )
    seen = {r.id for r in existing}
    out = []
    for _ in range(count):
        event = emit_event(event="bench.webhook.received", resource={"prefect.resource.id": resource})
        assert event is not None, "events are disabled in this Prefect configuration"
        run = None
        for _ in range(600):  # the automation creates the run a moment later
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            fresh = [r for r in runs if r.id not in seen]
            if fresh:
                run = fresh[0]
                break
            await asyncio.sleep(0.1)
        if run is None:  # an overloaded server's automations lag: keep what was measured
            print(
                f"  the automation created no run within 60 s ({resource}); {len(out)} event samples kept", flush=True
            )
            break
        seen.add(run.id)
        (run,) = await wait_final(client, [run.id])
        _check(run)
        out.append(seconds(event.occurred, run.start_time))
        if phases is not None:
            picked, started = await _phases(client, run)
            phases.append((seconds(event.occurred, run.created), picked, started))
    return out


def _check(run) -> None:
    if run.state.type.value != "COMPLETED":
        raise SystemExit(f"run {run.id} ended {run.state.type.value}: {run.state.message}")


async def _automation(client, deployment_id: uuid.UUID, resource: str) -> None:
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    await client.create_automation(AutomationCore(
        name=f"bench-{resource}",
        trigger=EventTrigger(expect={"bench.webhook.received"}, match={"prefect.resource.id": resource},
                             posture=Posture.Reactive, threshold=1),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id, parameters={})],
    ))  # fmt: skip


async def main(warm_count: int, process_count: int, database: str) -> None:
    print(load_note(), flush=True)
    print(f"  Prefect server on {database}", flush=True)
    _, home = start_prefect(database=database)
    from prefect.client.orchestration import get_client

    graph = chain_graph("latency", 1, "data.transform", {"value": {"ok": True}})
    results: dict[str, dict[str, list[float]]] = {}
    phases: dict[str, list[tuple[float, float]]] = {kind: [] for kind in WORKERS}
    event_phases: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in WORKERS}
    async with get_client() as client:
        for kind, (worker_type, env) in WORKERS.items():
            count = process_count if worker_type == "process" else warm_count
            pool = f"bench-latency-{kind}"
            await create_pool(pool, worker_type)
            deployment_id = await deploy_graph(pool, graph, f"latency-{kind}")
            await _automation(client, deployment_id, f"bench.hook.{kind}")
            worker = await start_worker(pool, worker_type, home, env={**POLL, **env})
            if worker_type == "gorax":  # unmeasured: the first run loads the code (a process run always does)
                await _manual(client, deployment_id, 1)
            results[kind] = {
                "manual": await _manual(client, deployment_id, count, phases[kind]),
                "event": await _event(client, deployment_id, f"bench.hook.{kind}", count, event_phases[kind]),
            }
            worker.terminate()
    on = f" (Prefect on {database})"
    # The stock warm worker against the process worker; the shared observer against the stock one.
    for kind, base, base_label, note in (
        ("gorax", "process", "process worker", "warm gorax worker"),
        ("shared", "gorax", "warm gorax worker, Prefect's observer per run", SHARED_NOTE),
    ):
        for path, label in (
            ("manual", "manual run -> flow running"),
            ("event", "event (webhook path) -> flow running"),
        ):
            warm, baseline = results[kind][path], results[base][path]
            if not warm or not baseline:
                continue
            name = f"{label}{'' if kind == 'gorax' else ', shared observer'}"
            report("latency", f"{name}, p50{on}", "s", warm, baseline, base_label, note=note)
            report("latency", f"{name}, p95{on}", "s", [_p95(warm)], [_p95(baseline)], base_label, GOAL, note=note)
        suffix = "" if kind == "gorax" else ", shared observer"
        for index, label in ((0, "manual: created -> picked up (Pending)"), (1, "manual: Pending -> flow running")):
            report(
                "latency",
                label + suffix + on,
                "s",
                [p[index] for p in phases[kind]],
                [p[index] for p in phases[base]],
                base_label,
                note=note,
            )
        for index, label in (
            (0, "event: occurred -> run created (Prefect's automation)"),
            (1, "event: run created -> picked up (Pending)"),
            (2, "event: Pending -> flow running"),
        ):
            if event_phases[kind] and event_phases[base]:
                report(
                    "latency",
                    label + suffix + on,
                    "s",
                    [p[index] for p in event_phases[kind]],
                    [p[index] for p in event_phases[base]],
                    base_label,
                    note=note,
                )


def _p95(values: list[float]) -> float:
    from _harness import pct

    return pct(values, 95)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=12, help="manual runs on the warm worker")
    parser.add_argument("--process", type=int, default=3, help="manual runs on the process worker")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="the Prefect server's database (both: one process each, in turn)",
    )
    args = parser.parse_args()
    if not per_database(__file__, ["--warm", str(args.warm), "--process", str(args.process)], args.database):
        asyncio.run(main(args.warm, args.process, args.database))
