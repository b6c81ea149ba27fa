"""Where the key-encryption key comes from: a process without one fails naming the settings and
makes none; the key can come from the environment and be rotated there."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from blocks import keys, service
from blocks.errors import KeyProviderError
from blocks.loader import load_credential
from blocks.providers import EnvKeyProvider, get_provider
from blocks.settings import KeySettings, env_kek_id
from flows.settings import get_settings
from tests.blocks.conftest import Tenant


def _new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def gorax_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """``monkeypatch`` whose GORAX_* changes the settings follow (re-read after each change)."""
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    keys.forget_cached_keys()


def _use(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    keys.forget_cached_keys()


async def test_a_worker_without_the_key_fails_naming_the_settings_and_makes_none(
    tenant: Tenant, gorax_env: pytest.MonkeyPatch, tmp_path
) -> None:
    await service.create_credential("gh", "http-auth", {"token": "tok-key-1"}, **tenant.kw)
    # A worker on another machine: its own state directory, no key file, no key in its environment.
    _use(gorax_env, GORAX_HOME=str(tmp_path))
    with pytest.raises(KeyProviderError) as info:
        await load_credential("gh", **tenant.kw)
    message = str(info.value)
    assert "no key-encryption key" in message and str(tmp_path / "gorax-kek.json") in message
    assert "gorax keys init" in message and "GORAX_KEY_ENCRYPTION_KEY" in message
    assert list(tmp_path.iterdir()) == []  # no key of its own, which could open nothing


async def test_the_key_from_the_environment_seals_opens_and_rotates(
    tenant: Tenant, gorax_env: pytest.MonkeyPatch
) -> None:
    old, new = _new_key(), _new_key()
    _use(gorax_env, GORAX_KEY_ENCRYPTION_KEY=old)
    try:
        values = {"provider": "openai", "api_key": "sk-env-1"}
        await service.create_credential("llm", "llm-provider", values, **tenant.kw)
        keyring = await keys.read_keyring(tenant.id)
        assert keyring is not None
        wrapped_by = {(e.provider, e.kek_id) for e in keyring.keys.values()}
        assert wrapped_by == {("env", env_kek_id(base64.b64decode(old)))}
        assert (await load_credential("llm", **tenant.kw)).api_key.get_secret_value() == "sk-env-1"

        # Rotation: the new key first, the old one still there to open what it wrapped.
        _use(gorax_env, GORAX_KEY_ENCRYPTION_KEY=f"{new},{old}")
        provider = get_provider(get_settings().keys)
        assert provider.rotate_kek() == env_kek_id(base64.b64decode(new))
        assert await keys.rewrap_keyring(keyring, provider) == 1
        _use(gorax_env, GORAX_KEY_ENCRYPTION_KEY=new)
        assert (await load_credential("llm", **tenant.kw)).api_key.get_secret_value() == "sk-env-1"

        # The old key alone no longer opens it, and says which setting to look at.
        _use(gorax_env, GORAX_KEY_ENCRYPTION_KEY=old)
        with pytest.raises(KeyProviderError, match="is not in GORAX_KEY_ENCRYPTION_KEY"):
            await load_credential("llm", **tenant.kw)
    finally:
        await keys.delete_keyring(tenant.id)  # other tests' rotations must not need these keys


def test_the_env_provider_needs_its_key_and_takes_no_other_name() -> None:
    with pytest.raises(KeyProviderError, match="GORAX_KEY_PROVIDER=env needs GORAX_KEY_ENCRYPTION_KEY"):
        get_provider(KeySettings(key_provider="env"))
    with pytest.raises(KeyProviderError, match="put the new key first"):
        EnvKeyProvider([os.urandom(32)]).rotate_kek("kek-elsewhere")


def test_a_malformed_key_is_named_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as info:
        KeySettings(key_encryption_key=f"{_new_key()},not-a-key-at-all")
    assert "GORAX_KEY_ENCRYPTION_KEY: key 2 is not base64 of 32 bytes" in str(info.value)
    assert "not-a-key-at-all" not in str(info.value)
