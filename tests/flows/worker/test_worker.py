"""The warm worker against a real Prefect server: runs, concurrency, cancellation, crashes."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.client.schemas.filters import FlowRunFilter
from prefect.states import Cancelling

from tests.flows.worker.conftest import (
    FINAL,
    WorkerProcess,
    deploy,
    start_run,
    wait_for_state,
)


async def test_worker_type_is_registered_with_prefect() -> None:
    from prefect.workers.base import BaseWorker

    from flows.worker import GoraxWorker

    assert BaseWorker.get_worker_class_from_type("gorax") is GoraxWorker
    assert "process" in BaseWorker.get_all_available_worker_types()


async def test_run_completes_inside_the_worker_process(worker: WorkerProcess, pool_name: str, client: Any) -> None:
    deployment = await deploy(pool_name, "quick")
    run_id = await start_run(deployment, x=20)
    run = await wait_for_state(run_id, FINAL)
    assert run.state.type.value == "COMPLETED", worker.log()
    # The flow ran in the worker itself, not in a child process.
    assert run.infrastructure_pid == str(worker.process.pid)
    assert run.labels["prefect.worker.type"] == "gorax"
    # Prefect records task run states from events, a moment after the flow run ends.
    for _ in range(100):
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run_id]}))
        if len(tasks) == 2 and {t.state.type.value for t in tasks} == {"COMPLETED"}:
            break
        await asyncio.sleep(0.1)
    assert sorted(t.name.split("-")[0] for t in tasks) == ["add_one", "double"]
    assert {t.state.type.value for t in tasks} == {"COMPLETED"}


async def test_runs_execute_concurrently(worker: WorkerProcess, pool_name: str) -> None:
    deployment = await deploy(pool_name, "rendezvous")
    # Each run waits until all four are running at once: run one at a time, they would fail.
    run_ids = [await start_run(deployment, key="together", n=4) for _ in range(4)]
    runs = [await wait_for_state(run_id, FINAL) for run_id in run_ids]
    assert [r.state.type.value for r in runs] == ["COMPLETED"] * 4, worker.log()
    assert {r.infrastructure_pid for r in runs} == {str(worker.process.pid)}


async def test_cancelling_a_running_flow_stops_it(worker: WorkerProcess, pool_name: str, client: Any) -> None:
    deployment = await deploy(pool_name, "slow")
    run_id = await start_run(deployment, seconds=120.0)
    await wait_for_state(run_id, {"RUNNING"})
    await client.set_flow_run_state(run_id, Cancelling(), force=True)
    # Prefect's engine records the interruption as a crash a moment before the worker sets the
    # run Cancelled (see flows/worker/worker.py): wait for the end the worker gives it.
    run = await wait_for_state(run_id, {"CANCELLED"}, deadline=30)
    assert run.state.type.value == "CANCELLED", worker.log()
    assert worker.alive
    # Its task was stopped too, not left running.
    tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run_id]}))
    assert all(t.state.type.value != "RUNNING" for t in tasks)


async def test_a_run_suspended_from_outside_stops_and_others_go_on(
    worker: WorkerProcess, pool_name: str, client: Any
) -> None:
    # Runs share the worker's suspension observer (Prefect's, one per engine loop): setting a
    # running flow run's state to Suspended stops it before its next task.
    from prefect.states import Suspended

    deployment = await deploy(pool_name, "steps")
    run_id = await start_run(deployment, count=600, seconds=0.05)
    await wait_for_state(run_id, {"RUNNING"})

    async def task_count() -> int:
        return len(await client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run_id]})))

    for _ in range(100):  # a few steps in
        if await task_count() >= 3:
            break
        await asyncio.sleep(0.1)
    await client.set_flow_run_state(run_id, Suspended(timeout_seconds=600), force=True)
    # The observer hears of the suspension through Prefect's events: on a loaded machine that
    # can take seconds. Wait for the count to stop growing; a run that went on would reach 600.
    settled, before = await task_count(), -1
    for _ in range(15):
        await asyncio.sleep(2)
        before, settled = settled, await task_count()
        if settled == before:
            break
    await asyncio.sleep(3)
    assert await task_count() == settled < 300, worker.log()
    run = await client.read_flow_run(run_id)
    assert run.state.type.value == "PAUSED" and run.state.name == "Suspended"
    assert worker.alive
    # The shared observer and clients go on serving the next runs.
    quick = await deploy(pool_name, "quick")
    done = await wait_for_state(await start_run(quick, x=1), FINAL)
    assert done.state.type.value == "COMPLETED", worker.log()


async def test_crashing_runs_leave_the_worker_running(worker: WorkerProcess, pool_name: str) -> None:
    deployment = await deploy(pool_name, "crashing")
    exits = [await start_run(deployment, kind=kind) for kind in ("exit", "interrupt")]
    failing = await start_run(deployment, kind="error")
    for run_id in exits:
        run = await wait_for_state(run_id, FINAL)
        assert run.state.type.value == "CRASHED", worker.log()
    run = await wait_for_state(failing, FINAL)
    assert run.state.type.value == "FAILED"
    assert "failing on purpose" in run.state.message
    assert worker.alive, worker.log()
    after = await start_run(await deploy(pool_name, "quick"), x=1)
    assert (await wait_for_state(after, FINAL)).state.type.value == "COMPLETED"


async def test_remote_code_deployment_is_refused_with_a_clear_message(worker: WorkerProcess, pool_name: str) -> None:
    deployment = await deploy(
        pool_name,
        "quick",
        pull_steps=[{"prefect.deployments.steps.git_clone": {"repository": "https://example.invalid/x.git"}}],
    )
    run = await wait_for_state(await start_run(deployment), FINAL)
    assert run.state.type.value == "CRASHED"
    assert "git_clone" in run.state.message and "process work pool" in run.state.message


async def test_a_run_still_finishing_here_is_left_for_a_later_poll() -> None:
    """A suspended run resumed while its execution here still holds its slot: Prefect's own
    poll raises (it stopped the worker's poll loop); the gorax worker's poll leaves it for the
    poll after the slot is released."""
    import uuid

    import anyio
    import pytest
    from prefect.client.schemas.objects import FlowRun
    from prefect.client.schemas.responses import WorkerFlowRunResponse
    from prefect.workers.base import BaseWorker

    from flows.worker import GoraxWorker

    worker = GoraxWorker("any-pool", limit=2)
    worker._limiter = anyio.CapacityLimiter(2)
    worker._has_successfully_synced = True
    worker._wake = asyncio.Event()
    run = FlowRun(id=uuid.uuid4(), name="resumed", flow_id=uuid.uuid4())
    response = [WorkerFlowRunResponse(work_pool_id=uuid.uuid4(), work_queue_id=uuid.uuid4(), flow_run=run)]

    async def scheduled() -> list[WorkerFlowRunResponse]:
        return response

    worker._get_scheduled_flow_runs = scheduled  # the server's answer, without a server
    worker._limiter.acquire_on_behalf_of_nowait(run.id)  # its previous execution is finishing

    with pytest.raises(RuntimeError, match="already holding"):
        await BaseWorker.get_and_submit_flow_runs(worker)
    assert await worker.get_and_submit_flow_runs() == []
    assert worker._limiter.borrowed_tokens == 1 and worker._poll_after_release
