"""Deploying a workflow: the Prefect deployment of ``run_graph`` for (tenant, workflow, version).

:func:`deploy_workflow` creates or updates, idempotently, a deployment named
``<tenant>--<workflow>`` of the flow ``run-graph``, the graph in its parameters, tagged
``tenant:<id>`` and ``workflow:<id>``, in work pool ``gorax`` and the tenant's work queue, with
one schedule per ``trigger.schedule`` node (cron with its timezone, or an interval). No Python is
generated: the deployment points at ``flows/run_graph.py:run_graph``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

FLOW_NAME = "run-graph"
ENTRYPOINT = "flows/run_graph.py:run_graph"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TENANT = "default"
_SLUG = re.compile(r"[^a-z0-9_-]+")


def slug(value: str) -> str:
    """A name part safe in deployment, queue and tag names."""
    cleaned = _SLUG.sub("-", value.strip().lower()).strip("-")
    if not cleaned:
        raise ValueError(f"{value!r} has no letters or digits to name a deployment with")
    return cleaned


def deployment_name(tenant: str | None, workflow: str) -> str:
    """``<tenant>--<workflow>``."""
    return f"{slug(tenant or DEFAULT_TENANT)}--{slug(workflow)}"


def work_queue_name(tenant: str | None) -> str:
    """The tenant's work queue in the ``gorax`` pool."""
    return f"tenant-{slug(tenant or DEFAULT_TENANT)}"


def schedules_of(graph: dict[str, Any]) -> list[Any]:
    """Deployment schedules for the graph's enabled ``trigger.schedule`` nodes."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    schedules = []
    for node in graph.get("nodes", []):
        if node.get("type") != "trigger.schedule" or node.get("disabled"):
            continue
        config = node.get("config") or {}
        timezone = config.get("timezone") or "UTC"
        if config.get("cron"):
            schedule: Any = CronSchedule(cron=config["cron"], timezone=timezone)
        else:
            schedule = IntervalSchedule(interval=timedelta(seconds=config["interval_seconds"]), timezone=timezone)
        schedules.append(
            DeploymentScheduleCreate(
                schedule=schedule, active=True, slug=f"trigger-{node['id']}",
                parameters={"trigger_node": node["id"]},
            )
        )
    return schedules


@dataclass(frozen=True)
class DeployedWorkflow:
    """What :func:`deploy_workflow` created or updated."""

    deployment_id: UUID
    name: str  # the deployment's name, <tenant>--<workflow>
    full_name: str  # run-graph/<tenant>--<workflow>, for run_deployment
    work_pool: str
    work_queue: str
    schedules: int


async def deploy_workflow(
    graph: dict[str, Any],
    *,
    tenant: str | None = None,
    workflow_id: str | None = None,
    version: int | None = None,
    env: dict[str, Any] | None = None,
    work_pool: str | None = None,
    paused: bool = False,
    allowed_networks: list[str] | None = None,
) -> DeployedWorkflow:
    """Create or update the deployment of ``graph`` (validated first; raises GraphValidationError).

    ``env`` bakes tenant variables into the deployment's parameters (a run may override them);
    ``allowed_networks`` is the tenant's http.request allow-list (CIDRs).
    """
    from prefect.client.orchestration import get_client
    from prefect.utilities.callables import parameter_schema

    from flows.run_graph import run_graph
    from flows.settings import get_settings
    from translator import compile_graph

    plan = compile_graph(graph)
    workflow = workflow_id or plan.name
    tenant = tenant or DEFAULT_TENANT
    name = deployment_name(tenant, workflow)
    pool = work_pool or get_settings().work_pool
    queue = work_queue_name(tenant)
    schedules = schedules_of(graph)
    parameters: dict[str, Any] = {
        "graph": graph, "tenant": tenant, "workflow_id": workflow, "workflow_version": version,
    }
    if env:
        parameters["env"] = env
    if allowed_networks:
        parameters["allowed_networks"] = list(allowed_networks)
    async with get_client() as client:
        await _ensure_pool(client, pool)
        flow_id = await client.create_flow_from_name(FLOW_NAME)
        deployment_id = await client.create_deployment(
            flow_id=flow_id,
            name=name,
            version=str(version) if version is not None else None,
            description=plan.description or None,
            parameters=parameters,
            tags=[f"tenant:{tenant}", f"workflow:{workflow}", "gorax"],
            work_pool_name=pool,
            work_queue_name=queue,
            entrypoint=ENTRYPOINT,
            path=str(PROJECT_ROOT),
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}],
            parameter_openapi_schema=parameter_schema(run_graph).model_dump(),
            enforce_parameter_schema=False,
            paused=paused,
            schedules=schedules,
        )
        await _replace_schedules(client, deployment_id, schedules)
    return DeployedWorkflow(
        deployment_id=deployment_id, name=name, full_name=f"{FLOW_NAME}/{name}",
        work_pool=pool, work_queue=queue, schedules=len(schedules),
    )


async def _ensure_pool(client: Any, pool: str) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        await client.read_work_pool(pool)
    except ObjectNotFound:
        try:
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process", description="Gorax workflow runs"))
        except ObjectAlreadyExists:
            pass


async def _replace_schedules(client: Any, deployment_id: UUID, wanted: list[Any]) -> None:
    """Make the deployment's schedules exactly ``wanted`` (an update may leave old ones behind)."""
    existing = await client.read_deployment_schedules(deployment_id)
    wanted_slugs = {s.slug for s in wanted}
    for schedule in existing:
        if schedule.slug not in wanted_slugs:
            await client.delete_deployment_schedule(deployment_id, schedule.id)
