"""Fixtures of the flows tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest


class Resolver:
    """Stands in for DNS on the running loop: a name's answers, one per lookup (the last repeats)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answers: dict[str, list[tuple[str, ...]]] = {}
        self.asked: list[str] = []
        self._real = loop.getaddrinfo

    async def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return await self._real(host, port, *args, **kwargs)
        self.asked.append(name)
        queue = self.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(2, 1, 6, "", (address, int(port or 0))) for address in addresses]


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Resolver]:
    loop = asyncio.get_running_loop()
    fake = Resolver(loop)
    monkeypatch.setattr(loop, "getaddrinfo", fake)
    yield fake
