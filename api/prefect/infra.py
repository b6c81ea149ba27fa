"""Work queues and workers: how deep a queue is and whether the workers polling its pool are alive.

Plain Prefect reads for the operations dashboard. A queue's depth counts only the runs carrying
the caller's tags (a tenant's), so a tenant never learns another's load from a shared queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterTags,
    FlowRunFilterWorkQueueName,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.exceptions import ObjectNotFound

#: Prefect state names a queued run is in, by the dashboard's name for them.
QUEUED_STATES = {"scheduled": "Scheduled", "late": "Late", "pending": "Pending"}
#: A worker is stale when its last heartbeat is older than this many heartbeat intervals
#: (Prefect's own rule for marking a worker offline).
STALE_AFTER_INTERVALS = 3
#: The heartbeat interval assumed when a worker did not send one (Prefect's default).
DEFAULT_HEARTBEAT_SECONDS = 30


@dataclass
class QueueDepth:
    """One work queue: whether it exists, is paused, when it was last polled, and the caller's
    runs waiting in it by state."""

    pool: str
    name: str
    exists: bool
    paused: bool
    concurrency_limit: int | None
    last_polled: datetime | None
    counts: dict[str, int]


@dataclass
class WorkerHealth:
    """One worker of a pool: Prefect's status and whether its heartbeat is recent."""

    name: str
    status: str
    last_heartbeat: datetime | None
    heartbeat_interval_seconds: int
    healthy: bool


async def queue_depth(client: PrefectClient, *, pool: str, queue: str, tags: list[str]) -> QueueDepth:
    """Runs with every tag of ``tags`` waiting in ``pool``/``queue``: scheduled, late, pending."""
    try:
        found = await client.read_work_queue_by_name(queue, work_pool_name=pool)
        exists, paused, limit, polled = True, found.is_paused, found.concurrency_limit, found.last_polled
    except ObjectNotFound:
        exists, paused, limit, polled = False, False, None, None
    counts: dict[str, int] = {}
    for key, state_name in QUEUED_STATES.items():
        flt = FlowRunFilter(
            tags=FlowRunFilterTags(all_=tags),
            work_queue_name=FlowRunFilterWorkQueueName(any_=[queue]),
            state=FlowRunFilterState(name=FlowRunFilterStateName(any_=[state_name])),
        )
        counts[key] = (
            await client.count_flow_runs(
                flow_run_filter=flt, work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))
            )
            if exists
            else 0
        )
    return QueueDepth(
        pool=pool,
        name=queue,
        exists=exists,
        paused=bool(paused),
        concurrency_limit=limit,
        last_polled=polled,
        counts=counts,
    )


async def worker_health(client: PrefectClient, *, pool: str, now: datetime | None = None) -> list[WorkerHealth]:
    """The workers Prefect knows for ``pool`` (none when the pool does not exist), healthiest last
    heartbeat first."""
    now = now or datetime.now(UTC)
    try:
        workers = await client.read_workers_for_work_pool(pool, limit=200)
    except ObjectNotFound:
        return []
    found = []
    for worker in workers:
        interval = worker.heartbeat_interval_seconds or DEFAULT_HEARTBEAT_SECONDS
        beat = worker.last_heartbeat_time
        fresh = beat is not None and (now - beat).total_seconds() <= STALE_AFTER_INTERVALS * interval
        status = worker.status.value.lower() if worker.status is not None else "unknown"
        found.append(
            WorkerHealth(
                name=worker.name,
                status=status,
                last_heartbeat=beat,
                heartbeat_interval_seconds=interval,
                healthy=fresh and status != "offline",
            )
        )
    found.sort(key=lambda w: (not w.healthy, w.name))
    return found
