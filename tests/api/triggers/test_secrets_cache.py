"""Signing secrets: a known secret never waits for Prefect; reads are bounded and refreshed."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.webhooks.secrets_cache import UNKNOWN_STAMP, SecretCache, SecretUnavailable


class Store(SecretCache):
    """A cache whose credential store is a dict; ``down`` makes every read hang like a client
    retrying an unreachable Prefect, ``error`` makes it fail."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.secrets = {"hook": "whsec_one"}
        self.down = False
        self.error: Exception | None = None
        self.reads = 0

    async def _load(self, tenant_id: str, name: str) -> tuple[str, ...]:
        self.reads += 1
        if self.down:
            await asyncio.sleep(3600)
        if self.error is not None:
            raise self.error
        if name not in self.secrets:
            raise SecretUnavailable(f"credential {name!r} is not a webhook secret")
        return (self.secrets[name],)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_known_secret_is_answered_at_once_while_prefect_is_down() -> None:
    cache = Store(ttl=0.05, load_timeout=30)
    assert (await cache.get("t", "hook")).values[0] == "whsec_one"
    await cache.get("t", "hook")
    assert cache.reads == 1  # fresh: not read again
    cache.down = True
    await asyncio.sleep(0.06)
    started = time.monotonic()
    for _ in range(100):  # every delivery of a burst, past the ttl, Prefect hanging
        assert (await cache.get("t", "hook")).values[0] == "whsec_one"
    assert time.monotonic() - started < 0.5
    await _settle()
    assert cache.reads == 2  # one refresh in the background, not one per request
    cache.down = False
    cache.forget("t", "hook")  # drops the hanging refresh with the value
    cache.secrets["hook"] = "whsec_two"
    assert (await cache.get("t", "hook")).values[0] == "whsec_two"


async def test_a_refresh_brings_the_new_value_and_a_failed_one_keeps_the_old_for_a_while() -> None:
    cache = Store(ttl=0.05, retry_after=0.2)
    assert (await cache.get("t", "hook")).values[0] == "whsec_one"
    cache.secrets["hook"] = "whsec_two"
    await asyncio.sleep(0.06)
    assert (await cache.get("t", "hook")).values[0] == "whsec_one"  # stale, refreshing
    await _settle()
    assert (await cache.get("t", "hook")).values[0] == "whsec_two"
    cache.error = ConnectionError("prefect is down")
    await asyncio.sleep(0.06)
    reads = cache.reads
    for _ in range(20):
        assert (await cache.get("t", "hook")).values[0] == "whsec_two"
        await _settle()
    assert cache.reads == reads + 1  # the failed refresh is not retried on every request
    await asyncio.sleep(0.25)
    await cache.get("t", "hook")
    await _settle()
    assert cache.reads == reads + 2  # ... but after retry_after


async def test_the_first_read_is_bounded_and_says_why() -> None:
    cache = Store(load_timeout=0.2)
    cache.down = True
    started = time.monotonic()
    with pytest.raises(SecretUnavailable, match="'hook' cannot be read: TimeoutError"):
        await cache.get("t", "hook")
    assert time.monotonic() - started < 2
    cache.down = False
    assert (await cache.get("t", "hook")).values[0] == "whsec_one"


async def test_a_credential_that_is_no_longer_a_webhook_secret_stops_verifying() -> None:
    cache = Store(ttl=0.05)
    assert (await cache.get("t", "hook")).values[0] == "whsec_one"
    del cache.secrets["hook"]
    await asyncio.sleep(0.06)
    await cache.get("t", "hook")  # the last use of the old value, while it is checked
    await _settle()
    with pytest.raises(SecretUnavailable, match="not a webhook secret"):
        await cache.get("t", "hook")


async def test_forget_during_a_refresh_keeps_the_old_value_out() -> None:
    cache = Store(ttl=0.05)
    assert (await cache.get("t", "hook")).values[0] == "whsec_one"
    cache.down = True
    await asyncio.sleep(0.06)
    await cache.get("t", "hook")  # a refresh starts and hangs
    cache.forget("t", "hook")  # the credential changed meanwhile
    cache.down = False
    cache.secrets["hook"] = "whsec_rotated"
    await _settle()
    assert (await cache.get("t", "hook")).values[0] == "whsec_rotated"


class Stamps:
    """The credential's change stamp as the database holds it."""

    def __init__(self) -> None:
        self.current: str | None = "s1"
        self.reads = 0

    async def read(self) -> str | None:
        self.reads += 1
        return self.current


async def test_a_recheck_reads_the_secret_again_only_when_its_stamp_changed() -> None:
    cache, stamps = Store(), Stamps()
    first = await cache.get("t", "hook", read_stamp=stamps.read)
    assert (first.values, first.stamp, cache.reads) == (("whsec_one",), "s1", 1)
    # A recheck with the same stamp (the webhook changed, not its secret): no read of Prefect.
    assert await cache.get("t", "hook", read_stamp=stamps.read, recheck=True) is first
    assert cache.reads == 1
    cache.secrets["hook"], stamps.current = "whsec_two", "s2"
    assert (await cache.get("t", "hook", read_stamp=stamps.read)).values[0] == "whsec_one"  # cached
    # Many deliveries found their stamp outdated at once: the secret is read once.
    again = await asyncio.gather(*(cache.get("t", "hook", read_stamp=stamps.read, recheck=True) for _ in range(10)))
    assert {(s.values, s.stamp) for s in again} == {(("whsec_two",), "s2")}
    assert cache.reads == 2


async def test_a_secret_read_without_its_stamp_is_never_taken_for_current() -> None:
    cache, stamps = Store(), Stamps()
    unknown = await cache.get("t", "hook")
    assert unknown.stamp == UNKNOWN_STAMP != stamps.current
    rechecked = await cache.get("t", "hook", read_stamp=stamps.read, recheck=True)
    assert (rechecked.stamp, cache.reads) == ("s1", 2)


async def test_a_refresh_that_read_before_a_change_does_not_overwrite_the_new_value() -> None:
    cache, stamps = Store(ttl=0.05), Stamps()
    await cache.get("t", "hook", read_stamp=stamps.read)
    cache.down = True
    await asyncio.sleep(0.06)
    await cache.get("t", "hook")  # a background refresh starts and hangs, holding the old value
    cache.down = False
    cache.secrets["hook"], stamps.current = "whsec_two", "s2"
    fresh = await cache.get("t", "hook", read_stamp=stamps.read, recheck=True)
    assert (fresh.values, fresh.stamp) == (("whsec_two",), "s2")
    await _settle()
    assert (await cache.get("t", "hook")) is fresh


async def test_a_credential_deleted_outside_the_api_stops_verifying_at_the_next_refresh() -> None:
    from blocks.errors import CredentialNotFound

    cache = Store(ttl=0.05)
    await cache.get("t", "hook")
    cache.error = CredentialNotFound("credential 'hook' not found in tenant 't'")
    await asyncio.sleep(0.06)
    await cache.get("t", "hook")  # the last use of the old value, while it is checked
    await _settle()
    with pytest.raises(SecretUnavailable, match="cannot be read: CredentialNotFound"):
        await cache.get("t", "hook")


async def test_an_outdated_secret_that_cannot_be_read_again_is_not_used_again() -> None:
    cache, stamps = Store(), Stamps()
    await cache.get("t", "hook", read_stamp=stamps.read)
    stamps.current, cache.error = "s2", ConnectionError("prefect is down")
    with pytest.raises(SecretUnavailable):
        await cache.get("t", "hook", read_stamp=stamps.read, recheck=True)
    with pytest.raises(SecretUnavailable):  # not the outdated value, silently
        await cache.get("t", "hook", read_stamp=stamps.read)
