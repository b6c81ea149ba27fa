"""The API's secrets: the token-signing key and the worker token, both from settings.

Each comes from the API's environment (``GORAX_TOKEN_SIGNING_KEY`` or a file named by
``GORAX_TOKEN_SIGNING_KEY_FILE``; ``GORAX_WORKER_TOKEN``), so replicas and workers on other
machines share them by configuration, not by sharing a disk. ``gorax up`` keeps its embedded
stack's in its state directory (:data:`SIGNING_KEY_FILE`, :data:`WORKER_TOKEN_FILE`), made with
the functions below on its first start, and gives them to what it starts.
"""

from __future__ import annotations

import secrets

from api.config import ApiSettings

SIGNING_KEY_FILE = "api-signing.key"
WORKER_TOKEN_FILE = "worker.token"
#: HMAC-SHA256 keys shorter than the hash's 32 bytes weaken it.
MIN_SIGNING_KEY_BYTES = 32


class SecretSettingError(RuntimeError):
    """A secret setting is missing or unusable; the message names the variable."""


def new_signing_key() -> str:
    """A fresh token-signing key as the settings hold it (hex)."""
    return secrets.token_hex(MIN_SIGNING_KEY_BYTES)


def new_worker_token() -> str:
    """A fresh worker token."""
    return "gxw_" + secrets.token_urlsafe(32)


def _signing_key_text(settings: ApiSettings) -> tuple[str, str]:
    """(the key's text, the variable it came from)."""
    if settings.token_signing_key is not None:
        return settings.token_signing_key.get_secret_value(), "GORAX_TOKEN_SIGNING_KEY"
    path = settings.token_signing_key_file
    if path is None:
        raise SecretSettingError(
            "the API has no token-signing key: set GORAX_TOKEN_SIGNING_KEY (64 or more hex "
            "characters, the same on every replica) or GORAX_TOKEN_SIGNING_KEY_FILE (a file holding it)"
        )
    try:
        return path.read_text().strip(), f"GORAX_TOKEN_SIGNING_KEY_FILE ({path})"
    except OSError as exc:
        raise SecretSettingError(f"GORAX_TOKEN_SIGNING_KEY_FILE: cannot read {path}: {exc.strerror or exc}") from None


def signing_key(settings: ApiSettings) -> bytes:
    """The HMAC key that signs access tokens, from the API's settings."""
    text, source = _signing_key_text(settings)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_SIGNING_KEY_BYTES:
        raise SecretSettingError(f"{source}: the token-signing key must be 64 or more hex characters")
    return key
