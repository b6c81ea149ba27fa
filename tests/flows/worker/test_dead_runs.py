"""Dead runs: a killed worker's run ends Crashed by its stopped heartbeat and runs again elsewhere."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate
from prefect.states import Cancelling, Crashed, Running

from api.prefect.dead_runs import dead_run_automation, ensure_dead_run_automation
from flows.worker.recovery import CLAIM_PREFIX, crashed_runs, rerun_if_allowed
from tests.flows.worker.conftest import WorkerProcess, create_pool, deploy, start_run, wait_for_state

#: The automation's window in these tests, and the workers' heartbeat (Prefect's shortest).
DEAD_AFTER = 45.0
HEARTBEAT = {"GORAX_WORKER_HEARTBEAT_SECONDS": "30"}


async def test_the_automation_is_made_once_and_follows_the_setting(prefect_server: Any) -> None:
    name = "gorax-test-dead-runs-setup"
    async with get_client() as client:
        try:
            assert await ensure_dead_run_automation(client, 90, name=name) == "created"
            assert await ensure_dead_run_automation(client, 90, name=name) == "already set up"
            assert await ensure_dead_run_automation(client, 120, name=name) == "updated"
            [automation] = await client.read_automations_by_name(name)
            assert automation.trigger.within.total_seconds() == 120
            assert automation.trigger.posture == "Proactive"
            assert automation.trigger.after == {"prefect.flow-run.heartbeat"}
            assert {"prefect.flow-run.Completed", "prefect.flow-run.Suspended"} <= automation.trigger.expect
        finally:
            for automation in await client.read_automations_by_name(name):
                await client.delete_automation(automation.id)


async def test_a_crashed_run_runs_again_once_and_only_as_its_policy_allows(prefect_server: Any) -> None:
    pool = await create_pool()
    deployment = await deploy(pool, "quick")
    async with get_client() as client:
        run_id = await start_run(deployment, x=1)
        await client.set_flow_run_state(run_id, Running(), force=True)
        await client.set_flow_run_state(run_id, Crashed(message="worker gone"), force=True)
        crashed = await client.read_flow_run(run_id)
        assert [r.id for r in await crashed_runs(client, pool, since_seconds=600)] == [run_id]
        # While another worker holds the claim on this crash, this one leaves it.
        claim = f"{CLAIM_PREFIX}{crashed.state.id.hex}"
        await client.create_variable(VariableCreate(name=claim, value="other"))
        assert await rerun_if_allowed(client, crashed, crash_retries=1) is None
        await client.delete_variable_by_name(claim)
        reason = await rerun_if_allowed(client, crashed, crash_retries=1)
        assert reason and "1 of 1" in reason
        rerun = (await client.read_flow_run(run_id)).state
        assert rerun.type.value == "SCHEDULED" and rerun.name == "AwaitingRetry"
        # Another worker that read the same crash finds the run moved on; the claim is released.
        assert await rerun_if_allowed(client, crashed, crash_retries=1) is None
        assert (await client.read_flow_run(run_id)).state.id == rerun.id
        assert await client.read_variable_by_name(claim) is None

        # A second crash is past the allowance of one.
        await client.set_flow_run_state(run_id, Running(), force=True)
        await client.set_flow_run_state(run_id, Crashed(message="again"), force=True)
        assert await rerun_if_allowed(client, await client.read_flow_run(run_id), crash_retries=1) is None
        assert await rerun_if_allowed(client, await client.read_flow_run(run_id), crash_retries=2)

        # A run that crashed while it was being cancelled is left as it is.
        cancelled = await start_run(deployment, x=2)
        await client.set_flow_run_state(cancelled, Running(), force=True)
        await client.set_flow_run_state(cancelled, Cancelling(), force=True)
        await client.set_flow_run_state(cancelled, Crashed(message="interrupted"), force=True)
        assert await rerun_if_allowed(client, await client.read_flow_run(cancelled), crash_retries=3) is None


@pytest.mark.timeout(600)  # two worker starts and a heartbeat window, on a loaded machine
async def test_a_killed_workers_run_ends_crashed_by_heartbeat_and_runs_again_elsewhere(
    prefect_server: Any, tmp_path: Path
) -> None:
    pool = await create_pool()
    name = f"gorax-test-dead-runs-{pool}"
    first = WorkerProcess(pool, f"{pool}-first", env=HEARTBEAT)
    second = WorkerProcess(pool, f"{pool}-second", env=HEARTBEAT)
    async with get_client() as client:
        await ensure_dead_run_automation(client, DEAD_AFTER, name=name)
        try:
            await first.start().started()
            deployment = await deploy(pool, "waits_first_time")
            run_id = await start_run(deployment, marker=str(tmp_path / "started"), seconds=600.0)
            await wait_for_state(run_id, {"RUNNING"})
            await asyncio.sleep(3)  # its first heartbeat is out
            assert first.process is not None
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait(10)
            killed_at = datetime.now(UTC)
            # Another worker, under another name: nothing ties it to the dead one.
            await second.start().started()
            run = await wait_for_state(run_id, {"COMPLETED", "FAILED", "CANCELLED"}, deadline=DEAD_AFTER + 30 + 90)
            assert run.state.type.value == "COMPLETED", second.log()
            assert run.labels["prefect.worker.name"] == second.name
            states = sorted(await client.read_flow_run_states(run_id), key=lambda s: s.timestamp)
            crashes = [s for s in states if s.type.value == "CRASHED"]
            assert len(crashes) == 1 and "No heartbeat" in crashes[0].message
            # Crashed by the heartbeat window, not sooner (the last heartbeat was before the kill).
            waited = (crashes[0].timestamp - killed_at).total_seconds()
            assert DEAD_AFTER - 5 <= waited <= DEAD_AFTER + 30, waited
            assert any(s.name == "AwaitingRetry" for s in states)
        finally:
            second.stop()
            first.stop()
            for automation in await client.read_automations_by_name(name):
                await client.delete_automation(automation.id)


def test_the_automation_crashes_only_runs_that_went_quiet() -> None:
    automation = dead_run_automation(90)
    [action] = automation.actions
    assert action.state.value == "CRASHED"
    # A run paused for a human, scheduled again or finished sends no heartbeat, legitimately.
    for quiet in ("Paused", "Suspended", "AwaitingRetry", "Scheduled", "Completed", "Failed", "Cancelled"):
        assert f"prefect.flow-run.{quiet}" in automation.trigger.expect
