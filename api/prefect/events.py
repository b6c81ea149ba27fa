"""Prefect events: send Gorax's, follow and read the ones the API acts on, and Prefect's health.

Following uses Prefect's event stream (a WebSocket of its own, outside the client); sending
and reading use the client the caller passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.events import Event
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import (
    EventAnyResourceFilter,
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
)
from prefect.settings import PREFECT_API_URL


def server_configured() -> bool:
    """Whether this process names a Prefect server to reach (events need one)."""
    return bool(PREFECT_API_URL.value())


async def post_events(client: PrefectClient, events_json: bytes) -> None:
    """Send a batch of events, already encoded as one JSON array, to Prefect's ``/events``.

    Prefect's own events client sends one event at a time over a WebSocket and acknowledges
    nothing; a stored webhook delivery must be marked sent only once Prefect has taken it, so
    the batch is posted and its answer checked.
    """
    response = await client.request(
        "POST", "/events", content=events_json, headers={"Content-Type": "application/json"}
    )
    response.raise_for_status()


async def reachable(client: PrefectClient) -> bool:
    """Whether Prefect answers its health check."""
    try:
        return (await client.api_healthcheck()) is None
    except Exception:  # any failure to get an answer means not reachable
        return False


def named(names: list[str], *, occurred: tuple[datetime, datetime] | None = None) -> EventFilter:
    """Events of those names (that occurred between the two times, when given)."""
    if occurred is None:
        return EventFilter(event=EventNameFilter(name=names))
    since, until = occurred
    return EventFilter(event=EventNameFilter(name=names), occurred=EventOccurredFilter(since=since, until=until))


def of_run(run_id: Any, *, since: datetime) -> EventFilter:
    """Flow-run and task-run state events of one flow run since ``since``."""
    return EventFilter(
        occurred=EventOccurredFilter(since=since),
        any_resource=EventAnyResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
        event=EventNameFilter(prefix=["prefect.task-run.", "prefect.flow-run."]),
    )


@asynccontextmanager
async def follow(flt: EventFilter) -> AsyncIterator[AsyncIterator[Event]]:
    """Matching events as they happen (Prefect replays recent ones first)."""
    async with get_events_subscriber(filter=flt) as subscriber:
        yield subscriber


async def read_events(client: PrefectClient, flt: EventFilter) -> AsyncIterator[list[Event]]:
    """Stored events that match, page by page."""
    page = await client.read_events(filter=flt, limit=50)
    while True:
        yield list(page.events)
        if not page.next_page:
            return
        page = await client.read_events_page(str(page.next_page))
