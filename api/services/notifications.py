"""Outgoing notifications from the API (e-mail through a tenant's SMTP credential)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib

from blocks.loader import load_credential


async def load_mail_server(*, tenant_id: str, credential: str) -> Any:
    """The tenant's SMTP credential ``credential``, unsealed (loading it is a credential use)."""
    return await load_credential(credential, tenant_id=tenant_id)


async def send_email(server: Any, *, to: list[str], subject: str, text: str) -> None:
    """Send a plain-text e-mail through ``server`` (an SMTP credential from :func:`load_mail_server`)."""
    if not to:
        return
    password = server.password.get_secret_value() if getattr(server, "password", None) else None
    message = EmailMessage()
    message["From"] = server.from_address
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=server.from_address.rpartition("@")[2] or None)
    message.set_content(text)
    await aiosmtplib.send(
        message,
        hostname=server.host,
        port=int(server.port),
        username=server.username,
        password=password,
        use_tls=server.security == "ssl",
        start_tls=server.security == "starttls",
        timeout=30,
    )
