"""Notification node types: SendGrid and Twilio against loopback peers that check their requests,
SES e-mail and SNS SMS against the moto server, and their configs' checks of addresses and numbers."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from blocks.service import create_credential
from blocks.types import SendGridApiKey, TwilioCredentials
from flows.errors import IntegrationError
from flows.nodes.aws import SesSendEmail, SnsSendSms
from flows.nodes.sendgrid import SendGridSendEmail
from flows.nodes.twilio import TwilioSendSms
from flows.run_graph import run_graph
from tests.flows.integrations.conftest import NodeTestContext, set_env
from tests.flows.integrations.peers import FailingPeer, SendGridPeer, TwilioPeer
from translator.validate import validate_graph

# --- SendGrid -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[SendGridPeer]:
    peer = SendGridPeer().start()
    yield peer
    peer.stop()


def _sg_ctx(peer: SendGridPeer, key: str = SendGridPeer.KEY, **fields: Any) -> NodeTestContext:
    return NodeTestContext({"sg": SendGridApiKey(api_key=key, api_url=peer.url, **fields)})


def _sg_config(**values: Any) -> SendGridSendEmail.Config:
    return SendGridSendEmail.Config.model_validate({"credential": "sg", **values})


async def test_sendgrid_sends_the_exact_mail_send_request(sendgrid: SendGridPeer) -> None:
    before = len(sendgrid.requests)
    out = await SendGridSendEmail().run(
        _sg_config(
            to=["ana@example.com", "ben@example.com"],
            cc="ops@example.com",
            bcc=["audit@example.com"],
            **{"from": "alerts@gorax.test"},
            from_name="Gorax Alerts",
            reply_to="support@gorax.test",
            subject="Deploy finished",
            text="v2 is live",
            html="<p>v2 is <b>live</b></p>",
            categories=["deploys"],
        ),
        _sg_ctx(sendgrid),
    )
    request = sendgrid.requests[before]
    assert request.method == "POST" and request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {SendGridPeer.KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "personalizations": [
            {
                "to": [{"email": "ana@example.com"}, {"email": "ben@example.com"}],
                "cc": [{"email": "ops@example.com"}],
                "bcc": [{"email": "audit@example.com"}],
            }
        ],
        "from": {"email": "alerts@gorax.test", "name": "Gorax Alerts"},
        "reply_to": {"email": "support@gorax.test"},
        "subject": "Deploy finished",
        "content": [
            {"type": "text/plain", "value": "v2 is live"},
            {"type": "text/html", "value": "<p>v2 is <b>live</b></p>"},
        ],
        "categories": ["deploys"],
    }
    assert out == {
        "message_id": f"sg-msg-{len(sendgrid.mails)}",
        "status": "accepted",
        "accepted": ["ana@example.com", "ben@example.com", "ops@example.com", "audit@example.com"],
    }


async def test_sendgrid_dynamic_template_and_the_credentials_default_sender(sendgrid: SendGridPeer) -> None:
    ctx = _sg_ctx(sendgrid, from_address="noreply@gorax.test", from_name="Gorax")
    out = await SendGridSendEmail().run(
        _sg_config(
            to="ana@example.com",
            template_id="d-0123456789abcdef0123456789abcdef",
            dynamic_template_data={"name": "Ana", "items": [1, 2]},
        ),
        ctx,
    )
    sent = sendgrid.mails[-1]
    assert sent == {
        "personalizations": [
            {"to": [{"email": "ana@example.com"}], "dynamic_template_data": {"name": "Ana", "items": [1, 2]}}
        ],
        "from": {"email": "noreply@gorax.test", "name": "Gorax"},
        "template_id": "d-0123456789abcdef0123456789abcdef",
    }
    assert out["message_id"] == f"sg-msg-{len(sendgrid.mails)}"

    with pytest.raises(IntegrationError, match="no sender: set the node's 'from' or the credential 'sg'"):
        await SendGridSendEmail().run(_sg_config(to="a@example.com", subject="s", text="t"), _sg_ctx(sendgrid))


async def test_sendgrid_refusals_carry_the_providers_message_masked(sendgrid: SendGridPeer) -> None:
    config = _sg_config(to="ana@example.com", **{"from": "a@gorax.test"}, subject="s", text="t")
    leaked = "SG.leaked-if-you-see-this.0123456789"
    with pytest.raises(IntegrationError) as info:
        await SendGridSendEmail().run(config, _sg_ctx(sendgrid, key=leaked))
    error = info.value
    assert error.integration == "sendgrid" and error.status == 401 and not error.retryable
    assert error.provider_message == "The provided authorization grant is invalid, expired, or revoked"
    assert "sendgrid mail/send failed with HTTP 401" in str(error)
    assert leaked not in repr(error.to_dict())

    unknown = _sg_config(to="ana@example.com", **{"from": "a@gorax.test"}, template_id="d-1")
    with pytest.raises(IntegrationError) as info:
        await SendGridSendEmail().run(unknown, _sg_ctx(sendgrid))
    assert info.value.status == 400 and not info.value.retryable
    assert info.value.provider_message == "The template_id must be a valid template ID."


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (429, {"errors": [{"message": "too many requests", "field": None}]}, True),
        (503, "upstream unavailable", True),
        (413, {"errors": [{"message": "payload too large", "field": None}]}, False),
    ],
)
async def test_sendgrid_rate_limits_and_outages_are_retryable(status: int, body: Any, retryable: bool) -> None:
    peer = FailingPeer(status, body).start()
    try:
        ctx = NodeTestContext({"sg": SendGridApiKey(api_key=SendGridPeer.KEY, api_url=peer.url)})
        with pytest.raises(IntegrationError) as info:
            await SendGridSendEmail().run(
                _sg_config(to="ana@example.com", **{"from": "a@gorax.test"}, subject="s", text="t"), ctx
            )
        assert info.value.status == status and info.value.retryable is retryable
        assert info.value.provider_message == (body if isinstance(body, str) else body["errors"][0]["message"])
    finally:
        peer.stop()


async def test_sendgrid_api_root_from_the_operators_setting(
    sendgrid: SendGridPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, GORAX_SENDGRID_API_URL=sendgrid.url)
    ctx = NodeTestContext({"sg": SendGridApiKey(api_key=SendGridPeer.KEY)})
    out = await SendGridSendEmail().run(
        _sg_config(to="ana@example.com", **{"from": "a@gorax.test"}, subject="s", text="t"), ctx
    )
    assert out["message_id"] == f"sg-msg-{len(sendgrid.mails)}"
    assert sendgrid.mails[-1]["subject"] == "s"


# --- Twilio ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioPeer]:
    peer = TwilioPeer().start()
    yield peer
    peer.stop()


def _tw_ctx(peer: TwilioPeer, **login: Any) -> NodeTestContext:
    login = login or {"auth_token": TwilioPeer.TOKEN}
    return NodeTestContext({"tw": TwilioCredentials(account_sid=TwilioPeer.ACCOUNT, api_url=peer.url, **login)})


def _tw_config(**values: Any) -> TwilioSendSms.Config:
    return TwilioSendSms.Config.model_validate({"credential": "tw", **values})


async def test_twilio_sends_the_exact_form_with_the_auth_token(twilio: TwilioPeer) -> None:
    before = len(twilio.requests)
    out = await TwilioSendSms().run(
        _tw_config(
            to="+14155550123",
            body="Your code is 4711",
            status_callback="https://hooks.gorax.test/sms",
            **{"from": "+15005550006"},
        ),
        _tw_ctx(twilio),
    )
    request = twilio.requests[before]
    assert request.path == f"/2010-04-01/Accounts/{TwilioPeer.ACCOUNT}/Messages.json"
    login = base64.b64encode(f"{TwilioPeer.ACCOUNT}:{TwilioPeer.TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {login}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(request.body.decode()) == [
        ("To", "+14155550123"),
        ("Body", "Your code is 4711"),
        ("From", "+15005550006"),
        ("StatusCallback", "https://hooks.gorax.test/sms"),
    ]
    assert out == {
        "message_id": f"SM{len(twilio.messages):032x}",
        "status": "queued",
        "to": "+14155550123",
        "from": "+15005550006",
        "segments": 1,
    }


async def test_twilio_api_key_and_messaging_service(twilio: TwilioPeer) -> None:
    ctx = _tw_ctx(twilio, api_key_sid=TwilioPeer.KEY_SID, api_key_secret=TwilioPeer.KEY_SECRET)
    service = "MG" + "a" * 32
    out = await TwilioSendSms().run(_tw_config(to="+447700900123", body="hello", messaging_service_sid=service), ctx)
    request = twilio.requests[-1]
    login = base64.b64encode(f"{TwilioPeer.KEY_SID}:{TwilioPeer.KEY_SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {login}"
    assert dict(parse_qsl(request.body.decode())) == {
        "To": "+447700900123",
        "Body": "hello",
        "MessagingServiceSid": service,
    }
    assert out["status"] == "accepted" and out["message_id"] == f"SM{len(twilio.messages):032x}"


async def test_twilio_errors_keep_the_code_and_mask_the_secret(twilio: TwilioPeer) -> None:
    with pytest.raises(IntegrationError) as info:
        await TwilioSendSms().run(_tw_config(to="+15005550009", body="x", **{"from": "Gorax"}), _tw_ctx(twilio))
    error = info.value
    assert error.status == 400 and not error.retryable
    assert error.provider_message == "'To' number is not a valid mobile number (Twilio error 21614)"
    assert "twilio create message failed with HTTP 400" in str(error)

    with pytest.raises(IntegrationError) as info:
        await TwilioSendSms().run(_tw_config(to="+15005550429", body="x", **{"from": "Gorax"}), _tw_ctx(twilio))
    assert info.value.status == 429 and info.value.retryable and "20429" in str(info.value)

    wrong = "wrong-auth-token-do-not-log-0000"
    with pytest.raises(IntegrationError) as info:
        await TwilioSendSms().run(
            _tw_config(to="+14155550123", body="x", **{"from": "+15005550006"}), _tw_ctx(twilio, auth_token=wrong)
        )
    assert info.value.status == 401 and info.value.provider_message == "Authenticate (Twilio error 20003)"
    basic = base64.b64encode(f"{TwilioPeer.ACCOUNT}:{wrong}".encode()).decode()
    assert wrong not in repr(info.value.to_dict()) and basic not in repr(info.value.to_dict())


async def test_twilio_api_root_from_the_operators_setting(twilio: TwilioPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, GORAX_TWILIO_API_URL=twilio.url)
    ctx = NodeTestContext({"tw": TwilioCredentials(account_sid=TwilioPeer.ACCOUNT, auth_token=TwilioPeer.TOKEN)})
    out = await TwilioSendSms().run(_tw_config(to="+14155550123", body="via env", **{"from": "+15005550006"}), ctx)
    assert out["status"] == "queued" and twilio.messages[-1]["Body"] == "via env"


def test_twilio_credential_takes_one_login() -> None:
    with pytest.raises(ValueError, match="either 'auth_token' or 'api_key_sid' and 'api_key_secret'"):
        TwilioCredentials(account_sid=TwilioPeer.ACCOUNT)
    with pytest.raises(ValueError, match="needs both 'api_key_sid' and 'api_key_secret'"):
        TwilioCredentials(account_sid=TwilioPeer.ACCOUNT, api_key_sid=TwilioPeer.KEY_SID)
    with pytest.raises(ValueError, match="account_sid"):
        TwilioCredentials(account_sid="not-a-sid", auth_token="t")


# --- SES and SNS through moto ---------------------------------------------------------------


def _moto_records(endpoint: str, service: str, model: str) -> list[dict[str, Any]]:
    """What moto keeps of ``service``'s ``model`` instances (its internal data API)."""
    data = httpx.get(f"{endpoint}/moto-api/data.json", timeout=60).json()
    return data.get(service, {}).get(model, [])


@pytest.fixture
def aws_ctx(aws_credentials: Any) -> NodeTestContext:
    return NodeTestContext({"aws": aws_credentials})


async def test_ses_sends_from_a_verified_identity(
    aws_credentials: Any, aws_ctx: NodeTestContext, moto_endpoint: str
) -> None:
    ses = aws_credentials.get_boto3_session().client("ses", endpoint_url=moto_endpoint)
    domain = f"{uuid.uuid4().hex[:8]}.gorax.test"
    ses.verify_domain_identity(Domain=domain)
    out = await SesSendEmail().run(
        SesSendEmail.Config.model_validate(
            {
                "credential": "aws",
                "from": f"alerts@{domain}",
                "from_name": "Gorax Alerts",
                "to": "ana@example.com",
                "cc": ["ops@example.com"],
                "bcc": "audit@example.com",
                "reply_to": "support@example.com",
                "subject": "Disk almost full",
                "text": "92% on db-1",
            }
        ),
        aws_ctx,
    )
    assert out["status"] == "sent" and out["accepted"] == ["ana@example.com", "ops@example.com", "audit@example.com"]
    recorded = next(m for m in _moto_records(moto_endpoint, "ses", "Message") if m["id"] == out["message_id"])
    assert recorded["source"] == f"Gorax Alerts <alerts@{domain}>"
    assert recorded["subject"] == "Disk almost full" and recorded["body"] == "92% on db-1"
    assert recorded["destinations"] == {
        "ToAddresses": ["ana@example.com"],
        "CcAddresses": ["ops@example.com"],
        "BccAddresses": ["audit@example.com"],
    }

    with pytest.raises(IntegrationError) as info:
        await SesSendEmail().run(
            SesSendEmail.Config.model_validate(
                {
                    "credential": "aws",
                    "from": "x@unverified.gorax.test",
                    "to": "a@example.com",
                    "subject": "s",
                    "html": "<p>h</p>",
                }
            ),
            aws_ctx,
        )
    error = info.value
    assert error.integration == "aws-ses" and error.operation == "SendEmail"
    assert error.status == 400 and not error.retryable
    assert "MessageRejected" in str(error) and "Email address not verified x@unverified.gorax.test" in str(error)
    assert "moto-secret-key-do-not-log-0123" not in repr(error.to_dict())


async def test_sns_sends_an_sms_with_its_attributes(aws_ctx: NodeTestContext, moto_endpoint: str) -> None:
    out = await SnsSendSms().run(
        SnsSendSms.Config(
            credential="aws",
            phone_number="+14155550123",
            message="Your code is 4711",
            sender_id="Gorax",
            sms_type="Transactional",
            max_price=0.5,
        ),
        aws_ctx,
    )
    assert out["status"] == "sent" and out["phone_number"] == "+14155550123"
    recorded = next(m for m in _moto_records(moto_endpoint, "sns", "SMS") if m["message_id"] == out["message_id"])
    assert recorded["phone_number"] == "+14155550123" and recorded["message"] == "Your code is 4711"


async def test_sns_sms_attributes_are_the_ones_aws_reads(aws_credentials: Any, aws_ctx: NodeTestContext) -> None:
    # moto keeps no SMS attributes: record what boto3 is asked to send (prefect-aws caches the
    # client per credential, so the node's calls go through this one).
    sent: list[dict[str, Any]] = []
    aws_credentials.get_client("sns").meta.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: sent.append(dict(params))
    )
    await SnsSendSms().run(
        SnsSendSms.Config(
            credential="aws",
            phone_number="+4915112345678",
            message="hi",
            sender_id="Gorax",
            sms_type="Promotional",
            origination_number="+14155550100",
            max_price=0.25,
        ),
        aws_ctx,
    )
    assert sent[-1] == {
        "PhoneNumber": "+4915112345678",
        "Message": "hi",
        "MessageAttributes": {
            "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "Gorax"},
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"},
            "AWS.MM.SMS.OriginationNumber": {"DataType": "String", "StringValue": "+14155550100"},
            "AWS.SNS.SMS.MaxPrice": {"DataType": "String", "StringValue": "0.25000"},
        },
    }
    await SnsSendSms().run(SnsSendSms.Config(credential="aws", phone_number="+4915112345678", message="hi"), aws_ctx)
    assert sent[-1] == {"PhoneNumber": "+4915112345678", "Message": "hi"}


# --- config checks --------------------------------------------------------------------------


def _graph(node_type: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": "notify",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {"id": "n", "type": node_type, "config": config},
        ],
        "edges": [{"source": "start", "target": "n"}],
    }


@pytest.mark.parametrize(
    ("node_type", "config", "path", "needle"),
    [
        (
            "sendgrid.send_email",
            {"to": ["a@example.com", "nope"], "subject": "s", "text": "t"},
            "config.to[1]",
            "'nope' is not an e-mail address",
        ),
        (
            "sendgrid.send_email",
            {"to": "a@example.com", "from": "me", "subject": "s", "text": "t"},
            "config.from",
            "'me' is not an e-mail address",
        ),
        ("sendgrid.send_email", {"to": "a@example.com", "text": "t"}, "config", "set 'subject'"),
        (
            "sendgrid.send_email",
            {"to": "a@example.com", "cc": "A@example.com", "subject": "s", "text": "t"},
            "config",
            "cc[0]: 'A@example.com' is already in to[0]",
        ),
        (
            "twilio.send_sms",
            {"to": "4155550123", "body": "x", "from": "+15005550006"},
            "config.to",
            "not an E.164 phone number",
        ),
        (
            "twilio.send_sms",
            {"to": "+14155550123", "body": "x", "from": "+1 415 555"},
            "config.from",
            "not an E.164 phone number",
        ),
        (
            "twilio.send_sms",
            {"to": "+14155550123", "body": "x", "from": "Gorax Alerts Ltd"},
            "config.from",
            "not a sender id",
        ),
        (
            "twilio.send_sms",
            {"to": "+14155550123", "body": "x"},
            "config",
            "exactly one of 'from' and 'messaging_service_sid'",
        ),
        (
            "aws.sns.send_sms",
            {"phone_number": "+0123", "message": "x"},
            "config.phone_number",
            "not an E.164 phone number",
        ),
        (
            "aws.sns.send_sms",
            {"phone_number": "+14155550123", "message": "x", "sender_id": "12345"},
            "config.sender_id",
            "not a sender id",
        ),
        (
            "aws.ses.send_email",
            {"from": "a@example.com", "to": ["b@example"], "subject": "s", "text": "t"},
            "config.to[0]",
            "not an e-mail address",
        ),
        (
            "aws.ses.send_email",
            {
                "from": "a@example.com",
                "to": "b@example.com",
                "bcc": [f"c{i}@example.com" for i in range(50)],
                "subject": "s",
                "text": "t",
            },
            "config",
            "51 recipients",
        ),
    ],
)
def test_bad_addresses_and_numbers_are_named_by_field(
    node_type: str, config: dict[str, Any], path: str, needle: str
) -> None:
    credential = {"credential": "c"}
    errors = validate_graph(_graph(node_type, {**credential, **config}))
    assert [(e.node_id, e.path) for e in errors] == [("n", path)], errors
    assert needle in errors[0].message


def test_templates_are_checked_after_rendering() -> None:
    graph = _graph(
        "twilio.send_sms",
        {"credential": "c", "to": "{{ trigger.phone }}", "body": "hi {{ trigger.name }}", "from": "+15005550006"},
    )
    assert validate_graph(graph) == []
    graph = _graph(
        "sendgrid.send_email",
        {"credential": "c", "to": "{{ trigger.emails }}", "cc": ["{{ trigger.boss }}"], "subject": "s", "text": "t"},
    )
    assert validate_graph(graph) == []


# --- end to end through a Prefect run -------------------------------------------------------

NOTIFY_GRAPH: dict[str, Any] = {
    "format": "gorax/graph@1",
    "name": "on-call-page",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {
            "id": "sms",
            "type": "twilio.send_sms",
            "name": "Text the on-call engineer",
            "config": {
                "credential": "twilio",
                "to": "{{ trigger.phone }}",
                "from": "+15005550006",
                "body": "{{ trigger.service }} is down",
            },
        },
        {
            "id": "mail",
            "type": "sendgrid.send_email",
            "name": "Tell the team",
            "config": {
                "credential": "sendgrid",
                "to": "{{ trigger.team }}",
                "subject": "Paged about {{ trigger.service }}",
                "text": "SMS {{ steps.sms.message_id }} is {{ steps.sms.status }}.",
            },
        },
    ],
    "edges": [{"source": "start", "target": "sms"}, {"source": "sms", "target": "mail"}],
}


async def test_a_run_pages_by_sms_then_mails_the_team(
    prefect_server: Any, twilio: TwilioPeer, sendgrid: SendGridPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sealed credentials of a fresh tenant, opened by the run; rate limits on, as in production.
    set_env(monkeypatch, GORAX_RATE_LIMITS="on", GORAX_TWILIO_API_URL=twilio.url)
    tenant_id, tenant_slug = str(uuid.uuid4()), f"notify{uuid.uuid4().hex[:8]}"
    kw = {"tenant_id": tenant_id, "tenant_slug": tenant_slug}
    await create_credential(
        "twilio", "twilio-credentials", {"account_sid": TwilioPeer.ACCOUNT, "auth_token": TwilioPeer.TOKEN}, **kw
    )
    await create_credential(
        "sendgrid",
        "sendgrid-api-key",
        {"api_key": SendGridPeer.KEY, "from_address": "pager@gorax.test", "api_url": sendgrid.url},
        **kw,
    )
    texts, mails = len(twilio.messages), len(sendgrid.mails)

    state = await run_graph(
        graph=NOTIFY_GRAPH,
        trigger={"phone": "+14155550123", "service": "billing-api", "team": ["ana@example.com", "ben@example.com"]},
        tenant=tenant_id,
        return_state=True,
    )
    assert state.is_completed(), state.message
    sms_id = f"SM{texts + 1:032x}"
    assert twilio.messages[texts:] == [{"To": "+14155550123", "Body": "billing-api is down", "From": "+15005550006"}]
    assert sendgrid.mails[mails:] == [
        {
            "personalizations": [{"to": [{"email": "ana@example.com"}, {"email": "ben@example.com"}]}],
            "from": {"email": "pager@gorax.test"},
            "subject": "Paged about billing-api",
            "content": [{"type": "text/plain", "value": f"SMS {sms_id} is queued."}],
        }
    ]
    assert await state.result() == {
        "message_id": f"sg-msg-{mails + 1}",
        "status": "accepted",
        "accepted": ["ana@example.com", "ben@example.com"],
    }

    # A number the run only learns at run time is checked then, and the step names the field.
    state = await run_graph(
        graph=NOTIFY_GRAPH,
        trigger={"phone": "0415 555 0123", "service": "billing-api", "team": ["ana@example.com"]},
        tenant=tenant_id,
        return_state=True,
    )
    assert state.is_failed()
    assert "config.to" in state.message and "not an E.164 phone number" in state.message, state.message
    assert len(twilio.messages) == texts + 1
