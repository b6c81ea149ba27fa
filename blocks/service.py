"""Credential service for the API: create, replace, delete and list a tenant's credentials.

Every function takes ``tenant_id`` and ``tenant_slug`` keyword-only. Secret fields are sealed
here, before anything reaches Prefect; nothing returned carries a value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectAlreadyExists
from prefect.utilities.dispatch import lookup_type
from pydantic import BaseModel

from blocks.catalog import block_class, is_credential_type, register_block_types
from blocks.errors import CredentialInputError, CredentialNotFound
from blocks.sealing import (
    SEPARATOR,
    block_document_name,
    check_name,
    credential_name,
    seal_block,
    validate_values,
)


class CredentialInfo(BaseModel):
    """What the API shows of a credential: never a value."""

    id: str
    name: str
    type: str
    created_at: datetime | None
    updated_at: datetime | None
    fields: list[str]
    connection: dict[str, Any] | None = None


def _registered_class(slug: str) -> type[Block] | None:
    """The Block class of ``slug`` if this process has it already (never loads a collection)."""
    try:
        return lookup_type(Block, slug)
    except KeyError:
        return None


def _info(document: dict[str, Any], tenant_slug: str) -> CredentialInfo | None:
    name = credential_name(tenant_slug, document["name"])
    slug = (document.get("block_type") or {}).get("slug")
    if name is None or not is_credential_type(slug):
        return None
    data = document.get("data") or {}
    # A type with a connection state (OAuth) says what it is; never a value of a secret field.
    public_status = getattr(_registered_class(slug), "public_status", None)
    return CredentialInfo(
        id=str(document["id"]),
        name=name,
        type=slug,
        created_at=document.get("created"),
        updated_at=document.get("updated"),
        fields=sorted(k for k, v in data.items() if v is not None),
        connection=public_status(data) if callable(public_status) else None,
    )


async def _filter_documents(body: dict[str, Any]) -> list[dict[str, Any]]:
    async with get_client() as client:
        response = await client.request("POST", "/block_documents/filter", json=body)
    return response.json()


async def list_credentials(*, tenant_id: str, tenant_slug: str) -> list[CredentialInfo]:
    """The tenant's credentials (names, types, field names), by name."""
    block_document_name(tenant_slug, "x")  # validates the slug
    prefix = f"{tenant_slug}{SEPARATOR}"
    found: list[CredentialInfo] = []
    offset = 0
    while True:
        page = await _filter_documents(
            {
                # Prefect's name filter is a substring match: exact prefix checked in _info.
                "block_documents": {"name": {"like_": prefix}, "is_anonymous": {"eq_": False}},
                "include_secrets": False,
                "offset": offset,
                "limit": 200,
            }
        )
        found += [info for doc in page if (info := _info(doc, tenant_slug)) is not None]
        if len(page) < 200:
            return found
        offset += 200


async def _find_document(ref: str | UUID, *, tenant_slug: str, include_secrets: bool) -> dict[str, Any]:
    """A tenant's block document by id or credential name; CredentialNotFound otherwise."""
    try:
        condition = {"id": {"any_": [str(UUID(str(ref)))]}}
    except ValueError:
        condition = {"name": {"any_": [block_document_name(tenant_slug, str(ref))]}}
    page = await _filter_documents({"block_documents": condition, "include_secrets": include_secrets, "limit": 1})
    if page and _info(page[0], tenant_slug) is not None:
        return page[0]
    raise CredentialNotFound(f"credential {str(ref)!r} not found in tenant {tenant_slug!r}")


async def get_credential(ref: str | UUID, *, tenant_id: str, tenant_slug: str) -> CredentialInfo:
    """One credential by id or name."""
    document = await _find_document(ref, tenant_slug=tenant_slug, include_secrets=False)
    info = _info(document, tenant_slug)
    assert info is not None
    return info


def _refuse_sealed_looking(values: dict[str, Any]) -> None:
    """A value the caller sent that looks sealed would be stored unchecked (and a stored value
    is told from one sent by that look): refuse it, in a list too."""
    for field, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.startswith("gorax:"):
                raise CredentialInputError(
                    f"field {field!r}: values starting with 'gorax:' are reserved for sealed data",
                    details=[{"field": f"values.{field}", "message": "reserved prefix"}],
                )


async def create_credential(
    name: str, type_slug: str, values: dict[str, Any], *, tenant_id: str, tenant_slug: str
) -> CredentialInfo:
    """Validate, seal and store a new credential; CredentialInputError if the name is taken."""
    check_name(name)
    document_name = block_document_name(tenant_slug, name)
    if isinstance(values, dict):
        _refuse_sealed_looking(values)
    block = validate_values(type_slug, values)
    await register_block_types([type_slug])
    sealed = await seal_block(block, type_slug, tenant_id=tenant_id, tenant_slug=tenant_slug, name=name)
    try:
        await sealed.asave(document_name, overwrite=False)
    except (ObjectAlreadyExists, ValueError) as exc:
        if "already" not in str(exc).lower() and not isinstance(exc, ObjectAlreadyExists):
            raise
        raise CredentialInputError(
            f"credential {name!r} already exists in tenant {tenant_slug!r}",
            details=[{"field": "name", "message": "already exists"}],
        ) from None
    return await get_credential(name, tenant_id=tenant_id, tenant_slug=tenant_slug)


async def update_credential(
    ref: str | UUID, values: dict[str, Any], *, tenant_id: str, tenant_slug: str
) -> CredentialInfo:
    """Replace values of a credential. Fields left out keep their stored value (the editor
    never sees secrets, so it cannot send them back); ``null`` clears an optional field."""
    _refuse_sealed_looking(values)
    document = await _find_document(ref, tenant_slug=tenant_slug, include_secrets=True)
    info = _info(document, tenant_slug)
    assert info is not None
    merged = {**{k: v for k, v in document["data"].items() if k in block_class(info.type).model_fields}, **values}
    block = validate_values(info.type, merged)
    sealed = await seal_block(
        block, info.type, tenant_id=tenant_id, tenant_slug=tenant_slug, name=info.name, keep_sealed=True
    )
    await sealed.asave(document["name"], overwrite=True)
    return await get_credential(info.id, tenant_id=tenant_id, tenant_slug=tenant_slug)


async def delete_credential(ref: str | UUID, *, tenant_id: str, tenant_slug: str) -> CredentialInfo:
    """Delete a credential by id or name; what it was."""
    document = await _find_document(ref, tenant_slug=tenant_slug, include_secrets=False)
    info = _info(document, tenant_slug)
    assert info is not None
    async with get_client() as client:
        await client.delete_block_document(UUID(str(document["id"])))
    return info
