"""Twilio node type: send an SMS through Twilio's Programmable Messaging REST API.

The credential is a Twilio Block: the account SID with its auth token, or with an API key SID and
secret (Basic auth either way; the URL always names the account). The API root is the Block's
``api_url``, else ``GORAX_TWILIO_API_URL``, else Twilio's. Twilio's errors carry a numbered code
(``21211`` invalid number, ``21610`` unsubscribed recipient...), kept in the error's message.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from flows.integrations import JsonApi, provider_message
from flows.integrations import credentials as creds
from flows.nodes._common import check_phone_number, check_sender_id, is_template
from translator.nodetypes import NodeConfig, NodeContext, NodeType

_TWILIO_API = "https://api.twilio.com"
_MESSAGING_SERVICE = r"^MG[0-9a-fA-F]{32}$|\{\{"


def _check_from(value: str) -> str:
    """A sending phone number (E.164) or an alphanumeric sender id."""
    if is_template(value) or value.startswith("+"):
        return check_phone_number(value)
    return check_sender_id(value)


def _twilio_error(body: Any) -> str | None:
    """Twilio's ``{"code", "message", "more_info", "status"}``: the message and its code."""
    if isinstance(body, dict) and body.get("message") and body.get("code"):
        return f"{body['message']} (Twilio error {body['code']})"
    return provider_message(body)


class TwilioSendSms(NodeType):
    type = "twilio.send_sms"
    version = 1
    display_name = "Send SMS (Twilio)"
    category = "twilio"
    description = "Send a text message to a phone number through Twilio."
    icon = "phone"
    example = {
        "credential": "twilio",
        "to": "+15555550100",
        "body": "Your code is {{ steps.code.value }}",
        "from": "+15555550199",
    }
    credential_types = ("twilio-credentials",)

    class Config(NodeConfig):
        credential: str = Field(min_length=1, description="Name of the Twilio credential.")
        to: Annotated[str, AfterValidator(check_phone_number)] = Field(
            description="Recipient phone number in E.164 form, e.g. +14155550123."
        )
        body: str = Field(min_length=1, max_length=1600, description="Message text (at most 1600 characters).")
        sender: Annotated[str, AfterValidator(_check_from)] | None = Field(
            default=None,
            alias="from",
            description="Twilio phone number (E.164) or alphanumeric sender id to send from.",
        )
        messaging_service_sid: str | None = Field(
            default=None,
            pattern=_MESSAGING_SERVICE,
            description="Messaging service SID ('MG...') to send through, instead of 'from'.",
        )
        status_callback: str | None = Field(
            default=None,
            pattern=r"^https?://|\{\{",
            description="URL Twilio posts delivery status changes to.",
        )

        @model_validator(mode="after")
        def _one_sender(self) -> TwilioSendSms.Config:
            if (self.sender is None) == (self.messaging_service_sid is None):
                raise ValueError("set exactly one of 'from' and 'messaging_service_sid'")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id, status, to, from, segments}``; ``status`` is Twilio's (``queued``,
        ``accepted`` for a messaging service, ...)."""
        block = await creds.load(ctx, config.credential, "twilio", self.credential_types)
        account = creds.required(block, "twilio", config.credential, "account_sid")
        key_sid = creds.field(block, "api_key_sid")
        if key_sid:
            user, secret = key_sid, creds.required(block, "twilio", config.credential, "api_key_secret")
        else:
            user, secret = account, creds.required(block, "twilio", config.credential, "auth_token")
        basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
        api = JsonApi(
            "twilio",
            creds.api_base(block, "twilio", _TWILIO_API),
            tenant=ctx.tenant_id,
            headers={"Authorization": f"Basic {basic}"},
            secrets=[secret, basic],
            describe_error=_twilio_error,
        )
        form = {"To": config.to, "Body": config.body}
        if config.sender:
            form["From"] = config.sender
        if config.messaging_service_sid:
            form["MessagingServiceSid"] = config.messaging_service_sid
        if config.status_callback:
            form["StatusCallback"] = config.status_callback
        reply = await api.request(
            "POST", f"/2010-04-01/Accounts/{account}/Messages.json", data=form, operation="create message"
        )
        sent = reply.body if isinstance(reply.body, dict) else {}
        segments = str(sent.get("num_segments"))
        return {
            "message_id": sent.get("sid"),
            "status": sent.get("status"),
            "to": sent.get("to", config.to),
            "from": sent.get("from", config.sender),
            "segments": int(segments) if segments.isdigit() else None,
        }
