"""The work pool Gorax's deployments run in: created once, with what its runs need to reach the API.

A pool whose worker starts a process per run (``process``, and Docker or Kubernetes pools made
by hand) gets ``GORAX_API_URL`` and ``GORAX_WORKER_TOKEN`` as defaults of its base job
template's ``env``, the token as a reference to a Prefect Secret block (resolved by the worker
when it prepares a run, never stored in the template itself), so a worker on any machine needs
nothing but Prefect. The warm ``gorax`` worker runs flows in its own process: it reads both from
its own environment.

Prefect's ``prefect worker start`` also creates a missing pool (``create_pool_if_not_found``),
with the worker type's default template: enough to run, but without that ``env``. So the pool is
made here (and completed if a worker made it first); deploying never makes one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from prefect.blocks.system import Secret
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.objects import WorkPool
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.base import BaseWorker

from flows import slug

#: The worker type that runs flows inside its own process (no per-run environment).
WARM_WORKER_TYPE = "gorax"
_DESCRIPTION = "Gorax workflow runs"


@dataclass
class PoolReport:
    """What :func:`ensure_pool` found and did."""

    name: str
    type: str
    created: bool = False
    updated: bool = False
    notes: list[str] = field(default_factory=list)


def worker_token_block(pool: str) -> str:
    """The Prefect Secret block that holds the worker token the pool's runs use."""
    return f"gorax-worker-token-{slug(pool)}"


def available_type(wanted: str) -> str:
    """``wanted`` when a worker of that type is installed here, else ``process`` (Prefect's own)."""
    return wanted if BaseWorker.get_worker_class_from_type(wanted) is not None else "process"


def _default_template(worker_type: str) -> dict[str, Any]:
    worker = BaseWorker.get_worker_class_from_type(worker_type)
    return copy.deepcopy(worker.get_default_base_job_template()) if worker is not None else {}


def _with_env(template: dict[str, Any], env: dict[str, str]) -> dict[str, Any] | None:
    """``template`` with ``env`` merged into its env variable's default (None: nothing changes,
    or the template has no env variable). Entries an operator added are kept."""
    variable = ((template.get("variables") or {}).get("properties") or {}).get("env")
    if not isinstance(variable, dict):
        return None
    default = variable.get("default")
    current: dict[str, Any] = default if isinstance(default, dict) else {}
    merged = {**current, **env}
    if merged == current:
        return None
    changed = copy.deepcopy(template)
    changed["variables"]["properties"]["env"]["default"] = merged
    return changed


async def _save_worker_token(client: PrefectClient, pool: str, token: str) -> str:
    """Keep the worker token in the pool's Secret block (rewritten only when it changed)."""
    name = worker_token_block(pool)
    try:
        document = await client.read_block_document_by_name(name, block_type_slug="secret")
        if (document.data or {}).get("value") == token:
            return name
    except ObjectNotFound:
        pass
    await Secret(value=token).asave(name, overwrite=True, client=client)
    return name


async def _read_or_create(client: PrefectClient, name: str, worker_type: str, report: PoolReport) -> WorkPool:
    try:
        return await client.read_work_pool(name)
    except ObjectNotFound:
        pass
    try:
        await client.create_work_pool(
            WorkPoolCreate(
                name=name, type=worker_type, description=_DESCRIPTION, base_job_template=_default_template(worker_type)
            )
        )
        report.created = True
    except ObjectAlreadyExists:  # a worker or another API made it a moment ago
        pass
    return await client.read_work_pool(name)


async def ensure_pool(
    client: PrefectClient, name: str, worker_type: str, *, api_url: str, worker_token: str | None
) -> PoolReport:
    """Make work pool ``name`` exist (of ``worker_type`` when it is new) with the ``env`` its runs
    need; idempotent. An existing pool keeps its type (Prefect cannot change it)."""
    report = PoolReport(name=name, type=worker_type)
    pool = await _read_or_create(client, name, worker_type, report)
    report.type = pool.type
    if pool.type != worker_type:
        report.notes.append(f"the pool exists with type {pool.type!r} (wanted {worker_type!r}); it is kept")
    if pool.type == WARM_WORKER_TYPE:
        report.notes.append("the gorax worker reads GORAX_API_URL and GORAX_WORKER_TOKEN from its own environment")
        return report
    env = {"GORAX_API_URL": api_url}
    if worker_token is None:
        report.notes.append(
            "GORAX_WORKER_TOKEN is not set here: runs of this pool cannot record "
            "human tasks until it is (set it and run gorax setup again)"
        )
    else:
        block = await _save_worker_token(client, name, worker_token)
        env["GORAX_WORKER_TOKEN"] = f"{{{{ prefect.blocks.secret.{block} }}}}"
    changed = _with_env(pool.base_job_template or _default_template(pool.type), env)
    if changed is not None:
        await client.update_work_pool(name, WorkPoolUpdate(base_job_template=changed))
        report.updated = True
    elif not (pool.base_job_template or {}).get("variables"):
        report.notes.append(
            "its job template has no env variable: set GORAX_API_URL and GORAX_WORKER_TOKEN in the workers' environment"
        )
    return report
