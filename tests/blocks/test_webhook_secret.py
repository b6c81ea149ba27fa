"""The webhook-secret credential: a list of secrets, each whole; blocks of the old one-value form."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentCreate
from pydantic import ValidationError

from blocks import service
from blocks.catalog import describe, register_block_types
from blocks.errors import CredentialInputError
from blocks.loader import load_credential
from blocks.sealing import block_document_name, seal_block
from blocks.types import WebhookSecret
from tests.blocks.conftest import Tenant

GITHUB_EXAMPLE = "It's a Secret to Everybody"


def test_secrets_are_a_list_each_used_whole() -> None:
    assert WebhookSecret(secrets=[GITHUB_EXAMPLE, "new one"]).signing_secrets() == (GITHUB_EXAMPLE, "new one")
    # The editor's one text field: a list of one, not split.
    assert WebhookSecret(secrets=GITHUB_EXAMPLE).signing_secrets() == (GITHUB_EXAMPLE,)
    # The form before the list: one value, read whole.
    assert WebhookSecret(secret=GITHUB_EXAMPLE).signing_secrets() == (GITHUB_EXAMPLE,)
    for values, message in (
        ({}, "needs at least one signing secret"),
        ({"secrets": ["a", ""]}, r"item\(s\) 1 are empty"),
        ({"secrets": ["a"], "secret": "b"}, "as the list 'secrets' only"),
    ):
        with pytest.raises(ValidationError, match=message):
            WebhookSecret(**values)
    schema = describe("webhook-secret")
    assert list(schema.fields_schema["properties"]) == ["secrets"]  # the form shows the list only
    assert schema.secret_fields == ["secrets", "secret"]


async def test_each_secret_is_sealed_and_a_block_of_the_old_form_still_loads(
    prefect_server: object, tenant: Tenant
) -> None:
    await service.create_credential("hook", "webhook-secret", {"secrets": [GITHUB_EXAMPLE, "second"]}, **tenant.kw)
    async with get_client() as client:
        stored = await client.read_block_document_by_name(
            block_document_name(tenant.slug, "hook"), "webhook-secret", include_secrets=True
        )
    sealed = stored.data["secrets"]
    assert len(sealed) == 2 and all(item.startswith("gorax:v1:") for item in sealed)
    assert GITHUB_EXAMPLE not in str(stored.data)
    block = await load_credential("hook", tenant_id=tenant.id)
    assert block.signing_secrets() == (GITHUB_EXAMPLE, "second")

    # A block saved before the list existed: data {"secret": <sealed>} and nothing else.
    await register_block_types(["webhook-secret"])
    old = await seal_block(WebhookSecret(secret=GITHUB_EXAMPLE), "webhook-secret", name="legacy", **tenant.kw)
    async with get_client() as client:
        block_type = await client.read_block_type_by_slug("webhook-secret")
        schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
        await client.create_block_document(
            BlockDocumentCreate(
                name=block_document_name(tenant.slug, "legacy"),
                block_type_id=block_type.id,
                block_schema_id=schema.id,
                data={"secret": old.secret.get_secret_value()},
            )
        )
    legacy = await load_credential("legacy", tenant_id=tenant.id)
    assert legacy.signing_secrets() == (GITHUB_EXAMPLE,)  # one item, spaces and all

    # Given a list, it becomes the list form; the old value is not kept beside it.
    await service.update_credential("legacy", {"secrets": ["rotated", GITHUB_EXAMPLE]}, **tenant.kw)
    rotated = await load_credential("legacy", tenant_id=tenant.id)
    assert rotated.signing_secrets() == ("rotated", GITHUB_EXAMPLE)
    # A sealed-looking value is refused in a list too (it would be stored as if sealed).
    with pytest.raises(CredentialInputError, match="reserved for sealed data"):
        await service.update_credential("legacy", {"secrets": ["gorax:v1:dk:AAAA"]}, **tenant.kw)
    with pytest.raises(CredentialInputError, match="reserved for sealed data"):
        await service.create_credential("other", "webhook-secret", {"secrets": ["gorax:v1:dk:AAAA"]}, **tenant.kw)
