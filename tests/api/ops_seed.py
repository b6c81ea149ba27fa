"""Seeding a history of finished Prefect runs for the operations dashboard tests.

Prefect stamps a state with the server's clock, so runs with chosen durations are made by
creating real runs, driving them through Running to their final state, then setting their start
and end times in Prefect's database.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from prefect.client.orchestration import PrefectClient
from prefect.states import Completed, Failed, Pending, Running
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from flows import tenant_tag, workflow_tag


@flow(name="ops-dashboard-seed")
def seed_flow() -> None:
    """Never run: the flow the seeded runs belong to."""


async def prefect_sql(statement: str, rows: list[dict[str, Any]]) -> None:
    """Run ``statement`` once per parameter row on the session Prefect server's database."""
    engine = create_async_engine(os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"])
    try:
        async with engine.begin() as conn:
            for row in rows:
                await conn.execute(text(statement), row)
    finally:
        await engine.dispose()


async def seed_runs(
    client: PrefectClient, tenant_id: str, workflow_id: str, outcomes: list[tuple[bool, float]], start: datetime
) -> None:
    """Finished runs of a workflow, (succeeded, duration in seconds) each, all started at ``start``."""
    sqlite = os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith("sqlite")
    timed = []
    for ok, seconds in outcomes:
        run = await client.create_flow_run(
            seed_flow, tags=[tenant_tag(tenant_id), workflow_tag(workflow_id), "gorax"], state=Pending()
        )
        await client.set_flow_run_state(run.id, Running(), force=True)
        await client.set_flow_run_state(run.id, Completed() if ok else Failed(message="boom"), force=True)
        timed.append({"id": str(run.id) if sqlite else run.id, "s": start, "e": start + timedelta(seconds=seconds)})
    await prefect_sql("UPDATE flow_run SET start_time = :s, end_time = :e WHERE id = :id", timed)
