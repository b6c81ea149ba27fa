"""Step records: what each node of a run did, stored as Prefect artifacts.

Every finished node (completed, failed, timed out, skipped, disabled, cancelled) gets a
:class:`StepRecord` (inputs and outputs masked and size-capped, the task run's id and each
attempt included); records are stored in batches as artifacts of type ``gorax-step`` on the
flow run whose ``data`` is ``{"steps": [...]}``. A flow body stores every record it made before
it returns, so once a run's final state is visible its records are all there. At the end of a
run in which a step failed, timed out, was cancelled or was retried, a table artifact
summarises the steps in the Prefect UI. The API reads a run's steps with :func:`read_steps`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.artifacts import acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType
from pydantic import BaseModel, Field

from blocks.redact import mask

STEP_ARTIFACT_TYPE = "gorax-step"
logger = logging.getLogger("gorax.run")
#: Largest input or output kept in a step record, in bytes of JSON.
MAX_STORED_BYTES = 64 * 1024


class StepAttempt(BaseModel):
    """One try of a node: its first run, or a retry."""

    attempt: int = Field(description="1 for the first try, 2 for the first retry, and so on.")
    status: str = Field(
        description="completed, failed, timed_out, cancelled, or suspended (the node asked for "
        "input and the run waited for it)."
    )
    error: str | None = Field(default=None, description="Why the try failed (secrets masked).")
    started_at: datetime | None = Field(default=None, description="When the try started.")
    duration_ms: int | None = Field(default=None, description="How long the try took.")


class StepRecord(BaseModel):
    """One node's execution in a run (one per loop iteration for body nodes)."""

    node_id: str = Field(description="The node's id in the graph.")
    name: str = Field(description="The task run's name: the node's name, with '[i]' for loop iterations.")
    type: str = Field(description="Node type slug.")
    status: str = Field(
        description="completed, failed, timed_out, skipped, disabled, cancelled, or pinned (a test run "
        "took a pin or mock instead of running the node); cached when "
        "a run that started again took the node's stored result and its first record was lost."
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
    attempt_history: list[StepAttempt] = Field(
        default_factory=list, description="Every attempt, in order, with its error and time."
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
    ``max_bytes`` of JSON are waiting. :meth:`flush` stores what is waiting now; leaving the
    context stores what is left before it returns, so the flow body that owns the writer
    returns only once its records are readable.
    """

    def __init__(
        self, flow_run_id: UUID | None, *, interval: float = 0.5, max_records: int = 200, max_bytes: int = 1024 * 1024
    ) -> None:
        self.flow_run_id = flow_run_id
        self.interval = interval
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._batch: list[tuple[dict[str, Any], int]] = []  # (record as JSON data, its size)
        self._batch_bytes = 0
        self._full = asyncio.Event()
        self._writing = asyncio.Lock()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None
        self._client: Any = None

    async def __aenter__(self) -> StepWriter:
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
            except TimeoutError:
                pass
            self._full.clear()
            if self._closing:  # the rest is written by the close, in order
                break
            await self.flush()

    async def flush(self) -> None:
        """Store every record submitted so far (a batch already on its way included)."""
        # One writer at a time: a caller that must see its records stored waits for a batch
        # the periodic flush took before it.
        async with self._writing:
            while self._batch:
                records = self._take()
                more = f" and {len(records) - 5} more" if len(records) > 5 else ""
                try:
                    await self._client.create_artifact(
                        ArtifactCreate(
                            type=STEP_ARTIFACT_TYPE,
                            description=f"Gorax steps: {', '.join(r['name'] for r in records[:5])}{more}",
                            data={"steps": records},
                            flow_run_id=self.flow_run_id,
                        )
                    )
                except Exception as exc:  # a lost record must not fail the run; say so in the log
                    logger.warning("could not store %d step records: %s", len(records), mask(str(exc)))

    async def __aexit__(self, *exc_info: Any) -> None:
        self._closing = True
        self._full.set()
        # Not cancelled: a batch being written when the run ends must still arrive.
        try:
            if self._flusher is not None:
                await asyncio.shield(self._flusher)
            await asyncio.shield(self.flush())
        finally:
            await self._client.__aexit__(*exc_info)


async def write_summary(records: list[StepRecord], *, title: str) -> None:
    """A table artifact on the current flow run: one row per step, in start order."""
    rows = [
        {
            "node": r.name,
            "type": r.type,
            "status": r.status,
            "attempts": r.attempts,
            "seconds": round((r.ended_at - r.started_at).total_seconds(), 3) if r.started_at and r.ended_at else None,
            "error": (r.error or {}).get("message", "")[:200],
        }
        for r in sorted(records, key=_start_key)
    ]
    await acreate_table_artifact(table=rows, description=title)


async def read_steps(flow_run_id: UUID | str, *, client: Any = None, latest: bool = True) -> list[StepRecord]:
    """The step records of a flow run, in start order (the API's execution detail).

    A flow body that runs again (a flow retry or a resume) records only the nodes it runs
    again, so a node has one record; one that really ran twice (a failed node a flow retry ran
    again) has two, and ``latest`` keeps the last per node and loop iteration (a ``cached``
    record gives way to the execution it was cached from). ``latest=False`` returns them all.
    """
    records = await _read_records(flow_run_id, client)
    return sorted(_latest(records) if latest else records, key=_start_key)


async def _read_records(flow_run_id: UUID | str, client: Any) -> list[StepRecord]:
    """Every stored record of the run."""
    flt = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(flow_run_id))]),
        type=ArtifactFilterType(any_=[STEP_ARTIFACT_TYPE]),
    )
    records: list[StepRecord] = []
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
                elif isinstance(data, dict):  # one record per artifact (runs of earlier versions)
                    records.append(StepRecord.model_validate(data))
            if len(batch) < page:
                break
            offset += page
    finally:
        if owned:
            await client.__aexit__(None, None, None)
    return records


def _latest(records: list[StepRecord]) -> list[StepRecord]:
    chosen: dict[tuple[str, tuple[int, ...]], StepRecord] = {}
    for record in sorted(records, key=lambda r: r.ended_at.timestamp() if r.ended_at else 0.0):
        key = (record.node_id, tuple(record.iteration))
        previous = chosen.get(key)
        if previous is not None and record.status == "cached" and previous.status == "completed":
            continue
        chosen[key] = record
    return list(chosen.values())
