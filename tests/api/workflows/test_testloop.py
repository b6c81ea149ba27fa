"""Pins, test runs of drafts and workflow tests through the HTTP API, on the real Prefect server
with a warm gorax worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.permissions import Role
from tests.api.conftest import TenantHandle
from tests.api.workflows.conftest import create, graph, publish, transform

API = "/api/v1"


def _doubler(name: str, *, tests: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    g = graph(
        name,
        transform("shape", {"n": "{{ trigger.n * 2 }}"}),
        {
            "id": "done",
            "type": "control.output",
            "position": {"x": 0, "y": 200},
            "config": {"value": {"doubled": "{{ steps.shape.n }}"}},
        },
    )
    if tests is not None:
        g["tests"] = tests
    return g


async def _test_run(client: httpx.AsyncClient, wid: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/workflows/{wid}/test-runs", json={"timeout_seconds": 90, **body})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_pin_stands_in_for_its_node_in_test_runs_and_never_in_published_runs(
    run_tenant: TenantHandle, sq_other: TenantHandle
) -> None:
    async with run_tenant.client() as client:
        g = _doubler("pinned")
        g["nodes"].append(
            {"id": "fetch", "type": "http.request", "position": {"x": 0, "y": 300}, "config": {"url": "http://x.test"}}
        )
        g["edges"].append({"id": "e9", "source": "done", "target": "fetch"})
        wid = (await create(client, g))["id"]

        pinned = await client.put(f"{API}/workflows/{wid}/pins/shape", json={"output": {"n": 100}})
        assert pinned.status_code == 200, pinned.text
        assert pinned.json()["source"] == "manual" and pinned.json()["output"] == {"n": 100}
        assert (await client.get(f"{API}/workflows/{wid}/pins")).json()["shape"]["output"] == {"n": 100}

        # Checked against what the node returns: the field path and the node are named.
        bad = await client.put(f"{API}/workflows/{wid}/pins/fetch", json={"output": {"status": "teapot"}})
        assert bad.status_code == 422, bad.text
        error = bad.json()["error"]
        assert error["details"]["node_id"] == "fetch" and error["details"]["errors"][0]["path"] == "output.status"
        assert "node 'fetch'" in error["message"]
        good = await client.put(f"{API}/workflows/{wid}/pins/fetch", json={"output": {"status": 200, "body": "ok"}})
        assert good.status_code == 200, good.text
        missing = await client.put(f"{API}/workflows/{wid}/pins/ghost", json={"output": 1})
        assert missing.status_code == 404 and "ghost" in missing.text

        run = await _test_run(client, wid, mode="all", input={"n": 1})
        assert run["status"] == "completed", run
        assert run["output"] == {"doubled": 100}
        steps = {s["node_id"]: s for s in run["steps"]}
        assert steps["shape"]["status"] == "pinned" and steps["shape"]["output"] == {"n": 100}
        assert steps["done"]["status"] == "completed"
        assert steps["fetch"]["status"] == "pinned"
        assert sorted(run["fixtures"]) == ["fetch", "shape"]

        # The test run is readable by id, listed only with tests=true.
        detail = (await client.get(f"{API}/executions/{run['execution_id']}")).json()
        assert detail["trigger_type"] == "test" and detail["workflow_id"] == wid
        assert (await client.get(f"{API}/executions", params={"workflow_id": wid})).json()["total"] == 0
        listed = (await client.get(f"{API}/executions", params={"workflow_id": wid, "tests": "true"})).json()
        assert [e["id"] for e in listed["items"]] == [run["execution_id"]]

        # Publishing strips pins: the version carries none and its run calls the node.
        unpinned = await client.delete(f"{API}/workflows/{wid}/pins/fetch")
        assert unpinned.status_code == 204
        assert (await client.delete(f"{API}/workflows/{wid}/pins/fetch")).status_code == 404
        g2 = (await client.get(f"{API}/workflows/{wid}")).json()["graph"]
        g2["nodes"] = [n for n in g2["nodes"] if n["id"] != "fetch"]
        g2["edges"] = [e for e in g2["edges"] if e["target"] != "fetch"]
        etag = (await client.get(f"{API}/workflows/{wid}")).headers["ETag"]
        assert (
            await client.put(f"{API}/workflows/{wid}", json={"graph": g2}, headers={"If-Match": etag})
        ).status_code == 200
        version = await publish(client, wid)
        assert "pins" not in version["graph"]
        assert "shape" in (await client.get(f"{API}/workflows/{wid}/pins")).json()  # the draft keeps it
        executed = await client.post(
            f"{API}/workflows/{wid}/execute", json={"input": {"n": 1}, "wait": True, "timeout_seconds": 90}
        )
        assert executed.status_code == 200, executed.text
        assert executed.json()["output"] == {"doubled": 2}
        production = {s["node_id"]: s for s in executed.json()["steps"]}
        assert production["shape"]["status"] == "completed" and production["shape"]["output"] == {"n": 2}

    async with run_tenant.client(Role.VIEWER) as viewer:
        assert (await viewer.get(f"{API}/workflows/{wid}/pins")).status_code == 200
        assert (await viewer.put(f"{API}/workflows/{wid}/pins/shape", json={"output": 1})).status_code == 403
        assert (await viewer.post(f"{API}/workflows/{wid}/test-runs", json={"mode": "all"})).status_code == 403
    async with sq_other.client() as intruder:
        assert (await intruder.get(f"{API}/executions/{run['execution_id']}")).status_code == 404
        assert (await intruder.get(f"{API}/workflows/{wid}/pins")).status_code == 404
        assert (await intruder.put(f"{API}/workflows/{wid}/pins/shape", json={"output": 1})).status_code == 404


async def test_a_test_run_without_input_gets_the_newest_runs_trigger_input(run_tenant: TenantHandle) -> None:
    async with run_tenant.client() as client:
        wid = (await create(client, _doubler("trigger input")))["id"]
        # No run yet: no trigger input to take.
        alone = await _test_run(client, wid, mode="node", node_id="shape")
        assert alone["trigger_from"] is None and alone["status"] == "failed", alone

        first = await _test_run(client, wid, mode="all", input={"n": 21})
        assert first["output"] == {"doubled": 42} and first["trigger_from"] is None
        # Run node on shape, which reads trigger.n: the newest run's input, named.
        again = await _test_run(client, wid, mode="node", node_id="shape")
        assert again["status"] == "completed", again
        assert {s["node_id"]: s["output"] for s in again["steps"]}["shape"] == {"n": 42}
        assert again["trigger_from"] == first["execution_id"]
        # Given input wins; an explicit null is no input.
        given = await _test_run(client, wid, mode="node", node_id="shape", input={"n": 4})
        assert {s["node_id"]: s["output"] for s in given["steps"]}["shape"] == {"n": 8}
        assert given["trigger_from"] is None
        none = await _test_run(client, wid, mode="node", node_id="shape", input=None)
        assert none["status"] == "failed" and none["trigger_from"] is None


async def test_run_one_node_takes_upstream_outputs_from_the_last_run(run_tenant: TenantHandle) -> None:
    async with run_tenant.client() as client:
        wid = (await create(client, _doubler("one node")))["id"]
        first = await _test_run(client, wid, mode="all", input={"n": 5})
        assert first["status"] == "completed" and first["output"] == {"doubled": 10}

        one = await _test_run(client, wid, mode="node", node_id="done")
        assert one["status"] == "completed", one
        assert one["output"] == {"doubled": 10}
        assert one["fixtures"] == ["shape", "start"] and one["last_run"] == first["execution_id"]
        statuses = {s["node_id"]: s["status"] for s in one["steps"]}
        assert statuses == {"start": "pinned", "shape": "pinned", "done": "completed"}

        # A pin wins over the last run's output.
        await client.put(f"{API}/workflows/{wid}/pins/shape", json={"output": {"n": 7}})
        pinned = await _test_run(client, wid, mode="node", node_id="done")
        assert pinned["output"] == {"doubled": 7}

        # Up to here: the node and what leads to it run (the pin stands in); nothing after it.
        await client.delete(f"{API}/workflows/{wid}/pins/shape")
        until = await _test_run(client, wid, mode="until", node_id="shape", input={"n": 3})
        assert until["status"] == "completed"
        assert {s["node_id"]: s["status"] for s in until["steps"]} == {"start": "completed", "shape": "completed"}
        assert {s["node_id"]: s["output"] for s in until["steps"]}["shape"] == {"n": 6}

        # A pin taken from a run's step.
        from_run = await client.put(
            f"{API}/workflows/{wid}/pins/shape", json={"source": "run", "run_id": until["execution_id"]}
        )
        assert from_run.status_code == 200, from_run.text
        assert from_run.json()["output"] == {"n": 6} and from_run.json()["run_id"] == until["execution_id"]

        unknown = await client.post(f"{API}/workflows/{wid}/test-runs", json={"mode": "node", "node_id": "nope"})
        assert unknown.status_code == 422 and unknown.json()["error"]["details"]["node_id"] == "nope"
        no_node = await client.post(f"{API}/workflows/{wid}/test-runs", json={"mode": "until"})
        assert no_node.status_code == 400 and "node_id" in no_node.text


_TESTS = [
    {"id": "doubles", "name": "doubles the input", "input": {"n": 2}, "assertions": [{"expr": "steps.shape.n == 4"}]},
    {
        "id": "result",
        "input": {"n": 2},
        "assertions": [{"name": "the result", "expr": "result.doubled == 5"}, {"expr": "trigger.n == 2"}],
    },
    {
        "id": "mocked",
        "input": {"n": 2},
        "mocks": {"shape": {"output": {"n": 50}}},
        "assertions": [{"expr": "result.doubled == 50"}],
    },
    {
        "id": "broken",
        "input": {"n": 2},
        "mocks": {"shape": {"error": "upstream is down"}},
        "assertions": [
            {"expr": "status == 'failed'"},
            {"expr": "steps.shape.error.message.contains('upstream is down')"},
        ],
    },
]


async def test_workflow_tests_report_each_assertion_and_gate_publishing(run_tenant: TenantHandle) -> None:
    async with run_tenant.client() as client:
        wid = (await create(client, _doubler("tested", tests=_TESTS)))["id"]
        response = await client.post(f"{API}/workflows/{wid}/tests/run", json={"timeout_seconds": 90})
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["passed"], report["total"], report["failed"]) == (False, 4, 1)
        tests = {t["id"]: t for t in report["tests"]}
        assert tests["doubles"]["passed"] and tests["mocked"]["passed"] and tests["broken"]["passed"], tests
        assert tests["broken"]["status"] == "failed"
        wrong, right = tests["result"]["assertions"]
        assert (wrong["name"], wrong["passed"], wrong["actual"], wrong["expected"]) == ("the result", False, 4, 5)
        assert right["passed"] is True
        only = await client.post(f"{API}/workflows/{wid}/tests/run", json={"ids": ["doubles"]})
        assert [t["id"] for t in only.json()["tests"]] == ["doubles"]
        assert (await client.post(f"{API}/workflows/{wid}/tests/run", json={"ids": ["zz"]})).status_code == 404

        # Tests travel with the graph: export, validation.
        exported = (await client.get(f"{API}/workflows/{wid}/export")).json()
        assert [t["id"] for t in exported["tests"]] == ["doubles", "result", "mocked", "broken"]
        broken = {
            **exported,
            "tests": [{"id": "x", "mocks": {"ghost": {"output": 1}}, "assertions": [{"expr": "1 +"}]}],
        }
        checked = (await client.post(f"{API}/workflows/{wid}/validate", json={"graph": broken})).json()
        paths = {e["path"] for e in checked["errors"]}
        assert paths == {"tests[0].mocks.ghost", "tests[0].assertions[0].expr"}, checked

        # The tenant requires passing tests: publishing is refused (audited), naming the failing test.
        async with run_tenant.client(Role.EDITOR) as editor:
            assert (
                await editor.put(f"{API}/testing/settings", json={"require_passing_tests": True})
            ).status_code == 403
        assert (await client.put(f"{API}/testing/settings", json={"require_passing_tests": True})).status_code == 200
        assert (await client.get(f"{API}/testing/settings")).json() == {"require_passing_tests": True}
        refused = await client.post(f"{API}/workflows/{wid}/publish", json={"message": "v1"})
        assert refused.status_code == 409, refused.text
        assert [t["id"] for t in refused.json()["error"]["details"]["failing_tests"]] == ["result"]
        assert "result" in refused.json()["error"]["message"]
        events = (await client.get(f"{API}/audit", params={"action": "workflow.publish_refused"})).json()["items"]
        assert [e["resource_id"] for e in events] == [wid]

        read = await client.get(f"{API}/workflows/{wid}")
        fixed = read.json()["graph"]
        fixed["tests"][1]["assertions"][0]["expr"] = "result.doubled == 4"
        saved = await client.put(
            f"{API}/workflows/{wid}", json={"graph": fixed}, headers={"If-Match": read.headers["ETag"]}
        )
        assert saved.status_code == 200, saved.text
        version = await publish(client, wid, "tests pass")
        assert [t["id"] for t in version["graph"]["tests"]] == ["doubles", "result", "mocked", "broken"]
        await client.put(f"{API}/testing/settings", json={"require_passing_tests": False})


@pytest.mark.timeout(600)  # three `gorax` processes, each importing the CLI
async def test_gorax_test_runs_a_workflows_tests_through_the_api(run_tenant: TenantHandle, tmp_path: Any) -> None:
    async with run_tenant.client() as client:
        wid = (await create(client, _doubler("cli", tests=_TESTS[:2])))["id"]
    junit = tmp_path / "junit.xml"
    env = {"GORAX_API_URL": run_tenant.base_url, "GORAX_API_KEY": run_tenant.keys[Role.EDITOR]}
    done = await asyncio.to_thread(_gorax, env, "test", "--workflow", wid, "--junit", str(junit))
    assert done.returncode == 1, done.stderr
    assert "PASS  doubles the input" in done.stdout and "FAIL the result: actual 4, expected 5" in done.stdout
    assert 'failures="1"' in junit.read_text() and 'name="cli"' in junit.read_text()
    passing = await asyncio.to_thread(_gorax, env, "test", "--workflow", wid, "--test", "doubles")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    nokey = await asyncio.to_thread(_gorax, {"GORAX_API_URL": run_tenant.base_url}, "test", "--workflow", wid)
    assert nokey.returncode == 2 and "GORAX_API_KEY" in nokey.stderr


def _gorax(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    gorax = str(Path(sys.executable).parent / "gorax")
    environment = {k: v for k, v in os.environ.items() if k not in ("GORAX_API_KEY",)}
    return subprocess.run([gorax, *args], env={**environment, **env}, capture_output=True, text=True, timeout=300)
