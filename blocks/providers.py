"""Key-encryption key (KEK) providers: a local key file and AWS KMS.

A provider wraps and unwraps 32-byte data keys; the plaintext KEK never leaves it. Every wrap
carries a context (tenant id, data key id, purpose) that must match on unwrap: the local
provider feeds it to AES-GCM as associated data, KMS uses it as the encryption context.

Provider calls are synchronous (file I/O or one KMS request); async callers use
``asyncio.to_thread``. ``boto3`` is imported only when the KMS provider is first used.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blocks.errors import KeyProviderError

if TYPE_CHECKING:
    from flows.settings import GoraxSettings

KEY_FILE_NAME = "gorax-kek.json"


@dataclass(frozen=True)
class WrappedKey:
    """A data key as stored: which provider and KEK wrapped it, and the wrapped bytes."""

    provider: str
    kek_id: str
    blob: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "provider": self.provider,
            "kek_id": self.kek_id,
            "wrapped": base64.b64encode(self.blob).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WrappedKey:
        return cls(data["provider"], data["kek_id"], base64.b64decode(data["wrapped"]))


class KeyProvider(ABC):
    """Wraps and unwraps data keys under a key-encryption key."""

    name: str

    @abstractmethod
    def current_kek_id(self) -> str:
        """Id of the KEK new wraps use."""

    @abstractmethod
    def wrap(self, plaintext: bytes, context: dict[str, str]) -> WrappedKey:
        """Wrap ``plaintext`` under the current KEK."""

    @abstractmethod
    def unwrap(self, wrapped: WrappedKey, context: dict[str, str]) -> bytes:
        """Unwrap a key wrapped by this provider with the same ``context``."""

    @abstractmethod
    def rotate_kek(self, new_kek_id: str | None = None) -> str:
        """Make a new KEK current (old ones stay usable for unwrapping); returns its id."""

    def generate_data_key(self, context: dict[str, str]) -> tuple[bytes, WrappedKey]:
        """A fresh random AES-256 data key and its wrapped form."""
        key = secrets.token_bytes(32)
        return key, self.wrap(key, context)

    def rewrap(self, wrapped: WrappedKey, context: dict[str, str]) -> WrappedKey:
        """The same data key, wrapped under the current KEK."""
        return self.wrap(self.unwrap(wrapped, context), context)

    def _check_provider(self, wrapped: WrappedKey) -> None:
        if wrapped.provider != self.name:
            raise KeyProviderError(
                f"key wrapped by provider {wrapped.provider!r} (KEK {wrapped.kek_id}) cannot be "
                f"unwrapped by provider {self.name!r}: configure GORAX_KEY_PROVIDER accordingly"
            )


def _context_bytes(context: dict[str, str]) -> bytes:
    return json.dumps(sorted(context.items()), separators=(",", ":")).encode()


class LocalKeyFileProvider(KeyProvider):
    """KEKs in a JSON file (mode 0600) in the state directory, created on first use.

    The file keeps every KEK ever made so keys wrapped before a rotation still open; the
    ``current`` one wraps new keys.
    """

    name = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cache: tuple[float, dict[str, Any]] | None = None

    def _read(self) -> dict[str, Any]:
        with self._lock:
            if not self.path.exists():
                self._create()
            stat = self.path.stat()
            if stat.st_mode & 0o077:
                raise KeyProviderError(
                    f"key file {self.path} is readable by others (mode {oct(stat.st_mode & 0o777)}); "
                    "run: chmod 600 " + str(self.path)
                )
            if self._cache and self._cache[0] == stat.st_mtime_ns:
                return self._cache[1]
            try:
                data = json.loads(self.path.read_text())
                data["keys"][data["current"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise KeyProviderError(f"key file {self.path} is unreadable or malformed") from exc
            self._cache = (stat.st_mtime_ns, data)
            return data

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"version": 1, "current": "", "keys": {}}
        self._add_key(data, None)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process created it first; use theirs
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)

    @staticmethod
    def _add_key(data: dict[str, Any], kek_id: str | None) -> str:
        kek_id = kek_id or f"kek-{secrets.token_hex(6)}"
        if kek_id in data["keys"]:
            raise KeyProviderError(f"KEK {kek_id} already exists in the key file")
        data["keys"][kek_id] = {
            "key": base64.b64encode(secrets.token_bytes(32)).decode(),
            "created_at": datetime.now(timezone.utc).isoformat(),
        }
        data["current"] = kek_id
        return kek_id

    def _key(self, kek_id: str) -> bytes:
        entry = self._read()["keys"].get(kek_id)
        if entry is None:
            raise KeyProviderError(
                f"KEK {kek_id} is not in key file {self.path}: this state directory holds a "
                "different key file than the one that wrapped the data key"
            )
        return base64.b64decode(entry["key"])

    def current_kek_id(self) -> str:
        return str(self._read()["current"])

    def wrap(self, plaintext: bytes, context: dict[str, str]) -> WrappedKey:
        kek_id = self.current_kek_id()
        nonce = secrets.token_bytes(12)
        blob = nonce + AESGCM(self._key(kek_id)).encrypt(nonce, plaintext, _context_bytes(context))
        return WrappedKey(self.name, kek_id, blob)

    def unwrap(self, wrapped: WrappedKey, context: dict[str, str]) -> bytes:
        self._check_provider(wrapped)
        key = self._key(wrapped.kek_id)
        try:
            return AESGCM(key).decrypt(wrapped.blob[:12], wrapped.blob[12:], _context_bytes(context))
        except InvalidTag as exc:
            raise KeyProviderError(
                f"data key wrapped under KEK {wrapped.kek_id} does not open with the key file "
                f"{self.path} for context {context}: wrong key file or altered wrapped key"
            ) from exc

    def rotate_kek(self, new_kek_id: str | None = None) -> str:
        data = json.loads(json.dumps(self._read()))
        kek_id = self._add_key(data, new_kek_id)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, self.path)  # atomic: readers see the old or the new file, never half
        with self._lock:
            self._cache = None
        return kek_id


class AwsKmsProvider(KeyProvider):
    """AWS KMS: GenerateDataKey / Decrypt / ReEncrypt with the context as encryption context."""

    name = "aws-kms"

    def __init__(self, key_id: str, *, endpoint_url: str | None = None, region: str | None = None) -> None:
        self.key_id = key_id
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # lazy: only KMS deployments pay for importing boto3

            self._client = boto3.client(
                "kms", endpoint_url=self.endpoint_url, region_name=self.region or None
            )
        return self._client

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise KeyProviderError(
                f"AWS KMS {operation} failed for key {kwargs.get('KeyId') or kwargs.get('DestinationKeyId') or self.key_id}: "
                f"{error.get('Code', 'error')}: {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise KeyProviderError(f"AWS KMS {operation} failed: {exc}") from exc

    def current_kek_id(self) -> str:
        return self.key_id

    def generate_data_key(self, context: dict[str, str]) -> tuple[bytes, WrappedKey]:
        response = self._call(
            "generate_data_key", KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context
        )
        return response["Plaintext"], WrappedKey(self.name, response["KeyId"], response["CiphertextBlob"])

    def wrap(self, plaintext: bytes, context: dict[str, str]) -> WrappedKey:
        response = self._call("encrypt", KeyId=self.key_id, Plaintext=plaintext, EncryptionContext=context)
        return WrappedKey(self.name, response["KeyId"], response["CiphertextBlob"])

    def unwrap(self, wrapped: WrappedKey, context: dict[str, str]) -> bytes:
        self._check_provider(wrapped)
        response = self._call(
            "decrypt", CiphertextBlob=wrapped.blob, KeyId=wrapped.kek_id, EncryptionContext=context
        )
        return response["Plaintext"]

    def rewrap(self, wrapped: WrappedKey, context: dict[str, str]) -> WrappedKey:
        # ReEncrypt happens inside KMS: the plaintext data key never reaches this process.
        self._check_provider(wrapped)
        response = self._call(
            "re_encrypt",
            CiphertextBlob=wrapped.blob,
            SourceEncryptionContext=context,
            SourceKeyId=wrapped.kek_id,
            DestinationKeyId=self.key_id,
            DestinationEncryptionContext=context,
        )
        return WrappedKey(self.name, response["KeyId"], response["CiphertextBlob"])

    def rotate_kek(self, new_kek_id: str | None = None) -> str:
        # KMS rotates its own backing keys; a new KEK here means switching to another KMS key.
        if new_kek_id:
            self.key_id = new_kek_id
        return self.key_id


_PROVIDERS: dict[tuple[Any, ...], KeyProvider] = {}
_PROVIDERS_LOCK = threading.Lock()


def get_provider(settings: GoraxSettings | None = None) -> KeyProvider:
    """The key provider the settings select (one instance per configuration per process)."""
    if settings is None:
        from flows.settings import get_settings

        settings = get_settings()
    if settings.key_provider == "aws-kms":
        if not settings.kms_key_id:
            raise KeyProviderError("GORAX_KEY_PROVIDER=aws-kms needs GORAX_KMS_KEY_ID")
        cache_key: tuple[Any, ...] = ("aws-kms", settings.kms_key_id, settings.kms_endpoint_url)
    else:
        cache_key = ("local", str(settings.state_dir / KEY_FILE_NAME))
    with _PROVIDERS_LOCK:
        provider = _PROVIDERS.get(cache_key)
        if provider is None:
            if cache_key[0] == "aws-kms":
                provider = AwsKmsProvider(str(settings.kms_key_id), endpoint_url=settings.kms_endpoint_url)
            else:
                provider = LocalKeyFileProvider(settings.state_dir / KEY_FILE_NAME)
            _PROVIDERS[cache_key] = provider
        return provider


def provider_for(wrapped: WrappedKey, current: KeyProvider, settings: GoraxSettings | None = None) -> KeyProvider:
    """The provider that can unwrap ``wrapped``: the current one, or (while migrating from one
    provider to the other) the local key file or KMS as the settings describe them."""
    if wrapped.provider == current.name:
        return current
    if settings is None:
        from flows.settings import get_settings

        settings = get_settings()
    if wrapped.provider == LocalKeyFileProvider.name:
        return LocalKeyFileProvider(settings.state_dir / KEY_FILE_NAME)
    if wrapped.provider == AwsKmsProvider.name:
        return AwsKmsProvider(wrapped.kek_id, endpoint_url=settings.kms_endpoint_url)
    raise KeyProviderError(f"unknown key provider {wrapped.provider!r} (KEK {wrapped.kek_id})")
