"""Signing secrets for verification, cached so deliveries keep verifying while Prefect is down.

Secrets live in Prefect blocks (:mod:`blocks`). Reading one per request would tie every
delivery to Prefect's availability and latency, so a secret is kept in memory for
``ttl`` seconds and its last good value is used when Prefect cannot be reached. Publishing a
workflow warms the cache. Values are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("gorax.webhooks.secrets")


class SecretUnavailable(Exception):
    """The secret could not be read and no earlier value is known."""


class SecretCache:
    """Per-process cache of webhook signing secrets by (tenant id, credential name)."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._values: dict[tuple[str, str], tuple[float, str]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def _load(self, tenant_id: str, name: str) -> str:
        from blocks.loader import load_credential

        block = await load_credential(name, tenant_id=tenant_id)
        secret = getattr(block, "secret", None)
        if secret is None:
            raise SecretUnavailable(f"credential {name!r} is not a webhook secret")
        return secret.get_secret_value()

    async def get(self, tenant_id: str, name: str) -> str:
        """The secret's value (fresh within ``ttl``, else reloaded, else the last good one)."""
        key = (tenant_id, name)
        cached = self._values.get(key)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._values.get(key)
            if cached and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            try:
                value = await self._load(tenant_id, name)
            except SecretUnavailable:
                raise
            except Exception as exc:
                if cached:
                    log.warning("reading credential %r failed (%s); using the cached value",
                                name, type(exc).__name__)
                    return cached[1]
                raise SecretUnavailable(
                    f"credential {name!r} cannot be read: {type(exc).__name__}") from exc
            self._values[key] = (time.monotonic(), value)
            return value

    def forget(self, tenant_id: str, name: str) -> None:
        """Drop a cached value (after the credential changed)."""
        self._values.pop((tenant_id, name), None)


secret_cache = SecretCache()
