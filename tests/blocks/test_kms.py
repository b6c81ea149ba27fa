"""The AWS KMS key provider against a real moto server on 127.0.0.1."""

from __future__ import annotations

import boto3
import pytest

from blocks import keys, service
from blocks.errors import KeyProviderError
from blocks.loader import load_credential
from blocks.providers import AwsKmsProvider
from flows.settings import get_settings
from tests.blocks.conftest import Tenant
from tests.peers import free_port


def _new_kms_key(endpoint: str) -> str:
    return boto3.client("kms", endpoint_url=endpoint).create_key()["KeyMetadata"]["KeyId"]


def test_provider_wraps_with_context_and_reencrypts(moto_kms_url: str) -> None:
    first, second = _new_kms_key(moto_kms_url), _new_kms_key(moto_kms_url)
    provider = AwsKmsProvider(first, endpoint_url=moto_kms_url)
    context = {"gorax_tenant": "t1", "gorax_data_key": "dk-1"}
    key, wrapped = provider.generate_data_key(context)
    assert len(key) == 32 and key not in wrapped.blob and first in wrapped.kek_id
    assert provider.unwrap(wrapped, context) == key
    with pytest.raises(KeyProviderError, match="AWS KMS decrypt failed"):
        provider.unwrap(wrapped, {**context, "gorax_tenant": "t2"})
    assert provider.rotate_kek(second) == second
    moved = provider.rewrap(wrapped, context)
    assert second in moved.kek_id and provider.unwrap(moved, context) == key


def test_unreachable_kms_is_a_clear_error() -> None:
    provider = AwsKmsProvider("alias/none", endpoint_url=f"http://127.0.0.1:{free_port()}")
    provider.client.meta.config.retries = {"max_attempts": 0}
    with pytest.raises(KeyProviderError, match="AWS KMS generate_data_key failed"):
        provider.generate_data_key({"t": "1"})


async def test_credentials_and_server_key_under_kms(
    prefect_server, moto_kms_url: str, tenant: Tenant, monkeypatch, tmp_path
) -> None:
    first, second = _new_kms_key(moto_kms_url), _new_kms_key(moto_kms_url)
    monkeypatch.setenv("GORAX_HOME", str(tmp_path))
    monkeypatch.setenv("GORAX_KEY_PROVIDER", "aws-kms")
    monkeypatch.setenv("GORAX_KMS_KEY_ID", first)
    monkeypatch.setenv("GORAX_KMS_ENDPOINT_URL", moto_kms_url)
    get_settings.cache_clear()
    try:
        await service.create_credential(
            "llm", "llm-provider", {"provider": "openai", "api_key": "sk-kms-1"}, **tenant.kw
        )
        keyring = await keys.read_keyring(tenant.id)
        assert keyring is not None
        assert {e.provider for e in keyring.keys.values()} == {"aws-kms"}
        assert (await load_credential("llm", **tenant.kw)).api_key.get_secret_value() == "sk-kms-1"

        server_key_file = tmp_path / keys.SERVER_KEY_FILE
        server_key = keys.prefect_server_encryption_key(server_key_file)
        assert keys.prefect_server_encryption_key(server_key_file) == server_key

        keyring = await keys.read_keyring(tenant.id)
        assert keyring is not None
        assert await keys.rewrap_keyring(keyring, keys.get_provider().__class__(second, endpoint_url=moto_kms_url)) == 1
        after = await keys.read_keyring(tenant.id)
        assert after is not None and second in after.keys[after.current].kek_id
        keys.forget_cached_keys()
        assert (await load_credential("llm", **tenant.kw)).api_key.get_secret_value() == "sk-kms-1"
        assert keys.prefect_server_encryption_key(server_key_file) == server_key
    finally:
        await keys.delete_keyring(tenant.id)  # other tests' rotations must not need this moto
        get_settings.cache_clear()
