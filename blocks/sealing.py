"""Seal a credential's secret fields before they reach Prefect, and open them on the worker."""

from __future__ import annotations

import re
from typing import Any

from prefect.blocks.core import Block
from pydantic import SecretStr, ValidationError

from blocks import envelope, keys
from blocks.catalog import block_class, secret_fields
from blocks.errors import CredentialInputError, SealedValueError
from blocks.providers import KeyProvider

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SEPARATOR = "--"


def check_name(name: str) -> str:
    """A credential name is usable as ``credentials.<name>`` in a template."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise CredentialInputError(
            f"credential name {name!r} is invalid: use 1-63 lowercase letters, digits and "
            "underscores, starting with a letter (it is written credentials.<name> in templates)",
            details=[{"field": "name", "message": "invalid credential name"}],
        )
    return name


def block_document_name(tenant_slug: str, name: str) -> str:
    """``<tenant-slug>--<name>`` with underscores as dashes (Prefect allows only dashes)."""
    if not SLUG_PATTERN.match(tenant_slug or ""):
        raise CredentialInputError(
            f"tenant slug {tenant_slug!r} is invalid for credentials: lowercase letters and digits "
            "in dash-separated words, no double dash"
        )
    return f"{tenant_slug}{SEPARATOR}{check_name(name).replace('_', '-')}"


def credential_name(tenant_slug: str, document_name: str) -> str | None:
    """The credential name of a block document of this tenant, or None if it belongs to another."""
    prefix = f"{tenant_slug}{SEPARATOR}"
    if not document_name.startswith(prefix):
        return None
    return document_name[len(prefix) :].replace("-", "_")


def _validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    # Never echo the input: it may be a secret.
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "values", "message": error["msg"]}
        for error in exc.errors(include_input=False, include_url=False)
    ]


def validate_values(type_slug: str, values: dict[str, Any]) -> Block:
    """Build the (plaintext) block from user values; raises CredentialInputError per field."""
    cls = block_class(type_slug)
    if not isinstance(values, dict):
        raise CredentialInputError("values must be an object of field names to values")
    unknown = sorted(set(values) - set(cls.model_fields))
    if unknown:
        raise CredentialInputError(
            f"credential type {type_slug!r} has no field(s) {', '.join(unknown)}; "
            f"fields: {', '.join(cls.model_fields)}",
            details=[{"field": f"values.{name}", "message": "unknown field"} for name in unknown],
        )
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        details = _validation_details(exc)
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise CredentialInputError(f"invalid values for {type_slug}: {summary}", details=details) from None


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


async def seal_block(
    block: Block,
    type_slug: str,
    *,
    tenant_id: str,
    tenant_slug: str,
    name: str,
    keep_sealed: bool = False,
    provider: KeyProvider | None = None,
) -> Block:
    """A copy of ``block`` whose secret fields hold sealed values under the tenant's current key.

    With ``keep_sealed``, values that are already sealed stay as they are (an update that did
    not touch them).
    """
    key_id, key = await keys.current_data_key(tenant_id=tenant_id, tenant_slug=tenant_slug, provider=provider)

    def sealed(value: Any, where: envelope.SealContext) -> Any:
        plain = _plain(value)
        if plain is None or (keep_sealed and envelope.is_sealed(plain)):
            return value
        text = envelope.seal(plain, key=key, key_id=key_id, where=where)
        return SecretStr(text) if isinstance(value, SecretStr) else text

    update: dict[str, Any] = {}
    for field in secret_fields(type_slug):
        where = envelope.SealContext(str(tenant_id), name, field)
        value = getattr(block, field, None)
        # A list of secrets (a webhook's rotation list): each item sealed on its own.
        if isinstance(value, list):
            update[field] = [sealed(item, where) for item in value]
        else:
            update[field] = sealed(value, where)
    return block.model_copy(update=update)


async def open_block(
    block: Block, type_slug: str, *, tenant_id: str, name: str, provider: KeyProvider | None = None
) -> tuple[Block, dict[str, str]]:
    """An unsealed copy of a stored block and the plaintext of each secret field."""
    update: dict[str, Any] = {}
    plaintexts: dict[str, str] = {}

    async def opened(value: Any, where: envelope.SealContext, label: str) -> Any:
        text = _plain(value)
        if text is None:
            return value
        if not envelope.is_sealed(text):
            raise SealedValueError(
                f"{where.describe()} is stored unsealed (saved outside Gorax?): save it again "
                "through the Gorax credentials API"
            )
        sealed = envelope.parse(text, where)
        key = await keys.data_key(tenant_id=str(tenant_id), key_id=sealed.key_id, provider=provider)
        plain = plaintexts[label] = envelope.open_sealed(sealed, key=key, where=where)
        return SecretStr(plain) if isinstance(value, SecretStr) else plain

    for field in secret_fields(type_slug):
        where = envelope.SealContext(str(tenant_id), name, field)
        value = getattr(block, field, None)
        if isinstance(value, list):
            update[field] = [await opened(item, where, f"{field}[{index}]") for index, item in enumerate(value)]
        elif value is not None:
            update[field] = await opened(value, where, field)
    return block.model_copy(update=update), plaintexts
