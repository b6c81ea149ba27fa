"""The test loop in headless Chromium: pin a node's output, run one node and see its output, write a
test in the Tests panel, watch it fail, fix it and watch it pass (real API, Prefect and worker)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.web.conftest import Session, WebApi

# A browser, the API, Prefect and a worker on a shared machine: more than the default 300 s.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

GRAPH = {
    "format": "gorax/graph@1",
    "name": "loop",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
        {"id": "shape", "type": "data.transform", "position": {"x": 0, "y": 150}, "config": {"value": {"n": 2}}},
        {
            "id": "done",
            "type": "data.transform",
            "position": {"x": 0, "y": 300},
            "config": {"value": {"doubled": "{{ steps.shape.n * 2 }}"}},
        },
    ],
    "edges": [{"id": "e1", "source": "start", "target": "shape"}, {"id": "e2", "source": "shape", "target": "done"}],
}


def _api(web_api: WebApi) -> httpx.Client:
    return httpx.Client(
        base_url=web_api.url + "/api/v1",
        timeout=30,
        headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"},
    )


def create_workflow(web_api: WebApi, name: str = "loop", graph: dict[str, Any] = GRAPH) -> str:
    with _api(web_api) as c:
        r = c.post("/workflows", json={"name": name, "graph": {**graph, "name": name}})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def open_editor(s: Session, workflow_id: str) -> None:
    await s.page.goto(f"{s.api.url}/workflows/{workflow_id}")
    await s.page.get_by_test_id("connection").filter(has_text="connected").wait_for()
    await s.page.get_by_test_id("node-done").wait_for()


async def editing_shape(
    sign_in: Any, web_api: WebApi, name: str = "loop", graph: dict[str, Any] = GRAPH
) -> tuple[Session, str, Any]:
    """An editor signed in on a new workflow's editor, node ``shape`` selected: the session, the
    workflow id and shape's test section."""
    workflow_id = create_workflow(web_api, name, graph)
    s: Session = await sign_in("editor")
    await open_editor(s, workflow_id)
    await s.page.get_by_test_id("node-shape").click()
    return s, workflow_id, s.page.get_by_role("region", name="Test shape")


async def run_node(page: Any, node: str, expected: str, button: str = "Run node") -> float:
    """Select ``node``, press ``button`` and wait for its output to show ``expected``; the seconds
    from the click to the output on screen."""
    await page.get_by_test_id(f"node-{node}").click()
    section = page.get_by_role("region", name=f"Test {node}")
    began = time.perf_counter()
    await section.get_by_role("button", name=button, exact=True).click()
    await section.get_by_test_id("node-output").filter(has_text=expected).wait_for(timeout=90_000)
    return time.perf_counter() - began


async def test_pin_run_one_node_and_write_a_test(sign_in: Any, web_api: WebApi, web_worker: Any) -> None:
    s, workflow_id, shape = await editing_shape(sign_in, web_api)
    page = s.page

    # Pin shape's output by hand: the canvas marks it, the draft holds it.
    await shape.get_by_role("button", name="Pin by hand…").click()
    await shape.get_by_label("Output to pin").fill('{"n": 21}')
    await shape.get_by_role("button", name="Pin", exact=True).click()
    await page.get_by_test_id("pin-shape").wait_for()
    await shape.get_by_test_id("pinned-output").filter(has_text="21").wait_for()
    with _api(web_api) as c:
        assert c.get(f"/workflows/{workflow_id}/pins").json()["shape"]["output"] == {"n": 21}

    # Run one node: its upstream output is the pin; the output shows under the node's settings.
    await run_node(page, "done", '"doubled": 42')
    await page.locator('[data-testid="node-done"][data-status="completed"]').wait_for()
    await page.locator('[data-testid="node-shape"][data-status="pinned"]').wait_for()

    # Unpin, then run up to here: shape runs for real.
    await page.get_by_test_id("node-shape").click()
    await shape.get_by_role("button", name="Unpin").click()
    await page.get_by_test_id("pin-shape").wait_for(state="detached")
    await run_node(page, "done", '"doubled": 4', button="Run up to here")
    await page.locator('[data-testid="node-shape"][data-status="completed"]').wait_for()
    # Pin what that run gave: the pin comes from the run.
    await page.get_by_test_id("node-shape").click()
    await shape.get_by_role("button", name="Pin this output").click()
    await page.get_by_test_id("pin-shape").wait_for()
    with _api(web_api) as c:
        pin = c.get(f"/workflows/{workflow_id}/pins").json()["shape"]
        assert pin["source"] == "run" and pin["output"] == {"n": 2}
    await s.shot("testloop-run-node")

    # A test in the Tests panel: it fails with a diff, is fixed, then passes.
    await page.get_by_role("toolbar").get_by_role("button", name="Tests", exact=True).click()
    panel = page.get_by_role("region", name="Tests panel")
    await panel.get_by_role("button", name="New test").click()
    await panel.get_by_label("Test id").fill("doubles")
    await panel.get_by_label("Assertions (CEL, one per line)").fill("steps.done.doubled == 5\nstatus == 'completed'")
    await panel.get_by_role("button", name="Save test").click()
    await panel.get_by_role("button", name="Run tests").click()
    await panel.locator('[data-testid="test-doubles"][data-result="fail"]').wait_for(timeout=90_000)
    failed = panel.get_by_test_id("assertion-doubles-0")
    assert await failed.get_attribute("data-passed") == "false"
    assert "expected 5" in await failed.inner_text() and "actual 4" in await failed.inner_text()
    assert await panel.get_by_test_id("assertion-doubles-1").get_attribute("data-passed") == "true"
    await s.shot("testloop-test-failed")

    await panel.get_by_test_id("test-doubles").get_by_role("button", name="Edit").click()
    await panel.get_by_label("Assertions (CEL, one per line)").fill("steps.done.doubled == 4\nstatus == 'completed'")
    await panel.get_by_role("button", name="Save test").click()
    await panel.get_by_role("button", name="Run tests").click()
    await panel.locator('[data-testid="test-doubles"][data-result="pass"]').wait_for(timeout=90_000)
    await s.shot("testloop-test-passed")
    # The test lives in the draft's graph.
    with _api(web_api) as c:
        tests = c.get(f"/workflows/{workflow_id}").json()["graph"]["tests"]
        assert tests == [
            {
                "id": "doubles",
                "input": {},
                "assertions": [{"expr": "steps.done.doubled == 4"}, {"expr": "status == 'completed'"}],
            }
        ]
    assert not s.errors, s.errors


async def test_run_node_with_a_trigger_input_then_with_the_newest_runs(
    sign_in: Any, web_api: WebApi, web_worker: Any
) -> None:
    reads_trigger = {
        **GRAPH,
        "nodes": [
            {**n, "config": {"value": {"n": "{{ trigger.n }}"}}} if n["id"] == "shape" else n for n in GRAPH["nodes"]
        ],
    }
    s, _, shape = await editing_shape(sign_in, web_api, "trigger-input", reads_trigger)
    page = s.page

    # Not JSON: refused, named, nothing run.
    await shape.get_by_role("button", name="Set trigger input…").click()
    await shape.get_by_label("Trigger input").fill('{"n": ')
    await shape.get_by_role("button", name="Run node", exact=True).click()
    await shape.get_by_text("Trigger input is not JSON").wait_for()
    # The input given is the run's trigger.
    await shape.get_by_label("Trigger input").fill('{"n": 17}')
    await run_node(page, "shape", '"n": 17')
    first = await shape.get_by_test_id("node-output").inner_text()
    assert await shape.get_by_test_id("trigger-from").count() == 0
    # Back to the default: the newest run's trigger input, and which run it came from.
    await shape.get_by_role("button", name="Use the newest run's input").click()
    await shape.get_by_role("button", name="Run node", exact=True).click()
    await shape.get_by_test_id("trigger-from").wait_for(timeout=90_000)
    assert '"n": 17' in await shape.get_by_test_id("node-output").inner_text()
    assert (await shape.get_by_test_id("trigger-from").inner_text()).split("run ")[1].strip(" )") in first
    assert not s.errors, s.errors


async def test_a_viewer_sees_pins_but_cannot_run_or_pin(sign_in: Any, web_api: WebApi) -> None:
    workflow_id = create_workflow(web_api, "viewed")
    with _api(web_api) as c:
        assert c.put(f"/workflows/{workflow_id}/pins/shape", json={"output": {"n": 9}}).status_code == 200
    s: Session = await sign_in("viewer")
    await open_editor(s, workflow_id)
    await s.page.get_by_test_id("pin-shape").wait_for()
    await s.page.get_by_test_id("node-shape").click()
    section = s.page.get_by_role("region", name="Test shape")
    await section.get_by_test_id("pinned-output").filter(has_text="9").wait_for()
    assert await section.get_by_role("button", name="Run node").is_disabled()
    assert await section.get_by_role("button", name="Unpin").count() == 0
