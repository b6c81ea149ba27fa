"""Outgoing notifications from the API (e-mail through a tenant's SMTP credential)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any


async def send_email(*, tenant_id: str, credential: str, to: list[str], subject: str, text: str) -> None:
    """Send a plain-text e-mail with the tenant's SMTP credential ``credential``."""
    import aiosmtplib

    from blocks.loader import load_credential

    if not to:
        return
    block: Any = await load_credential(credential, tenant_id=tenant_id)
    password = block.password.get_secret_value() if getattr(block, "password", None) else None
    message = EmailMessage()
    message["From"] = block.from_address
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=block.from_address.rpartition("@")[2] or None)
    message.set_content(text)
    await aiosmtplib.send(
        message,
        hostname=block.host,
        port=int(block.port),
        username=block.username,
        password=password,
        use_tls=block.security == "ssl",
        start_tls=block.security == "starttls",
        timeout=30,
    )
