"""SendGrid node type: send an e-mail through SendGrid's v3 Mail Send API.

The credential is a SendGrid API key Block (``api_key``, an optional default sender). The API
root is the Block's ``api_url``, else ``GORAX_SENDGRID_API_URL``, else SendGrid's. The message is
one personalization (every recipient sees the same message); a dynamic template id with its
data may stand for the subject and body. SendGrid answers 202 with the message id in the
``X-Message-Id`` header.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from flows.errors import IntegrationError
from flows.integrations import JsonApi
from flows.integrations import credentials as creds
from flows.nodes._common import check_email_address, one_or_more
from translator.nodetypes import NodeConfig, NodeContext, NodeType

_SENDGRID_API = "https://api.sendgrid.com"
#: SendGrid's limit of recipients (to, cc and bcc together) in one personalization.
_MAX_RECIPIENTS = 1000

_Address = Annotated[str, AfterValidator(check_email_address)]
_Addresses = Annotated[list[_Address], BeforeValidator(one_or_more)]


class SendGridSendEmail(NodeType):
    type = "sendgrid.send_email"
    version = 1
    display_name = "Send e-mail (SendGrid)"
    category = "sendgrid"
    description = "Send an e-mail (text and/or HTML, or a dynamic template) through SendGrid."
    icon = "mail"
    example = {
        "credential": "sendgrid",
        "to": ["{{ trigger.email }}"],
        "subject": "Welcome",
        "text": "Hello {{ trigger.name }}",
    }
    credential_types = ("sendgrid-api-key",)

    class Config(NodeConfig):
        credential: str = Field(min_length=1, description="Name of the SendGrid credential (API key).")
        to: _Addresses = Field(min_length=1, description="Recipient addresses (one address or a list).")
        cc: _Addresses = Field(default_factory=list, description="Copy addresses.")
        bcc: _Addresses = Field(default_factory=list, description="Blind-copy addresses.")
        sender: _Address | None = Field(
            default=None,
            alias="from",
            description="Sender address (verified in SendGrid); unset: the credential's from_address.",
        )
        from_name: str | None = Field(default=None, max_length=200, description="Sender name shown to recipients.")
        reply_to: _Address | None = Field(default=None, description="Reply-To address.")
        subject: str | None = Field(
            default=None, min_length=1, max_length=998, description="Subject line (a template may set it)."
        )
        text: str | None = Field(default=None, description="Plain-text body.")
        html: str | None = Field(default=None, description="HTML body.")
        template_id: str | None = Field(
            default=None, min_length=1, description="Dynamic template id ('d-...') that renders the message."
        )
        dynamic_template_data: dict[str, Any] = Field(
            default_factory=dict, description="Values the dynamic template refers to."
        )
        categories: list[str] = Field(
            default_factory=list, max_length=10, description="Categories to group the message in SendGrid's stats."
        )

        @model_validator(mode="after")
        def _complete(self) -> SendGridSendEmail.Config:
            if self.template_id is None:
                if not self.subject:
                    raise ValueError("set 'subject' (or 'template_id')")
                if not self.text and not self.html:
                    raise ValueError("set 'text' or 'html' (or 'template_id')")
                if self.dynamic_template_data:
                    raise ValueError("'dynamic_template_data' needs 'template_id'")
            seen: dict[str, str] = {}
            for field_name in ("to", "cc", "bcc"):
                for index, address in enumerate(getattr(self, field_name)):
                    where = f"{field_name}[{index}]"
                    key = address.lower()
                    if key in seen and "{{" not in key:
                        raise ValueError(f"{where}: {address!r} is already in {seen[key]} (SendGrid refuses repeats)")
                    seen[key] = where
            if len(seen) > _MAX_RECIPIENTS:
                raise ValueError(f"{len(seen)} recipients in to, cc and bcc; SendGrid takes at most {_MAX_RECIPIENTS}")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id, status, accepted}``; ``status`` is ``accepted`` (SendGrid queued it)."""
        block = await creds.load(ctx, config.credential, "sendgrid", self.credential_types)
        key = creds.required(block, "sendgrid", config.credential, "api_key")
        sender = config.sender or creds.field(block, "from_address")
        if not sender:
            raise IntegrationError(
                "sendgrid",
                "mail/send",
                f"no sender: set the node's 'from' or the credential {config.credential!r}'s 'from_address'",
            )
        sender_name = config.from_name if config.sender else config.from_name or creds.field(block, "from_name")

        personalization: dict[str, Any] = {"to": [{"email": a} for a in config.to]}
        if config.cc:
            personalization["cc"] = [{"email": a} for a in config.cc]
        if config.bcc:
            personalization["bcc"] = [{"email": a} for a in config.bcc]
        if config.dynamic_template_data:
            personalization["dynamic_template_data"] = config.dynamic_template_data
        message: dict[str, Any] = {
            "personalizations": [personalization],
            "from": {"email": sender, **({"name": sender_name} if sender_name else {})},
        }
        if config.reply_to:
            message["reply_to"] = {"email": config.reply_to}
        if config.subject:
            message["subject"] = config.subject
        # SendGrid wants text/plain first, then text/html.
        content = [{"type": t, "value": v} for t, v in (("text/plain", config.text), ("text/html", config.html)) if v]
        if content:
            message["content"] = content
        if config.template_id:
            message["template_id"] = config.template_id
        if config.categories:
            message["categories"] = config.categories

        api = JsonApi(
            "sendgrid",
            creds.api_base(block, "sendgrid", _SENDGRID_API),
            tenant=ctx.tenant_id,
            headers={"Authorization": f"Bearer {key}"},
            secrets=[key],
        )
        reply = await api.request("POST", "/v3/mail/send", json=message, operation="mail/send")
        return {
            "message_id": reply.headers.get("x-message-id"),
            "status": "accepted",
            "accepted": [*config.to, *config.cc, *config.bcc],
        }
