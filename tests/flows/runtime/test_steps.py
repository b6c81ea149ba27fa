"""Step records: the final batch of a run, written after its final state in the warm worker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from flows.runtime import steps
from flows.runtime.steps import StepRecord, StepWriter, close_writer, deferred_step_writes, read_steps


@pytest.fixture(autouse=True)
def _prefect(prefect_server: Any) -> Any:
    return prefect_server


async def _writer(run_id: uuid.UUID, *node_ids: str) -> StepWriter:
    writer = StepWriter(run_id)
    await writer.__aenter__()
    for node_id in node_ids:
        writer.submit(StepRecord(node_id=node_id, name=node_id, type="transform", status="completed"))
    return writer


async def test_a_deferred_final_batch_is_written_on_the_way_out_and_waited_for_by_readers() -> None:
    run_id = uuid.uuid4()
    ended = datetime.now(timezone.utc)
    # A reader of a run that just ended, before anything is stored, waits for the final batch.
    reader = asyncio.create_task(read_steps(run_id, ended_at=ended))
    await asyncio.sleep(0.3)
    assert not reader.done()
    async with deferred_step_writes():
        writer = await _writer(run_id, "a", "b")
        await close_writer(writer)
        assert len(steps._deferred.get() or []) == 1  # close_writer handed the write on
        # Nothing is written while the run is still recording its final state (the Prefect
        # server stamps the run's end when it takes that state up; a write beside it delays it).
        await asyncio.sleep(0.6)  # past the writer's periodic flush
        assert await read_steps(run_id) == []
    # Leaving the scope wrote the batch, closed when the body ended, and waited for it.
    assert [s.node_id for s in await read_steps(run_id)] == ["a", "b"]
    assert [s.node_id for s in await asyncio.wait_for(reader, 5)] == ["a", "b"]


async def test_readers_wait_only_for_a_run_that_just_ended() -> None:
    run_id = uuid.uuid4()
    writer = await _writer(run_id, "a")
    await writer._flush()  # a batch, but not the final one (the body was cut off)
    long_ago = datetime.now(timezone.utc) - timedelta(seconds=30)
    started = asyncio.get_running_loop().time()
    assert [s.node_id for s in await read_steps(run_id, ended_at=long_ago)] == ["a"]
    assert [s.node_id for s in await read_steps(run_id)] == ["a"]  # a run still going
    assert asyncio.get_running_loop().time() - started < 2
    # Just ended and no final batch ever comes (a crashed body): the reader gives up after a while.
    started = asyncio.get_running_loop().time()
    assert [s.node_id for s in await read_steps(run_id, ended_at=datetime.now(timezone.utc))] == ["a"]
    assert asyncio.get_running_loop().time() - started >= 2.5
    await close_writer(writer)  # closed outside the warm worker: written before returning
    assert [s.node_id for s in await read_steps(run_id, ended_at=datetime.now(timezone.utc))] == ["a"]
