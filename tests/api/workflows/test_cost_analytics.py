"""Cost analytics: runs seeded in the real Prefect server with step records of both usage shapes
(a language-model node's, an agent's), read back through the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.states import Completed, Pending, Running

from api.auth.permissions import Role
from api.services.costs import price, usage_of
from flows import STEP_ARTIFACT_TYPE, tenant_tag, workflow_tag
from tests.api.conftest import TenantHandle
from tests.api.ops_seed import seed_flow

API = "/api/v1"
MINI_IN, MINI_OUT = 0.15 / 1_000_000, 0.6 / 1_000_000  # gpt-4o-mini in litellm's cost map


def llm_step(node: str, model: str, tokens_in: int, tokens_out: int, **extra: Any) -> dict[str, Any]:
    usage = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
    return {
        "node_id": node,
        "name": node,
        "type": "ai.llm",
        "status": extra.pop("status", "completed"),
        "output": {"content": "hi", "model": model, "finish_reason": "stop", "usage": usage, **extra},
    }


def agent_step(node: str, **usage: Any) -> dict[str, Any]:
    return {
        "node_id": node,
        "name": node,
        "type": "ai.agent",
        "status": "completed",
        "output": {"answer": "x", "usage": usage},
    }


def plain_step(node: str) -> dict[str, Any]:
    return {"node_id": node, "name": node, "type": "data.transform", "status": "completed", "output": {"usage": "none"}}


async def seed(tenant_id: str, workflow_id: str, name: str, steps: list[dict[str, Any]], *, test: bool = False) -> str:
    """A completed run of the workflow with these step records (two artifacts, as a run stores them in batches)."""
    tags = [tenant_tag(tenant_id), workflow_tag(workflow_id), "gorax"] + (["gorax:test"] if test else [])
    async with get_client() as client:
        run = await client.create_flow_run(seed_flow, name=name, tags=tags, state=Pending())
        await client.set_flow_run_state(run.id, Running(), force=True)
        half = len(steps) // 2
        for batch in (steps[:half], steps[half:]):
            if batch:
                await client.create_artifact(
                    ArtifactCreate(type=STEP_ARTIFACT_TYPE, data={"steps": batch}, flow_run_id=run.id)
                )
        await client.set_flow_run_state(run.id, Completed(), force=True)
    return str(run.id)


def test_both_usage_shapes_are_read_and_priced() -> None:
    llm = usage_of(llm_step("a", "gpt-4o-mini", 1000, 500)["output"])
    assert llm is not None and llm.cost_usd == pytest.approx(1000 * MINI_IN + 500 * MINI_OUT)
    assert (llm.tokens_in, llm.tokens_out, llm.llm_calls, llm.models) == (1000, 500, 1, {"gpt-4o-mini"})
    # A provider prefix is priced as the bare model.
    assert price("openai/gpt-4o-mini", 1000, 500) == pytest.approx(llm.cost_usd)
    agent = usage_of(
        agent_step("b", model="gpt-4o-mini", tokens_in=10, tokens_out=5, cost_usd=0.5, llm_calls=2, tool_calls=3)[
            "output"
        ]
    )
    assert agent is not None and agent.cost_usd == 0.5 and (agent.llm_calls, agent.tool_calls) == (2, 3)
    unpriced = usage_of(agent_step("c", model="my-own-model", tokens_in=7, tokens_out=3)["output"])
    assert unpriced is not None and unpriced.cost_usd == 0 and unpriced.unpriced_tokens == 10
    assert usage_of(plain_step("d")["output"]) is None and usage_of("text") is None


async def test_cost_per_run_and_workflow_excludes_test_runs_and_other_tenants(
    sq_tenant: TenantHandle, sq_other: TenantHandle
) -> None:
    w1, w2, w3 = (str(uuid.uuid4()) for _ in range(3))
    t = sq_tenant.id
    # The session's tenant has other tests' runs: the report covers this test's runs only.
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    # w1: a language-model node priced from the cost map, plus an agent that recorded its cost.
    r1 = await seed(
        t,
        w1,
        "writer",
        [
            plain_step("start"),
            llm_step("draft", "gpt-4o-mini", 1000, 500),
            agent_step(
                "research", model="claude-x", tokens_in=100, tokens_out=50, cost_usd=0.25, llm_calls=3, tool_calls=2
            ),
            # A record a restarted run took from storage is the same use: not counted again.
            llm_step("draft", "gpt-4o-mini", 1000, 500, status="cached"),
        ],
    )
    # w1 again: an agent with tokens but no cost, priced from the cost map.
    r2 = await seed(
        t,
        w1,
        "writer",
        [agent_step("research", model="gpt-4o-mini", tokens_in=2000, tokens_out=1000, llm_calls=1, tool_calls=0)],
    )
    # w2: a model the cost map does not know, and a test run that is left out.
    r3 = await seed(t, w2, "local", [llm_step("ask", "my-local-model", 10, 5, attempts=2)])
    await seed(t, w2, "local", [agent_step("x", model="gpt-4o", tokens_in=1, tokens_out=1, cost_usd=99.0)], test=True)
    # w3: no model at all.
    await seed(t, w3, "plain", [plain_step("start")])
    # Another tenant's costly run.
    theirs = await seed(
        sq_other.id, str(uuid.uuid4()), "theirs", [agent_step("x", tokens_in=5, tokens_out=5, cost_usd=7.0)]
    )

    cost_r1 = 1000 * MINI_IN + 500 * MINI_OUT + 0.25
    cost_r2 = 2000 * MINI_IN + 1000 * MINI_OUT
    async with sq_tenant.client() as client, sq_tenant.client(Role.VIEWER) as viewer, sq_other.client() as other:
        report = (await client.get(f"{API}/analytics/costs", params={"since": since})).json()
        assert (report["runs"], report["llm_runs"], report["currency"], report["truncated"]) == (4, 3, "USD", False)
        total = report["total"]
        assert total["cost_usd"] == pytest.approx(cost_r1 + cost_r2)
        assert (total["tokens_in"], total["tokens_out"]) == (1000 + 100 + 2000 + 10, 500 + 50 + 1000 + 5)
        assert (total["llm_calls"], total["tool_calls"], total["unpriced_tokens"]) == (1 + 3 + 1 + 2, 2, 15)
        assert total["models"] == ["claude-x", "gpt-4o-mini", "my-local-model"]
        by_workflow = {w["workflow_id"]: w for w in report["workflows"]}
        assert [w["workflow_id"] for w in report["workflows"]] == [w1, w2, w3]
        assert by_workflow[w1]["cost_usd"] == pytest.approx(cost_r1 + cost_r2)
        assert (by_workflow[w1]["runs"], by_workflow[w1]["llm_runs"], by_workflow[w1]["workflow_name"]) == (
            2,
            2,
            "writer",
        )
        assert (by_workflow[w2]["runs"], by_workflow[w2]["cost_usd"], by_workflow[w2]["unpriced_tokens"]) == (1, 0, 15)
        assert (by_workflow[w3]["runs"], by_workflow[w3]["llm_runs"], by_workflow[w3]["tokens_in"]) == (1, 0, 0)
        assert [r["execution_id"] for r in report["top_runs"]] == [r1, r2, r3]
        assert report["top_runs"][0]["cost_usd"] == pytest.approx(cost_r1)

        run_cost = (await viewer.get(f"{API}/analytics/executions/{r1}/cost")).json()
        assert run_cost["cost_usd"] == pytest.approx(cost_r1) and run_cost["test"] is False
        steps = {s["node_id"]: s for s in run_cost["steps"]}
        assert sorted((s["node_id"], s["type"]) for s in run_cost["steps"]) == [
            ("draft", "ai.llm"),
            ("research", "ai.agent"),
        ]
        assert steps["research"]["cost_usd"] == 0.25 and steps["research"]["tool_calls"] == 2

        # The window: nothing before the runs.
        until = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        assert (await client.get(f"{API}/analytics/costs", params={"until": until})).json()["runs"] == 0
        bad = await client.get(f"{API}/analytics/costs", params={"since": "2026-01-01T00:00:00"})
        assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "since"

        # Tenant isolation both ways.
        assert (await client.get(f"{API}/analytics/executions/{theirs}/cost")).status_code == 404
        assert (await other.get(f"{API}/analytics/executions/{r1}/cost")).status_code == 404
        their_report = (await other.get(f"{API}/analytics/costs")).json()
        assert their_report["runs"] == 1 and their_report["total"]["cost_usd"] == 7.0
