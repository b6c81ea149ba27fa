"""Step records: stored before the body that made them returns, read back without waiting."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from flows.runtime.steps import StepRecord, StepWriter, read_steps
from tests.flows.graphs.conftest import run
from tests.flows.graphs.test_semantics import MANUAL, graph, transform


@pytest.fixture(autouse=True)
def _prefect(prefect_server: Any) -> Any:
    return prefect_server


def _record(node_id: str) -> StepRecord:
    return StepRecord(node_id=node_id, name=node_id, type="transform", status="completed")


async def test_closing_the_writer_stores_every_record_before_it_returns() -> None:
    run_id = uuid.uuid4()
    async with StepWriter(run_id, interval=60) as writer:
        writer.submit(_record("a"))
        writer.submit(_record("b"))
        assert await read_steps(run_id) == []  # batched: nothing is written per record
    assert [s.node_id for s in await read_steps(run_id)] == ["a", "b"]


async def test_flush_waits_for_a_batch_already_on_its_way() -> None:
    run_id = uuid.uuid4()
    async with StepWriter(run_id, interval=60, max_records=1) as writer:
        writer.submit(_record("a"))  # a full batch: the periodic flush takes it at once
        await asyncio.sleep(0)
        writer.submit(_record("b"))
        await writer.flush()
        # Both stored when flush returns, the one the periodic flush was writing included.
        assert sorted(s.node_id for s in await read_steps(run_id)) == ["a", "b"]
        writer.submit(_record("c"))
    assert sorted(s.node_id for s in await read_steps(run_id)) == ["a", "b", "c"]


async def test_a_run_s_records_are_all_readable_when_it_returns() -> None:
    nodes = [MANUAL] + [transform(f"n{i}", i) for i in range(30)]
    edges = [("start", "n0")] + [(f"n{i}", f"n{i + 1}") for i in range(29)]
    state, flow_run_id = await run(graph(nodes, edges))
    assert state.is_completed(), state.message
    steps = await read_steps(flow_run_id)
    assert [s.node_id for s in steps] == ["start"] + [f"n{i}" for i in range(30)]
    assert all(s.status == "completed" and s.attempts == 1 for s in steps)
    assert [a.status for a in steps[-1].attempt_history] == ["completed"]
