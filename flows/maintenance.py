"""Gorax maintenance: a flow deployed on a Prefect schedule (every minute).

It asks the API to escalate, auto-decide, expire, cancel and resume human tasks that are due
(the API owns the human tasks; the flow is the clock). ``deploy_maintenance`` creates or updates
its deployment idempotently; ``gorax up`` calls it once the API answers.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect import flow, get_run_logger

FLOW_NAME = "gorax-maintenance"
DEPLOYMENT_NAME = "every-minute"
ENTRYPOINT = "flows/maintenance.py:gorax_maintenance"


@flow(name=FLOW_NAME, log_prints=False)
async def gorax_maintenance() -> dict[str, Any]:
    """Run the human-task sweep through the API; returns what it did."""
    from flows.internal_api import worker_token
    from flows.settings import get_settings

    url = f"{get_settings().effective_api_url}/api/v1/internal/maintenance/human-tasks"
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(url, headers={"Authorization": f"Bearer {worker_token()}"})
    response.raise_for_status()
    counts = response.json()
    get_run_logger().info("human tasks: %s", counts)
    return counts


async def deploy_maintenance(work_pool: str | None = None, cron: str = "* * * * *") -> Any:
    """Create or update the maintenance deployment with its schedule; its id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule

    from flows.deploy import PROJECT_ROOT
    from flows.settings import get_settings

    pool = work_pool or get_settings().work_pool
    schedule = DeploymentScheduleCreate(schedule=CronSchedule(cron=cron, timezone="UTC"), active=True,
                                        slug="every-minute")
    async with get_client() as client:
        flow_id = await client.create_flow_from_name(FLOW_NAME)
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name=DEPLOYMENT_NAME, work_pool_name=pool, entrypoint=ENTRYPOINT,
            path=str(PROJECT_ROOT), tags=["gorax", "gorax:maintenance"],
            description="Escalates, auto-decides and expires human tasks.",
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}],
            schedules=[schedule],
        )
    return deployment_id
