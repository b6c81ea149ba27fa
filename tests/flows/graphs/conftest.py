"""Graph runs in-process against the session's real Prefect server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.run_graph import run_graph
from tests.examples import EXAMPLES_DIR

EXAMPLES = EXAMPLES_DIR


@pytest.fixture(autouse=True)
def _prefect(prefect_server: Any) -> Any:
    """Every graph test talks to the real Prefect server."""
    return prefect_server


def example(name: str) -> dict[str, Any]:
    """A shared example graph."""
    return json.loads((EXAMPLES / f"{name}.json").read_text())


async def task_runs(flow_run_id: Any, count: int | None = None, wait: float = 60) -> list[Any]:
    """Every task run of a flow run (from the Prefect API).

    Task run states reach the API through events, a moment after the run ends: with ``count``,
    wait until that many task runs are there and all are final.
    """
    deadline = asyncio.get_running_loop().time() + wait
    async with get_client() as client:
        while True:
            runs: list[Any] = []
            offset = 0
            while True:
                batch = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=200,
                    offset=offset,
                )
                runs += batch
                if len(batch) < 200:
                    break
                offset += 200
            settled = all(r.state is not None and r.state.is_final() for r in runs)
            if count is None or (len(runs) >= count and settled):
                return runs
            if asyncio.get_running_loop().time() > deadline:
                return runs
            await asyncio.sleep(0.5)


async def run(graph: dict[str, Any], **parameters: Any) -> tuple[Any, Any]:
    """Run a graph in-process; returns (final state, flow run id)."""
    state = await run_graph(graph=graph, return_state=True, **parameters)
    return state, state.state_details.flow_run_id
