"""Secrets the API keeps in the state directory: the token-signing key and the worker token.

Both are generated on first use and written with mode 0600. ``GORAX_WORKER_TOKEN`` overrides
the worker token (so workers on other machines can share it). Several API replicas must share
the state directory, or the same files, to accept each other's access tokens.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flows.settings import GoraxSettings

SIGNING_KEY_FILE = "api-signing.key"
WORKER_TOKEN_FILE = "worker.token"


def _read_or_create(path: Path, make: callable) -> str:  # type: ignore[valid-type]
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: if two processes race, the loser reads the winner's value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def signing_key(settings: GoraxSettings) -> bytes:
    """The HMAC key that signs access tokens (32 random bytes, hex in the state dir)."""
    return bytes.fromhex(
        _read_or_create(settings.state_dir / SIGNING_KEY_FILE, lambda: secrets.token_hex(32))
    )


def worker_token(settings: GoraxSettings, override: str | None = None) -> str:
    """The bearer token of the internal worker principal."""
    if override:
        return override
    return _read_or_create(
        settings.state_dir / WORKER_TOKEN_FILE, lambda: "gxw_" + secrets.token_urlsafe(32)
    )
