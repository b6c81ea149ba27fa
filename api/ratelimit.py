"""Fixed-window rate limits per tenant (or client address) and route class (PRD appendix D).

In-process counters by default; with ``GORAX_REDIS_URL`` the counters live in Redis so every
API replica shares them. Callers get a :class:`Decision` whose numbers become the
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` headers.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Protocol

from api.config import ApiSettings

# Most specific first; the first match names the class of a path.
_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("execute", re.compile(r"^/api/v1/workflows/[^/]+/execute/?$")),
    ("credentials", re.compile(r"^/api/v1/credentials(/.*)?$")),
    ("auth", re.compile(r"^/api/v1/auth/(login|refresh|invitations/accept|mfa(/.*)?|sso/.+)/?$")),
    ("webhook", re.compile(r"^/webhook/")),
    ("mcp", re.compile(r"^/mcp/?$")),
    ("api", re.compile(r"^/api/v1/")),
)


def route_class(path: str) -> str | None:
    """The rate-limit class of a request path (None: not limited)."""
    for name, pattern in _CLASSES:
        if pattern.match(path):
            return name
    return None


@dataclass(frozen=True)
class Decision:
    """The outcome of counting one request."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends
    name: str = ""  # which limit counted it: ``rate_limit_<class>`` or a quota's name
    window: int = 60  # seconds of one window

    def headers(self) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers (plus ``Retry-After`` when refused)."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset - int(time.time())))
        return headers


class _Store(Protocol):
    async def incr(self, key: str, window: int) -> int: ...
    async def get(self, key: str) -> int: ...
    async def close(self) -> None: ...


class MemoryStore:
    """Counters in this process (the embedded single-process default)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def incr(self, key: str, window: int) -> int:
        async with self._lock:
            now_window = int(time.time()) // window
            if len(self._counts) > 10_000:
                # Drop finished windows so memory stays bounded.
                self._counts = {k: v for k, v in self._counts.items() if k.endswith(f":{now_window}")}
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    async def get(self, key: str) -> int:
        return self._counts.get(key, 0)

    async def close(self) -> None:
        return None


class RedisStore:
    """Counters in Redis, shared by every API replica."""

    def __init__(self, url: str) -> None:
        # Only deployments with several API replicas configure Redis: its client loads on first use.
        import redis.asyncio as redis  # noqa: PLC0415

        self._redis = redis.from_url(url)

    async def incr(self, key: str, window: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window + 1)
            count, _ = await pipe.execute()
        return int(count)

    async def get(self, key: str) -> int:
        value = await self._redis.get(key)
        return int(value) if value is not None else 0

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    """Counts requests per (subject, class) in fixed windows."""

    def __init__(self, config: ApiSettings, redis_url: str | None = None) -> None:
        self.window = config.rate_limit_window_seconds
        self.limits = {
            "api": config.rate_limit_api,
            "execute": config.rate_limit_execute,
            "credentials": config.rate_limit_credentials,
            "webhook": config.rate_limit_webhook,
            "auth": config.rate_limit_auth,
            "mcp": config.rate_limit_mcp,
        }
        self.store: _Store = RedisStore(redis_url) if redis_url else MemoryStore()

    async def hit(self, subject: str, path: str) -> Decision | None:
        """Count a request by ``subject`` (``tenant:<id>`` or ``ip:<addr>``) to ``path``."""
        klass = route_class(path)
        if klass is None:
            return None
        return await self.hit_class(subject, klass)

    async def hit_class(self, subject: str, klass: str) -> Decision:
        """Count a request by ``subject`` against route class ``klass`` (e.g. an MCP tool call
        is an execution: it counts against ``execute`` like ``POST /workflows/{id}/execute``)."""
        limit = self.limits[klass]
        window_index = int(time.time()) // self.window
        count = await self.store.incr(f"gorax:rl:{klass}:{subject}:{window_index}", self.window)
        return Decision(
            allowed=count <= limit,
            limit=limit,
            remaining=max(0, limit - count),
            reset=(window_index + 1) * self.window,
            name=f"rate_limit_{klass}",
            window=self.window,
        )

    async def hit_quota(self, name: str, subject: str, limit: int, window: int = 60) -> Decision:
        """Count a request against a per-subject quota ``name`` of ``limit`` per ``window`` seconds
        (a tenant's own limit, unlike the route classes' one limit for every subject)."""
        window_index = int(time.time()) // window
        count = await self.store.incr(f"gorax:quota:{name}:{subject}:{window_index}", window)
        return Decision(
            allowed=count <= limit,
            limit=limit,
            remaining=max(0, limit - count),
            reset=(window_index + 1) * window,
            name=name,
            window=window,
        )

    async def quota_used(self, name: str, subject: str, window: int = 60) -> tuple[int, int]:
        """Requests counted against quota ``name`` in the current window, and when it ends."""
        window_index = int(time.time()) // window
        return await self.store.get(f"gorax:quota:{name}:{subject}:{window_index}"), (window_index + 1) * window

    async def close(self) -> None:
        """Release the Redis connection, if any."""
        await self.store.close()
