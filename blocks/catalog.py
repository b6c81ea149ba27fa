"""The credential types Gorax offers, their secret fields, and their registration with Prefect.

prefect-aws and prefect-slack are imported only when their types are used (boto3 is heavy).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import typing
from functools import lru_cache
from typing import Any

from prefect.blocks.core import Block
from pydantic import BaseModel, Field, SecretStr

from blocks.errors import CredentialInputError
from blocks.types import GORAX_BLOCK_TYPES

_EXTERNAL_TYPES = {
    "aws-credentials": "prefect_aws.credentials:AwsCredentials",
    "slack-credentials": "prefect_slack.credentials:SlackCredentials",
}
#: Secret fields of external types that are not ``SecretStr`` there.
_EXTRA_SECRET_FIELDS = {"aws-credentials": ("aws_session_token",)}


class CredentialTypeInfo(BaseModel):
    """A credential type as the API lists it."""

    slug: str
    name: str
    description: str
    secret_fields: list[str] = Field(description="Fields that are sealed and never returned.")
    fields_schema: dict[str, Any] = Field(
        description="JSON schema of the values; secret properties carry ``\"secret\": true``."
    )


def type_slugs() -> list[str]:
    """Every credential type slug, Gorax's own first."""
    return [cls.get_block_type_slug() for cls in GORAX_BLOCK_TYPES] + list(_EXTERNAL_TYPES)


@lru_cache(maxsize=None)
def block_class(slug: str) -> type[Block]:
    """The Block class of credential type ``slug``."""
    for cls in GORAX_BLOCK_TYPES:
        if cls.get_block_type_slug() == slug:
            return cls
    target = _EXTERNAL_TYPES.get(slug)
    if target is None:
        raise CredentialInputError(
            f"unknown credential type {slug!r}; known types: {', '.join(type_slugs())}"
        )
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _is_secret_annotation(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret_annotation(arg) for arg in typing.get_args(annotation))


@lru_cache(maxsize=None)
def secret_fields(slug: str) -> tuple[str, ...]:
    """Top-level fields of ``slug`` that are sealed."""
    cls = block_class(slug)
    names = [name for name, field in cls.model_fields.items() if _is_secret_annotation(field.annotation)]
    names += list(_EXTRA_SECRET_FIELDS.get(slug, ())) + list(getattr(cls, "secret_extra_fields", ()))
    return tuple(dict.fromkeys(names))


def describe(slug: str) -> CredentialTypeInfo:
    """The catalogue entry of one type."""
    cls = block_class(slug)
    schema = cls.model_json_schema()
    secrets = secret_fields(slug)
    for name, prop in schema.get("properties", {}).items():
        if name in secrets:
            prop["secret"] = True
    for key in ("block_type_slug", "block_schema_references", "secret_fields"):
        schema.pop(key, None)
    return CredentialTypeInfo(
        slug=slug,
        name=cls.get_block_type_name(),
        description=cls.get_description() or "",
        secret_fields=list(secrets),
        fields_schema=schema,
    )


def credential_types() -> list[CredentialTypeInfo]:
    """Every credential type with its field schema (secret fields flagged)."""
    return [describe(slug) for slug in type_slugs()]


_registered: set[str] = set()

#: Between attempts to register the credential types while Prefect cannot be reached.
REGISTER_RETRY_SECONDS = 15.0


async def register_block_types(slugs: list[str] | None = None) -> list[str]:
    """Register the credential Block types with the Prefect API (idempotent) so the UI shows them."""
    done = []
    for slug in slugs or type_slugs():
        if slug not in _registered:
            await block_class(slug).aregister_type_and_schema()
            _registered.add(slug)
        done.append(slug)
    return done


async def register_gorax_block_types() -> list[str]:
    """Register every Gorax credential type, so Prefect's block catalogue lists each before first use.

    prefect-aws's and prefect-slack's types come with Prefect's own collection registry.
    """
    return await register_block_types([cls.get_block_type_slug() for cls in GORAX_BLOCK_TYPES])


async def register_at_start(log: logging.Logger) -> None:
    """:func:`register_gorax_block_types`, retried until Prefect answers (a process may start first)."""
    while True:
        try:
            await register_gorax_block_types()
            return
        except Exception as exc:  # Prefect unreachable or refusing: the next attempt may succeed
            log.warning("registering the credential block types with Prefect failed (retrying in %.0fs): %s",
                        REGISTER_RETRY_SECONDS, exc)
        await asyncio.sleep(REGISTER_RETRY_SECONDS)
