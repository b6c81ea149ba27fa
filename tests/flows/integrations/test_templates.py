"""Golden runs of every workflow template: it validates, then runs end to end against local peers.

Each template runs in-process (``run_graph`` against the session's Prefect server) with its own
sample trigger payload, as a fresh test tenant whose sealed credentials point at loopback peers:
Slack, GitHub, Jira and PagerDuty stand-ins that check requests like the real APIs, an
OpenAI-compatible server for the llm nodes, a STARTTLS SMTP server, moto for AWS, PostgreSQL for
the db nodes, and a stand-in for the Gorax API's internal human-task endpoint (approvals are then
decided through Prefect, as the API does). Each test asserts the run completed and which peer
calls it made. Peers, tables and credentials are made once for the module.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from prefect.client.orchestration import get_client
from prefect.flow_runs import aresume_flow_run
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.services.templates import Template, all_templates
from blocks.service import create_credential
from flows.run_graph import run_graph
from tests.conftest import _pg_admin
from tests.flows.integrations.conftest import TEXTRACT_LINES, set_env
from tests.flows.integrations.peers import GitHubPeer, JiraPeer, OpenAIPeer, PagerDutyPeer, SlackPeer
from tests.flows.integrations.smtp_peer import SmtpPeer
from tests.peers import HttpPeer, PeerResponse
from translator import validate_graph

TEMPLATES = {t.id: t for t in all_templates()}
WORKER_TOKEN = "gxw_templates-" + uuid.uuid4().hex

TABLES = [
    "CREATE TABLE support_requests (sender TEXT, message TEXT, draft TEXT)",
    "CREATE TABLE feedback (customer TEXT, comment TEXT, sentiment TEXT, topic TEXT)",
    "CREATE TABLE expenses (employee TEXT, amount NUMERIC(12,2), description TEXT, approved_by TEXT)",
    "CREATE TABLE invoices (number TEXT, vendor TEXT, total NUMERIC(12,2), currency TEXT, source TEXT)",
    "CREATE TABLE orders (id SERIAL PRIMARY KEY, customer TEXT, product TEXT, quantity INTEGER, sender TEXT, "
    "created_at TIMESTAMPTZ DEFAULT NOW())",
    "CREATE TABLE contracts (document TEXT, counterparty TEXT, renewal_date TEXT, auto_renews BOOLEAN)",
    "CREATE TABLE sales (region TEXT, amount NUMERIC(12,2), sold_at TIMESTAMPTZ)",
    "INSERT INTO sales VALUES ('emea', 100.50, NOW() - INTERVAL '1 day'), ('emea', 49.50, NOW()), "
    "('amer', 300, NOW() - INTERVAL '2 days'), ('apac', 999, NOW() - INTERVAL '30 days')",
]


class TeamSlack(SlackPeer):
    """The Slack stand-in with the channels the templates post to."""

    CHANNELS = {
        **SlackPeer.CHANNELS,
        **{f"#{name}": f"C0{name.upper()}" for name in ("incidents", "alerts", "billing", "support", "legal", "ops")},
        "#engineering": "C0ENG",
    }


@dataclass
class Peers:
    slack: TeamSlack
    github: GitHubPeer
    jira: JiraPeer
    pagerduty: PagerDutyPeer
    llm: OpenAIPeer
    smtp: SmtpPeer
    web: HttpPeer  # the HTTP APIs templates call through variables (IAM, deploys, health)
    gorax: HttpPeer  # the Gorax API's internal human-task endpoint
    db_url: str
    moto: str
    tenant_id: str

    def reset(self) -> None:
        for peer in (self.slack, self.github, self.jira, self.pagerduty, self.llm, self.web, self.gorax):
            peer.requests.clear()
        self.slack.messages.clear()
        self.github.issues.clear()
        self.github.comments.clear()
        self.jira.created.clear()
        self.jira.transitioned.clear()
        self.jira.comments.clear()
        self.jira.searches.clear()
        self.pagerduty.events.clear()
        self.llm.answers.clear()
        self.llm.chats.clear()
        self.smtp.messages.clear()

    async def sql(self, statement: str) -> list[tuple[Any, ...]]:
        engine = create_async_engine(self.db_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement))
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    def aws(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.moto, region_name="us-east-1")

    def posted(self, channel: str) -> list[str]:
        """Texts of the messages posted to ``channel``, as the request named it."""
        return [m["text"] for m in self.slack.messages if m["channel"] == channel]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A PostgreSQL database of this module, with the tables the templates write to."""
    name = f"gorax_templates_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

    async def create_tables() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            for statement in TABLES:
                await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(create_tables())
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
async def peers(
    prefect_server: Any, moto_endpoint: str, database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Peers]:
    smtp = SmtpPeer(tmp_path_factory.mktemp("smtp")).start()
    http = [TeamSlack(), GitHubPeer(), JiraPeer(), PagerDutyPeer(), OpenAIPeer(), HttpPeer(), HttpPeer()]
    for peer in http:
        peer.start()
    slack, github, jira, pagerduty, llm, web, gorax = http
    tenant_id, tenant_slug = str(uuid.uuid4()), f"tpl{uuid.uuid4().hex[:8]}"
    scope = {"tenant_id": tenant_id, "tenant_slug": tenant_slug}
    credentials: list[tuple[str, str, dict[str, Any]]] = [
        ("slack", "slack-credentials", {"token": SlackPeer.TOKEN}),
        ("github", "github-token", {"token": GitHubPeer.TOKEN, "api_url": github.url}),
        ("jira", "jira-credentials", {"base_url": jira.url, "email": JiraPeer.EMAIL, "api_token": JiraPeer.TOKEN}),
        (
            "pagerduty",
            "pagerduty-key",
            {"routing_key": PagerDutyPeer.ROUTING_KEY, "api_url": f"{pagerduty.url}/v2/enqueue"},
        ),
        (
            "llm",
            "llm-provider",
            {
                "provider": "openai",
                "api_key": OpenAIPeer.KEY,
                "api_base": f"{llm.url}/v1",
                "default_model": "gpt-4o-mini",
            },
        ),
        ("warehouse", "database-url", {"url": database}),
        (
            "aws",
            "aws-credentials",
            {
                "aws_access_key_id": "AKIATESTKEY000000001",
                "aws_secret_access_key": "moto-secret-key-do-not-log-0123",
                "region_name": "us-east-1",
                "aws_client_parameters": {"endpoint_url": moto_endpoint},
            },
        ),
        (
            "smtp",
            "smtp-server",
            {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "starttls",
                "username": SmtpPeer.USER,
                "password": SmtpPeer.PASSWORD,
                "from_address": "workflows@example.com",
            },
        ),
    ]
    webhooks = ("github", "alerts", "support", "deploy", "uploads", "mail", "shop")
    credentials += [
        (f"{source}_webhook", "webhook-secret", {"secret": "whsec-" + uuid.uuid4().hex}) for source in webhooks
    ]
    await asyncio.gather(*(create_credential(name, kind, values, **scope) for name, kind, values in credentials))
    gorax.route(
        "POST",
        "/api/v1/internal/human-tasks",
        lambda req: PeerResponse(201, {"id": f"task-{len(gorax.requests)}"}),
    )
    found = Peers(slack, github, jira, pagerduty, llm, smtp, web, gorax, database, moto_endpoint, tenant_id)
    found.aws("s3").create_bucket(Bucket="exports")
    yield found
    for peer in http:
        peer.stop()
    smtp.stop()


@pytest.fixture
def env(peers: Peers, monkeypatch: pytest.MonkeyPatch) -> Peers:
    """Point the Slack client, the internal API and the TLS trust store at the peers."""
    set_env(
        monkeypatch,
        GORAX_SLACK_API_URL=f"{peers.slack.url}/api/",
        GORAX_API_URL=peers.gorax.url,
        GORAX_WORKER_TOKEN=WORKER_TOKEN,
        SSL_CERT_FILE=str(peers.smtp.cert),
    )
    peers.reset()
    return peers


# -- what each template needs before its run and what its run must have done ----------------------

Setup = Callable[[Peers], Awaitable[None]]
Check = Callable[[Peers, Any], Awaitable[None]]


async def _nothing(p: Peers) -> None:
    return None


def _answers(*answers: Any) -> Setup:
    async def setup(p: Peers) -> None:
        p.llm.answers += [a if isinstance(a, str) else json.dumps(a) for a in answers]

    return setup


def _text(message: Any) -> str:
    return message.get_body(("plain",)).get_content()


async def check_incident_page_and_announce(p: Peers, result: Any) -> None:
    assert result == {"alert": "alrt-1042", "paged": True}
    [event] = p.pagerduty.events
    assert event["event_action"] == "trigger" and event["dedup_key"] == "alrt-1042"
    assert event["payload"]["summary"] == "API error rate above 5%" and event["payload"]["source"] == "checkout-api"
    [text_] = p.posted("#incidents")
    assert "API error rate above 5%" in text_ and "alrt-1042" in text_
    assert p.posted("#alerts") == []


async def check_incident_jira_ticket(p: Peers, result: Any) -> None:
    assert result == {"ticket": "OPS-1"}
    [fields] = p.jira.created
    assert fields["summary"] == "[billing-db] Disk 95% full" and fields["issuetype"] == {"name": "Bug"}
    assert fields["labels"] == ["incident", "billing-db"]
    assert p.posted("#incidents") == [f"Tracking Disk 95% full in OPS-1: {p.jira.url}/browse/OPS-1"]


async def check_incident_auto_resolve(p: Peers, result: Any) -> None:
    assert result == {"resolved": "alrt-1042", "ticket": "OPS-1"}
    [event] = p.pagerduty.events
    assert event["event_action"] == "resolve" and event["dedup_key"] == "alrt-1042"
    assert "alrt-1042 cleared" in json.dumps(p.jira.comments)
    assert p.jira.transitioned == ["31"]  # "Done"
    assert p.posted("#incidents") == [":white_check_mark: alrt-1042 resolved; OPS-1 closed."]


async def check_ticket_routing_llm(p: Peers, result: Any) -> None:
    assert result == {"team": "engineering", "priority": "urgent"}
    [fields] = p.jira.created
    assert fields["summary"] == "Checkout fails with HTTP 500" and fields["labels"] == ["support", "urgent"]
    assert "Reported by ana@example.com" in fields["description"]
    assert p.slack.messages == [] and p.smtp.messages == []  # the other routes did not run
    assert "Checkout returns 500" in p.llm.chats[0]["messages"][-1]["content"]


async def check_support_reply_draft(p: Peers, result: Any) -> None:
    draft = "Go to Settings, then Account, and change the e-mail there."
    assert result == {"draft": draft}
    [mail] = p.smtp.messages
    assert mail["tls"] and mail["rcpt"] == ["support-lead@example.com"]
    assert mail["message"]["Reply-To"] == "ana@example.com" and draft in _text(mail["message"])
    rows = await p.sql("SELECT sender, draft FROM support_requests")
    assert rows == [("ana@example.com", draft)]


async def check_feedback_sentiment(p: Peers, result: Any) -> None:
    assert await p.sql("SELECT customer, sentiment, topic FROM feedback") == [("Globex", "negative", "dashboard speed")]
    [text_] = p.posted("#support")
    assert "Globex is unhappy about dashboard speed" in text_


async def check_access_request_approval(p: Peers, result: Any) -> None:
    assert result == {"decision": "approved"}
    [grant] = p.web.received("POST", "/grants")
    assert grant.json() == {"user": "ana@example.com", "system": "billing-db", "approved_by": "admin@example.com"}
    [dm] = p.slack.messages
    assert dm["channel"] == "D0DM" and "approved by admin@example.com" in dm["text"]


async def check_expense_approval(p: Peers, result: Any) -> None:
    rows = await p.sql("SELECT employee, amount, approved_by FROM expenses")
    assert [(e, float(a), b) for e, a, b in rows] == [("ana@example.com", 1250.0, "admin@example.com")]
    assert p.smtp.messages == []  # approved: nobody is told it was rejected


async def check_deploy_approval_gate(p: Peers, result: Any) -> None:
    assert result == {"decision": "deploy"}
    [deploy] = p.web.received("POST", "/deploys")
    assert deploy.json() == {"repository": "acme/api", "ref": "9f2c1e7", "environment": "production"}
    assert p.github.comments == [{"issue": 1, "body": "Deploy to production approved by admin@example.com."}]


async def setup_invoice(p: Peers) -> None:
    s3 = p.aws("s3")
    s3.create_bucket(Bucket="invoices-inbox")
    s3.put_object(Bucket="invoices-inbox", Key="scans/inv-2041.png", Body=b"\x89PNG\r\n\x1a\n...")
    p.llm.answers.append(
        json.dumps({"invoice": "INV-2041", "vendor": "Acme Supplies Ltd", "total": 1250.0, "currency": "EUR"})
    )


async def check_invoice_to_database(p: Peers, result: Any) -> None:
    assert result == {"invoice": "INV-2041", "stored": 1}
    assert "\n".join(TEXTRACT_LINES) in p.llm.chats[0]["messages"][-1]["content"]  # what Textract read
    rows = await p.sql("SELECT number, vendor, total, currency, source FROM invoices")
    assert [(n, v, float(t), c, s) for n, v, t, c, s in rows] == [
        ("INV-2041", "Acme Supplies Ltd", 1250.0, "EUR", "s3://invoices-inbox/scans/inv-2041.png")
    ]


async def check_email_order_extraction(p: Peers, result: Any) -> None:
    [(order_id, customer, product, quantity)] = await p.sql(
        "SELECT id, customer, product, quantity FROM orders WHERE sender = 'buyer@globex.example'"
    )
    assert (customer, product, quantity) == ("Globex", "A4 paper (box)", 12)
    assert result == {"order": order_id}
    [mail] = p.smtp.messages
    assert mail["rcpt"] == ["buyer@globex.example"] and mail["message"]["Subject"] == "Re: Order"
    assert f"12 x A4 paper (box) (order {order_id})" in _text(mail["message"])


async def setup_contract(p: Peers) -> None:
    s3 = p.aws("s3")
    s3.create_bucket(Bucket="contracts")
    s3.put_object(Bucket="contracts", Key="2026/globex-msa.txt", Body=b"Master services agreement with Globex ...")
    p.llm.answers.append(json.dumps({"counterparty": "Globex", "renewal_date": "2026-06-30", "auto_renews": True}))


async def check_contract_renewal_extraction(p: Peers, result: Any) -> None:
    assert "Master services agreement with Globex" in p.llm.chats[0]["messages"][-1]["content"]
    assert await p.sql("SELECT * FROM contracts") == [
        ("s3://contracts/2026/globex-msa.txt", "Globex", "2026-06-30", True)
    ]
    assert p.posted("#legal") == ["The contract with Globex renews automatically on 2026-06-30."]


async def check_daily_jira_digest(p: Peers, result: Any) -> None:
    [search] = p.jira.searches
    assert search["jql"].startswith("project = OPS") and search["maxResults"] == 20
    assert p.posted("#ops") == ["*Open OPS issues (2)*\n- OPS-1: disk full\n- OPS-2: cert expiring"]


async def check_weekly_sales_report(p: Peers, result: Any) -> None:
    [mail] = p.smtp.messages
    assert mail["rcpt"] == ["sales-leads@example.com"] and "(2 regions)" in _text(mail["message"])
    [attachment] = list(mail["message"].iter_attachments())
    assert attachment.get_filename() == "sales.csv"
    assert attachment.get_content() == "region,total,orders\namer,300.00,1\nemea,150.00,2\n"


async def setup_export(p: Peers) -> None:
    await p.sql(
        "INSERT INTO orders (customer, product, quantity, sender) VALUES ('Initech', 'Stapler', 3, 'x@i.example')"
    )


async def check_nightly_export_to_s3(p: Peers, result: Any) -> None:
    assert result["key"] == "orders/2026-01-05.json" and result["rows"] >= 1
    stored = p.aws("s3").get_object(Bucket="exports", Key="orders/2026-01-05.json")
    rows = json.loads(stored["Body"].read())
    assert {"customer": "Initech", "product": "Stapler", "quantity": 3} in [
        {k: r[k] for k in ("customer", "product", "quantity")} for r in rows
    ]
    assert stored["Metadata"] == {"rows": str(result["rows"])}


async def check_standup_summary_llm(p: Peers, result: Any) -> None:
    assert p.llm.chats[0]["messages"][-1]["content"] == "OPS-1: disk full\nOPS-2: cert expiring"
    assert p.posted("#engineering") == ["*Stand-up briefing*\n- OPS-1 disk full is being cleaned up"]


async def setup_uptime(p: Peers) -> None:
    p.web.route("GET", "/health", PeerResponse(503, {"status": "down"}))


async def check_uptime_monitor(p: Peers, result: Any) -> None:
    assert result == {"status": 503}
    assert len(p.web.received("GET", "/health")) == 1  # 503 is an answer, not a failure to retry
    [event] = p.pagerduty.events
    assert event["dedup_key"] == "uptime-2026-01-05" and "answered 503" in event["payload"]["summary"]
    assert p.posted("#ops") == [":red_circle: health check failed with 503; on-call paged."]


async def check_github_deploy_notifier(p: Peers, result: Any) -> None:
    assert result == {"state": "failure"}
    assert p.github.issues[1]["title"] == "Deploy of 9f2c1e7 to production failed"
    assert p.github.issues[1]["labels"] == [{"name": "deploy-failure"}]
    assert p.posted("#deployments") == [":x: deploy to production failed: https://github.test/acme/api/issues/1"]


async def setup_triage(p: Peers) -> None:
    p.github.issues[1] = {"title": "Crash when exporting", "labels": []}
    p.llm.answers.append(json.dumps({"label": "bug", "reply": "Thanks! Which Safari version do you use?"}))


async def check_github_issue_triage_llm(p: Peers, result: Any) -> None:
    assert p.github.issues[1]["labels"] == [{"name": "bug"}, {"name": "triaged"}]
    assert p.github.comments == [{"issue": 1, "body": "Thanks! Which Safari version do you use?"}]


async def setup_first_contribution(p: Peers) -> None:
    p.github.issues[2] = {"title": "Fix typo", "labels": []}


async def check_github_first_contribution(p: Peers, result: Any) -> None:
    [comment] = p.github.comments
    assert comment["issue"] == 2 and "@octocat" in comment["body"]
    assert p.posted("#engineering") == ["New contributor octocat opened https://github.com/acme/api/pull/2"]


async def check_bulk_github_issues(p: Peers, result: Any) -> None:
    titles = sorted(issue["title"] for issue in p.github.issues.values())
    assert titles == ["Tag the release", "Update the status page", "Write release notes"]
    assert all(issue["labels"] == [{"name": "launch"}] for issue in p.github.issues.values())
    assert sorted(result["issues"]) == [f"https://github.test/acme/api/issues/{n}" for n in (1, 2, 3)]


async def setup_queue(p: Peers) -> None:
    p.aws("sqs").create_queue(QueueName="fulfilment")


async def check_order_to_queue(p: Peers, result: Any) -> None:
    assert result["order"] == "5012" and result["total"] == 43.25
    sqs = p.aws("sqs")
    url = sqs.get_queue_url(QueueName="fulfilment")["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageId"] == result["message"]
    assert json.loads(message["Body"])["customer"] == "ana@example.com"
    assert message["MessageAttributes"]["customer"]["StringValue"] == "ana@example.com"


ORDER = {"id": "A-17", "status": "delivered", "total": 42.5}


def _tool_call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    """A scripted assistant message that calls one tool."""
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }


async def setup_refund_agent(p: Peers) -> None:
    p.web.route("GET", "/orders", PeerResponse(200, ORDER))
    p.web.route("POST", "/refunds", PeerResponse(201, {"refund": "R-1", "order": "A-17", "amount": 42.5}))
    p.llm.answers += [
        _tool_call("lookup_order", {"query": {"id": "A-17"}}, "c1"),
        _tool_call("refund", {"json": {"order": "A-17", "amount": 42.5}}, "c2"),
        "Sorry about the mug, Ana: we refunded the 42.50 of order A-17.",
    ]


async def check_support_refund_agent(p: Peers, result: Any) -> None:
    reply = "Sorry about the mug, Ana: we refunded the 42.50 of order A-17."
    assert result == {"reply": reply, "tool_calls": 2}
    # The lookup ran at once; the refund only after the approval, and once (the resumed node
    # replays its recorded turns instead of asking the model or the shop again).
    assert [r.path for r in p.web.received("GET", "/orders")] == ["/orders?id=A-17"]
    [refund] = p.web.received("POST", "/refunds")
    assert refund.json() == {"order": "A-17", "amount": 42.5}
    [task] = [r.json() for r in p.gorax.requests]
    assert task["assignees"] == ["role:admin"] and task["timeout_seconds"] == 24 * 3600
    assert task["snapshot"]["tool_call"]["tool"] == "refund"
    assert task["snapshot"]["tool_call"]["arguments"] == {"json": {"order": "A-17", "amount": 42.5}}
    assert len(p.llm.chats) == 3
    assert [t["function"]["name"] for t in p.llm.chats[0]["tools"]] == ["lookup_order", "refund"]
    told = [m for m in p.llm.chats[2]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in told] == ["c1", "c2"]
    assert json.loads(told[0]["content"])["body"] == ORDER
    approved = json.loads(told[1]["content"])
    assert approved["approved_by"] == "admin@example.com" and approved["result"]["status"] == 201
    assert "My order A-17 arrived broken" in p.llm.chats[0]["messages"][-1]["content"]
    [mail] = p.smtp.messages
    assert mail["rcpt"] == ["ana@example.com"] and mail["message"]["Subject"] == "Re: Broken mug"
    assert reply in _text(mail["message"])


#: Template id -> (what to prepare, the approval decision it waits for if any, what to check).
GOLDEN: dict[str, tuple[Setup, str | None, Check]] = {
    "incident-page-and-announce": (_nothing, None, check_incident_page_and_announce),
    "incident-jira-ticket": (_nothing, None, check_incident_jira_ticket),
    "incident-auto-resolve": (_nothing, None, check_incident_auto_resolve),
    "ticket-routing-llm": (
        _answers({"team": "engineering", "priority": "urgent", "summary": "Checkout fails with HTTP 500"}),
        None,
        check_ticket_routing_llm,
    ),
    "support-reply-draft": (
        _answers("Go to Settings, then Account, and change the e-mail there."),
        None,
        check_support_reply_draft,
    ),
    "feedback-sentiment": (
        _answers({"sentiment": "negative", "topic": "dashboard speed"}),
        None,
        check_feedback_sentiment,
    ),
    "access-request-approval": (_nothing, "approved", check_access_request_approval),
    "expense-approval": (_nothing, "approved", check_expense_approval),
    "deploy-approval-gate": (_nothing, "deploy", check_deploy_approval_gate),
    "invoice-to-database": (setup_invoice, None, check_invoice_to_database),
    "email-order-extraction": (
        _answers({"customer": "Globex", "product": "A4 paper (box)", "quantity": 12}),
        None,
        check_email_order_extraction,
    ),
    "contract-renewal-extraction": (setup_contract, None, check_contract_renewal_extraction),
    "daily-jira-digest": (_nothing, None, check_daily_jira_digest),
    "weekly-sales-report": (_nothing, None, check_weekly_sales_report),
    "nightly-export-to-s3": (setup_export, None, check_nightly_export_to_s3),
    "standup-summary-llm": (_answers("- OPS-1 disk full is being cleaned up"), None, check_standup_summary_llm),
    "uptime-monitor": (setup_uptime, None, check_uptime_monitor),
    "github-deploy-notifier": (_nothing, None, check_github_deploy_notifier),
    "github-issue-triage-llm": (setup_triage, None, check_github_issue_triage_llm),
    "github-first-contribution": (setup_first_contribution, None, check_github_first_contribution),
    "bulk-github-issues": (_nothing, None, check_bulk_github_issues),
    "order-to-queue": (setup_queue, None, check_order_to_queue),
    "support-refund-agent": (setup_refund_agent, "approved", check_support_refund_agent),
}


def test_every_template_has_a_golden_run() -> None:
    assert len(TEMPLATES) >= 20
    assert sorted(GOLDEN) == sorted(TEMPLATES)


def test_templates_load_from_the_package_only() -> None:
    """The files the gallery serves are the ones shipped as package data (pyproject.toml)."""
    root = Path(__file__).resolve().parents[3]
    declared = (root / "pyproject.toml").read_text()
    assert '"templates/*.json"' in declared
    assert {p.stem for p in (root / "api" / "templates").glob("*.json")} == set(TEMPLATES)


async def _decide(p: Peers, decision: str) -> None:
    """Wait for the run's human task, then decide it through Prefect as the API does."""
    for _ in range(600):
        if p.gorax.requests:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the run never recorded its human task")
    task = p.gorax.requests[0].json()
    assert p.gorax.requests[0].headers["authorization"] == f"Bearer {WORKER_TOKEN}"
    run_id = task["flow_run_id"]
    async with get_client() as client:
        for _ in range(600):
            if (await client.read_flow_run(run_id)).state.is_paused():
                break
            await asyncio.sleep(0.05)
    decided = {
        "value": decision,
        "comment": "looks right",
        "decided_by": "admin@example.com",
        "decided_at": datetime.now(UTC).isoformat(),
    }
    await aresume_flow_run(run_id, run_input=decided)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
async def test_template_runs_against_local_peers(template_id: str, env: Peers) -> None:
    template: Template = TEMPLATES[template_id]
    assert validate_graph(template.graph()) == []
    setup, decision, check = GOLDEN[template_id]
    await setup(env)
    variables = {name: env.web.url for name in template.variables}
    run = asyncio.ensure_future(
        run_graph(
            graph=template.graph(),
            trigger=template.meta.sample_trigger,
            trigger_node=template.trigger_node,
            env=variables,
            tenant=env.tenant_id,
            return_state=True,
        )
    )
    if decision is not None:
        await _decide(env, decision)
    state = await run
    assert state.is_completed(), state.message
    await check(env, await state.result())
