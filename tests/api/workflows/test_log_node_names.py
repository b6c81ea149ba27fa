"""A log line names its node even when the line was read before Prefect renamed the task run.

Prefect creates a task run under its task's name (``data.transform-d04``) and renames it to the
node's label when it starts; a log stream that read the names in between must not keep the
provisional one (the editor's logs panel then showed no line for the node).
"""

from __future__ import annotations

import asyncio
import types
import uuid
from typing import Any

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.states import Cancelled

from api.services.run_logs import NodeNames


@flow(name="log-node-names")
def _graph_flow() -> None:
    """Only its name matters: the test makes its runs through the client."""


@task(name="data.transform")
def _transform() -> None:
    """Only its name matters."""


async def test_a_renamed_task_run_gets_its_node_id(prefect_server: Any) -> None:
    async with get_client() as client:
        run = await client.create_flow_run(_graph_flow)
        created = await client.create_task_run(
            _transform, flow_run_id=run.id, dynamic_key=uuid.uuid4().hex, name="data.transform-d04"
        )
        graph = {"nodes": [{"id": "hello", "type": "data.transform"}]}
        names = NodeNames(client, types.SimpleNamespace(id=run.id, parameters={"graph": graph}))  # type: ignore[arg-type]
        assert await names.node_of(created.id) == "data.transform-d04"  # read before the rename

        await client.set_task_run_name(created.id, "hello")
        # Read again (at most once a second), and from then on known.
        found = None
        for _ in range(40):
            found = await names.node_of(created.id)
            if found == "hello":
                break
            await asyncio.sleep(0.1)
        assert found == "hello"
        assert await names.node_of(created.id) == "hello"
        # Leave no pending run behind for the session's other files.
        await client.set_task_run_state(created.id, Cancelled(), force=True)
        await client.set_flow_run_state(run.id, Cancelled(), force=True)
