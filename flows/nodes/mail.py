"""E-mail node types: ``email.send`` and ``email.send_template`` over SMTP (aiosmtplib).

The credential is Gorax's SMTP server Block (host, port, security ``starttls``/``ssl``/
``none``, optional login, sender address). Templates live per tenant in Prefect Variables
(see ``flows.integrations.email_templates``).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
from pydantic import Field, model_validator

from flows.errors import IntegrationError
from flows.integrations import credentials as creds
from flows.integrations import guarded
from flows.integrations.email_templates import load_email_template, render_email_template
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType, block_name

_ADDRESS = r"^[^@\s<>,;]+@[^@\s<>,;]+$|\{\{"
_MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024


class Attachment(NodeConfig):
    """A file to attach, usually the output of an earlier step."""

    filename: str = Field(min_length=1, max_length=255, description="File name shown to the recipient.")
    content: str | None = Field(default=None, description="Text content (e.g. '{{ steps.report.body }}').")
    content_base64: str | None = Field(default=None, description="Binary content, base64-encoded.")
    content_type: str | None = Field(default=None, description="MIME type; guessed from the file name if unset.")

    @model_validator(mode="after")
    def _one_content(self) -> Attachment:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("set exactly one of 'content' and 'content_base64'")
        return self

    def data(self) -> bytes:
        if self.content is not None:
            return self.content.encode()
        try:
            return base64.b64decode(self.content_base64 or "", validate=True)
        except binascii.Error as exc:
            raise ValueError(f"attachment {self.filename!r}: content_base64 is not base64") from exc


class _Recipients(NodeConfig):
    credential: str = Field(min_length=1, description="Name of the SMTP server credential.")
    to: list[str] = Field(min_length=1, description="Recipient addresses.")
    cc: list[str] = Field(default_factory=list, description="Copy addresses.")
    bcc: list[str] = Field(default_factory=list, description="Blind-copy addresses (not in the headers).")
    reply_to: str | None = Field(default=None, description="Reply-To address.")
    attachments: list[Attachment] = Field(default_factory=list, description="Files to attach.")

    @model_validator(mode="after")
    def _addresses(self) -> _Recipients:
        for field_name in ("to", "cc", "bcc"):
            for index, address in enumerate(getattr(self, field_name)):
                if not re.match(_ADDRESS, address):
                    raise ValueError(f"{field_name}[{index}]: {address!r} is not an e-mail address")
        return self


class _EmailNode(NodeType):
    category = "email"
    credential_types = ("smtp-server",)

    async def _send(
        self, ctx: NodeContext, config: _Recipients, subject: str, text: str | None, html: str | None
    ) -> dict[str, Any]:
        block = await creds.load(ctx, config.credential, "email", self.credential_types)
        host = creds.required(block, "email", config.credential, "host")
        port = int(creds.field(block, "port", default=587))
        security = creds.field(block, "security", default="starttls")
        username = creds.field(block, "username")
        password = creds.field(block, "password")
        sender = creds.required(block, "email", config.credential, "from_address")

        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(config.to)
        if config.cc:
            message["Cc"] = ", ".join(config.cc)
        if config.reply_to:
            message["Reply-To"] = config.reply_to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content(text or "")
        if html:
            message.add_alternative(html, subtype="html")
        total = 0
        for attachment in config.attachments:
            data = attachment.data()
            total += len(data)
            if total > _MAX_ATTACHMENT_BYTES:
                raise IntegrationError("email", "send", f"attachments exceed {_MAX_ATTACHMENT_BYTES} bytes")
            ctype = (
                attachment.content_type or mimetypes.guess_type(attachment.filename)[0] or "application/octet-stream"
            )
            maintype, _, subtype = ctype.partition("/")
            message.add_attachment(
                data, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.filename
            )

        recipients = [*config.to, *config.cc, *config.bcc]
        async with guarded("email", f"send via {host}:{port}", tenant=ctx.tenant_id, secrets=[password]):
            try:
                refused, _ = await aiosmtplib.send(
                    message,
                    recipients=recipients,
                    hostname=host,
                    port=port,
                    username=username,
                    password=password,
                    use_tls=security == "ssl",
                    start_tls=True if security == "starttls" else False,
                    timeout=30,
                )
            except aiosmtplib.SMTPResponseException as exc:
                raise IntegrationError(
                    "email",
                    f"send via {host}:{port}",
                    "the SMTP server refused",
                    provider_message=f"{exc.code} {exc.message}",
                    retryable=exc.code >= 400 and exc.code < 500,
                ) from None
        return {
            "message_id": message["Message-ID"],
            "accepted": [r for r in recipients if r not in refused],
            "refused": {r: str(v) for r, v in refused.items()},
        }


_EJECT_HELPER = '''def send_email(config: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    """Send an e-mail through an SMTP server: {message_id, accepted, refused}."""
    sender = server["from_address"]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(config["to"])
    if config.get("cc"):
        message["Cc"] = ", ".join(config["cc"])
    if config.get("reply_to"):
        message["Reply-To"] = config["reply_to"]
    message["Subject"] = config["subject"]
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(config.get("text") or "")
    if config.get("html"):
        message.add_alternative(config["html"], subtype="html")
    recipients = [*config["to"], *config.get("cc", []), *config.get("bcc", [])]
    host, port = server["host"], int(server.get("port", 587))
    security = server.get("security", "starttls")
    context = ssl.create_default_context()
    if security == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=30, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=30)
    with smtp:
        if security == "starttls":
            smtp.starttls(context=context)
        if server.get("username"):
            smtp.login(server["username"], server["password"])
        refused = smtp.send_message(message, to_addrs=recipients)
    return {
        "message_id": message["Message-ID"],
        "accepted": [r for r in recipients if r not in refused],
        "refused": {r: str(reason) for r, reason in refused.items()},
    }'''


class EmailSend(_EmailNode):
    type = "email.send"
    version = 1
    display_name = "Send e-mail"
    description = "Send an e-mail (text and/or HTML, with attachments) through an SMTP server."
    icon = "mail"
    example = {
        "credential": "smtp",
        "to": ["{{ trigger.email }}"],
        "subject": "Your order",
        "text": "Thanks, {{ trigger.name }}!",
    }

    class Config(_Recipients):
        subject: str = Field(min_length=1, description="Subject line.")
        text: str | None = Field(default=None, description="Plain-text body.")
        html: str | None = Field(default=None, description="HTML body.")

        @model_validator(mode="after")
        def _has_body(self) -> EmailSend.Config:
            if not self.text and not self.html:
                raise ValueError("set 'text' or 'html'")
            return self

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected | None:
        """smtplib sends the message; the SMTP server credential becomes a Secret Block."""
        if config.get("attachments"):
            return None  # attachments have no Python form yet
        return Ejected(
            body='return send_email(config, Secret.load(config["credential"]).get())',
            imports=(
                "import smtplib",
                "import ssl",
                "from email.message import EmailMessage",
                "from email.utils import make_msgid",
                "from prefect.blocks.system import Secret",
            ),
            helpers=(_EJECT_HELPER,),
            blocks=(
                (
                    "Secret",
                    block_name(str(config.get("credential"))),
                    "a JSON object: host, port, security (starttls, ssl or none), username, password, from_address",
                ),
            ),
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id, accepted, refused}``."""
        return await self._send(ctx, config, config.subject, config.text, config.html)


class EmailSendTemplate(_EmailNode):
    type = "email.send_template"
    version = 1
    display_name = "Send templated e-mail"
    description = "Send an e-mail rendered from one of the tenant's stored templates."
    icon = "mail"
    example = {
        "credential": "smtp",
        "to": ["{{ trigger.email }}"],
        "template": "Hello {{ name }}, your order shipped.",
        "values": {"name": "{{ trigger.name }}"},
    }

    class Config(_Recipients):
        template: str = Field(min_length=1, description="Template name (stored per tenant).")
        values: dict[str, Any] = Field(default_factory=dict, description="Values the template refers to.")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{message_id, accepted, refused, template}``."""
        try:
            template = await load_email_template(ctx.tenant_id, config.template)
            rendered = render_email_template(template, config.values)
        except (LookupError, ValueError) as exc:
            raise IntegrationError("email", f"render template {config.template!r}", str(exc)) from None
        out = await self._send(ctx, config, rendered["subject"] or "", rendered["text"], rendered["html"])
        return {**out, "template": config.template}
