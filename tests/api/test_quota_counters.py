"""Per-tenant quota counters of the rate limiter, in memory and in Redis (shared by replicas)."""

from __future__ import annotations

import uuid

import pytest

from api.ratelimit import RateLimiter
from tests.api.conftest import api_settings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("redis_url", [None, REDIS_URL], ids=["memory", "redis"])
async def test_a_tenant_quota_counts_per_subject_and_reports_its_use(redis_url: str | None) -> None:
    replicas = [RateLimiter(api_settings(), redis_url) for _ in range(2 if redis_url else 1)]
    tenant, other = f"tenant:{uuid.uuid4()}", f"tenant:{uuid.uuid4()}"
    try:
        decisions = [await replicas[i % len(replicas)].hit_quota("q", tenant, 2) for i in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert decisions[2].remaining == 0 and decisions[2].limit == 2
        assert "Retry-After" in decisions[2].headers()
        used, reset = await replicas[-1].quota_used("q", tenant)
        assert used == 3 and reset == decisions[2].reset
        assert (await replicas[0].quota_used("q", other))[0] == 0
        assert (await replicas[0].hit_quota("q", other, 2)).allowed
    finally:
        for limiter in replicas:
            await limiter.close()
