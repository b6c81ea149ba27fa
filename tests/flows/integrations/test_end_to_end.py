"""End to end through run_graph: webhook -> Textract -> llm.extract -> db.execute.

The document sits in moto S3, Textract is moto's (seeded answer), the extraction comes from the
OpenAI-compatible loopback server, the rows land in PostgreSQL; credentials are sealed Gorax
credentials of a fresh tenant, opened by the runtime on the worker side.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from blocks.service import create_credential
from flows.integrations import ensure_rate_limit, rate_limit_name
from flows.run_graph import run_graph
from tests.flows.integrations.conftest import TEXTRACT_LINES, set_env
from tests.flows.integrations.peers import OpenAIPeer

SCHEMA = {
    "type": "object",
    "properties": {
        "invoice": {"type": "string"},
        "vendor": {"type": "string"},
        "total": {"type": "number"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
    "required": ["invoice", "vendor", "total", "currency"],
    "additionalProperties": False,
}

GRAPH: dict[str, Any] = {
    "format": "gorax/graph@1",
    "name": "invoice-intake",
    "nodes": [
        {"id": "hook", "type": "trigger.webhook", "config": {}},
        {
            "id": "ocr",
            "type": "aws.textract.detect_text",
            "name": "Read the document",
            "config": {"credential": "aws", "bucket": "{{ trigger.body.bucket }}", "key": "{{ trigger.body.key }}"},
        },
        {
            "id": "extract",
            "type": "llm.extract",
            "name": "Extract invoice fields",
            "config": {"credential": "llm", "text": "{{ steps.ocr.text }}", "schema": SCHEMA, "max_attempts": 2},
        },
        {
            "id": "store",
            "type": "db.execute",
            "name": "Store the invoice",
            "config": {
                "credential": "warehouse",
                "sql": "INSERT INTO invoices (number, vendor, total, currency, source) "
                "VALUES (:number, :vendor, :total, :currency, :source)",
                "parameters": {
                    "number": "{{ steps.extract.data.invoice }}",
                    "vendor": "{{ steps.extract.data.vendor }}",
                    "total": "{{ steps.extract.data.total }}",
                    "currency": "{{ steps.extract.data.currency }}",
                    "source": "s3://{{ trigger.body.bucket }}/{{ trigger.body.key }}",
                },
            },
        },
    ],
    "edges": [
        {"source": "hook", "target": "ocr"},
        {"source": "ocr", "target": "extract"},
        {"source": "extract", "target": "store"},
    ],
}


async def _sql(url: str, statement: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        await engine.dispose()


# Generous: on a loaded machine the first llm node pays litellm's import (~11 s of CPU).
@pytest.mark.timeout(600)
async def test_document_to_rows(
    prefect_server: Any,
    moto_endpoint: str,
    aws_credentials: Any,
    llm_peer: OpenAIPeer,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, GORAX_RATE_LIMITS="on")
    await ensure_rate_limit("llm", burst=50, per_second=10)
    await _sql(
        postgres_url,
        "CREATE TABLE IF NOT EXISTS invoices (number TEXT, vendor TEXT, total NUMERIC(12,2), "
        "currency TEXT, source TEXT)",
    )
    bucket = f"inbox-{uuid.uuid4().hex[:8]}"
    s3 = aws_credentials.get_boto3_session().client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="scans/inv-2041.png", Body=b"\x89PNG\r\n\x1a\n...")

    tenant_id, tenant_slug = str(uuid.uuid4()), f"e2e{uuid.uuid4().hex[:8]}"
    kw = {"tenant_id": tenant_id, "tenant_slug": tenant_slug}
    await create_credential(
        "aws",
        "aws-credentials",
        {
            "aws_access_key_id": "AKIATESTKEY000000001",
            "aws_secret_access_key": "moto-secret-key-do-not-log-0123",
            "region_name": "us-east-1",
            "aws_client_parameters": {"endpoint_url": moto_endpoint},
        },
        **kw,
    )
    await create_credential(
        "llm",
        "llm-provider",
        {
            "provider": "openai",
            "api_key": OpenAIPeer.KEY,
            "api_base": f"{llm_peer.url}/v1",
            "default_model": "gpt-4o-mini",
        },
        **kw,
    )
    await create_credential("warehouse", "database-url", {"url": postgres_url}, **kw)

    llm_peer.answers += [
        "The invoice is INV-2041 from Acme.",  # not JSON: sent back with the problem
        json.dumps({"invoice": "INV-2041", "vendor": "Acme Supplies Ltd", "total": 1250.0, "currency": "EUR"}),
    ]
    state = await run_graph(
        graph=GRAPH,
        trigger={"body": {"bucket": bucket, "key": "scans/inv-2041.png"}},
        trigger_node="hook",
        tenant=tenant_id,
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert await state.result() == {"rows": [], "columns": [], "rowcount": 1, "truncated": False}  # store's output

    rows = await _sql(postgres_url, "SELECT number, vendor, total, currency, source FROM invoices")
    assert [(r[0], r[1], str(r[2]), r[3], r[4]) for r in rows] == [
        ("INV-2041", "Acme Supplies Ltd", "1250.00", "EUR", f"s3://{bucket}/scans/inv-2041.png")
    ]
    # The model saw Textract's text, and was told what was wrong with its first answer.
    assert llm_peer.chats[0]["messages"][1]["content"] == "\n".join(TEXTRACT_LINES)
    assert "not JSON" in llm_peer.chats[1]["messages"][-1]["content"]

    async with get_client() as client:
        await client.delete_global_concurrency_limit_by_name(rate_limit_name("llm"))
