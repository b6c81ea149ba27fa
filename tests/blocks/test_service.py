"""Credential service against the real Prefect server: sealing, listing, updating, loading."""

from __future__ import annotations

import json

import httpx
import pytest

from blocks import service
from blocks.catalog import credential_types
from blocks.errors import CredentialInputError, CredentialNotFound, SealedValueError
from blocks.loader import add_resolution_listener, load_credential, resolution_counts
from blocks.redact import mask
from blocks.types import GitHubToken
from tests.blocks.conftest import Tenant, new_tenant

TOKEN = "ghp_s3cret-token-value-0001"


async def _raw_documents(api_url: str) -> str:
    """Everything Prefect's API returns about block documents, secrets included."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{api_url}/block_documents/filter", json={"include_secrets": True, "limit": 200})
    response.raise_for_status()
    return response.text


async def test_create_seals_before_prefect_and_loader_unseals(prefect_server, tenant: Tenant) -> None:
    info = await service.create_credential("gh", "github-token", {"token": TOKEN}, **tenant.kw)
    assert (info.name, info.type, info.fields) == ("gh", "github-token", ["api_url", "token"])
    stored = await _raw_documents(prefect_server.api_url)
    assert f"{tenant.slug}--gh" in stored
    assert TOKEN not in stored and "gorax:v1:" in stored

    block = await load_credential("gh", tenant_id=tenant.id)  # slug found through the keyring
    assert block.token.get_secret_value() == TOKEN
    assert mask(f"token={TOKEN}") == "token=***"


async def test_listing_uses_exact_prefix_and_never_values(prefect_server) -> None:
    acme, notacme = new_tenant("acme"), None
    notacme = type(acme)(id=acme.id + "x", slug="not" + acme.slug)
    await service.create_credential("a", "webhook-secret", {"secret": "whsec-aaaa-1111"}, **acme.kw)
    await service.create_credential("b", "webhook-secret", {"secret": "whsec-bbbb-2222"}, **notacme.kw)
    listed = await service.list_credentials(**acme.kw)
    assert [c.name for c in listed] == ["a"]
    dumped = json.dumps([c.model_dump(mode="json") for c in listed])
    assert "whsec" not in dumped and "gorax:v1" not in dumped
    with pytest.raises(CredentialNotFound):
        await service.get_credential("b", **acme.kw)
    with pytest.raises(CredentialNotFound):
        await load_credential("b", **acme.kw)


async def test_update_keeps_omitted_secrets_and_reseals_new_ones(prefect_server, tenant: Tenant) -> None:
    created = await service.create_credential(
        "jira",
        "jira-credentials",
        {"base_url": "http://127.0.0.1:9/jira", "email": "a@example.com", "api_token": "jira-tok-1"},
        **tenant.kw,
    )
    await service.update_credential(created.id, {"email": "b@example.com"}, **tenant.kw)
    block = await load_credential("jira", **tenant.kw)
    assert (block.email, block.api_token.get_secret_value()) == ("b@example.com", "jira-tok-1")
    updated = await service.update_credential("jira", {"api_token": "jira-tok-2"}, **tenant.kw)
    assert updated.id == created.id
    assert (await load_credential("jira", **tenant.kw)).api_token.get_secret_value() == "jira-tok-2"
    assert "jira-tok-2" not in await _raw_documents(prefect_server.api_url)
    with pytest.raises(CredentialInputError, match="reserved"):
        await service.update_credential("jira", {"api_token": "gorax:v1:dk-1:AAAA"}, **tenant.kw)


async def test_delete(prefect_server, tenant: Tenant) -> None:
    await service.create_credential("gone", "pagerduty-key", {"routing_key": "pd-key-123"}, **tenant.kw)
    await service.delete_credential("gone", **tenant.kw)
    assert await service.list_credentials(**tenant.kw) == []
    with pytest.raises(CredentialNotFound):
        await service.delete_credential("gone", **tenant.kw)


async def test_bad_input_names_the_field_and_echoes_no_value(prefect_server, tenant: Tenant) -> None:
    with pytest.raises(CredentialInputError, match="unknown credential type 'nope'"):
        await service.create_credential("x", "nope", {}, **tenant.kw)
    with pytest.raises(CredentialInputError, match="no field.*tokn") as unknown:
        await service.create_credential("x", "github-token", {"tokn": "abc"}, **tenant.kw)
    assert unknown.value.details == [{"field": "values.tokn", "message": "unknown field"}]
    with pytest.raises(CredentialInputError) as invalid:
        await service.create_credential(
            "x", "smtp-server", {"host": "h", "port": "s3cret-port", "from_address": "a@b"}, **tenant.kw
        )
    assert invalid.value.details[0]["field"] == "port"
    assert "s3cret-port" not in str(invalid.value)
    with pytest.raises(CredentialInputError, match="credential name 'Bad-Name'"):
        await service.create_credential("Bad-Name", "github-token", {"token": "t"}, **tenant.kw)
    await service.create_credential("dup", "github-token", {"token": "tok-dup"}, **tenant.kw)
    with pytest.raises(CredentialInputError, match="already exists"):
        await service.create_credential("dup", "github-token", {"token": "tok-dup"}, **tenant.kw)


async def test_aws_and_slack_are_sealed_and_usable(prefect_server, tenant: Tenant) -> None:
    await service.create_credential(
        "aws",
        "aws-credentials",
        {
            "aws_access_key_id": "AKIATEST",
            "aws_secret_access_key": "aws-secret-xyz",
            "aws_session_token": "aws-session-abc",
            "region_name": "us-east-1",
        },
        **tenant.kw,
    )
    await service.create_credential("slack", "slack-credentials", {"token": "xoxb-slack-123"}, **tenant.kw)
    raw = await _raw_documents(prefect_server.api_url)
    assert "aws-secret-xyz" not in raw and "aws-session-abc" not in raw and "xoxb-slack-123" not in raw
    aws = await load_credential("aws", **tenant.kw)
    credentials = aws.get_boto3_session().get_credentials()
    assert (credentials.secret_key, credentials.token) == ("aws-secret-xyz", "aws-session-abc")
    slack = await load_credential("slack", **tenant.kw)
    assert slack.token.get_secret_value() == "xoxb-slack-123"


async def test_each_resolution_is_counted_and_announced(prefect_server, tenant: Tenant) -> None:
    seen = []

    async def listener(event) -> None:
        seen.append(event)

    remove = add_resolution_listener(listener)
    await service.create_credential(
        "basic", "http-auth", {"scheme": "basic", "username": "bob", "password": "pw-basic-77"}, **tenant.kw
    )
    try:
        block = await load_credential("basic", **tenant.kw)
        await load_credential("basic", **tenant.kw)
    finally:
        remove()
    assert resolution_counts()[(tenant.id, "basic")] == 2
    assert [(e.name, e.type, e.fields) for e in seen] == [("basic", "http-auth", ("password",))] * 2
    header = block.headers()["Authorization"]
    assert mask(header) == "Basic ***"


async def test_unsealed_value_saved_outside_gorax_is_refused(prefect_server, tenant: Tenant) -> None:
    await service.create_credential("first", "github-token", {"token": "tok-first"}, **tenant.kw)
    await GitHubToken(token="plain-token").asave(f"{tenant.slug}--sneaky")
    with pytest.raises(SealedValueError, match="stored unsealed"):
        await load_credential("sneaky", **tenant.kw)


def test_credential_types_flag_secret_fields() -> None:
    types = {t.slug: t for t in credential_types()}
    assert set(types) >= {
        "http-auth",
        "smtp-server",
        "webhook-secret",
        "github-token",
        "jira-credentials",
        "pagerduty-key",
        "sendgrid-api-key",
        "twilio-credentials",
        "llm-provider",
        "database-url",
        "aws-credentials",
        "slack-credentials",
    }
    aws = types["aws-credentials"]
    assert aws.secret_fields == ["aws_secret_access_key", "aws_session_token"]
    assert aws.fields_schema["properties"]["aws_secret_access_key"]["secret"] is True
    assert "secret" not in types["jira-credentials"].fields_schema["properties"]["email"]
    assert types["sendgrid-api-key"].secret_fields == ["api_key"]
    assert types["twilio-credentials"].secret_fields == ["auth_token", "api_key_secret"]
