"""Tenant variables: list, create, replace, delete (Prefect Variables, see :mod:`flows.variables`)."""

from __future__ import annotations

from typing import Any

from api.errors import BadRequest, Conflict, NotFound
from api.limits import check_json_size
from flows.variables import read_tenant_variables, variable_name


def _name_of(tenant_id: str, name: str) -> str:
    try:
        return variable_name(tenant_id, name)
    except ValueError as exc:
        raise BadRequest(str(exc), details={"field": "name"}) from exc


async def list_variables(*, tenant_id: str) -> dict[str, Any]:
    """The tenant's variables by name."""
    return await read_tenant_variables(tenant_id)


async def set_variable(*, tenant_id: str, name: str, value: Any, create: bool) -> None:
    """Create (Conflict if it exists, in any letter case) or replace (NotFound if missing);
    a value past ``max_variable_bytes`` is refused before it reaches Prefect."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate

    check_json_size(value, limit="max_variable_bytes", field="value")
    stored = _name_of(tenant_id, name)
    async with get_client() as client:
        existing = await client.read_variable_by_name(stored)
        if create and existing is not None:
            other = (existing.value or {}).get("name") if isinstance(existing.value, dict) else None
            raise Conflict(f"variable {other or name!r} already exists",
                           details={"field": "name"})
        if not create and (existing is None or (existing.value or {}).get("name") != name):
            raise NotFound(f"variable {name!r} not found", details={"name": name})
        payload = {"name": name, "value": value}
        if existing is None:
            await client.create_variable(VariableCreate(name=stored, value=payload))
        else:
            await client.update_variable(VariableUpdate(name=stored, value=payload))


async def delete_variable(*, tenant_id: str, name: str) -> None:
    """Delete a variable (NotFound if it does not exist)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    stored = _name_of(tenant_id, name)
    async with get_client() as client:
        existing = await client.read_variable_by_name(stored)
        if existing is None or (existing.value or {}).get("name") != name:
            raise NotFound(f"variable {name!r} not found", details={"name": name})
        try:
            await client.delete_variable_by_name(stored)
        except ObjectNotFound as exc:
            raise NotFound(f"variable {name!r} not found", details={"name": name}) from exc
