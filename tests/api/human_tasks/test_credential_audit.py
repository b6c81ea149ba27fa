"""Credential uses in the audit log: one entry per (run, credential), naming type, run and nodes.

A real run on the package's warm worker uses an http-auth credential in three nodes (one in a
loop of three iterations, one through a ``credentials.<name>`` template) and a second credential
in one node, and waits for an approval whose e-mail the API sends with an SMTP credential.
Shares the human-task package's API and worker.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.api.human_tasks.conftest import (
    add_smtp_credential,
    audit_events,
    execution_status,
    open_task,
    publish,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)

CRM_TOKEN = "crm-token-" + uuid.uuid4().hex
OTHER_TOKEN = "other-token-" + uuid.uuid4().hex


def _graph(url: str) -> dict[str, Any]:
    def call(node_id: str, path: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": node_id,
            "type": "http.request",
            "position": {"x": 0, "y": 0},
            "config": {"method": "POST", "url": f"{url}{path}", **extra},
        }

    loop_body = call("call_b", "/b/{{ loop.item }}", credential="crm")
    loop_body["parentId"] = "each"
    return {
        "format": "gorax/graph@1",
        "name": f"credential-audit-{uuid.uuid4().hex[:6]}",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
            call("call_a", "/a", credential="crm"),
            {
                "id": "each",
                "type": "control.loop",
                "position": {"x": 0, "y": 0},
                "config": {"mode": "foreach", "items": [1, 2, 3]},
            },
            loop_body,
            {
                "id": "approve",
                "type": "human.approval",
                "position": {"x": 0, "y": 0},
                "config": {
                    "title": "Go on?",
                    "assignees": ["role:admin"],
                    "channels": ["inbox", "email"],
                    "email_credential": "mail",
                },
            },
            call("call_c", "/c", credential="crm", headers={"X-Other": "{{ credentials.other.token }}"}),
        ],
        "edges": [
            {"source": "start", "target": "call_a"},
            {"source": "call_a", "target": "each"},
            {"source": "each", "target": "approve"},
            {"source": "approve", "sourceHandle": "approved", "target": "call_c"},
        ],
    }


async def test_each_credential_used_by_a_run_is_audited_once(tenant, worker, http_peer, mailbox):
    async with tenant.client() as admin:
        for name, token in (("crm", CRM_TOKEN), ("other", OTHER_TOKEN)):
            created = await admin.post(
                "/api/v1/credentials",
                json={"name": name, "type": "http-auth", "values": {"scheme": "bearer", "token": token}},
            )
            assert created.status_code == 201, created.text
        await add_smtp_credential(admin, mailbox.port)
        workflow_id = await publish(admin, _graph(http_peer.url))
        started = await admin.post(f"/api/v1/workflows/{workflow_id}/execute", json={"input": {}})
        assert started.status_code == 202, started.text
        execution_id = started.json()["execution_id"]
        task = await open_task(admin, execution_id)
        await execution_status(admin, execution_id, "paused")
        decided = await admin.post(f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"})
        assert decided.status_code == 200, decided.text
        execution = await execution_status(admin, execution_id, "completed", "failed")
        assert execution["status"] == "completed", execution

        async def entries_of_run() -> list[dict[str, Any]] | None:
            entries = [
                e
                for e in await audit_events(admin, action="credential.used")
                if e["details"]["execution_id"] == execution_id
            ]
            return entries if len(entries) >= 3 else None

        entries = await wait_for("the credential-use audit entries", entries_of_run, timeout=90)
        # Nothing more comes for the run (no entry per node call, none per run segment): look
        # again after more than the auditor's settle interval and grace.
        await asyncio.sleep(8)
        again = [
            e
            for e in await audit_events(admin, action="credential.used")
            if e["details"]["execution_id"] == execution_id
        ]
    assert len(http_peer.requests) == 5  # call_a, three call_b, call_c: the nodes did run
    by_name = {e["resource_id"]: e for e in again}
    assert len(again) == 3 and sorted(by_name) == ["crm", "mail", "other"], again
    assert by_name["crm"]["details"]["nodes"] == ["call_a", "call_b", "call_c"]
    assert by_name["crm"]["details"]["type"] == "http-auth"
    assert by_name["other"]["details"]["nodes"] == ["call_c"]
    assert by_name["mail"]["details"]["nodes"] == ["approve"]
    assert by_name["mail"]["details"]["type"] == "smtp-server"
    for entry in again:
        assert entry["resource_type"] == "credential"
        assert (entry["actor_type"], entry["actor_id"]) == ("run", execution_id)
        assert entry["details"]["workflow_id"] == workflow_id
    # Names and types only: never a value.
    text = json.dumps(again)
    assert CRM_TOKEN not in text and OTHER_TOKEN not in text
    assert {e["id"] for e in entries} <= {e["id"] for e in again}
