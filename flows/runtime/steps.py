"""Step records: what each node of a run did, stored as Prefect artifacts.

Every finished node (completed, cached, failed, timed out, skipped, disabled) gets a
:class:`StepRecord` (inputs and outputs masked and size-capped, the task run's id included);
records are stored in batches as artifacts of type ``gorax-step`` on the flow run whose ``data``
is ``{"steps": [...]}``. At the end of a run in which a step failed, timed out, was cancelled or
was retried, a table artifact summarises the steps in the Prefect UI. The API reads a run's steps with :func:`read_steps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Awaitable, Callable
from uuid import UUID

from pydantic import BaseModel, Field

STEP_ARTIFACT_TYPE = "gorax-step"
logger = logging.getLogger("gorax.run")
#: Largest input or output kept in a step record, in bytes of JSON.
MAX_STORED_BYTES = 64 * 1024
#: How long after a run ended a reader waits for its last batch of step records.
SETTLE_SECONDS = 3.0


class StepRecord(BaseModel):
    """One node's execution in a run (one per loop iteration for body nodes)."""

    node_id: str = Field(description="The node's id in the graph.")
    name: str = Field(description="The task run's name: the node's name, with '[i]' for loop iterations.")
    type: str = Field(description="Node type slug.")
    status: str = Field(
        description="completed, cached, failed, timed_out, skipped, disabled or cancelled."
    )
    attempts: int = Field(default=0, description="How many times the node ran (retries included).")
    started_at: datetime | None = Field(default=None, description="Start of the first attempt.")
    ended_at: datetime | None = Field(default=None, description="End of the last attempt.")
    iteration: list[int] = Field(default_factory=list, description="Loop indices, outermost first.")
    handles: list[str] | None = Field(default=None, description="Output handles taken, for routing nodes.")
    input: Any = Field(default=None, description="The rendered config (secrets masked, size-capped).")
    output: Any = Field(default=None, description="The output (secrets masked, size-capped).")
    error: dict[str, Any] | None = Field(
        default=None, description="{node_id, type, message, attempt} when the node failed."
    )
    task_run_id: UUID | None = Field(default=None, description="The Prefect task run.")


def _start_key(record: StepRecord) -> tuple[float, str]:
    return (record.started_at.timestamp() if record.started_at else float("inf"), record.name)


def capped(value: Any, limit: int = MAX_STORED_BYTES) -> Any:
    """``value``, or a truncated preview when its JSON is bigger than ``limit`` bytes."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    if len(text.encode()) <= limit:
        return json.loads(text)
    return {"truncated": True, "size_bytes": len(text.encode()), "preview": text[: limit // 2]}


class StepWriter:
    """Stores step records as artifacts in the background, many records per artifact.

    One artifact per node would be one API call per node, which costs more than running a small
    node. Records are buffered and written as one ``gorax-step`` artifact per batch (``data`` is
    ``{"steps": [...]}``) every ``interval`` seconds, or sooner when ``max_records`` or
    ``max_bytes`` of JSON are waiting. Leaving the context writes what is left as the body's
    final batch (``"final": true`` and ``"closed_at"``, even when empty): a reader of a run that
    just ended knows whether it has seen everything (see :func:`read_steps`).
    """

    def __init__(self, flow_run_id: UUID | None, *, interval: float = 0.5, max_records: int = 200,
                 max_bytes: int = 1024 * 1024) -> None:
        self.flow_run_id = flow_run_id
        self.interval = interval
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._batch: list[tuple[dict[str, Any], int]] = []  # (record as JSON data, its size)
        self._batch_bytes = 0
        self._full = asyncio.Event()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None
        self._client: Any = None

    async def __aenter__(self) -> "StepWriter":
        from prefect.client.orchestration import get_client

        self._client = get_client()
        await self._client.__aenter__()
        self._flusher = asyncio.create_task(self._flush_periodically())
        return self

    def submit(self, record: StepRecord) -> None:
        """Queue ``record`` for storing."""
        text = record.model_dump_json()
        if self._batch and self._batch_bytes + len(text) > self.max_bytes:
            self._full.set()
        self._batch.append((json.loads(text), len(text)))
        self._batch_bytes += len(text)
        if len(self._batch) >= self.max_records or self._batch_bytes >= self.max_bytes:
            self._full.set()

    def _take(self) -> list[dict[str, Any]]:
        """The waiting records, at most ``max_bytes`` of them (at least one)."""
        taken: list[dict[str, Any]] = []
        size = 0
        while self._batch and len(taken) < self.max_records:
            record, record_size = self._batch[0]
            if taken and size + record_size > self.max_bytes:
                break
            taken.append(record)
            del self._batch[0]
            size += record_size
        self._batch_bytes = max(0, self._batch_bytes - size)
        return taken

    async def _flush_periodically(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._full.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            self._full.clear()
            if self._closing:  # what is left goes in the final batch
                break
            await self._flush()

    async def _flush(self, closed_at: datetime | None = None) -> None:
        """Write the waiting records; with ``closed_at``, the last batch is the final one."""
        from prefect.client.schemas.actions import ArtifactCreate

        while self._batch or closed_at is not None:
            records = self._take()
            data: dict[str, Any] = {"steps": records}
            if closed_at is not None and not self._batch:
                data.update(final=True, closed_at=closed_at.isoformat())
                closed_at = None
            try:
                await self._client.create_artifact(
                    ArtifactCreate(
                        type=STEP_ARTIFACT_TYPE,
                        description=f"Gorax steps: {', '.join(r['name'] for r in records[:5])}"
                        + (f" and {len(records) - 5} more" if len(records) > 5 else "")
                        if records else "Gorax steps: end of the run",
                        data=data,
                        flow_run_id=self.flow_run_id,
                    )
                )
            except Exception as exc:  # a lost record must not fail the run; say so in the log
                from blocks.redact import mask

                logger.warning("could not store %d step records: %s", len(records), mask(str(exc)))

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._finish(self._close(), exc_info)

    def _close(self) -> datetime:
        """Take no more records: what is waiting goes in the final batch, closed now."""
        self._closing = True
        self._full.set()
        return datetime.now(timezone.utc)

    async def _finish(self, closed_at: datetime, exc_info: tuple[Any, ...] = (None, None, None)) -> None:
        # Not cancelled: a batch being written when the run ends must still arrive.
        try:
            if self._flusher is not None:
                await asyncio.shield(self._flusher)
            await asyncio.shield(self._flush(closed_at))
        finally:
            await self._client.__aexit__(*exc_info)


_deferred: ContextVar[list[Callable[[], Awaitable[Any]]] | None] = ContextVar(
    "gorax_deferred_step_writes", default=None)


@contextlib.asynccontextmanager
async def deferred_step_writes() -> AsyncIterator[None]:
    """Let the flow runs started inside write their last step batch after their final state.

    The warm worker runs flows inside this: the last batch of a run (one artifact create, which
    waits ~60-160 ms behind the server's digestion of the run's task-run events) is written
    once Prefect has recorded the run's final state, instead of before it. Not alongside it
    either: the Prefect server stamps a run's end when it takes up the final state, and an
    artifact create arriving at the same moment made it wait (SQLite writes one at a time).
    The batch is closed when the body ends; this writes it on the way out and waits for it.
    Readers wait for a final batch of a run that just ended (:func:`read_steps`).
    """
    pending: list[Callable[[], Awaitable[Any]]] = []
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
        if pending:  # shielded: cancelling the run must not cancel the writes of its last steps
            await asyncio.shield(asyncio.gather(*(write() for write in pending), return_exceptions=True))


async def close_writer(writer: StepWriter) -> None:
    """Close ``writer`` now, or, inside :func:`deferred_step_writes`, once the run is over."""
    pending = _deferred.get()
    if pending is None:
        await writer.__aexit__(None, None, None)
        return
    closed_at = writer._close()
    pending.append(lambda: writer._finish(closed_at))


async def write_summary(records: list[StepRecord], *, title: str) -> None:
    """A table artifact on the current flow run: one row per step, in start order."""
    from prefect.artifacts import acreate_table_artifact

    rows = [
        {
            "node": r.name,
            "type": r.type,
            "status": r.status,
            "attempts": r.attempts,
            "seconds": round((r.ended_at - r.started_at).total_seconds(), 3)
            if r.started_at and r.ended_at
            else None,
            "error": (r.error or {}).get("message", "")[:200],
        }
        for r in sorted(records, key=_start_key)
    ]
    await acreate_table_artifact(table=rows, description=title)


async def read_steps(flow_run_id: UUID | str, *, client: Any = None, latest: bool = True,
                     ended_at: datetime | None = None) -> list[StepRecord]:
    """The step records of a flow run, in start order (the API's execution detail).

    When the flow body ran more than once (a flow retry or resume), a node has several records;
    ``latest`` keeps one per node and loop iteration: the last one, except that a ``cached``
    record gives way to the execution it was cached from. ``latest=False`` returns them all.
    ``ended_at``: the run is over (it ended then); until :data:`SETTLE_SECONDS` after that, the
    read waits for the body's final batch (closed at most a second before the run ended), which
    may still be on its way (:func:`deferred_step_writes`).
    """
    while True:
        records, closed = await _read_batches(flow_run_id, client)
        if ended_at is None or datetime.now(timezone.utc) > ended_at + timedelta(seconds=SETTLE_SECONDS):
            break
        if any(at >= ended_at - timedelta(seconds=1) for at in closed):
            break
        await asyncio.sleep(0.1)
    return sorted(_latest(records) if latest else records, key=_start_key)


async def _read_batches(flow_run_id: UUID | str, client: Any) -> tuple[list[StepRecord], list[datetime]]:
    """Every stored record of the run, and when each final batch was closed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )

    flt = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(flow_run_id))]),
        type=ArtifactFilterType(any_=[STEP_ARTIFACT_TYPE]),
    )
    records: list[StepRecord] = []
    closed: list[datetime] = []
    owned = client is None
    client = client or get_client()
    try:
        if owned:
            await client.__aenter__()
        offset, page = 0, 200
        while True:
            batch = await client.read_artifacts(artifact_filter=flt, limit=page, offset=offset)
            for artifact in batch:
                data = artifact.data
                if isinstance(data, dict) and isinstance(data.get("steps"), list):
                    records += [StepRecord.model_validate(r) for r in data["steps"]]
                    if data.get("final") and isinstance(data.get("closed_at"), str):
                        with contextlib.suppress(ValueError):
                            closed.append(datetime.fromisoformat(data["closed_at"]))
                elif isinstance(data, dict):  # one record per artifact (runs of earlier versions)
                    records.append(StepRecord.model_validate(data))
            if len(batch) < page:
                break
            offset += page
    finally:
        if owned:
            await client.__aexit__(None, None, None)
    return records, closed


def _latest(records: list[StepRecord]) -> list[StepRecord]:
    chosen: dict[tuple[str, tuple[int, ...]], StepRecord] = {}
    for record in sorted(records, key=lambda r: r.ended_at.timestamp() if r.ended_at else 0.0):
        key = (record.node_id, tuple(record.iteration))
        previous = chosen.get(key)
        if previous is not None and record.status == "cached" and previous.status == "completed":
            continue
        chosen[key] = record
    return list(chosen.values())
