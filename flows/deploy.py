"""Deploying a workflow: the Prefect deployment of ``run_graph`` for (tenant, workflow, version).

:func:`deploy_workflow` creates or updates, idempotently, a deployment named
``<tenant>--<workflow>`` of the flow ``run-graph``, the graph in its parameters, tagged
``tenant:<id>`` and ``workflow:<id>``, in work pool ``gorax`` and the tenant's work queue, with
one schedule per ``trigger.schedule`` node (cron with its timezone, or an interval). No Python is
generated: the deployment points at ``flows/run_graph.py:run_graph``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.utilities.callables import parameter_schema

from flows.naming import DEFAULT_TENANT, FLOW_NAME, deployment_name, work_queue_name
from flows.run_graph import run_graph
from flows.settings import get_settings
from translator import compile_graph
from translator.nodetypes import ScheduleSpec, TriggerType
from translator.plan import Plan

ENTRYPOINT = "flows/run_graph.py:run_graph"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
                    schedule=prefect_schedule(spec), active=spec.active, slug=f"trigger-{node.id}{suffix}",
                    parameters={"trigger_node": node.id},
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
    plan: Plan | None = None,
    tenant: str | None = None,
    workflow_id: str | None = None,
    version: int | None = None,
    env: dict[str, Any] | None = None,
    work_pool: str | None = None,
    paused: bool = False,
    allowed_networks: list[str] | None = None,
) -> DeployedWorkflow:
    """Create or update the deployment of ``graph`` (validated first; raises GraphValidationError).

    ``plan`` is the graph already compiled (publishing compiles once for deploy and triggers).

    ``env`` bakes tenant variables into the deployment's parameters (a run may override them);
    ``allowed_networks`` is the tenant's http.request allow-list (CIDRs).
    """
    plan = plan if plan is not None else compile_graph(graph)
    workflow = workflow_id or plan.name
    tenant = tenant or DEFAULT_TENANT
    name = deployment_name(tenant, workflow)
    pool = work_pool or get_settings().work_pool
    queue = work_queue_name(tenant)
    schedules = schedules_of(plan)
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
