"""Per-tenant data keys, kept wrapped in Prefect Variables, and the Prefect server's key.

Each tenant has a keyring: a Prefect Variable named ``gorax_keyring__<tenant id>`` (tag
``gorax-keyring``) that holds only *wrapped* data keys, their KEK ids and which one is current.
A worker therefore needs nothing but the Prefect API and the key provider to open a tenant's
secrets. Unwrapped data keys are cached in-process by their wrapped bytes, so a KEK rotation
(which changes the wrapped bytes) is picked up on the next read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from pydantic import BaseModel, Field

from blocks.errors import CredentialInputError, KeyProviderError
from blocks.providers import KeyProvider, WrappedKey, get_provider, provider_for
from blocks.settings import KeySettings

KEYRING_PREFIX = "gorax_keyring__"
KEYRING_TAG = "gorax-keyring"
SERVER_KEY_FILE = "prefect-server-key.json"
_TENANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")

_unwrapped: dict[tuple[str, str, bytes], bytes] = {}
#: A data key id always names the same key material, so opened keys are reused by id for a
#: while without re-reading the keyring (a deleted keyring stops working here within this time).
KEY_CACHE_SECONDS = 300.0
_by_id: dict[tuple[str, str], tuple[bytes, float]] = {}
_slugs: dict[str, str] = {}


class DataKeyEntry(BaseModel):
    """One wrapped data key of a tenant."""

    provider: str
    kek_id: str
    wrapped: str = Field(description="Base64 of the wrapped key.")
    created_at: str

    def wrapped_key(self) -> WrappedKey:
        return WrappedKey.from_json(self.model_dump())


class Keyring(BaseModel):
    """A tenant's wrapped data keys (never plaintext)."""

    tenant_id: str
    tenant_slug: str
    current: str
    keys: dict[str, DataKeyEntry]


def _check_tenant_id(tenant_id: str) -> str:
    tenant_id = str(tenant_id)
    if not _TENANT_ID.match(tenant_id):
        raise CredentialInputError(f"tenant id {tenant_id!r} may hold only letters, digits, '-' and '_'")
    return tenant_id


def keyring_variable_name(tenant_id: str) -> str:
    return f"{KEYRING_PREFIX}{_check_tenant_id(tenant_id).lower()}"


def _wrap_context(tenant_id: str, key_id: str) -> dict[str, str]:
    return {"gorax_purpose": "tenant-data-key", "gorax_tenant": tenant_id, "gorax_data_key": key_id}


async def read_keyring(tenant_id: str) -> Keyring | None:
    """The tenant's keyring, or None when the tenant has sealed nothing yet."""
    async with get_client() as client:
        variable = await client.read_variable_by_name(keyring_variable_name(tenant_id))
    if variable is None:
        return None
    return Keyring.model_validate(variable.value)


async def _write_keyring(keyring: Keyring, *, create: bool) -> bool:
    """Store the keyring; with ``create`` returns False when someone else created it first."""
    name = keyring_variable_name(keyring.tenant_id)
    value = keyring.model_dump(mode="json")
    async with get_client() as client:
        if create:
            try:
                await client.create_variable(VariableCreate(name=name, value=value, tags=[KEYRING_TAG]))
            except ObjectAlreadyExists:
                return False
        else:
            await client.update_variable(VariableUpdate(name=name, value=value))
    return True


def _new_entry(provider: KeyProvider, tenant_id: str, key_id: str) -> tuple[bytes, DataKeyEntry]:
    key, wrapped = provider.generate_data_key(_wrap_context(tenant_id, key_id))
    entry = DataKeyEntry(**wrapped.to_json(), created_at=datetime.now(UTC).isoformat(timespec="seconds"))
    return key, entry


def _new_key_id() -> str:
    return f"dk-{secrets.token_hex(6)}"


async def _unwrap(provider: KeyProvider, tenant_id: str, key_id: str, entry: DataKeyEntry) -> bytes:
    wrapped = entry.wrapped_key()
    cache_key = (tenant_id, key_id, wrapped.blob)
    key = _unwrapped.get(cache_key)
    if key is None:
        source = provider_for(wrapped, provider)
        key = await asyncio.to_thread(source.unwrap, wrapped, _wrap_context(tenant_id, key_id))
        _unwrapped[cache_key] = key
    return key


async def current_data_key(
    *, tenant_id: str, tenant_slug: str, provider: KeyProvider | None = None
) -> tuple[str, bytes]:
    """(key id, key) that seals new values for the tenant; creates the keyring on first use."""
    provider = provider or get_provider()
    tenant_id = _check_tenant_id(tenant_id)
    for _ in range(3):
        keyring = await read_keyring(tenant_id)
        if keyring is not None:
            return keyring.current, await _unwrap(provider, tenant_id, keyring.current, keyring.keys[keyring.current])
        key_id = _new_key_id()
        key, entry = await asyncio.to_thread(_new_entry, provider, tenant_id, key_id)
        keyring = Keyring(tenant_id=tenant_id, tenant_slug=tenant_slug, current=key_id, keys={key_id: entry})
        if await _write_keyring(keyring, create=True):
            _unwrapped[(tenant_id, key_id, entry.wrapped_key().blob)] = key
            return key_id, key
    raise KeyProviderError(f"could not create the keyring of tenant {tenant_id}")


async def data_key(*, tenant_id: str, key_id: str, provider: KeyProvider | None = None) -> bytes:
    """The unwrapped data key ``key_id`` of the tenant (for opening sealed values)."""
    cached = _by_id.get((tenant_id, key_id))
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    provider = provider or get_provider()
    keyring = await read_keyring(tenant_id)
    if keyring is None:
        raise KeyProviderError(f"tenant {tenant_id} has no keyring: nothing was sealed for it")
    entry = keyring.keys.get(key_id)
    if entry is None:
        raise KeyProviderError(
            f"data key {key_id} is not in the keyring of tenant {tenant_id} "
            f"(it holds {', '.join(sorted(keyring.keys))})"
        )
    key = await _unwrap(provider, tenant_id, key_id, entry)
    _by_id[(tenant_id, key_id)] = (key, time.monotonic() + KEY_CACHE_SECONDS)
    return key


def forget_cached_keys() -> None:
    """Drop every data key cached in this process (the next use re-reads and unwraps)."""
    _by_id.clear()
    _unwrapped.clear()


async def tenant_slug_of(tenant_id: str) -> str | None:
    """The slug recorded in the tenant's keyring (None when it has none); cached per process."""
    if tenant_id not in _slugs:
        keyring = await read_keyring(tenant_id)
        if keyring is None:
            return None
        _slugs[tenant_id] = keyring.tenant_slug
    return _slugs[tenant_id]


async def add_data_key(*, tenant_id: str, provider: KeyProvider | None = None) -> tuple[str, bytes]:
    """Make a new current data key for the tenant; older keys stay for opening old values."""
    provider = provider or get_provider()
    keyring = await read_keyring(tenant_id)
    if keyring is None:
        raise KeyProviderError(f"tenant {tenant_id} has no keyring: nothing was sealed for it")
    key_id = _new_key_id()
    key, entry = await asyncio.to_thread(_new_entry, provider, keyring.tenant_id, key_id)
    keyring.keys[key_id] = entry
    keyring.current = key_id
    await _write_keyring(keyring, create=False)
    return key_id, key


async def retire_data_keys(*, tenant_id: str, keep: set[str]) -> list[str]:
    """Drop data keys not in ``keep`` (after every value was re-sealed); returns the dropped ids."""
    keyring = await read_keyring(tenant_id)
    if keyring is None:
        return []
    dropped = [key_id for key_id in keyring.keys if key_id not in keep and key_id != keyring.current]
    for key_id in dropped:
        del keyring.keys[key_id]
    if dropped:
        await _write_keyring(keyring, create=False)
    return dropped


async def list_keyrings() -> list[Keyring]:
    """Every tenant keyring in the Prefect server."""
    keyrings: list[Keyring] = []
    async with get_client() as client:
        offset = 0
        while True:
            response = await client.request(
                "POST",
                "/variables/filter",
                json={"variables": {"tags": {"all_": [KEYRING_TAG]}}, "offset": offset, "limit": 100},
            )
            page = response.json()
            keyrings += [
                Keyring.model_validate(item["value"]) for item in page if item["name"].startswith(KEYRING_PREFIX)
            ]
            if len(page) < 100:
                return keyrings
            offset += 100


def _rewrap(
    provider: KeyProvider, wrapped: WrappedKey, context: dict[str, str], settings: KeySettings | None = None
) -> WrappedKey:
    if wrapped.provider == provider.name:
        return provider.rewrap(wrapped, context)
    # Migrating between providers (local file -> KMS or back): unwrap with the old one.
    return provider.wrap(provider_for(wrapped, provider, settings).unwrap(wrapped, context), context)


async def rewrap_keyring(keyring: Keyring, provider: KeyProvider, settings: KeySettings | None = None) -> int:
    """Re-wrap one tenant's data keys under the provider's current KEK; returns how many changed."""
    changed = 0
    for key_id, entry in keyring.keys.items():
        if entry.provider == provider.name and entry.kek_id == provider.current_kek_id():
            continue
        context = _wrap_context(keyring.tenant_id, key_id)
        wrapped = await asyncio.to_thread(_rewrap, provider, entry.wrapped_key(), context, settings)
        keyring.keys[key_id] = DataKeyEntry(**wrapped.to_json(), created_at=entry.created_at)
        changed += 1
    if changed:
        await _write_keyring(keyring, create=False)
    return changed


async def rewrap_all(
    provider: KeyProvider, settings: KeySettings | None = None
) -> tuple[dict[str, int], dict[str, str]]:
    """Re-wrap every tenant's data keys under the provider's current KEK.

    Returns ({tenant id: keys re-wrapped}, {tenant id: error}); one tenant failing (say, a key
    from a provider this process cannot reach) does not stop the others.
    """
    done: dict[str, int] = {}
    failed: dict[str, str] = {}
    for keyring in await list_keyrings():
        try:
            done[keyring.tenant_id] = await rewrap_keyring(keyring, provider, settings)
        except KeyProviderError as exc:
            failed[keyring.tenant_id] = str(exc)
    return done, failed


async def delete_keyring(tenant_id: str) -> bool:
    """Delete the tenant's keyring: every value sealed for it becomes unreadable (crypto-shredding).

    For deleting a tenant; returns False when it had none.
    """
    for cached in [k for k in _by_id if k[0] == tenant_id]:
        del _by_id[cached]
    _slugs.pop(tenant_id, None)
    async with get_client() as client:
        try:
            await client.delete_variable_by_name(keyring_variable_name(tenant_id))
        except ObjectNotFound:
            return False
    return True


_SERVER_KEY_CONTEXT = {"gorax_purpose": "prefect-server-encryption-key"}


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def prefect_server_encryption_key(path: Path, settings: KeySettings | None = None) -> str:
    """The Fernet key for ``PREFECT_SERVER_ENCRYPTION_KEY``, stable across restarts.

    Kept in ``path`` (the embedded stack's state directory) wrapped by the key provider (never in
    clear): made on the embedded server's first start, re-wrapped by ``gorax keys rotate``.
    """
    provider = get_provider(settings)
    if path.exists():
        try:
            wrapped = WrappedKey.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError) as exc:
            raise KeyProviderError(f"{path} is malformed") from exc
        raw = provider_for(wrapped, provider, settings).unwrap(wrapped, _SERVER_KEY_CONTEXT)
    else:
        raw = secrets.token_bytes(32)
        _write_private(path, provider.wrap(raw, _SERVER_KEY_CONTEXT).to_json())
    return base64.urlsafe_b64encode(raw).decode()


def rewrap_server_key(path: Path, provider: KeyProvider, settings: KeySettings | None = None) -> bool:
    """Re-wrap the stored Prefect server key under the current KEK (False if none stored)."""
    if not path.exists():
        return False
    wrapped = WrappedKey.from_json(json.loads(path.read_text()))
    _write_private(path, _rewrap(provider, wrapped, _SERVER_KEY_CONTEXT, settings).to_json())
    return True
