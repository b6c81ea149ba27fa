"""Prefect's standards suite over every Gorax credential Block, and registration with Prefect."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks.catalog import register_block_types, secret_fields, type_slugs
from blocks.types import GORAX_BLOCK_TYPES, HttpAuth


class TestGoraxBlocks(BlockStandardTestSuite):
    @pytest.fixture(params=GORAX_BLOCK_TYPES, ids=lambda cls: cls.get_block_type_slug())
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


async def test_types_are_registered_with_prefect(prefect_server) -> None:
    from prefect.client.orchestration import get_client

    await register_block_types()
    async with get_client() as client:
        schemas = await client.read_block_schemas()
        for slug in type_slugs():
            block_type = await client.read_block_type_by_slug(slug)
            assert any(s.block_type_id == block_type.id for s in schemas), slug
