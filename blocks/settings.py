"""The credentials' settings section: where the key-encryption key (KEK) comes from.

``blocks`` imports nothing of Gorax's own, so it cannot build the settings root: the root
(``flows.settings.GoraxSettings.keys``) nests this section, fills in what depends on the rest of
the configuration (the key file's default place in the state directory) and hands it in, either
per call or once per process through :func:`blocks.providers.use_settings`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KEY_ENCRYPTION_KEY_VARIABLE = "GORAX_KEY_ENCRYPTION_KEY"

ProviderName = Literal["local", "env", "aws-kms"]


def _decode_key(item: str, index: int) -> bytes:
    try:
        key = base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        # Never echo the value: it is the key, or most of it.
        raise ValueError(f"{KEY_ENCRYPTION_KEY_VARIABLE}: key {index + 1} is not base64 of 32 bytes")
    return key


class KeySettings(BaseSettings):
    """Key-encryption key settings. Each field is the variable ``GORAX_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GORAX_", extra="ignore", hide_input_in_errors=True)

    key_provider: ProviderName | None = Field(
        default=None,
        description="Key-encryption key provider: `local` (the key file), `env` "
        "(GORAX_KEY_ENCRYPTION_KEY) or `aws-kms`; unset: `env` when GORAX_KEY_ENCRYPTION_KEY is set, "
        "else `local`.",
    )
    key_file: Path | None = Field(
        default=None,
        description="The local provider's key file (mode 0600; default `$GORAX_HOME/gorax-kek.json`). "
        "Only `gorax up`'s first start or `gorax keys init` creates it; a process without it fails, "
        "naming it.",
    )
    key_encryption_key: SecretStr | None = Field(
        default=None,
        description="The env provider's key: base64 of 32 random bytes. Comma-separated, the first "
        "wraps new keys and the others still open what they wrapped (rotation: put the new key "
        "first, run `gorax keys rotate`, then drop the old one).",
    )
    kms_key_id: str | None = Field(default=None, description="AWS KMS key id or ARN (aws-kms provider).")
    kms_endpoint_url: str | None = Field(default=None, description="AWS KMS endpoint override.")

    @field_validator("key_encryption_key")
    @classmethod
    def _keys_are_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for index, item in enumerate(value.get_secret_value().split(",")):
                _decode_key(item.strip(), index)
        return value

    @property
    def provider(self) -> ProviderName:
        """The provider in use: the one named, else `env` when a key is given, else `local`."""
        if self.key_provider is not None:
            return self.key_provider
        return "env" if self.key_encryption_key is not None else "local"

    def encryption_keys(self) -> list[bytes]:
        """The keys of ``GORAX_KEY_ENCRYPTION_KEY``, current first ([] when unset)."""
        if self.key_encryption_key is None:
            return []
        items = self.key_encryption_key.get_secret_value().split(",")
        return [_decode_key(item.strip(), index) for index, item in enumerate(items)]


def env_kek_id(key: bytes) -> str:
    """The id a key from the environment goes by: a digest, so the same key keeps its id."""
    return "env-" + hashlib.sha256(b"gorax-kek-id:" + key).hexdigest()[:16]
