"""GitHub, Jira and PagerDuty node types against loopback peers that check their requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blocks.types import GitHubToken, JiraCredentials, PagerDutyKey
from flows.errors import CircuitOpenError, IntegrationError
from flows.nodes.github import GitHubAddLabel, GitHubCreateComment, GitHubCreateIssue
from flows.nodes.jira import JiraAddComment, JiraCreateIssue, JiraSearch, JiraTransitionIssue
from flows.nodes.pagerduty import PagerDutyAcknowledge, PagerDutyCreateIncident, PagerDutyResolve
from flows.settings import get_settings
from tests.flows.integrations.conftest import NodeTestContext, set_env
from tests.flows.integrations.peers import FailingPeer, GitHubPeer, JiraPeer, PagerDutyPeer
from tests.peers import HttpPeer, PeerResponse


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubPeer]:
    peer = GitHubPeer().start()
    yield peer
    peer.stop()


def _gh_ctx(peer_url: str, token: str = GitHubPeer.TOKEN) -> NodeTestContext:
    return NodeTestContext({"gh": GitHubToken(token=token, api_url=peer_url)})


async def test_github_issue_label_comment(github: GitHubPeer) -> None:
    ctx = _gh_ctx(github.url)
    issue = await GitHubCreateIssue().run(
        GitHubCreateIssue.Config(
            credential="gh", repository="acme/api", title="Deploy failed", body="see logs", labels=["deploy"]
        ),
        ctx,
    )
    assert issue["number"] == 1 and issue["url"].endswith("/issues/1")
    assert github.issues[1]["title"] == "Deploy failed" and github.issues[1]["body"] == "see logs"

    labels = await GitHubAddLabel().run(
        GitHubAddLabel.Config(credential="gh", repository="acme/api", issue_number=1, labels=["p1"]), ctx
    )
    assert labels["labels"] == ["deploy", "p1"]
    comment = await GitHubCreateComment().run(
        GitHubCreateComment.Config(credential="gh", repository="acme/api", issue_number=1, body="on it"), ctx
    )
    assert comment["id"] == 5001 and github.comments == [{"issue": 1, "body": "on it"}]


async def test_github_errors_carry_status_and_message_masked(github: GitHubPeer) -> None:
    with pytest.raises(IntegrationError) as info:
        await GitHubAddLabel().run(
            GitHubAddLabel.Config(credential="gh", repository="acme/api", issue_number=3, labels=["x"]),
            _gh_ctx(github.url),
        )
    assert info.value.status == 404 and "add labels" in str(info.value) and "Not Found" in str(info.value)
    with pytest.raises(IntegrationError) as info:
        await GitHubCreateIssue().run(
            GitHubCreateIssue.Config(credential="gh", repository="acme/api", title="t"),
            _gh_ctx(github.url, token="ghp_leaked_if_you_see_this"),
        )
    assert info.value.status == 401 and "Bad credentials" in str(info.value)
    assert "ghp_leaked_if_you_see_this" not in str(info.value)


async def test_jira_create_transition_comment_search() -> None:
    peer = JiraPeer().start()
    try:
        ctx = NodeTestContext(
            {"jira": JiraCredentials(base_url=peer.url, email=JiraPeer.EMAIL, api_token=JiraPeer.TOKEN)}
        )
        created = await JiraCreateIssue().run(
            JiraCreateIssue.Config(
                credential="jira",
                project="OPS",
                summary="Disk full",
                issue_type="Bug",
                labels=["infra"],
                priority="High",
            ),
            ctx,
        )
        assert created == {"id": "10001", "key": "OPS-1", "url": f"{peer.url}/browse/OPS-1"}
        assert peer.created[0]["issuetype"] == {"name": "Bug"} and peer.created[0]["priority"] == {"name": "High"}

        moved = await JiraTransitionIssue().run(
            JiraTransitionIssue.Config(credential="jira", issue="OPS-1", transition="done"), ctx
        )
        assert moved["transition_id"] == "31" and peer.transitioned == ["31"]
        with pytest.raises(IntegrationError, match="no transition 'Closed'.*Done \\(31\\)"):
            await JiraTransitionIssue().run(
                JiraTransitionIssue.Config(credential="jira", issue="OPS-1", transition="Closed"), ctx
            )

        await JiraAddComment().run(JiraAddComment.Config(credential="jira", issue="OPS-1", body="fixed"), ctx)
        assert peer.comments == ["fixed"]

        found = await JiraSearch().run(JiraSearch.Config(credential="jira", jql="project = OPS", max_results=1), ctx)
        assert found["count"] == 1 and found["issues"][0]["key"] == "OPS-1"
        assert peer.searches[0]["jql"] == "project = OPS"

        with pytest.raises(IntegrationError) as info:
            await JiraCreateIssue().run(JiraCreateIssue.Config(credential="jira", project="NOPE", summary="x"), ctx)
        assert info.value.status == 400 and "valid project is required" in str(info.value)
    finally:
        peer.stop()


async def test_pagerduty_trigger_acknowledge_resolve() -> None:
    peer = PagerDutyPeer().start()
    try:
        ctx = NodeTestContext(
            {"pd": PagerDutyKey(routing_key=PagerDutyPeer.ROUTING_KEY, api_url=f"{peer.url}/v2/enqueue")}
        )
        opened = await PagerDutyCreateIncident().run(
            PagerDutyCreateIncident.Config(
                credential="pd", summary="API down", source="api-1", severity="critical", details={"region": "eu"}
            ),
            ctx,
        )
        assert opened["status"] == "success" and opened["dedup_key"] == "dk-1"
        assert peer.events[0]["payload"]["custom_details"] == {"region": "eu"}
        for node in (PagerDutyAcknowledge, PagerDutyResolve):
            out = await node().run(node.Config(credential="pd", dedup_key=opened["dedup_key"]), ctx)
            assert out["dedup_key"] == "dk-1"
        assert [e["event_action"] for e in peer.events] == ["trigger", "acknowledge", "resolve"]

        bad = NodeTestContext(
            {"pd": PagerDutyKey(routing_key="wrong-routing-key-123", api_url=f"{peer.url}/v2/enqueue")}
        )
        with pytest.raises(IntegrationError) as info:
            await PagerDutyResolve().run(PagerDutyResolve.Config(credential="pd", dedup_key="dk-1"), bad)
        assert info.value.status == 400 and "'routing_key' is invalid" in str(info.value)
        assert "wrong-routing-key-123" not in str(info.value)
    finally:
        peer.stop()


async def test_circuit_opens_per_tenant_after_repeated_server_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, GORAX_CIRCUIT_FAILURE_THRESHOLD="3", GORAX_CIRCUIT_COOLDOWN_SECONDS="3600")
    down = FailingPeer(503, {"message": "Service Unavailable"}).start()
    try:
        config = GitHubCreateIssue.Config(credential="gh", repository="acme/api", title="t")
        acme = _gh_ctx(down.url)
        for _ in range(3):
            with pytest.raises(IntegrationError) as info:
                await GitHubCreateIssue().run(config, acme)
            assert info.value.status == 503 and info.value.retryable
        with pytest.raises(CircuitOpenError, match="circuit open for tenant 'acme'"):
            await GitHubCreateIssue().run(config, acme)
        assert len(down.requests) == 3  # the open breaker made no call
        other = NodeTestContext(acme.credentials, tenant_id="globex")
        with pytest.raises(IntegrationError) as info:
            await GitHubCreateIssue().run(config, other)
        assert not isinstance(info.value, CircuitOpenError) and len(down.requests) == 4
    finally:
        down.stop()


async def test_api_urls_at_metadata_or_unallowed_loopback_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    peer = JiraPeer().start()
    config = JiraSearch.Config(credential="jira", jql="project = OPS")
    try:
        metadata = NodeTestContext(
            {
                "jira": JiraCredentials(
                    base_url="http://169.254.169.254/latest", email=JiraPeer.EMAIL, api_token=JiraPeer.TOKEN
                )
            }
        )
        with pytest.raises(IntegrationError, match="API URL refused.*169.254.169.254"):
            await JiraSearch().run(config, metadata)

        monkeypatch.setenv("GORAX_HTTP_ALLOWED_NETWORKS", "")
        get_settings.cache_clear()
        loopback = NodeTestContext(
            {"jira": JiraCredentials(base_url=peer.url, email=JiraPeer.EMAIL, api_token=JiraPeer.TOKEN)}
        )
        with pytest.raises(IntegrationError, match="API URL refused.*127.0.0.1"):
            await JiraSearch().run(config, loopback)
        assert peer.requests == []
    finally:
        get_settings.cache_clear()  # re-read after monkeypatch restores the variable
        peer.stop()


async def test_github_rate_limit_403_is_retryable() -> None:
    peer = HttpPeer().start()
    peer.route(
        "POST",
        "/repos/acme/api/issues",
        PeerResponse(403, {"message": "API rate limit exceeded"}, headers={"x-ratelimit-remaining": "0"}),
    )
    try:
        with pytest.raises(IntegrationError, match="API rate limit exceeded") as info:
            await GitHubCreateIssue().run(
                GitHubCreateIssue.Config(credential="gh", repository="acme/api", title="t"), _gh_ctx(peer.url)
            )
        assert info.value.status == 403 and info.value.retryable
    finally:
        peer.stop()
