"""Tenant variables as Prefect Variables: read the tenant's, create, replace, delete.

The naming and the stored form belong to the runtime, which reads them when a run starts
(:func:`flows.variable_name`, :func:`flows.variable_payload`, :func:`flows.variable_entry`).
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.client.schemas.filters import VariableFilter, VariableFilterName
from prefect.client.schemas.objects import Variable
from prefect.exceptions import ObjectNotFound
from pydantic import TypeAdapter

from flows import variable_entry, variable_payload, variable_prefix

_PAGE = 200
_VARIABLES = TypeAdapter(list[Variable])


async def _variables_named_like(client: PrefectClient, pattern: str) -> list[Variable]:
    """Every Prefect Variable whose name contains ``pattern``.

    Prefect's client reads variables only all at once (``read_variables``); its filter endpoint
    takes the typed :class:`VariableFilter`, sent and answered here as the client's own methods
    do.
    """
    found: list[Variable] = []
    flt = VariableFilter(name=VariableFilterName(like_=pattern)).model_dump(mode="json", exclude_unset=True)
    while True:
        response = await client.request(
            "POST", "/variables/filter", json={"variables": flt, "offset": len(found), "limit": _PAGE}
        )
        page = _VARIABLES.validate_python(response.json())
        found += page
        if len(page) < _PAGE:
            return found


async def read_tenant_variables(client: PrefectClient, tenant_id: str) -> dict[str, Any]:
    """Every variable of the tenant: ``{name: value}`` (names in their original case), sorted."""
    found: dict[str, Any] = {}
    for variable in await _variables_named_like(client, variable_prefix(tenant_id)):
        entry = variable_entry(tenant_id, variable.name, variable.value)
        if entry is not None:
            found[entry[0]] = entry[1]
    return dict(sorted(found.items()))


async def read_variable(client: PrefectClient, stored_name: str) -> Any:
    """The stored value of a Prefect Variable (None when it does not exist)."""
    variable = await client.read_variable_by_name(stored_name)
    return None if variable is None else variable.value


async def write_variable(client: PrefectClient, stored_name: str, name: str, value: Any, *, exists: bool) -> None:
    """Store variable ``name`` (``value``) as the Prefect Variable ``stored_name``."""
    payload = variable_payload(name, value)
    if exists:
        await client.update_variable(VariableUpdate(name=stored_name, value=payload))
    else:
        await client.create_variable(VariableCreate(name=stored_name, value=payload))


async def delete_variable(client: PrefectClient, stored_name: str) -> bool:
    """Delete a Prefect Variable; False when it did not exist."""
    try:
        await client.delete_variable_by_name(stored_name)
    except ObjectNotFound:
        return False
    return True
