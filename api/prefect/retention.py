"""What retention does in Prefect: find a tenant's old finished runs, delete them with what they
left behind, and strip the inputs and outputs out of their step records.

Deleting a flow run through Prefect's API deletes its task runs and states and queues the
deletion of its logs (Prefect's own background job); artifacts are not tied to the run in
Prefect's database, so a run's artifacts (its step records, summaries) are deleted first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import ArtifactUpdate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound

from api.prefect.runs import FINAL_TYPES, PAGE, run_filter
from flows import STEP_ARTIFACT_TYPE

#: The key a step artifact's data gets once its inputs and outputs are removed.
PRUNED_KEY = "data_pruned_at"


async def oldest_final_runs(
    client: PrefectClient,
    *,
    tags: list[str],
    before: datetime | None = None,
    since: datetime | None = None,
    limit: int,
) -> list[FlowRun]:
    """Finished runs carrying every tag, expected to start in ``[since, before)``, oldest first."""
    flt = run_filter(tags=tags, state_types=sorted(FINAL_TYPES), since=since, until=before)
    return await client.read_flow_runs(
        flow_run_filter=flt, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=min(limit, PAGE)
    )


async def count_final_runs(client: PrefectClient, *, tags: list[str]) -> int:
    """How many finished runs carry every tag."""
    return await client.count_flow_runs(flow_run_filter=run_filter(tags=tags, state_types=sorted(FINAL_TYPES)))


async def _artifacts(client: PrefectClient, run_ids: list[UUID], *, step_only: bool) -> list[Any]:
    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=run_ids))
    if step_only:
        flt.type = ArtifactFilterType(any_=[STEP_ARTIFACT_TYPE])
    found: list[Any] = []
    offset = 0
    while True:
        page = await client.read_artifacts(artifact_filter=flt, limit=PAGE, offset=offset)
        found += page
        if len(page) < PAGE:
            return found
        offset += PAGE


async def delete_runs(client: PrefectClient, run_ids: list[UUID]) -> int:
    """Delete the runs (their artifacts first; Prefect removes task runs and logs); how many went."""
    if not run_ids:
        return 0
    for artifact in await _artifacts(client, run_ids, step_only=False):
        try:
            await client.delete_artifact(artifact.id)
        except ObjectNotFound:
            pass
    deleted = 0
    for run_id in run_ids:
        try:
            await client.delete_flow_run(run_id)
            deleted += 1
        except ObjectNotFound:
            pass  # another replica or a person deleted it first
    return deleted


async def strip_step_data(client: PrefectClient, run_ids: list[UUID], *, at: datetime) -> int:
    """Remove the inputs and outputs of the runs' step records (status, times, errors stay);
    returns how many step records changed. Records already stripped are left alone."""
    changed = 0
    for artifact in await _artifacts(client, run_ids, step_only=True):
        data = artifact.data
        if not isinstance(data, dict) or PRUNED_KEY in data:
            continue
        listed = data.get("steps")
        steps: list[Any] = listed if isinstance(listed, list) else [data]
        stripped = [{**step, "input": None, "output": None} for step in steps if isinstance(step, dict)]
        new_data: dict[str, Any] = {"steps": stripped, PRUNED_KEY: at.isoformat()}
        await client.update_artifact(artifact.id, ArtifactUpdate(data=new_data))
        changed += len(stripped)
    return changed
