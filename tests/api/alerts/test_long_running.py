"""``long_running`` alert rules fire on a real Prefect server: a run still going N seconds after
it started is reported once, and a run that ended in time is not.

Prefect's proactive trigger (after ``prefect.flow-run.Running``, expecting a final state within
N seconds, per run) fires its automation, which posts back to the API; the API sends the alert
to an HTTP peer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from uuid import UUID

import pytest

from tests.api.alerts.conftest import client_of
from tests.api.alerts.test_alerts import _automations, _eventually, _history, _rule, _workflow
from tests.api.conftest import TenantHandle
from tests.peers import HttpPeer

pytestmark = pytest.mark.timeout(600)


async def _run(tenant_id: str, workflow_id: str, *, end: bool) -> str:
    """A run of the workflow that Prefect sees go Running (and Completed at once when ``end``)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("gorax-alerts-test")
        response = await client._client.post(
            "/flow_runs/",
            json={
                "flow_id": str(flow_id),
                "name": f"run-{uuid.uuid4().hex[:6]}",
                "tags": [f"tenant:{tenant_id}", f"workflow:{workflow_id}", "gorax"],
            },
        )
        run_id = UUID(response.json()["id"])
        await client.set_flow_run_state(run_id, Running(), force=True)
        if end:
            await client.set_flow_run_state(run_id, Completed(), force=True)
    return str(run_id)


async def test_a_run_longer_than_n_seconds_alerts_once_and_a_quick_one_never(
    alerts_tenant: TenantHandle, hook_peer: HttpPeer
) -> None:
    path = f"/slow-{uuid.uuid4().hex[:6]}"
    async with client_of(alerts_tenant) as client:
        workflow_id = await _workflow(client)
        response = await client.post(
            "/api/v1/alert-rules",
            json=_rule(
                "slow orders",
                {"type": "webhook", "url": hook_peer.url + path},
                kind="long_running",
                seconds=10,
                workflow_id=workflow_id,
            ),
        )
        assert response.status_code == 201, response.text
        rule = response.json()
        assert rule["kind"] == "long_running" and rule["seconds"] == 10
        assert len(await _automations(f"gorax-alert-{rule['id']}")) == 1
        await asyncio.sleep(2)  # Prefect's triggers service takes up new automations a moment later

        slow = await _run(alerts_tenant.id, workflow_id, end=False)
        quick = await _run(alerts_tenant.id, workflow_id, end=True)

        [sent] = await _eventually(lambda: asyncio.sleep(0, hook_peer.received("POST", path)), timeout=120)
        body = sent.json()
        assert body["rule"] == {"id": rule["id"], "name": "slow orders", "kind": "long_running"}
        assert [r["id"] for r in body["runs"]] == [slow]
        assert body["runs"][0]["status"] == "running"
        assert "1 run(s) ran longer than 10 s" in body["subject"]

        # The quick run ended within the window: nothing more is sent for it (nor again for the slow one).
        await asyncio.sleep(15)
        assert len(hook_peer.received("POST", path)) == 1
        events = [e for e in await _history(client) if e["rule_id"] == rule["id"]]
        assert [e["status"] for e in events] == ["sent"]
        assert quick not in json.dumps(body)
