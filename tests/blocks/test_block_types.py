"""Prefect's standards suite over every Gorax credential Block, lookup through Prefect's
collections, and registration with Prefect."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr

from blocks.catalog import (
    block_class,
    credential_types,
    gorax_block_types,
    is_credential_type,
    register_block_types,
    secret_fields,
    type_slugs,
)
from blocks.envelope import is_sealed
from blocks.errors import CredentialInputError, SealedValueError
from blocks.loader import load_credential
from blocks.sealing import block_document_name
from blocks.service import create_credential
from blocks.types import HttpAuth, WebhookSecret
from tests.blocks.conftest import Tenant


class TestGoraxBlocks(BlockStandardTestSuite):
    @pytest.fixture(params=gorax_block_types(), ids=lambda cls: cls.get_block_type_slug())
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        return request.param

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # The upstream check downloads the logo from the internet; Gorax blocks ship no remote
        # logo, so the Prefect UI (and this suite) never fetch one.
        assert block._logo_url is None

    def test_secret_fields_are_secretstr(self, block: type[Block]) -> None:
        slug = block.get_block_type_slug()
        assert secret_fields(slug), f"{slug} declares no secret field"
        assert set(secret_fields(slug)) <= set(block.model_json_schema()["secret_fields"])


def test_http_auth_builds_headers_and_params() -> None:
    assert HttpAuth(token="t0k").headers() == {"Authorization": "Bearer t0k"}
    assert HttpAuth(scheme="basic", username="u", password="p").headers() == {"Authorization": "Basic dTpw"}
    key = HttpAuth(scheme="api_key", api_key="k3y", api_key_name="key", api_key_in="query")
    assert (key.headers(), key.query_params()) == ({}, {"key": "k3y"})
    headers: dict[str, str] = {"Accept": "x"}
    query: dict[str, object] = {}
    key.apply_http_auth(headers, query)
    assert (headers, query) == ({"Accept": "x"}, {"key": "k3y"})
    with pytest.raises(ValueError, match="scheme 'basic' needs username, password"):
        HttpAuth(scheme="basic")


def test_a_prefect_process_finds_gorax_types_through_the_collections_entry_point() -> None:
    # A process that never imported Gorax (a Prefect worker loading a Block) asks Prefect alone.
    code = "from prefect.blocks.core import Block; print(Block.get_block_class_from_key('http-auth').__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "blocks.types"


def test_credential_types_are_prefect_lookups_of_credential_blocks() -> None:
    assert block_class("http-auth") is HttpAuth is Block.get_block_class_from_key("http-auth")
    aws = block_class("aws-credentials")
    assert (aws.__module__, aws.get_block_type_slug()) == ("prefect_aws.credentials", "aws-credentials")
    assert block_class("slack-credentials").__module__ == "prefect_slack.credentials"
    # Prefect knows more Blocks than Gorax offers as credentials: those are not credentials.
    assert not is_credential_type("secret") and not is_credential_type("local-file-system")
    with pytest.raises(CredentialInputError, match="unknown credential type 'secret'; known types: http-auth"):
        block_class("secret")


def test_a_plugin_credential_type_is_offered_from_its_collection_alone() -> None:
    # tests/plugin registers AcmeToken through its own prefect.collections entry point: no
    # Gorax module names it, yet it is a credential type with its secret fields.
    assert "acme-token" in type_slugs()
    acme = next(t for t in credential_types() if t.slug == "acme-token")
    assert acme.secret_fields == ["token"]
    assert block_class("acme-token").__module__ == "gorax_acme_nodes.credentials"


async def test_types_are_registered_with_prefect(prefect_server) -> None:
    await register_block_types()
    async with get_client() as client:
        schemas = await client.read_block_schemas()
        for slug in type_slugs():
            block_type = await client.read_block_type_by_slug(slug)
            assert any(s.block_type_id == block_type.id for s in schemas), slug


async def test_prefect_load_returns_the_stored_block_sealed_and_its_use_is_refused(tenant: Tenant) -> None:
    """The code example the Prefect UI shows loads the block with ``Block.load``: its secrets stay
    sealed, and the block refuses to use one (it sent ``Bearer gorax:...`` as the token)."""
    await create_credential("api", "http-auth", {"scheme": "bearer", "token": "t0k-plain"}, **tenant.kw)
    document_name = block_document_name(tenant.slug, "api")

    stored = await HttpAuth.aload(document_name)
    token = stored.token.get_secret_value()
    assert is_sealed(token) and "t0k-plain" not in token
    with pytest.raises(SealedValueError, match=r"blocks\.loader\.load_credential"):
        stored.headers()
    # What the Prefect UI reads: the document without secrets, the sealed value obfuscated.
    async with get_client() as client:
        document = await client.read_block_document_by_name(document_name, "http-auth", include_secrets=False)
    assert "gorax:" not in str(document.data) and "t0k-plain" not in str(document.data)
    # The way the example names opens it, for the credential's tenant.
    opened = await load_credential("api", tenant_id=tenant.id, tenant_slug=tenant.slug)
    assert opened.headers() == {"Authorization": "Bearer t0k-plain"}
    assert "load_credential(" in HttpAuth.get_code_example()


def test_a_sealed_webhook_secret_is_not_used_as_a_signing_secret() -> None:
    sealed = WebhookSecret.model_construct(secrets=[SecretStr("gorax:v1:abc")], secret=None)
    with pytest.raises(SealedValueError):
        sealed.signing_secrets()
