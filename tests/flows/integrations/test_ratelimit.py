"""Per-provider rate limits on the real Prefect server's global concurrency limits."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.client.orchestration import get_client

from blocks.types import GitHubToken
from flows.errors import CircuitOpenError, IntegrationError
from flows.integrations import ensure_rate_limit, rate_limit_name
from flows.nodes.github import GitHubCreateComment
from tests.flows.integrations.conftest import NodeTestContext, set_env
from tests.flows.integrations.peers import GitHubPeer


async def test_calls_beyond_the_burst_wait_then_fail_unsent(
    prefect_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, GORAX_RATE_LIMITS="on", GORAX_RATE_LIMIT_WAIT_SECONDS="1")
    # Two slots, refilled so slowly that none comes back during the test.
    await ensure_rate_limit("github", burst=2, per_second=0.001)
    peer = GitHubPeer().start()
    try:
        ctx = NodeTestContext({"gh": GitHubToken(token=GitHubPeer.TOKEN, api_url=peer.url)})
        config = GitHubCreateComment.Config(credential="gh", repository="acme/api", issue_number=1, body="hi")
        for _ in range(2):
            await GitHubCreateComment().run(config, ctx)
        with pytest.raises(IntegrationError, match="rate limit 'gorax-rate-github' gave no slot") as info:
            await GitHubCreateComment().run(config, ctx)
        assert info.value.retryable and not isinstance(info.value, CircuitOpenError)
        assert len(peer.comments) == 2  # the third call was never sent
    finally:
        peer.stop()

        async with get_client() as client:
            await client.delete_global_concurrency_limit_by_name(rate_limit_name("github"))
