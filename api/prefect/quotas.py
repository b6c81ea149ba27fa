"""The tenant quotas Prefect holds: run slots and the monthly run quota of runs it starts.

Run slots are Prefect global concurrency limits (the concurrent-runs quota).

Each tenant has the limit ``gorax-tenant-<id>-runs`` (:func:`flows.naming.tenant_runs_limit`);
every top-level run of ``run_graph`` holds one slot of it while it executes, so Prefect itself
keeps the tenant's runs past the limit waiting. An unlimited tenant's limit exists but is
inactive, so runs never wait; a run reads it first and takes no slot of an inactive one
(:func:`flows.quota.run_slot`).

The monthly run quota is mirrored into the Prefect Variable
:func:`flows.naming.tenant_quota_variable` for runs Prefect starts by itself (schedules,
automations), which :mod:`flows.quota` checks when they start.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    VariableCreate,
    VariableUpdate,
)
from prefect.exceptions import ObjectNotFound

from flows.naming import tenant_quota_variable, tenant_runs_limit


@dataclass(frozen=True)
class RunSlots:
    """A tenant's limit as Prefect holds it: its size, whether it applies, the slots taken."""

    name: str
    limit: int
    active: bool
    active_slots: int


async def read_run_slots(client: PrefectClient, tenant_id: str) -> RunSlots | None:
    """The tenant's limit in Prefect (None before it was ever set)."""
    name = tenant_runs_limit(tenant_id)
    try:
        found = await client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None
    return RunSlots(name, found.limit, bool(found.active), found.active_slots)


async def set_run_slots(client: PrefectClient, tenant_id: str, limit: int) -> RunSlots:
    """Create or update the tenant's limit: ``limit`` slots, inactive when 0 (unlimited)."""
    name = tenant_runs_limit(tenant_id)
    active = limit > 0
    current = await read_run_slots(client, tenant_id)
    if current is None:
        try:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=limit, active=active)
            )
            return RunSlots(name, limit, active, 0)
        except Exception:  # created meanwhile by another replica: update it below
            current = await read_run_slots(client, tenant_id)
            if current is None:
                raise
    if current.limit != limit or current.active != active:
        await client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=active))
    return RunSlots(name, limit, active, current.active_slots)


async def set_month_quota(client: PrefectClient, tenant_id: str, limits: dict[str, int | float]) -> None:
    """Mirror the tenant's monthly limits (runs, agent tokens, cost and tool calls) for the
    worker; the Variable is removed when all are unlimited."""
    name = tenant_quota_variable(tenant_id)
    value = {key: limit for key, limit in limits.items() if limit > 0}
    current = await client.read_variable_by_name(name)
    if not value:
        if current is not None:
            await client.delete_variable_by_name(name)
    elif current is None:
        await client.create_variable(VariableCreate(name=name, value=value))
    elif current.value != value:
        await client.update_variable(VariableUpdate(name=name, value=value))
