"""What a Gorax install needs in Prefect, set up explicitly and idempotently.

:func:`setup_prefect` makes the work pool (with the environment its runs need, see
:mod:`api.prefect.pools`), registers Gorax's credential block types (so Prefect's UI shows
them), and removes what earlier versions left that would now fail. ``gorax setup`` runs it and
says what it did; the API runs it when it starts (:func:`keep_setting_up`), so an install that
only starts the API is set up too. Nothing else creates any of it: not publishing, not
``gorax up``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectNotFound

from api.prefect.dead_runs import DEAD_RUN_AUTOMATION, ensure_dead_run_automation
from api.prefect.pools import PoolReport, available_type, ensure_pool
from blocks.catalog import register_gorax_block_types

log = logging.getLogger("gorax.prefect.setup")

#: Deployments of earlier versions that now fail when they run (their flow called an API
#: endpoint that no longer exists).
RETIRED_DEPLOYMENTS = ("gorax-maintenance/every-minute",)


@dataclass
class SetupReport:
    """What :func:`setup_prefect` found and did."""

    pool: PoolReport
    block_types: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    dead_runs: str = "not set up"

    def lines(self) -> list[str]:
        """The report for a person."""
        pool = self.pool
        done = "created" if pool.created else "updated" if pool.updated else "already set up"
        lines = [f"work pool {pool.name!r} (type {pool.type}): {done}"]
        lines += [f"  {note}" for note in pool.notes]
        lines.append(f"credential block types registered: {', '.join(self.block_types) or 'none'}")
        lines += [f"removed the deployment {name!r} of an earlier version" for name in self.retired]
        lines.append(f"automation {DEAD_RUN_AUTOMATION!r} (runs without a heartbeat end Crashed): {self.dead_runs}")
        return lines


async def retire_deployments(client: PrefectClient) -> list[str]:
    """Delete the deployments of :data:`RETIRED_DEPLOYMENTS` that exist; their names."""
    retired = []
    for name in RETIRED_DEPLOYMENTS:
        try:
            deployment = await client.read_deployment_by_name(name)
        except ObjectNotFound:
            continue
        await client.delete_deployment(deployment.id)
        retired.append(name)
    return retired


async def setup_prefect(
    client: PrefectClient,
    *,
    work_pool: str,
    worker_type: str,
    api_url: str,
    worker_token: str | None,
    dead_after_seconds: float = 600.0,
) -> SetupReport:
    """Set up Prefect for Gorax (idempotent); ``worker_type`` falls back to ``process`` when the
    gorax worker is not installed here; ``dead_after_seconds`` is GORAX_WORKER_DEAD_AFTER_SECONDS."""
    pool = await ensure_pool(client, work_pool, available_type(worker_type), api_url=api_url, worker_token=worker_token)
    block_types = await register_gorax_block_types()
    return SetupReport(
        pool=pool,
        block_types=block_types,
        retired=await retire_deployments(client),
        dead_runs=await ensure_dead_run_automation(client, dead_after_seconds),
    )


async def keep_setting_up(client: PrefectClient, *, retry_seconds: float = 5.0, **options: Any) -> None:
    """:func:`setup_prefect` once, retried while Prefect cannot be reached (an API's start)."""
    while True:
        try:
            report = await setup_prefect(client, **options)
        except Exception as exc:  # Prefect not up yet: nothing can run before it is anyway
            log.info("setting up Prefect failed (%s: %s); retrying", type(exc).__name__, str(exc)[:200])
            await asyncio.sleep(retry_seconds)
            continue
        log.info("Prefect set up", extra={"report": report.lines()})
        return
