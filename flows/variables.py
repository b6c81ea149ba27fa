"""Tenant variables (``env.*`` in expressions), stored as Prefect Variables.

A variable ``API_URL`` of tenant ``<id>`` is the Prefect Variable ``<id>--env--api_url`` (Prefect
names are lowercase) whose value is ``{"name": "API_URL", "value": <any JSON>}``, so the name
keeps its case. The API writes them; a run reads its tenant's variables with :func:`tenant_env`
when it starts, never from the process environment.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.client.orchestration import get_client

#: Names usable as ``env.<NAME>`` in CEL.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
_NAME = re.compile(NAME_PATTERN)
_MARKER = "--env--"


def variable_prefix(tenant_id: str) -> str:
    """The Prefect Variable name prefix of a tenant's variables."""
    return f"{str(tenant_id).lower()}{_MARKER}"


def variable_name(tenant_id: str, name: str) -> str:
    """The Prefect Variable that holds ``tenant_id``'s variable ``name``."""
    if not _NAME.match(name):
        raise ValueError(f"variable name {name!r}: use letters, digits and '_', not starting with a digit")
    return variable_prefix(tenant_id) + name.lower()


def variable_payload(name: str, value: Any) -> dict[str, Any]:
    """What the Prefect Variable of variable ``name`` holds (the name keeps its case)."""
    return {"name": name, "value": value}


def variable_entry(tenant_id: str, stored_name: str, stored_value: Any) -> tuple[str, Any] | None:
    """``(name, value)`` of a stored Prefect Variable of the tenant (None: not one of its variables)."""
    # A name filter on Prefect is a substring match: keep only exact-prefix, well-formed entries.
    if not stored_name.startswith(variable_prefix(tenant_id)):
        return None
    if not isinstance(stored_value, dict) or "name" not in stored_value:
        return None
    return str(stored_value["name"]), stored_value.get("value")


async def read_tenant_variables(tenant_id: str, *, client: Any = None) -> dict[str, Any]:
    """Every variable of the tenant: ``{name: value}`` (names in their original case)."""
    prefix = variable_prefix(tenant_id)
    found: dict[str, Any] = {}
    owned = client is None
    client = client or get_client()
    try:
        if owned:
            await client.__aenter__()
        offset = 0
        while True:
            response = await client.request(
                "POST",
                "/variables/filter",
                json={"variables": {"name": {"like_": prefix}}, "offset": offset, "limit": 200},
            )
            page = response.json()
            for item in page:
                entry = variable_entry(tenant_id, item["name"], item.get("value"))
                if entry is not None:
                    found[entry[0]] = entry[1]
            if len(page) < 200:
                break
            offset += 200
    finally:
        if owned:
            await client.__aexit__(None, None, None)
    return dict(sorted(found.items()))


async def tenant_env(tenant_id: str | None) -> dict[str, Any]:
    """The ``env`` scope of a run of ``tenant_id`` (empty without a tenant)."""
    if not tenant_id:
        return {}
    return await read_tenant_variables(tenant_id)
