"""Small Prefect administration helpers shared by the launcher and the API."""

from __future__ import annotations


async def ensure_work_pool(name: str, worker_type: str) -> None:
    """Create the work pool ``name`` if it does not exist (an existing pool is left as it is)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return
        except ObjectNotFound:
            pass
        try:
            await client.create_work_pool(
                WorkPoolCreate(name=name, type=worker_type, description="Gorax workflow runs")
            )
        except ObjectAlreadyExists:
            pass
