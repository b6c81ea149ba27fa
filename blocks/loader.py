"""Worker-side loading of credentials: unsealed Block instances, masked and counted.

::

    block = await load_credential("team_slack", tenant_id=tid, tenant_slug="acme")
    client = block.get_client()          # SlackCredentials, unsealed
    session = (await load_credential("aws", tenant_id=tid)).get_boto3_session()

Every resolved secret (and its base64 / URL-encoded forms) is registered with
``blocks.redact``. Every load is counted and announced to listeners (the runtime forwards them
to the audit log): ``add_resolution_listener(callback)``, ``resolution_counts()``.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import BlockDocument
from pydantic import SecretStr

from blocks import keys
from blocks.catalog import block_class, is_credential_type
from blocks.errors import CredentialNotFound
from blocks.redact import register_secret
from blocks.sealing import block_document_name, open_block

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CredentialResolution:
    """One credential handed to a node (no values)."""

    tenant_id: str
    tenant_slug: str
    name: str
    type: str
    fields: tuple[str, ...]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


Listener = Callable[[CredentialResolution], "Awaitable[None] | None"]
_listeners: list[Listener] = []
_counts: Counter[tuple[str, str]] = Counter()


def add_resolution_listener(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` (sync or async) on every resolution; returns a function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def resolution_counts() -> dict[tuple[str, str], int]:
    """Resolutions so far in this process, by (tenant id, credential name)."""
    return dict(_counts)


async def _announce(event: CredentialResolution) -> None:
    _counts[(event.tenant_id, event.name)] += 1
    for listener in list(_listeners):
        try:
            result = listener(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # an audit hook failing must not break the run; it is logged
            logger.exception("credential resolution listener %r failed", listener)


def _register_derived(block: Block) -> None:
    # Forms the secret takes on the wire that are not the bare value (a Basic auth header).
    for method in ("headers", "query_params"):
        produce = getattr(block, method, None)
        if callable(produce):
            for value in produce().values():
                register_secret(value.split(" ", 1)[-1])


async def load_credential(name: str, *, tenant_id: str, tenant_slug: str | None = None) -> Block:
    """The tenant's credential ``name`` as an unsealed, usable Block instance.

    ``tenant_slug`` is looked up from the tenant's keyring when not given.
    """
    tenant_id = str(tenant_id)
    if tenant_slug is None:
        tenant_slug = await keys.tenant_slug_of(tenant_id)
        if tenant_slug is None:
            raise CredentialNotFound(f"credential {name!r} not found: tenant {tenant_id} has no credentials")

    document_name = block_document_name(tenant_slug, name)
    async with get_client() as client:
        response = await client.request(
            "POST",
            "/block_documents/filter",
            json={"block_documents": {"name": {"any_": [document_name]}}, "include_secrets": True, "limit": 1},
        )
    page = response.json()
    slug = (page[0].get("block_type") or {}).get("slug") if page else None
    if not page or not is_credential_type(slug):
        raise CredentialNotFound(f"credential {name!r} not found in tenant {tenant_slug!r}")
    stored = block_class(slug)._from_block_document(BlockDocument.model_validate(page[0]))
    block, plaintexts = await open_block(stored, slug, tenant_id=tenant_id, name=name)
    # Prefect's model_dump() adds a ``block_type_slug`` key; make it an attribute as well so
    # code that walks model_dump() keys with getattr() works on every credential type.
    block = block.model_copy(update={"block_type_slug": slug})
    for value in plaintexts.values():
        register_secret(value)
    _register_derived(block)
    await _announce(CredentialResolution(tenant_id, tenant_slug, name, slug, tuple(sorted(plaintexts))))
    return block


def credential_values(block: Block) -> dict[str, Any]:
    """A loaded block's fields as plain data (secrets revealed) for ``credentials.<name>.<field>``."""
    values = block.model_dump(mode="python")
    for key, value in values.items():
        if isinstance(value, SecretStr):
            values[key] = value.get_secret_value()
    return values
