"""Credential access for nodes: the tenant's credential Blocks, unsealed on the worker by ``blocks.loader``.

The loader registers every secret value it hands out with ``blocks.redact`` (so it is masked in
logs, step records and errors) and counts each resolution for the audit log.
"""

from __future__ import annotations

from typing import Any

from blocks.errors import CredentialError
from blocks.loader import credential_values
from blocks.loader import load_credential as load
from blocks.redact import mask
from flows.errors import CredentialsUnavailable


async def load_credential(name: str, *, tenant_id: str | None, node_id: str) -> Any:
    """The unsealed credential ``name`` of the run's tenant, for node ``node_id``."""
    if not tenant_id:
        raise CredentialsUnavailable(
            f"node '{node_id}' needs credential '{name}', but the run has no tenant "
            f"(run it through its deployment, or pass tenant=...)",
            node_id=node_id,
        )
    try:
        return await load(name, tenant_id=tenant_id)
    except CredentialError as exc:
        raise CredentialsUnavailable(
            f"node '{node_id}' cannot load credential '{name}': {mask(str(exc))}", node_id=node_id
        ) from None


def credential_fields(credential: Any) -> dict[str, Any]:
    """A credential as the ``credentials.<name>.<field>`` scope sees it (secrets revealed)."""
    return credential_values(credential)
