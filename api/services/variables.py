"""Tenant variables: list, create, replace, delete (Prefect Variables, see :mod:`api.prefect.variables`)."""

from __future__ import annotations

from typing import Any

from api.errors import BadRequest, Conflict, NotFound
from api.limits import check_json_size
from api.prefect import PrefectClient
from api.prefect import variables as prefect_variables
from flows import variable_name


def _name_of(tenant_id: str, name: str) -> str:
    try:
        return variable_name(tenant_id, name)
    except ValueError as exc:
        raise BadRequest(str(exc), details={"field": "name"}) from exc


def _stored_name(stored: Any) -> Any:
    """The name (in its case) a stored variable holds (None when it holds none)."""
    return stored.get("name") if isinstance(stored, dict) else None


async def list_variables(client: PrefectClient, *, tenant_id: str) -> dict[str, Any]:
    """The tenant's variables by name."""
    return await prefect_variables.read_tenant_variables(client, tenant_id)


async def set_variable(client: PrefectClient, *, tenant_id: str, name: str, value: Any, create: bool) -> None:
    """Create (Conflict if it exists, in any letter case) or replace (NotFound if missing);
    a value past ``max_variable_bytes`` is refused before it reaches Prefect."""
    check_json_size(value, limit="max_variable_bytes", field="value")
    stored = _name_of(tenant_id, name)
    existing = await prefect_variables.read_variable(client, stored)
    if create and existing is not None:
        raise Conflict(f"variable {_stored_name(existing) or name!r} already exists", details={"field": "name"})
    if not create and (existing is None or _stored_name(existing) != name):
        raise NotFound(f"variable {name!r} not found", details={"name": name})
    await prefect_variables.write_variable(client, stored, name, value, exists=existing is not None)


async def delete_variable(client: PrefectClient, *, tenant_id: str, name: str) -> None:
    """Delete a variable (NotFound if it does not exist)."""
    stored = _name_of(tenant_id, name)
    existing = await prefect_variables.read_variable(client, stored)
    if existing is None or _stored_name(existing) != name:
        raise NotFound(f"variable {name!r} not found", details={"name": name})
    if not await prefect_variables.delete_variable(client, stored):
        raise NotFound(f"variable {name!r} not found", details={"name": name})
