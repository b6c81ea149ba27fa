"""The Redis relay of draft updates between API replicas (pub/sub, one channel per workflow).

A replica publishes every update it persisted to ``gorax:collab:<tenant>:<workflow>``, prefixed
with its own id so it skips its own messages; the replicas with that workflow's room open apply
it. Pub/sub drops what arrives while a subscriber is disconnected, so after every reconnect the
relay calls ``on_resync`` and the rooms catch up from the database, the source of truth.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger("gorax.collab")

CHANNEL_PREFIX = "gorax:collab:"

#: Called with (tenant id, workflow id, update) for every update another replica published.
UpdateHandler = Callable[[str, str, bytes], None]
#: Called after the relay (re)subscribed: updates published meanwhile were not received.
ResyncHandler = Callable[[], Awaitable[None]]


def channel_of(tenant_id: str, workflow_id: str) -> str:
    """The pub/sub channel of one workflow's draft."""
    return f"{CHANNEL_PREFIX}{tenant_id}:{workflow_id}"


class RedisRelay:
    """Publishes this replica's draft updates and hands other replicas' ones to ``on_update``."""

    def __init__(
        self, url: str, on_update: UpdateHandler, on_resync: ResyncHandler, *, retry_seconds: float = 0.5
    ) -> None:
        self._redis = redis.from_url(url)
        self._on_update = on_update
        self._on_resync = on_resync
        self._retry_seconds = retry_seconds
        #: This replica's id: the prefix of what it publishes.
        self.origin = uuid.uuid4().bytes
        self._channels: set[str] = set()
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        #: Channels whose subscription Redis confirmed, by channel.
        self._confirmed: dict[str, asyncio.Event] = {}
        self._resyncs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        for task in (self._task, *self._resyncs):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._task, *self._resyncs) if t is not None), return_exceptions=True)
        await self._close_pubsub()
        await self._redis.aclose()

    async def subscribe(self, tenant_id: str, workflow_id: str, *, timeout: float = 2.0) -> None:
        """Receive the workflow's updates from when this returns (while Redis is down: once it
        is back, followed by a resync)."""
        channel = channel_of(tenant_id, workflow_id)
        self._channels.add(channel)
        if self._pubsub is None or not self._connected.is_set():
            return
        confirmed = self._confirmed.setdefault(channel, asyncio.Event())
        try:
            await self._pubsub.subscribe(channel)
            # Redis confirms once the subscription is active: whatever is published after it
            # reaches us, so the caller's database read that follows misses nothing.
            await asyncio.wait_for(confirmed.wait(), timeout)
        except (TimeoutError, RedisError, OSError) as exc:
            # The listener reconnects, subscribes every channel again and resyncs the rooms.
            log.warning("subscribing to draft updates failed", extra={"channel": channel, "error": repr(exc)})

    async def unsubscribe(self, tenant_id: str, workflow_id: str) -> None:
        channel = channel_of(tenant_id, workflow_id)
        self._channels.discard(channel)
        self._confirmed.pop(channel, None)
        if self._pubsub is not None and self._connected.is_set():
            try:
                await self._pubsub.unsubscribe(channel)
            except (RedisError, OSError):
                pass

    async def publish(self, tenant_id: str, workflow_id: str, update: bytes) -> None:
        """Send an update (already in the database) to the other replicas; a failure only
        delays them until they read the database again."""
        try:
            await self._redis.publish(channel_of(tenant_id, workflow_id), self.origin + update)
        except (RedisError, OSError) as exc:
            log.warning("relaying a draft update failed", extra={"workflow_id": workflow_id, "error": repr(exc)})

    async def _close_pubsub(self) -> None:
        self._connected.clear()
        self._confirmed.clear()
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except (RedisError, OSError):
                pass
            self._pubsub = None

    async def _listen(self) -> None:
        delay = self._retry_seconds
        while True:
            try:
                self._pubsub = self._redis.pubsub()
                # A channel is needed before listening; this one also shows the link is up.
                await self._pubsub.subscribe(f"{CHANNEL_PREFIX}replica:{self.origin.hex()}")
                if self._channels:
                    await self._pubsub.subscribe(*self._channels)
                if self._pubsub.connection is not None:
                    self._pubsub.connection.register_connect_callback(self._reconnected)
                self._connected.set()
                delay = self._retry_seconds
                await self._on_resync()
                while True:
                    message = await self._pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    if message.get("type") == "message":
                        self._dispatch(message["channel"], message["data"])
                    elif message.get("type") == "subscribe":
                        self._confirm(message["channel"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("the draft relay lost Redis; reconnecting", extra={"error": repr(exc)})
            except Exception:
                log.exception("the draft relay failed; reconnecting")
            await self._close_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _reconnected(self, _connection: object) -> None:
        # redis-py reconnects a subscription by itself and subscribes again (its own callback
        # runs before this one): whatever was published meanwhile never reaches us.
        log.info("the draft relay reconnected to Redis; catching up from the database")
        self._confirmed.clear()
        task = asyncio.get_running_loop().create_task(self._resync_when_subscribed(set(self._channels)))
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def _resync_when_subscribed(self, channels: set[str]) -> None:
        events = [self._confirmed.setdefault(channel, asyncio.Event()) for channel in channels]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 5)
        except TimeoutError:
            log.warning("the draft relay's subscriptions were not confirmed; catching up anyway")
        await self._on_resync()

    def _confirm(self, channel: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        self._confirmed.setdefault(name, asyncio.Event()).set()

    def _dispatch(self, channel: bytes | str, data: bytes) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        if not name.startswith(CHANNEL_PREFIX) or len(data) < len(self.origin):
            return
        if data[: len(self.origin)] == self.origin:
            return  # our own update, already in our room
        tenant_id, _, workflow_id = name[len(CHANNEL_PREFIX) :].partition(":")
        self._on_update(tenant_id, workflow_id, data[len(self.origin) :])
