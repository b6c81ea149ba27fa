"""email.send and email.send_template against a real SMTP server with STARTTLS and login."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from blocks.types import SmtpServer
from flows.errors import IntegrationError
from flows.integrations.email_templates import EmailTemplate, save_email_template
from flows.nodes.mail import EmailSend, EmailSendTemplate
from tests.flows.integrations.conftest import NodeTestContext
from tests.flows.integrations.smtp_peer import SmtpPeer


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpPeer]:
    peer = SmtpPeer(tmp_path_factory.mktemp("smtp")).start()
    yield peer
    peer.stop()


@pytest.fixture
def ctx(smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch) -> NodeTestContext:
    # The client verifies the server's certificate: trust the test CA, nothing is turned off.
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert))
    block = SmtpServer(
        host="127.0.0.1",
        port=smtp.port,
        security="starttls",
        username=SmtpPeer.USER,
        password=SmtpPeer.PASSWORD,
        from_address="gorax@example.com",
    )
    return NodeTestContext({"mail": block})


async def test_send_with_cc_bcc_html_and_attachments(smtp: SmtpPeer, ctx: NodeTestContext) -> None:
    config = EmailSend.Config(
        credential="mail",
        to=["ana@example.com"],
        cc=["ops@example.com"],
        bcc=["audit@example.com"],
        subject="Weekly report",
        text="See attached.",
        html="<p>See <b>attached</b>.</p>",
        attachments=[
            {"filename": "report.csv", "content": "a,b\n1,2\n"},
            {"filename": "logo.png", "content_base64": base64.b64encode(b"\x89PNG...").decode()},
        ],
    )
    out = await EmailSend().run(config, ctx)
    assert sorted(out["accepted"]) == ["ana@example.com", "audit@example.com", "ops@example.com"]
    received = smtp.messages[-1]
    assert received["tls"] and received["from"] == "gorax@example.com"
    assert sorted(received["rcpt"]) == sorted(out["accepted"])
    message = received["message"]
    assert message["Subject"] == "Weekly report" and message["Cc"] == "ops@example.com"
    assert message["Bcc"] is None  # blind copies stay out of the headers
    assert "<b>attached</b>" in message.get_body(("html",)).get_content()
    files = {part.get_filename(): part for part in message.iter_attachments()}
    assert files["report.csv"].get_content() == "a,b\n1,2\n"
    assert files["logo.png"].get_content() == b"\x89PNG..." and files["logo.png"].get_content_type() == "image/png"


async def test_wrong_password_names_the_server_and_hides_the_password(smtp: SmtpPeer, ctx: NodeTestContext) -> None:
    block: Any = ctx.credentials["mail"].model_copy(update={"password": "wrong-password-987"})
    with pytest.raises(IntegrationError) as info:
        await EmailSend().run(
            EmailSend.Config(credential="mail", to=["a@example.com"], subject="s", text="t"),
            NodeTestContext({"mail": block}),
        )
    assert f"127.0.0.1:{smtp.port}" in str(info.value) and "535" in str(info.value)
    assert "wrong-password-987" not in str(info.value)


def test_bad_addresses_and_attachments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"to\[1\]"):
        EmailSend.Config(credential="mail", to=["a@example.com", "not an address"], subject="s", text="t")
    with pytest.raises(ValueError, match="exactly one"):
        EmailSend.Config(
            credential="mail", to=["a@example.com"], subject="s", text="t", attachments=[{"filename": "x"}]
        )


async def test_send_template_per_tenant(
    prefect_server: Any, monkeypatch: pytest.MonkeyPatch, smtp: SmtpPeer, ctx: NodeTestContext
) -> None:
    await save_email_template(
        "acme",
        "welcome",
        EmailTemplate(
            subject="Welcome, {{ name }}",
            text="Hi {{ name }}, your plan is {{ plan }}.",
            html="<p>Hi {{ name }}</p>",
        ),
    )
    config = EmailSendTemplate.Config(
        credential="mail", to=["bo@example.com"], template="welcome", values={"name": "Bo <script>", "plan": "pro"}
    )
    out = await EmailSendTemplate().run(config, ctx)
    assert out["template"] == "welcome"
    message = smtp.messages[-1]["message"]
    assert message["Subject"] == "Welcome, Bo <script>"
    assert message.get_body(("plain",)).get_content().strip() == "Hi Bo <script>, your plan is pro."
    assert "Bo &lt;script&gt;" in message.get_body(("html",)).get_content()

    with pytest.raises(IntegrationError, match="'plan' is undefined"):
        await EmailSendTemplate().run(config.model_copy(update={"values": {"name": "x"}}), ctx)
    other_tenant = NodeTestContext(ctx.credentials, tenant_id="globex")
    with pytest.raises(IntegrationError, match="globex--email-template--welcome"):
        await EmailSendTemplate().run(config, other_tenant)
