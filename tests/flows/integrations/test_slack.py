"""Slack node types against a Slack-compatible loopback server."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret
from prefect_slack import SlackCredentials

from flows.errors import IntegrationError
from flows.nodes.slack import SlackAddReaction, SlackSendDm, SlackSendMessage, SlackUpdateMessage
from tests.flows.integrations.conftest import NodeTestContext
from tests.flows.integrations.peers import SlackPeer


def _ctx(token: str = SlackPeer.TOKEN) -> NodeTestContext:
    return NodeTestContext({"team_slack": SlackCredentials(token=token)})


async def test_send_message_update_and_react(slack_peer: SlackPeer) -> None:
    ctx = _ctx()
    sent = await SlackSendMessage().run(
        SlackSendMessage.Config(
            credential="team_slack",
            channel="#deployments",
            text="shipped v1",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*v1*"}}],
        ),
        ctx,
    )
    assert sent["channel"] == "C0DEPLOY" and sent["ts"]
    assert slack_peer.messages[0]["text"] == "shipped v1"
    assert slack_peer.messages[0]["blocks"][0]["type"] == "section"

    updated = await SlackUpdateMessage().run(
        SlackUpdateMessage.Config(credential="team_slack", channel="C0DEPLOY", ts=sent["ts"], text="shipped v2"),
        ctx,
    )
    assert updated["ts"] == sent["ts"] and slack_peer.messages[1]["method"] == "chat.update"

    reacted = await SlackAddReaction().run(
        SlackAddReaction.Config(credential="team_slack", channel="C0DEPLOY", ts=sent["ts"], name=":rocket:"),
        ctx,
    )
    assert reacted["name"] == "rocket"
    assert slack_peer.reactions == [{"channel": "C0DEPLOY", "timestamp": sent["ts"], "name": "rocket"}]


async def test_send_dm_by_email(slack_peer: SlackPeer) -> None:
    out = await SlackSendDm().run(
        SlackSendDm.Config(credential="team_slack", user="ana@example.com", text="your build is green"), _ctx()
    )
    assert out["user"] == "U0ANA" and out["channel"] == "D0DM"
    assert slack_peer.messages[-1]["text"] == "your build is green"


async def test_slack_error_names_call_and_reason_without_the_token(slack_peer: SlackPeer) -> None:
    with pytest.raises(IntegrationError) as info:
        await SlackSendMessage().run(
            SlackSendMessage.Config(credential="team_slack", channel="#nowhere", text="x"), _ctx()
        )
    text = str(info.value)
    assert "chat.postMessage" in text and "channel_not_found" in text
    assert SlackPeer.TOKEN not in text

    with pytest.raises(IntegrationError, match="invalid_auth") as info:
        await SlackSendMessage().run(
            SlackSendMessage.Config(credential="team_slack", channel="#deployments", text="x"),
            _ctx("xoxb-wrong-token-123"),
        )
    assert "xoxb-wrong-token-123" not in str(info.value)


async def test_wrong_credential_type_is_refused(slack_peer: SlackPeer) -> None:
    ctx = NodeTestContext({"team_slack": Secret(value="nope")})
    with pytest.raises(IntegrationError, match="takes slack-credentials"):
        await SlackSendMessage().run(
            SlackSendMessage.Config(credential="team_slack", channel="#deployments", text="x"), ctx
        )
