"""Signing secrets for verification, cached so deliveries keep verifying while Prefect is down.

Secrets live in Prefect blocks (:mod:`blocks`). Reading one per request would tie every
delivery to Prefect's availability and latency, so a secret is kept in memory with the change
stamp it was read under (:mod:`api.webhooks.credential_stamps`). The delivery writer compares
that stamp with the current one as it stores the delivery; when they differ (the credential
changed through the API, on any replica) the request is checked again with ``recheck``, which
reads the secret anew: a change takes effect at once everywhere.

A value older than ``ttl`` seconds is still used while a fresh one is read in the background (a
change made outside the API, say a block deleted in the Prefect UI, shows within ``ttl``); a
request never waits for Prefect once the secret is known (during an outage, a read that waited
would hold every delivery behind Prefect's client retries, tens of seconds each). A failed
refresh keeps the last good value and is tried again ``retry_after`` seconds later. Only a first
read, or one after a change, waits, at most ``load_timeout`` seconds. Publishing a workflow
warms the cache. Values are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from api.webhooks.credential_stamps import StampReader
from blocks.errors import CredentialNotFound, SealedValueError
from blocks.loader import load_credential
from blocks.types import WebhookSecret

log = logging.getLogger("gorax.webhooks.secrets")

#: The stamp of a value read without one: it never matches, so its first use reads it again.
UNKNOWN_STAMP = "unknown"


class SecretUnavailable(Exception):
    """The secret could not be read and no earlier value is known."""


@dataclass(frozen=True)
class SigningSecret:
    """A webhook credential's secrets (any one of them verifies) and its change stamp when it
    was read."""

    values: tuple[str, ...]
    stamp: str | None


class SecretCache:
    """Per-process cache of webhook signing secrets by (tenant id, credential name)."""

    def __init__(self, ttl: float = 60.0, *, retry_after: float = 5.0, load_timeout: float = 10.0) -> None:
        self.ttl = ttl
        self.retry_after = retry_after
        self.load_timeout = load_timeout
        self._values: dict[tuple[str, str], tuple[float, SigningSecret]] = {}  # key -> (read at, secret)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._refreshing: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def _load(self, tenant_id: str, name: str) -> tuple[str, ...]:
        block = await load_credential(name, tenant_id=tenant_id)
        if not isinstance(block, WebhookSecret):
            raise SecretUnavailable(f"credential {name!r} is not a webhook secret")
        return block.signing_secrets()

    async def _load_bounded(self, key: tuple[str, str]) -> tuple[str, ...]:
        async with asyncio.timeout(self.load_timeout):
            return await self._load(*key)

    async def get(
        self, tenant_id: str, name: str, *, read_stamp: StampReader | None = None, recheck: bool = False
    ) -> SigningSecret:
        """The secret: the cached one (refreshed in the background once older than ``ttl``),
        else read now under the stamp ``read_stamp`` gives (read first: a change between the
        two reads leaves an older stamp, which only makes the value be read again).

        With ``recheck`` (a delivery found its stamp outdated) the current stamp is read and a
        cached secret of another stamp is read anew.
        """
        key = (tenant_id, name)
        current: str | None = None
        if recheck and read_stamp is not None:
            current = await read_stamp()
        cached = self._values.get(key)
        if cached is not None and self._usable(cached[1], recheck, current):
            if time.monotonic() - cached[0] >= self.ttl and key not in self._refreshing:
                self._refreshing[key] = asyncio.get_running_loop().create_task(self._refresh(key, cached[1]))
            return cached[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._values.get(key)
            if cached is not None and self._usable(cached[1], recheck, current):
                return cached[1]  # read meanwhile by a request that waited on the same lock
            stamp = current if recheck else (await read_stamp() if read_stamp is not None else UNKNOWN_STAMP)
            self._drop_refresh(key)  # it may have read the value before the change
            try:
                value = await self._load_bounded(key)
            except Exception as exc:  # Prefect unreachable or slow, the block missing
                if recheck:  # the cached value is outdated: it must not verify anything more
                    self._values.pop(key, None)
                if isinstance(exc, SecretUnavailable):
                    raise
                raise SecretUnavailable(f"credential {name!r} cannot be read: {type(exc).__name__}") from exc
            secret = SigningSecret(value, stamp)
            self._values[key] = (time.monotonic(), secret)
            return secret

    @staticmethod
    def _usable(secret: SigningSecret, recheck: bool, current: str | None) -> bool:
        return not recheck or secret.stamp == current

    async def _refresh(self, key: tuple[str, str], old: SigningSecret) -> None:
        try:
            value = await self._load_bounded(key)
        except (SecretUnavailable, CredentialNotFound, SealedValueError):
            # Prefect answered: the credential is gone, no longer a webhook secret, or stored in
            # a form that cannot be opened. Stop using the old value.
            self._values.pop(key, None)
        except Exception as exc:
            cached = self._values.get(key)
            if cached is not None:
                log.warning("reading credential %r failed (%s); using the cached value", key[1], type(exc).__name__)
                # Tried again retry_after seconds from now, not on the next request.
                self._values[key] = (time.monotonic() - self.ttl + self.retry_after, cached[1])
        else:
            cached = self._values.get(key)
            if cached is not None and cached[1] is old:
                # The stamp stays the one read before the old value: never newer than the value.
                self._values[key] = (time.monotonic(), SigningSecret(value, old.stamp))
        finally:
            if self._refreshing.get(key) is asyncio.current_task():
                del self._refreshing[key]

    def forget(self, tenant_id: str, name: str) -> None:
        """Drop a cached value (after the credential changed); a refresh on its way is dropped
        too (it may have read the value before the change)."""
        key = (tenant_id, name)
        self._values.pop(key, None)
        self._drop_refresh(key)

    def _drop_refresh(self, key: tuple[str, str]) -> None:
        refresh = self._refreshing.pop(key, None)
        if refresh is not None:
            refresh.cancel()


secret_cache = SecretCache()
