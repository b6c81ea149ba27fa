"""A flow run's logs: read what Prefect stored, follow what it receives, name its task runs.

Following uses Prefect's log stream (``/api/logs/out``, a WebSocket of its own outside the
client; the Prefect API servers need ``PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED`` and
``PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED``). The stream has no backfill: subscribe first,
then read the stored logs, and drop what arrives twice by log id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
    LogFilterLevel,
)
from prefect.client.schemas.objects import Log
from prefect.client.schemas.sorting import LogSort
from prefect.logging.clients import get_logs_subscriber

#: Prefect's largest page of logs.
PAGE = 200

__all__ = ["PAGE", "Log", "follow_logs", "read_logs", "task_run_names"]


def _filter(run_id: UUID, level_ge: int | None) -> LogFilter:
    return LogFilter(
        flow_run_id=LogFilterFlowRunId(any_=[run_id]),
        level=LogFilterLevel(ge_=level_ge) if level_ge is not None else None,
    )


async def read_logs(
    client: PrefectClient, run_id: UUID, *, level_ge: int | None = None, offset: int = 0, limit: int = PAGE
) -> list[Log]:
    """Stored logs of the run (at or above ``level_ge``), oldest first, one page."""
    return await client.read_logs(
        _filter(run_id, level_ge), sort=LogSort.TIMESTAMP_ASC, offset=offset, limit=min(limit, PAGE)
    )


@asynccontextmanager
async def follow_logs(run_id: UUID, *, level_ge: int | None = None) -> AsyncIterator[AsyncIterator[Log]]:
    """The run's logs as Prefect receives them (from about a minute back, no stored backlog)."""
    async with get_logs_subscriber(filter=_filter(run_id, level_ge)) as subscriber:
        yield subscriber


async def task_run_names(client: PrefectClient, run_id: UUID) -> dict[UUID, str]:
    """Task run id -> task run name, for every task run of the flow run."""
    names: dict[UUID, str] = {}
    offset = 0
    while True:
        page = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=PAGE, offset=offset
        )
        names.update({task_run.id: task_run.name for task_run in page})
        if len(page) < PAGE:
            return names
        offset += PAGE
