"""Deployments: the Prefect deployment of ``run_graph`` for one workflow.

:func:`deploy_workflow` creates or updates, idempotently, a deployment of the flow
``run-graph`` whose parameters carry the graph itself, tagged ``tenant:<id>`` and
``workflow:<id>`` (what tenant isolation keys on), in the work pool and the tenant's work queue,
with one schedule per schedule trigger. It names the installed module entrypoint
(:data:`flows.ENTRYPOINT`) and carries no path and no pull step: a worker on any machine with
Gorax installed runs it, and the run needs nothing from the machine that deployed it.

The deployment's name is for people (``<tenant slug>--<workflow name>-<8 characters of the
workflow id>``, see :func:`readable_name`). It is chosen at the first publish and kept by
later ones (:func:`deployment_name_of`): renaming a workflow leaves its deployment, its run
history and its automations where they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from httpx import HTTPStatusError
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.exceptions import ObjectNotFound
from prefect.utilities.callables import parameter_schema

from flows import (
    DEFAULT_TENANT,
    ENTRYPOINT,
    FLOW_NAME,
    TEST_TAG,
    deployment_name,
    drafts_deployment_name,
    slug,
    tenant_tag,
    tenant_test_tag,
    work_queue_name,
    workflow_tag,
)
from flows.run_graph import run_graph
from translator import compile_graph
from translator.nodetypes import ScheduleSpec, TriggerType
from translator.plan import Plan

#: Longest workflow-name part of a deployment name (the UI shows the whole name in lists).
_NAME_PART = 60


class WorkPoolMissing(LookupError):
    """The work pool a deployment goes to does not exist in Prefect (``gorax setup`` makes it)."""


def prefect_schedule(spec: ScheduleSpec) -> CronSchedule | IntervalSchedule:
    """The Prefect schedule of a :class:`~translator.nodetypes.ScheduleSpec`."""
    if spec.cron:
        return CronSchedule(cron=spec.cron, timezone=spec.timezone)
    return IntervalSchedule(interval=timedelta(seconds=spec.interval_seconds or 60), timezone=spec.timezone)


def schedules_of(plan: Plan) -> list[DeploymentScheduleCreate]:
    """Deployment schedules of the plan's enabled triggers (slug ``trigger-<node>``)."""
    schedules = []
    for node in plan.nodes.values():
        node_type = node.node_type
        if node.disabled or not issubclass(node_type, TriggerType):
            continue
        config = node_type.Config.model_validate(dict(node.config))
        for index, spec in enumerate(node_type.schedules(config)):
            suffix = f"-{index}" if index else ""
            schedules.append(
                DeploymentScheduleCreate(
                    schedule=prefect_schedule(spec),
                    active=spec.active,
                    slug=f"trigger-{node.id}{suffix}",
                    parameters={"trigger_node": node.id},
                )
            )
    return schedules


def readable_name(tenant_slug: str, workflow_name: str, workflow_id: str) -> str:
    """A deployment name people can read: ``acme--invoice-approval-3f2a1c9b``.

    The short piece of the workflow id makes it unique without asking Prefect first: Prefect
    creates deployments by name, so two same-named workflows must never share one.
    """
    try:
        name = slug(workflow_name)[:_NAME_PART].rstrip("-_")
    except ValueError:  # a name of no letters or digits
        name = "workflow"
    return f"{deployment_name(tenant_slug, name)}-{slug(workflow_id)[:8]}"


async def deployment_name_of(client: PrefectClient, deployment_id: str | UUID | None) -> str | None:
    """The name of an existing deployment (None when there is none)."""
    if not deployment_id:
        return None
    try:
        return (await client.read_deployment(UUID(str(deployment_id)))).name
    except ObjectNotFound:
        return None


@dataclass(frozen=True)
class DeployedWorkflow:
    """What :func:`deploy_workflow` created or updated."""

    deployment_id: UUID
    name: str  # the deployment's name
    full_name: str  # run-graph/<name>, for run_deployment
    work_pool: str
    work_queue: str
    schedules: int


async def deploy_workflow(
    client: PrefectClient,
    graph: dict[str, Any],
    *,
    work_pool: str,
    plan: Plan | None = None,
    tenant: str | None = None,
    workflow_id: str | None = None,
    name: str | None = None,
    description: str | None = None,
    version: int | None = None,
    env: dict[str, Any] | None = None,
    paused: bool = False,
    allowed_networks: list[str] | None = None,
) -> DeployedWorkflow:
    """Create or update the deployment of ``graph`` (validated first; raises GraphValidationError).

    ``plan`` is the graph already compiled (publishing compiles once for deploy and triggers);
    ``name`` the deployment's name (default ``<tenant>--<workflow>``); ``description`` what the
    Prefect UI shows (None: no description). ``env`` bakes tenant variables into the
    deployment's parameters (a run may override them); ``allowed_networks`` is the tenant's
    http.request allow-list (CIDRs). Raises :class:`WorkPoolMissing` when ``work_pool`` does not
    exist: deploying never creates one.
    """
    plan = plan if plan is not None else compile_graph(graph)
    workflow = workflow_id or plan.name
    tenant = tenant or DEFAULT_TENANT
    name = name or deployment_name(tenant, workflow)
    queue = work_queue_name(tenant)
    schedules = schedules_of(plan)
    parameters: dict[str, Any] = {
        "graph": graph,
        "tenant": tenant,
        "workflow_id": workflow,
        "workflow_version": version,
    }
    if env:
        parameters["env"] = env
    if allowed_networks:
        parameters["allowed_networks"] = list(allowed_networks)
    flow_id = await client.create_flow_from_name(FLOW_NAME)
    try:
        deployment_id = await client.create_deployment(
            flow_id=flow_id,
            name=name,
            version=str(version) if version is not None else None,
            # Prefect stores a missing description as the text "None": send an empty one.
            description=description or "",
            parameters=parameters,
            tags=[tenant_tag(tenant), workflow_tag(workflow), "gorax"],
            work_pool_name=work_pool,
            work_queue_name=queue,
            entrypoint=ENTRYPOINT,
            # An update replaces what earlier versions stored (a checkout path, a pull step).
            path=None,
            pull_steps=[],
            parameter_openapi_schema=parameter_schema(run_graph).model_dump(),
            enforce_parameter_schema=False,
            paused=paused,
            schedules=schedules,
        )
    except HTTPStatusError as exc:
        if exc.response.status_code == 404:
            raise WorkPoolMissing(
                f"work pool {work_pool!r} does not exist in Prefect: run `gorax setup` (the API "
                f"also sets it up when it starts)"
            ) from exc
        raise
    await _replace_schedules(client, deployment_id, schedules)
    return DeployedWorkflow(
        deployment_id=deployment_id,
        name=name,
        full_name=f"{FLOW_NAME}/{name}",
        work_pool=work_pool,
        work_queue=queue,
        schedules=len(schedules),
    )


async def deploy_drafts(client: PrefectClient, *, tenant: str, work_pool: str) -> UUID:
    """Create or update the tenant's drafts deployment (``<tenant>--drafts``) of run_graph: what
    test runs of drafts start from, each with its own graph in its parameters. Its runs carry
    the test tags (``gorax:test``, ``test-tenant:<id>``), never the production ones, and it has
    no schedules or automations. Raises :class:`WorkPoolMissing` like :func:`deploy_workflow`."""
    flow_id = await client.create_flow_from_name(FLOW_NAME)
    for attempt in (1, 2):
        try:
            return await _create_drafts(client, flow_id, tenant=tenant, work_pool=work_pool)
        except HTTPStatusError as exc:
            if exc.response.status_code == 404:
                raise WorkPoolMissing(f"work pool {work_pool!r} does not exist in Prefect: run `gorax setup`") from exc
            if exc.response.status_code != 409 or attempt == 2:
                raise
            # Another request created it at the same moment: the second upsert updates it.
    raise AssertionError("unreachable")


async def _create_drafts(client: PrefectClient, flow_id: UUID, *, tenant: str, work_pool: str) -> UUID:
    return await client.create_deployment(
        flow_id=flow_id,
        name=drafts_deployment_name(tenant),
        description="Test runs of the tenant's drafts (Gorax editor, API and `gorax test`).",
        parameters={"tenant": tenant},
        tags=[TEST_TAG, tenant_test_tag(tenant)],
        work_pool_name=work_pool,
        work_queue_name=work_queue_name(tenant),
        entrypoint=ENTRYPOINT,
        path=None,
        pull_steps=[],
        parameter_openapi_schema=parameter_schema(run_graph).model_dump(),
        enforce_parameter_schema=False,
    )


async def _replace_schedules(client: PrefectClient, deployment_id: UUID, wanted: list[Any]) -> None:
    """Make the deployment's schedules exactly ``wanted`` (an update may leave old ones behind)."""
    existing = await client.read_deployment_schedules(deployment_id)
    wanted_slugs = {s.slug for s in wanted}
    for schedule in existing:
        if schedule.slug not in wanted_slugs:
            await client.delete_deployment_schedule(deployment_id, schedule.id)


async def set_paused(client: PrefectClient, deployment_id: str, *, paused: bool) -> None:
    """Pause (its schedules stop) or resume a deployment."""
    if paused:
        await client.pause_deployment(UUID(deployment_id))
    else:
        await client.resume_deployment(UUID(deployment_id))


async def delete_deployment(client: PrefectClient, deployment_id: str) -> None:
    """Delete a deployment (one already gone is fine)."""
    try:
        await client.delete_deployment(UUID(deployment_id))
    except ObjectNotFound:
        pass
