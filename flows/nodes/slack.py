"""Slack node types (slack_sdk's async client): send a message or a DM, react, edit a message.

The credential is prefect-slack's ``SlackCredentials`` (a bot token). The API root is
``GORAX_SLACK_API_URL`` when set (Slack-compatible servers, tests), else Slack's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import Field, model_validator

from flows.errors import IntegrationError
from flows.integrations import check_endpoint, guarded, provider_message
from flows.integrations import credentials as creds
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType, block_name

_SLACK_API = "https://slack.com/api/"


#: Slack's errors for a token it no longer takes (it answers them with HTTP 200 and ``ok: false``).
_TOKEN_REFUSED = frozenset({"token_expired", "invalid_auth", "token_revoked"})


class _SlackNode(NodeType):
    category = "slack"
    credential_types = ("slack-credentials", "oauth2-connection")

    async def _call(self, ctx: NodeContext, credential: str, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call one Slack Web API method; Slack's ``ok: false`` becomes an IntegrationError."""
        # slack_sdk's async client costs about half a second to import; only Slack nodes need it.
        from slack_sdk.errors import SlackApiError  # noqa: PLC0415
        from slack_sdk.web.async_client import AsyncWebClient  # noqa: PLC0415

        block = await creds.load(ctx, credential, "slack", self.credential_types)
        base = creds.api_base(block, "slack", _SLACK_API)
        await check_endpoint(base, "slack", method)
        for attempt in (1, 2):
            token = creds.required(block, "slack", credential, "token")
            client = AsyncWebClient(token=token, base_url=base.rstrip("/") + "/", timeout=30)
            try:
                async with guarded("slack", method, tenant=ctx.tenant_id, secrets=[token]):
                    try:
                        response = await client.api_call(method, **kwargs)
                    except SlackApiError as exc:
                        status = exc.response.status_code
                        raise IntegrationError(
                            "slack",
                            method,
                            "Slack refused the call",
                            status=status,
                            provider_message=provider_message(exc.response.data),
                            retryable=status >= 500 or status == 429,
                        ) from None
                break
            except IntegrationError as exc:
                # An OAuth connection's token Slack no longer takes: refreshed once, called once more.
                refused = exc.status == 401 or exc.provider_message in _TOKEN_REFUSED
                if attempt == 2 or not refused or not await creds.refresh_rejected(ctx, credential, block):
                    raise
        # Web API methods answer JSON; slack_sdk types ``data`` as bytes too for file downloads.
        return dict(cast(dict[str, Any], response.data))


_EJECT_HELPER = '''def slack_call(credential: str, method: str, **arguments: Any) -> dict[str, Any]:
    """Call a Slack Web API method with the bot token of a SlackCredentials Block."""
    token = SlackCredentials.load(credential).token.get_secret_value()
    base_url = os.environ.get("SLACK_API_URL", "https://slack.com/api/")
    client = WebClient(token=token, base_url=base_url)
    return dict(client.api_call(method, **arguments).data)'''
_EJECT_CONTENT = 'content = {k: config[k] for k in ("text", "blocks") if config.get(k) is not None}\n'
_EJECT_OUTPUT = (
    'output = {"channel": data.get("channel"), "ts": data.get("ts")}\n'
    'return {**output, "message": data.get("message")}\n'
)


def _ejected(config: Mapping[str, Any], body: str) -> Ejected:
    """A Slack node as plain code: slack_sdk with a prefect-slack SlackCredentials Block."""
    return Ejected(
        body=body,
        imports=("import os", "from prefect_slack import SlackCredentials", "from slack_sdk import WebClient"),
        helpers=(_EJECT_HELPER,),
        blocks=(("SlackCredentials", block_name(str(config.get("credential"))), "the bot token (prefect-slack)"),),
        notes=("SLACK_API_URL, when set, replaces https://slack.com/api/ (a Slack-compatible server).",),
    )


class _MessageContent(NodeConfig):
    credential: str = Field(
        min_length=1, description="Name of the Slack credential (bot token) or Slack OAuth connection."
    )
    text: str | None = Field(default=None, description="Message text (fallback text when blocks are set).")
    blocks: list[dict[str, Any]] | None = Field(default=None, description="Block Kit blocks.")

    @model_validator(mode="after")
    def _has_content(self) -> _MessageContent:
        if not self.text and not self.blocks:
            raise ValueError("set 'text' or 'blocks'")
        return self

    def content(self) -> dict[str, Any]:
        return {k: v for k, v in (("text", self.text), ("blocks", self.blocks)) if v is not None}


def _message_output(data: dict[str, Any]) -> dict[str, Any]:
    return {"channel": data.get("channel"), "ts": data.get("ts"), "message": data.get("message")}


class SlackSendMessage(_SlackNode):
    type = "slack.send_message"
    version = 1
    display_name = "Send Slack message"
    description = "Post a message (text or Block Kit blocks) to a Slack channel or thread."
    icon = "chat"
    example = {"credential": "slack", "channel": "#ops", "text": "Deploy {{ trigger.version }} finished"}

    class Config(_MessageContent):
        channel: str = Field(min_length=1, description="Channel name ('#deployments') or id.")
        thread_ts: str | None = Field(default=None, description="Reply in this thread (its ts).")

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """Post with ``chat.postMessage``."""
        return _ejected(
            config,
            _EJECT_CONTENT
            + 'extra = {"thread_ts": config["thread_ts"]} if config.get("thread_ts") else {}\n'
            + 'message = {"channel": config["channel"], **content, **extra}\n'
            + 'data = slack_call(config["credential"], "chat.postMessage", json=message)\n'
            + _EJECT_OUTPUT,
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{channel, ts, message}`` of the posted message."""
        extra = {"thread_ts": config.thread_ts} if config.thread_ts else {}
        data = await self._call(
            ctx,
            config.credential,
            "chat.postMessage",
            json={"channel": config.channel, **config.content(), **extra},
        )
        return _message_output(data)


class SlackSendDm(_SlackNode):
    type = "slack.send_dm"
    version = 1
    display_name = "Send Slack direct message"
    description = "Send a direct message to one user, by user id or e-mail address."
    icon = "chat"
    example = {"credential": "slack", "user": "U0123", "text": "Your report is ready"}

    class Config(_MessageContent):
        user: str = Field(min_length=1, description="Slack user id ('U024BE7LH') or the user's e-mail address.")

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """Look the user up, open the DM, post."""
        return _ejected(
            config,
            _EJECT_CONTENT
            + 'user = config["user"]\n'
            + 'if "@" in user:\n'
            + '    lookup = {"http_verb": "GET", "params": {"email": user}}\n'
            + '    found = slack_call(config["credential"], "users.lookupByEmail", **lookup)\n'
            + '    user = found["user"]["id"]\n'
            + 'where = {"users": user}\n'
            + 'opened = slack_call(config["credential"], "conversations.open", params=where)\n'
            + 'message = {"channel": opened["channel"]["id"], **content}\n'
            + 'data = slack_call(config["credential"], "chat.postMessage", json=message)\n'
            + 'output = {"channel": data.get("channel"), "ts": data.get("ts")}\n'
            + 'return {**output, "message": data.get("message"), "user": user}\n',
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Opens (or reuses) the DM conversation, then posts. Output: ``{channel, ts, message, user}``."""
        user = config.user
        if "@" in user:
            found = await self._call(
                ctx, config.credential, "users.lookupByEmail", http_verb="GET", params={"email": user}
            )
            user = found["user"]["id"]
        opened = await self._call(ctx, config.credential, "conversations.open", params={"users": user})
        channel = opened["channel"]["id"]
        data = await self._call(
            ctx, config.credential, "chat.postMessage", json={"channel": channel, **config.content()}
        )
        return {**_message_output(data), "user": user}


class SlackAddReaction(_SlackNode):
    type = "slack.add_reaction"
    version = 1
    display_name = "Add Slack reaction"
    description = "Add an emoji reaction to a message."
    icon = "chat"
    example = {"credential": "slack", "channel": "C0123", "ts": "{{ steps.post.ts }}", "name": "white_check_mark"}

    class Config(NodeConfig):
        credential: str = Field(
            min_length=1, description="Name of the Slack credential (bot token) or Slack OAuth connection."
        )
        channel: str = Field(min_length=1, description="Channel id of the message.")
        ts: str = Field(min_length=1, description="Timestamp (ts) of the message, e.g. from slack.send_message.")
        name: str = Field(
            min_length=1, pattern=r"^:?[a-z0-9_+\-']+:?$", description="Emoji name, e.g. 'white_check_mark'."
        )

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """``reactions.add``."""
        return _ejected(
            config,
            'name = config["name"].strip(":")\n'
            + 'where = {"channel": config["channel"], "timestamp": config["ts"], "name": name}\n'
            + 'slack_call(config["credential"], "reactions.add", params=where)\n'
            + 'return {"channel": config["channel"], "ts": config["ts"], "name": name}\n',
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{channel, ts, name}``."""
        name = config.name.strip(":")
        await self._call(
            ctx,
            config.credential,
            "reactions.add",
            params={"channel": config.channel, "timestamp": config.ts, "name": name},
        )
        return {"channel": config.channel, "ts": config.ts, "name": name}


class SlackUpdateMessage(_SlackNode):
    type = "slack.update_message"
    version = 1
    display_name = "Update Slack message"
    description = "Replace the text or blocks of a message the bot posted."
    icon = "chat"
    example = {"credential": "slack", "channel": "C0123", "ts": "{{ steps.post.ts }}", "text": "Done"}

    class Config(_MessageContent):
        channel: str = Field(min_length=1, description="Channel id of the message.")
        ts: str = Field(min_length=1, description="Timestamp (ts) of the message to update.")

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """``chat.update``."""
        return _ejected(
            config,
            _EJECT_CONTENT
            + 'message = {"channel": config["channel"], "ts": config["ts"], **content}\n'
            + 'data = slack_call(config["credential"], "chat.update", json=message)\n'
            + _EJECT_OUTPUT,
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{channel, ts, message}`` as Slack returns them."""
        data = await self._call(
            ctx,
            config.credential,
            "chat.update",
            json={"channel": config.channel, "ts": config.ts, **config.content()},
        )
        return _message_output(data)
