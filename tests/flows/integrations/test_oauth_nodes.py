"""Nodes that take a token accept an OAuth 2.0 connection: its access token goes as the bearer
token, and a 401 makes one refresh (flows.oauth, stubbed here: tests/api/test_oauth.py runs the
real one against the local provider) and one retry with the new token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from blocks.types import OAuth2Connection
from flows import oauth
from flows.errors import IntegrationError
from flows.nodes.github import GitHubCreateIssue
from flows.nodes.jira import JiraCreateIssue
from flows.nodes.slack import SlackSendMessage
from tests.flows.integrations.conftest import NodeTestContext
from tests.flows.integrations.peers import GitHubPeer, JiraPeer, SlackPeer


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubPeer]:
    peer = GitHubPeer().start()
    yield peer
    peer.stop()


def _connection(peer: GitHubPeer, token: str) -> OAuth2Connection:
    return OAuth2Connection(
        provider="github",
        client_id="app",
        client_secret="app-secret",
        base_url=peer.url,
        access_token=token,
        status="connected",
    )


@pytest.fixture
def refreshes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each refresh the node asks for, answered with the token the peer accepts."""
    asked: list[str] = []

    async def refresh(block: Any, *, tenant_id: str | None, name: str, flow_run_id: str | None = None) -> bool:
        asked.append(name)
        block.access_token = SecretStr(GitHubPeer.TOKEN)
        return True

    monkeypatch.setattr(oauth, "refresh_rejected", refresh)
    return asked


async def test_github_takes_an_oauth_connection(github: GitHubPeer, refreshes: list[str]) -> None:
    ctx = NodeTestContext({"gh": _connection(github, GitHubPeer.TOKEN)})
    issue = await GitHubCreateIssue().run(
        GitHubCreateIssue.Config(credential="gh", repository="acme/api", title="t"), ctx
    )
    assert issue["number"] >= 1 and refreshes == []


async def test_a_401_refreshes_once_and_retries(github: GitHubPeer, refreshes: list[str]) -> None:
    ctx = NodeTestContext({"gh": _connection(github, "gho_expired_token")})
    before = len(github.requests)
    issue = await GitHubCreateIssue().run(
        GitHubCreateIssue.Config(credential="gh", repository="acme/api", title="t"), ctx
    )
    assert issue["number"] >= 1
    assert refreshes == ["gh"]
    sent = [r.headers["authorization"] for r in github.requests[before:]]
    assert sent == ["Bearer gho_expired_token", f"Bearer {GitHubPeer.TOKEN}"]


async def test_a_second_401_fails(github: GitHubPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def refresh(block: Any, *, tenant_id: str | None, name: str, flow_run_id: str | None = None) -> bool:
        calls.append(name)
        block.access_token = SecretStr("gho_still_refused")
        return True

    monkeypatch.setattr(oauth, "refresh_rejected", refresh)
    ctx = NodeTestContext({"gh": _connection(github, "gho_expired_token")})
    with pytest.raises(IntegrationError) as info:
        await GitHubCreateIssue().run(GitHubCreateIssue.Config(credential="gh", repository="acme/api", title="t"), ctx)
    assert info.value.status == 401 and calls == ["gh"]
    assert "gho_still_refused" not in str(info.value)


async def test_slack_refreshes_once_when_the_token_is_refused(
    slack_peer: SlackPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    async def refresh(block: Any, *, tenant_id: str | None, name: str, flow_run_id: str | None = None) -> bool:
        asked.append(name)
        block.access_token = SecretStr(SlackPeer.TOKEN)
        return True

    monkeypatch.setattr(oauth, "refresh_rejected", refresh)
    connection = OAuth2Connection(
        provider="slack", client_id="app", client_secret="s", access_token="xoxe-expired", status="connected"
    )
    ctx = NodeTestContext({"team": connection})
    sent = await SlackSendMessage().run(SlackSendMessage.Config(credential="team", channel="C0DEPLOY", text="hi"), ctx)
    assert sent["ts"] and asked == ["team"]


JIRA_OAUTH_TOKEN = "jira-oauth-access-token-7"


@pytest.fixture(scope="module")
def jira_oauth() -> Iterator[JiraPeer]:
    """Jira that takes an OAuth 2.0 bearer token (no Basic auth)."""
    peer = JiraPeer()
    peer.auth = f"Bearer {JIRA_OAUTH_TOKEN}"
    peer.start()
    yield peer
    peer.stop()


async def test_jira_takes_an_oauth_connection_and_refreshes_once_on_a_401(
    jira_oauth: JiraPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    async def refresh(block: Any, *, tenant_id: str | None, name: str, flow_run_id: str | None = None) -> bool:
        asked.append(name)
        block.access_token = SecretStr(JIRA_OAUTH_TOKEN)
        return True

    monkeypatch.setattr(oauth, "refresh_rejected", refresh)
    connection = OAuth2Connection(
        provider="generic",
        client_id="app",
        client_secret="s",
        authorize_url="https://auth.atlassian.example/authorize",
        token_url="https://auth.atlassian.example/oauth/token",
        base_url=jira_oauth.url,
        access_token="jira-expired-token",
        status="connected",
    )
    ctx = NodeTestContext({"atlassian": connection})
    config = JiraCreateIssue.Config(credential="atlassian", project="OPS", summary="disk full")
    before = len(jira_oauth.requests)
    issue = await JiraCreateIssue().run(config, ctx)
    assert issue["key"].startswith("OPS-") and asked == ["atlassian"]
    sent = [r.headers["authorization"] for r in jira_oauth.requests[before:]]
    assert sent == ["Bearer jira-expired-token", f"Bearer {JIRA_OAUTH_TOKEN}"]
    assert jira_oauth.created[-1]["summary"] == "disk full"
