"""Key rotation: re-wrap data keys under a new KEK, or re-seal a tenant under a new data key.

Both keep old keys able to open what they sealed until the new state is written, so runs in
flight keep working.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import BlockDocument

from blocks import keys
from blocks.catalog import block_class
from blocks.errors import CredentialNotFound
from blocks.providers import get_provider
from blocks.sealing import open_block, seal_block
from blocks.service import list_credentials
from blocks.settings import KeySettings


async def rotate_kek(
    settings: KeySettings, *, server_key_file: Path | None = None, new_kek_id: str | None = None
) -> dict[str, Any]:
    """Make a new KEK current and re-wrap every tenant's data keys and the Prefect server key.

    Local provider: a new key is added to the key file (old ones stay to open stale wraps).
    Env provider: the first key of ``GORAX_KEY_ENCRYPTION_KEY`` is current; whatever another one
    wrapped is re-wrapped under it. AWS KMS: ``new_kek_id`` switches to another KMS key; without
    it, keys are re-encrypted under the same KMS key (picking up KMS's own backing-key rotation).
    ``server_key_file`` is the embedded Prefect server's wrapped key, if there is one.
    """
    provider = get_provider(settings)
    previous = provider.current_kek_id()
    current = await asyncio.to_thread(provider.rotate_kek, new_kek_id)
    tenants, failed = await keys.rewrap_all(provider, settings)
    server_key = server_key_file is not None and await asyncio.to_thread(
        keys.rewrap_server_key, server_key_file, provider, settings
    )
    return {
        "provider": provider.name,
        "previous_kek": previous,
        "kek": current,
        "tenants": tenants,
        "failed": failed,
        "prefect_server_key_rewrapped": server_key,
    }


async def _find_keyring(tenant: str) -> keys.Keyring:
    for keyring in await keys.list_keyrings():
        if tenant in (keyring.tenant_id, keyring.tenant_slug):
            return keyring
    raise CredentialNotFound(f"tenant {tenant!r} has no keyring: it has no sealed credentials")


async def rotate_data_key(tenant: str, *, drop_old: bool = False) -> dict[str, Any]:
    """Give the tenant (id or slug) a new data key and re-seal all its credential values with it.

    With ``drop_old``, the previous data keys are removed from the keyring afterwards (a run
    that read a credential just before the re-seal may then fail to open it: use when idle).
    """
    keyring = await _find_keyring(tenant)
    tenant_id, tenant_slug = keyring.tenant_id, keyring.tenant_slug
    key_id, _ = await keys.add_data_key(tenant_id=tenant_id)
    resealed = []
    for info in await list_credentials(tenant_id=tenant_id, tenant_slug=tenant_slug):
        async with get_client() as client:
            document = await client.read_block_document(UUID(info.id), include_secrets=True)
        cls = block_class(info.type)
        stored = cls._from_block_document(BlockDocument.model_validate(document.model_dump()))
        opened, _ = await open_block(stored, info.type, tenant_id=tenant_id, name=info.name)
        sealed = await seal_block(opened, info.type, tenant_id=tenant_id, tenant_slug=tenant_slug, name=info.name)
        await sealed.asave(document.name, overwrite=True)
        resealed.append(info.name)
    dropped = await keys.retire_data_keys(tenant_id=tenant_id, keep={key_id}) if drop_old else []
    return {
        "tenant_id": tenant_id,
        "tenant_slug": tenant_slug,
        "data_key": key_id,
        "resealed": resealed,
        "dropped_keys": dropped,
    }
