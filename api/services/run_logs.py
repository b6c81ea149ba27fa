"""A run's log lines, read page by page or followed live, for the run page and the editor.

Prefect holds every log of a flow run: Gorax's own (the flow run's logger) and each node's (its
task run's logger, with the node's captured output). A line is
``{id, ts, level, node_id, logger, message}``: ``node_id`` comes from the task run's name (the
node's label), ``None`` for the run's own lines. Messages were masked by the worker before they
left it; they are masked again here with whatever this process knows.

:func:`follow_lines` subscribes to Prefect's log stream first, then sends the stored backlog, then
what arrives live, each log once (by id). When the run is final it keeps listening until the
stream has been quiet for :data:`DRAIN_QUIET_SECONDS` (the worker sends its logs in batches), reads
the store once more for anything the stream missed, and ends with ``{type: "end", status}``. Every
socket has its own subscription: nothing is shared between API replicas.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from api.errors import BadRequest
from api.prefect import FlowRun, PrefectClient
from api.prefect import logs as prefect_logs
from api.prefect import runs as prefect_runs
from api.services.executions import FINAL_TYPES, status_of
from api.services.run_events import is_node_label, node_id_of, node_ids_by_label
from blocks.redact import mask

#: Level names the filters accept, lowest first.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
#: How often a follower checks the run's state when no log arrives.
POLL_SECONDS = 1.0
#: After the run is final, the stream must be quiet this long before the follower ends.
DRAIN_QUIET_SECONDS = 2.5
#: ...and it ends at the latest this long after the run became final.
DRAIN_MAX_SECONDS = 15.0
#: The longest message a line carries (longer ones are cut and say so).
MAX_MESSAGE_CHARS = 20_000


def level_name(level: int) -> str:
    """``debug``/``info``/``warning``/``error``/``critical`` for a logging level number."""
    if level >= logging.CRITICAL:
        return "critical"
    for name, number in sorted(LEVELS.items(), key=lambda item: -item[1]):
        if level >= number:
            return name
    return "debug"


def parse_level(value: str | None, *, where: str = "level") -> int | None:
    """The minimum level number of a ``level`` filter (None: every level)."""
    if value is None or value == "":
        return None
    number = LEVELS.get(value.lower())
    if number is None:
        raise BadRequest(
            f"unknown log level {value!r}: one of {', '.join(LEVELS)}", details={"field": where, "value": value}
        )
    return number


class LineFilter:
    """Which lines a reader wants: a minimum level, a text to search for, one node."""

    def __init__(self, *, level: str | None = None, q: str | None = None, node: str | None = None) -> None:
        self.level_ge = parse_level(level)
        self.q = (q or "").lower() or None
        self.node = node or None

    def matches(self, line: dict[str, Any]) -> bool:
        if self.level_ge is not None and line["_level"] < self.level_ge:
            return False
        if self.node is not None and line["node_id"] != self.node:
            return False
        return self.q is None or self.q in line["message"].lower() or self.q in (line["node_id"] or "").lower()


class NodeNames:
    """Task run id -> node id for one run, re-read when a log names a task run not yet known.

    One read returns every task run so far, so a burst of new nodes costs one read; an id a
    fresh read does not know either is not asked about again.
    """

    #: How often a task run whose name is not yet a node's label is read again.
    RENAME_CHECK_SECONDS = 1.0

    def __init__(self, client: PrefectClient, run: FlowRun) -> None:
        self._client = client
        self._run_id = run.id
        self._labels = node_ids_by_label((run.parameters or {}).get("graph"))
        self._names: dict[UUID, str] = {}
        self._unknown: set[UUID] = set()
        self._checked: dict[UUID, float] = {}

    def _provisional(self, task_run_id: UUID, name: str) -> bool:
        """Whether ``name`` may still be Prefect's provisional one (``<task>-<hex>``): Prefect
        creates a task run under its task's name and renames it to the node's label when it
        starts, so a read in between saw the old name; it is read again, at most once a second."""
        if is_node_label(name, self._labels):
            return False
        now = time.monotonic()
        if now - self._checked.get(task_run_id, 0.0) < self.RENAME_CHECK_SECONDS:
            return False
        self._checked[task_run_id] = now
        return True

    async def node_of(self, task_run_id: UUID | None) -> str | None:
        if task_run_id is None:
            return None
        name = self._names.get(task_run_id)
        if task_run_id not in self._unknown and (name is None or self._provisional(task_run_id, name)):
            self._names = await prefect_logs.task_run_names(self._client, self._run_id)
            name = self._names.get(task_run_id)
            if name is None:
                self._unknown.add(task_run_id)
        return node_id_of(name, self._labels) if name is not None else None


async def to_line(log: Any, nodes: NodeNames) -> dict[str, Any]:
    """The Gorax line of a Prefect log (``_level`` is the number, dropped before sending)."""
    message = mask(str(log.message or ""))
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f" ... [{len(message) - MAX_MESSAGE_CHARS} characters cut]"
    return {
        "id": str(log.id),
        "ts": log.timestamp.isoformat(),
        "level": level_name(int(log.level)),
        "_level": int(log.level),
        "node_id": await nodes.node_of(log.task_run_id),
        "logger": str(log.name or ""),
        "message": message,
    }


def public(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if not key.startswith("_")}


async def read_lines(
    client: PrefectClient, run: FlowRun, flt: LineFilter, *, cursor: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``limit`` matching lines from Prefect offset ``cursor``, and the next cursor (None at the end)."""
    nodes = NodeNames(client, run)
    lines: list[dict[str, Any]] = []
    offset = cursor
    while True:
        page = await prefect_logs.read_logs(client, run.id, level_ge=flt.level_ge, offset=offset)
        for index, log in enumerate(page):
            line = await to_line(log, nodes)
            if flt.matches(line):
                lines.append(public(line))
                if len(lines) == limit:
                    following = offset + index + 1
                    more = index + 1 < len(page) or len(page) == prefect_logs.PAGE
                    return lines, following if more else None
        if len(page) < prefect_logs.PAGE:
            return lines, None
        offset += len(page)


async def _run_final(client: PrefectClient, run_id: UUID) -> str | None:
    current = await prefect_runs.read_run(client, run_id)
    if current is not None and current.state is not None and current.state.type.value in FINAL_TYPES:
        return status_of(current.state)
    return None


def _long_final(run: FlowRun) -> bool:
    """Whether the run ended longer ago than any of its logs can take to arrive."""
    if run.state is None or run.state.type.value not in FINAL_TYPES:
        return False
    ended = run.end_time or run.state.timestamp
    return ended is not None and (datetime.now(UTC) - ended).total_seconds() > DRAIN_MAX_SECONDS


async def follow_lines(client: PrefectClient, run: FlowRun, flt: LineFilter) -> AsyncIterator[dict[str, Any]]:
    """The run's matching lines: backlog, then live; ``{type: "end", status}`` once final and drained."""
    nodes = NodeNames(client, run)
    seen: set[str] = set()
    offset = 0

    async def stored() -> AsyncIterator[dict[str, Any]]:
        nonlocal offset
        while True:
            page = await prefect_logs.read_logs(client, run.id, level_ge=flt.level_ge, offset=offset)
            offset += len(page)
            for log in page:
                if str(log.id) not in seen:
                    seen.add(str(log.id))
                    yield await to_line(log, nodes)
            if len(page) < prefect_logs.PAGE:
                return

    if _long_final(run):  # nothing more is coming: the store has it all
        async for line in stored():
            if flt.matches(line):
                yield {"type": "line", **public(line)}
        yield {"type": "end", "status": status_of(run.state)}
        return
    async with prefect_logs.follow_logs(run.id, level_ge=flt.level_ge) as subscriber:
        async for line in stored():
            if flt.matches(line):
                yield {"type": "line", **public(line)}
        stream = subscriber.__aiter__()
        final_status: str | None = None
        final_at = 0.0
        next_poll = time.monotonic() + POLL_SECONDS
        while True:
            wait = DRAIN_QUIET_SECONDS if final_status else max(0.05, next_poll - time.monotonic())
            log = None
            try:
                log = await asyncio.wait_for(stream.__anext__(), timeout=wait)
            except TimeoutError:
                if final_status is not None:
                    break  # final, and the stream has been quiet
            except StopAsyncIteration:
                break
            if log is not None and str(log.id) not in seen:
                seen.add(str(log.id))
                line = await to_line(log, nodes)
                if flt.matches(line):
                    yield {"type": "line", **public(line)}
            if final_status is None and time.monotonic() >= next_poll:
                final_status = await _run_final(client, run.id)
                final_at = time.monotonic()
                next_poll = final_at + POLL_SECONDS
            elif final_status is not None and time.monotonic() - final_at > DRAIN_MAX_SECONDS:
                break
    # Anything the stream missed (a reconnect, a full queue on Prefect's side) is in the store.
    offset = 0
    async for line in stored():
        if flt.matches(line):
            yield {"type": "line", **public(line)}
    if final_status is None:
        final_status = await _run_final(client, run.id)
    yield {"type": "end", "status": final_status or "unknown"}
