"""The credential types Gorax offers, their secret fields, and their registration with Prefect.

Every type is a Prefect Block class, looked up by slug with ``Block.get_block_class_from_key``
once Prefect has loaded the ``prefect.collections`` entry points: Gorax's own (every registered
:class:`~blocks.types.GoraxCredential` subclass; ``blocks.types`` is such an entry point, and a
plugin package's module can be one too) and the collections' types Gorax offers as they are
(:data:`~blocks.types.COLLECTION_CREDENTIALS`: prefect-aws, prefect-slack).
"""

from __future__ import annotations

import typing
from functools import cache, lru_cache
from typing import Any, TypeGuard

from prefect.blocks.core import Block, UnknownBlockType
from prefect.plugins import load_prefect_collections
from prefect.utilities.dispatch import get_registry_for_type, lookup_type
from pydantic import BaseModel, Field, SecretStr

from blocks.errors import CredentialInputError
from blocks.types import COLLECTION_CREDENTIALS, GoraxCredential


class CredentialTypeInfo(BaseModel):
    """A credential type as the API lists it."""

    slug: str
    name: str
    description: str
    secret_fields: list[str] = Field(description="Fields that are sealed and never returned.")
    fields_schema: dict[str, Any] = Field(
        description='JSON schema of the values; secret properties carry ``"secret": true``.'
    )


@lru_cache(maxsize=1)
def _own_types() -> tuple[type[GoraxCredential], ...]:
    load_prefect_collections()  # imports every installed collection, which registers its Blocks
    registered: dict[str, type[Block]] = get_registry_for_type(Block) or {}
    return tuple(cls for cls in registered.values() if issubclass(cls, GoraxCredential))


def type_slugs() -> list[str]:
    """Every credential type slug, Gorax's own first."""
    return [cls.get_block_type_slug() for cls in _own_types()] + [c.slug for c in COLLECTION_CREDENTIALS]


def gorax_block_types() -> list[type[GoraxCredential]]:
    """Gorax's own credential Block classes, those of plugin packages included."""
    return list(_own_types())


def _lookup(slug: str) -> type[Block] | None:
    """The Block class Prefect has for ``slug``, if any.

    A class this process registered already is taken from Prefect's registry as it is:
    ``get_block_class_from_key`` first imports every collection (prefect-aws loads boto3, which
    takes seconds), a cost worth paying only for a type not registered yet.
    """
    try:
        return lookup_type(Block, slug)
    except KeyError:
        pass
    try:
        return Block.get_block_class_from_key(slug)
    except UnknownBlockType:
        return None


def is_credential_type(slug: str | None) -> TypeGuard[str]:
    """Whether ``slug`` is a credential type Gorax offers: a stored Block of another type is no credential."""
    if not slug:
        return False
    if any(c.slug == slug for c in COLLECTION_CREDENTIALS):
        return True
    cls = _lookup(slug)
    return cls is not None and issubclass(cls, GoraxCredential)


@cache
def block_class(slug: str) -> type[Block]:
    """The Block class of credential type ``slug``, as Prefect looks it up."""
    if not is_credential_type(slug):
        raise CredentialInputError(f"unknown credential type {slug!r}; known types: {', '.join(type_slugs())}")
    cls = _lookup(slug)
    if cls is None:
        raise CredentialInputError(
            f"credential type {slug!r} is not installed here (its Prefect collection did not load)"
        )
    return cls


def _is_secret_annotation(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret_annotation(arg) for arg in typing.get_args(annotation))


@cache
def secret_fields(slug: str) -> tuple[str, ...]:
    """Top-level fields of ``slug`` that are sealed."""
    cls = block_class(slug)
    names = [name for name, field in cls.model_fields.items() if _is_secret_annotation(field.annotation)]
    declared = next((c for c in COLLECTION_CREDENTIALS if c.slug == slug), None)
    names += list(declared.secret_extra_fields if declared else getattr(cls, "secret_extra_fields", ()))
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
    return await register_block_types([cls.get_block_type_slug() for cls in gorax_block_types()])
