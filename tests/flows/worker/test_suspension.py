"""The shared suspension observer (opt-in): one observer for all runs, none blocking the loop."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import prefect.flow_engine
import pytest
from prefect._flow_run_suspension import FlowRunSuspensionRequest
from prefect.states import Suspended

from flows.worker import suspension
from tests.flows.worker.conftest import FINAL, WorkerProcess, deploy, start_run, wait_for_state
from tests.flows.worker.test_worker import (
    test_a_run_suspended_from_outside_stops_and_others_go_on as _suspended_from_outside,
)


@pytest.fixture(scope="module")
def worker(pool_name: str) -> Iterator[WorkerProcess]:
    """A warm worker with the shared observer switched on."""
    env = {"GORAX_WORKER_SHARED_SUSPENSION_OBSERVER": "true"}
    process = WorkerProcess(pool_name, f"shared-{uuid.uuid4().hex[:6]}", env=env).start()
    yield process
    process.stop()


async def test_a_run_suspended_from_outside_stops_with_the_shared_observer(
    worker: WorkerProcess, pool_name: str, client: Any
) -> None:
    await _suspended_from_outside(worker, pool_name, client)
    assert "replaced by one shared observer" in worker.log()


async def test_concurrent_runs_complete_with_the_shared_observer(worker: WorkerProcess, pool_name: str) -> None:
    quick = await deploy(pool_name, "quick")
    runs = [await start_run(quick, x=i) for i in range(6)]
    for run_id in runs:
        run = await wait_for_state(run_id, FINAL)
        assert run.state.type.value == "COMPLETED", worker.log()


def _observe(observe: Any, flow_run_id: uuid.UUID, request: FlowRunSuspensionRequest) -> tuple[float, float]:
    """Enter and leave ``observe`` for a run in a thread of its own, as the engine does: (enter, leave) s."""
    times: list[float] = []

    def body() -> None:
        started = time.perf_counter()
        manager = observe(flow_run_id, request)
        manager.__enter__()
        entered = time.perf_counter()
        manager.__exit__(None, None, None)
        times.extend([entered - started, time.perf_counter() - entered])

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(60)
    return times[0], times[1]


async def test_a_run_leaves_the_shared_observer_at_once_and_hears_of_its_suspension(client: Any) -> None:
    from prefect import flow

    @flow(name="observed")
    def observed() -> None:
        pass

    runs = [(await client.create_flow_run(observed)).id for _ in range(4)]
    observer = suspension.SharedSuspensionObserver()
    try:
        # Prefect's own observer joins its thread as a run ends: 0.2 s at least, each run.
        _, prefect_leave = _observe(suspension._PREFECT_OBSERVE, runs[0], FlowRunSuspensionRequest())
        assert prefect_leave >= 0.19
        _observe(observer.observe, runs[1], FlowRunSuspensionRequest())  # starts the observer
        _, leave = _observe(observer.observe, runs[2], FlowRunSuspensionRequest())
        assert leave < 0.15 and observer.watched == set()

        # While a run is watched, its suspension from outside reaches the run's own request.
        request = FlowRunSuspensionRequest()
        manager = observer.observe(runs[3], request)
        await asyncio.to_thread(manager.__enter__)
        assert observer.watched == {runs[3]}
        await client.set_flow_run_state(runs[3], Suspended(timeout_seconds=600), force=True)
        for _ in range(300):
            if request.is_requested():
                break
            await asyncio.sleep(0.1)
        state = request.get_state()
        assert state is not None and state.name == "Suspended"
        manager.__exit__(None, None, None)
        assert observer.watched == set()
    finally:
        await asyncio.to_thread(observer.close)


def test_the_patch_applies_only_to_the_prefect_versions_it_was_tested_with() -> None:
    try:
        assert suspension.apply(prefect_version="3.9.0") is False
        assert prefect.flow_engine.observe_flow_run_suspension is suspension._PREFECT_OBSERVE
        assert suspension.apply(prefect_version="3.8.8") is True
        assert prefect.flow_engine.observe_flow_run_suspension == suspension.SHARED.observe
    finally:
        suspension.revert()
    assert prefect.flow_engine.observe_flow_run_suspension is suspension._PREFECT_OBSERVE
