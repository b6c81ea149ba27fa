"""Key-encryption key (KEK) providers: a local key file, a key from the environment, AWS KMS.

A provider wraps and unwraps 32-byte data keys; the plaintext KEK never leaves it. Every wrap
carries a context (tenant id, data key id, purpose) that must match on unwrap: the local and
environment providers feed it to AES-GCM as associated data, KMS uses it as the encryption
context.

No provider ever makes a KEK on its own: a process that finds none fails, naming the setting.
A key made behind the operator's back (a worker without the API's key file made one) wraps
keys nobody else can open. Only :func:`create_key_file` makes one, called by ``gorax up``'s
first start and ``gorax keys init``.

Which provider a process uses comes from :class:`blocks.settings.KeySettings`, passed in or set
once per process with :func:`use_settings`. Provider calls are synchronous (file I/O or one KMS
request); async callers use ``asyncio.to_thread``. ``boto3`` is imported only when the KMS
provider is first used.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blocks.errors import KeyProviderError
from blocks.settings import KeySettings, env_kek_id

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


_MISSING_KEY_HINT = (
    "create it once with `gorax keys init` (`gorax up` does on its first start) and give every "
    "process the same one (GORAX_KEY_FILE), or set GORAX_KEY_ENCRYPTION_KEY, or "
    "GORAX_KEY_PROVIDER=aws-kms with GORAX_KMS_KEY_ID"
)


class _AesGcmProvider(KeyProvider):
    """KEKs this process holds: AES-256-GCM wraps with the context as associated data."""

    def _keys(self) -> dict[str, bytes]:
        """Every KEK by id."""
        raise NotImplementedError

    def _where(self) -> str:
        """Where the KEKs come from, for error messages."""
        raise NotImplementedError

    def _key(self, kek_id: str) -> bytes:
        key = self._keys().get(kek_id)
        if key is None:
            raise KeyProviderError(
                f"KEK {kek_id} is not in {self._where()}: the data key was wrapped with a "
                "different key-encryption key than this process has"
            )
        return key

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
                f"data key wrapped under KEK {wrapped.kek_id} does not open with "
                f"{self._where()} for context {context}: wrong key or altered wrapped key"
            ) from exc


def _new_key_entry() -> dict[str, str]:
    return {
        "key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "created_at": datetime.now(UTC).isoformat(),
    }


def create_key_file(path: Path) -> str:
    """Make a new key file (mode 0600) with one fresh KEK; returns its id.

    The one place a KEK is made: ``gorax keys init`` and ``gorax up``'s first start. An
    existing file is never replaced (that would orphan every key it wrapped).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kek_id = f"kek-{secrets.token_hex(6)}"
    data = {"version": 1, "current": kek_id, "keys": {kek_id: _new_key_entry()}}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProviderError(f"key file {path} already exists; it was left as it is") from None
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    return kek_id


class LocalKeyFileProvider(_AesGcmProvider):
    """KEKs in a JSON file (mode 0600), made by :func:`create_key_file`.

    The file keeps every KEK ever made so keys wrapped before a rotation still open; the
    ``current`` one wraps new keys.
    """

    name = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cache: tuple[float, dict[str, Any]] | None = None

    def _where(self) -> str:
        return f"key file {self.path}"

    def _read(self) -> dict[str, Any]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                raise KeyProviderError(
                    f"no key-encryption key: key file {self.path} does not exist; {_MISSING_KEY_HINT}"
                ) from None
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

    def _keys(self) -> dict[str, bytes]:
        return {kek_id: base64.b64decode(entry["key"]) for kek_id, entry in self._read()["keys"].items()}

    def current_kek_id(self) -> str:
        return str(self._read()["current"])

    def rotate_kek(self, new_kek_id: str | None = None) -> str:
        data = json.loads(json.dumps(self._read()))
        kek_id = new_kek_id or f"kek-{secrets.token_hex(6)}"
        if kek_id in data["keys"]:
            raise KeyProviderError(f"KEK {kek_id} already exists in the key file")
        data["keys"][kek_id] = _new_key_entry()
        data["current"] = kek_id
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, self.path)  # atomic: readers see the old or the new file, never half
        with self._lock:
            self._cache = None
        return kek_id


class EnvKeyProvider(_AesGcmProvider):
    """KEKs given in ``GORAX_KEY_ENCRYPTION_KEY``: the first wraps, every one unwraps.

    For workers and replicas that get their secrets from the environment (a Kubernetes secret, a
    work pool's job variables) rather than from a shared file.
    """

    name = "env"

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise KeyProviderError("GORAX_KEY_PROVIDER=env needs GORAX_KEY_ENCRYPTION_KEY")
        self._by_id = {env_kek_id(key): key for key in keys}
        self._current = env_kek_id(keys[0])

    def _where(self) -> str:
        return "GORAX_KEY_ENCRYPTION_KEY"

    def _keys(self) -> dict[str, bytes]:
        return self._by_id

    def current_kek_id(self) -> str:
        return self._current

    def rotate_kek(self, new_kek_id: str | None = None) -> str:
        # The keys are the operator's: a new one is put first in the variable, and rotation then
        # re-wraps everything under it.
        if new_kek_id and new_kek_id != self._current:
            raise KeyProviderError(
                "the env provider's keys come from GORAX_KEY_ENCRYPTION_KEY: put the new key first "
                "there (keep the old one after it) and run the rotation again"
            )
        return self._current


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
            # boto3 costs most of a second to import and only KMS deployments need it; this module
            # is loaded wherever settings are (node discovery too), so it loads on first use.
            import boto3  # noqa: PLC0415

            self._client = boto3.client("kms", endpoint_url=self.endpoint_url, region_name=self.region or None)
        return self._client

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        # botocore comes with boto3: loaded on first use for the same reason.
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

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
        response = self._call("generate_data_key", KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        return response["Plaintext"], WrappedKey(self.name, response["KeyId"], response["CiphertextBlob"])

    def wrap(self, plaintext: bytes, context: dict[str, str]) -> WrappedKey:
        response = self._call("encrypt", KeyId=self.key_id, Plaintext=plaintext, EncryptionContext=context)
        return WrappedKey(self.name, response["KeyId"], response["CiphertextBlob"])

    def unwrap(self, wrapped: WrappedKey, context: dict[str, str]) -> bytes:
        self._check_provider(wrapped)
        response = self._call("decrypt", CiphertextBlob=wrapped.blob, KeyId=wrapped.kek_id, EncryptionContext=context)
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
_default_settings: Callable[[], KeySettings] | None = None


def use_settings(source: Callable[[], KeySettings]) -> None:
    """Where this process's key settings come from when a caller passes none.

    The settings root calls this once (``flows.settings``); a callable, so settings rebuilt later
    (tests that change the environment) are followed.
    """
    global _default_settings
    _default_settings = source


def _settings_or_default(settings: KeySettings | None) -> KeySettings:
    if settings is not None:
        return settings
    if _default_settings is None:
        raise KeyProviderError(
            "this process has no key settings: pass a KeySettings, or call "
            "blocks.providers.use_settings() at start (importing flows.settings does)"
        )
    return _default_settings()


def _key_file(settings: KeySettings) -> Path:
    if settings.key_file is None:
        raise KeyProviderError(f"the local key provider has no key file (GORAX_KEY_FILE); {_MISSING_KEY_HINT}")
    return settings.key_file


def get_provider(settings: KeySettings | None = None) -> KeyProvider:
    """The key provider the settings select (one instance per configuration per process)."""
    settings = _settings_or_default(settings)
    name = settings.provider
    if name == "aws-kms":
        if not settings.kms_key_id:
            raise KeyProviderError("GORAX_KEY_PROVIDER=aws-kms needs GORAX_KMS_KEY_ID")
        cache_key: tuple[Any, ...] = ("aws-kms", settings.kms_key_id, settings.kms_endpoint_url)
    elif name == "env":
        cache_key = ("env", tuple(env_kek_id(key) for key in settings.encryption_keys()))
    else:
        cache_key = ("local", str(_key_file(settings)))
    with _PROVIDERS_LOCK:
        provider = _PROVIDERS.get(cache_key)
        if provider is None:
            if name == "aws-kms":
                provider = AwsKmsProvider(str(settings.kms_key_id), endpoint_url=settings.kms_endpoint_url)
            elif name == "env":
                provider = EnvKeyProvider(settings.encryption_keys())
            else:
                provider = LocalKeyFileProvider(_key_file(settings))
            _PROVIDERS[cache_key] = provider
        return provider


def provider_for(wrapped: WrappedKey, current: KeyProvider, settings: KeySettings | None = None) -> KeyProvider:
    """The provider that can unwrap ``wrapped``: the current one, or (while migrating from one
    provider to another) the key file, the environment's keys or KMS as the settings describe them."""
    if wrapped.provider == current.name:
        return current
    settings = _settings_or_default(settings)
    if wrapped.provider == LocalKeyFileProvider.name:
        return LocalKeyFileProvider(_key_file(settings))
    if wrapped.provider == EnvKeyProvider.name:
        return EnvKeyProvider(settings.encryption_keys())
    if wrapped.provider == AwsKmsProvider.name:
        return AwsKmsProvider(wrapped.kek_id, endpoint_url=settings.kms_endpoint_url)
    raise KeyProviderError(f"unknown key provider {wrapped.provider!r} (KEK {wrapped.kek_id})")
