"""The editor in headless Chromium against the real API, Prefect server and worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers import PeerResponse
from tests.web.conftest import Session, WebApi

pytestmark = pytest.mark.browser

INPUT_SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


async def _drop(page: Any, node_type: str, x: int, y: int) -> None:
    """Drag a node type from the palette onto the canvas at (x, y) of the canvas."""
    await page.get_by_test_id(f"palette-{node_type}").drag_to(
        page.get_by_test_id("canvas"), target_position={"x": x, "y": y})


async def _connect(page: Any, source: str, target: str, handle: str = "main") -> None:
    """Drag from a node's output handle to another node's input handle."""
    src = await page.locator(f'[data-testid="node-{source}"] [data-handle="{handle}"]').bounding_box()
    dst = await page.locator(f'[data-testid="node-{target}"] .react-flow__handle.target').bounding_box()
    await page.mouse.move(src["x"] + src["width"] / 2, src["y"] + src["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(dst["x"] + dst["width"] / 2, dst["y"] + dst["height"] / 2, steps=12)
    await page.mouse.up()


async def _configure(page: Any, node: str, field: str, value: Any) -> None:
    await page.get_by_test_id(f"node-{node}").click()
    # The field inside this node's panel: right after the click the previous node's panel (with
    # a field of the same name) can still be on the page, and text typed there is lost.
    panel = page.get_by_role("complementary", name=f"Properties of {node}")
    box = panel.get_by_test_id(f"field-{field}").locator("textarea, input").first
    await box.fill(value if isinstance(value, str) else json.dumps(value))


def _api(web_api: WebApi, role: str = "admin") -> httpx.Client:
    return httpx.Client(base_url=web_api.url + "/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {web_api.users[role].api_key}"})


def _create(web_api: WebApi, graph: dict[str, Any] | None = None) -> str:
    with _api(web_api) as c:
        r = c.post("/workflows", json={"name": "shared", **({"graph": graph} if graph else {})})
        assert r.status_code == 201, r.text
        return r.json()["id"]


def _draft(web_api: WebApi, workflow_id: str) -> dict[str, Any]:
    with _api(web_api) as c:
        r = c.get(f"/workflows/{workflow_id}")
        assert r.status_code == 200, r.text
        return r.json()["graph"]


async def test_build_validate_publish_run(sign_in: Any, web_api: WebApi, web_worker: Any) -> None:
    s: Session = await sign_in("editor")
    page = s.page
    await page.get_by_role("link", name="Workflows").click()
    await page.get_by_role("button", name="New workflow").click()
    await page.get_by_label("Name").fill("greeter")
    await page.get_by_role("button", name="Create").click()
    await page.get_by_test_id("connection").filter(has_text="connected").wait_for()

    # Three nodes by drag and drop, wired by dragging between handles.
    await _drop(page, "trigger.manual", 300, 80)
    await _drop(page, "data.transform", 300, 260)
    await _drop(page, "control.output", 300, 440)
    for node in ("manual", "transform", "output"):
        await page.get_by_test_id(f"node-{node}").wait_for()
    await _connect(page, "manual", "transform")
    await _connect(page, "transform", "output")
    await page.locator(".react-flow__edge").nth(1).wait_for()
    assert await page.locator(".react-flow__edge").count() == 2
    await page.get_by_role("toolbar").get_by_role("button", name="Layout", exact=True).click()

    # Configure; a template typo is flagged as you type.
    await _configure(page, "manual", "input_schema", INPUT_SCHEMA)
    await _configure(page, "transform", "value", {"greeting": "Hello {{ trigger.name + }}"})
    field_error = page.get_by_test_id("field-value").locator(".field-error")
    await field_error.first.wait_for()
    assert "ends too early" in await field_error.first.inner_text()
    # A reference to a missing step is only known to the server: Validate shows it on the node.
    await _configure(page, "transform", "value", {"greeting": "Hello {{ steps.nope.x }}"})
    await page.get_by_role("toolbar").get_by_role("button", name="Validate", exact=True).click()
    # (The typo's own message may still show until the new value is checked: wait for this one.)
    await page.get_by_test_id("node-errors-transform").filter(has_text="nope").wait_for()
    assert "nope" in await page.get_by_test_id("field-value").inner_text()
    await s.shot("editor-validation-error")

    # Fix it; the server agrees.
    await _configure(page, "transform", "value", {"greeting": "Hello {{ trigger.name }}"})
    await _configure(page, "output", "value", '"{{ steps.transform }}"')
    await page.get_by_role("toolbar").get_by_role("button", name="Validate", exact=True).click()
    await page.get_by_text("The draft is valid").wait_for()
    assert await page.get_by_test_id("problems").count() == 0

    # Publish with a message, then run with input from the trigger's schema.
    await page.get_by_role("toolbar").get_by_role("button", name="Publish", exact=True).click()
    await page.get_by_label("What changed?").fill("first version")
    await page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    await page.get_by_text("Published version 1").wait_for()
    await page.get_by_role("toolbar").get_by_role("button", name="Run", exact=True).click()
    await page.get_by_role("dialog").get_by_label("name").fill("Ada")
    await page.get_by_role("dialog").get_by_role("button", name="Run").click()
    for node in ("manual", "transform", "output"):
        await page.locator(f'[data-testid="node-{node}"][data-status="completed"]').wait_for(timeout=90_000)
    await page.locator('[data-testid="run-banner"][data-status="completed"]').wait_for(timeout=30_000)
    await s.shot("editor-run-completed")

    # The run view shows the steps and their timeline.
    await page.get_by_test_id("run-banner").get_by_role("link").click()
    await page.get_by_role("table", name="Steps").wait_for()
    # The banner follows the run's events; the run view reads the run once and, while Prefect
    # has not yet recorded the final state, again on its live updates: wait for the output.
    await page.locator(".card", has_text="Output").last.filter(has_text="Hello Ada").wait_for(timeout=30_000)
    assert await page.get_by_role("img", name="Step timeline").count() == 1
    await s.shot("run-view")
    assert not s.errors, s.errors


async def test_two_editors_converge(sign_in: Any, web_api: WebApi) -> None:
    workflow_id = _create(web_api, {"format": "gorax/graph@1", "name": "shared", "nodes": [
        {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}], "edges": []})
    a = await sign_in("editor")
    b = await sign_in("admin")
    for s in (a, b):
        await s.page.goto(f"{web_api.url}/workflows/{workflow_id}")
        await s.page.get_by_test_id("node-start").wait_for()
    # Both drop a node at about the same time, and rename the same node differently.
    await _drop(a.page, "data.transform", 200, 300)
    await _drop(b.page, "http.request", 500, 300)
    for s in (a, b):
        await s.page.get_by_test_id("node-transform").wait_for()
        await s.page.get_by_test_id("node-request").wait_for()
    # The name is typed into the start node's own panel (a click that landed elsewhere would
    # rename another node).
    for s, name in ((a, "from a"), (b, "from b")):
        await s.page.get_by_test_id("node-start").click()
        await s.page.get_by_label("Properties of start").get_by_label("Name", exact=True).fill(name)
    # Last writer wins on the one contested field, identically on both sides.
    try:
        await a.page.wait_for_function("""() => {
            const t = document.querySelector('[data-testid="node-start"] .gx-name');
            return t && (t.textContent === 'from a' || t.textContent === 'from b');
        }""")
    except Exception:
        shown = [await s.page.get_by_test_id("node-start").locator(".gx-name").inner_text() for s in (a, b)]
        raise AssertionError(f"contested name never settled: editor a shows {shown[0]!r}, b {shown[1]!r}")
    name_a = await a.page.get_by_test_id("node-start").locator(".gx-name").inner_text()
    await b.page.get_by_test_id("node-start").locator(".gx-name").filter(has_text=name_a).wait_for()
    # Presence: each sees the other.
    assert await a.page.locator(".presence .avatar").count() >= 1
    await a.shot("collab-editor-a")
    await b.shot("collab-editor-b")
    graph = _draft(web_api, workflow_id)
    assert sorted(n["id"] for n in graph["nodes"]) == ["request", "start", "transform"]
    assert graph["nodes"][0]["name"] == name_a
    # Undo is per user: a's undo removes a's node (after its rename), never b's.
    await a.page.locator(".react-flow__pane").click(position={"x": 20, "y": 20})
    for _ in range(2):
        await a.page.keyboard.press("Control+z")
    for s in (a, b):
        await s.page.get_by_test_id("node-transform").wait_for(state="detached")
        assert await s.page.get_by_test_id("node-request").count() == 1


async def test_viewer_cannot_change_the_graph(sign_in: Any, web_api: WebApi) -> None:
    graph = {"format": "gorax/graph@1", "name": "look only", "nodes": [
        {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
        {"id": "shape", "type": "data.transform", "position": {"x": 0, "y": 150}, "config": {"value": 1}}],
        "edges": [{"source": "start", "target": "shape"}]}
    workflow_id = _create(web_api, graph)
    v = await sign_in("viewer")
    page = v.page
    await page.goto(f"{web_api.url}/workflows/{workflow_id}")
    await page.get_by_test_id("node-shape").wait_for()
    await page.get_by_text("read-only").wait_for()
    assert await page.get_by_role("toolbar").get_by_role("button", name="Publish", exact=True).is_disabled()
    # Dropping, deleting and editing do nothing.
    await _drop(page, "data.transform", 300, 400)
    await page.get_by_test_id("node-shape").click()
    await page.keyboard.press("Delete")
    assert await page.locator("#node-name").is_disabled()
    await page.keyboard.press("Control+z")
    assert await page.locator(".react-flow__node").count() == 2
    await v.shot("viewer-read-only")
    draft = _draft(web_api, workflow_id)
    assert [n["id"] for n in draft["nodes"]] == ["start", "shape"]
    assert draft["nodes"][1]["config"] == {"value": 1}
    assert len(draft["edges"]) == 1


async def test_keyboard_editing_and_export(sign_in: Any, web_api: WebApi) -> None:
    workflow_id = _create(web_api, {"format": "gorax/graph@1", "name": "keys", "nodes": [
        {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
        {"id": "shape", "type": "data.transform", "position": {"x": 0, "y": 150}, "config": {"value": 1}}],
        "edges": [{"source": "start", "target": "shape"}]})
    s = await sign_in("editor")
    page = s.page
    await page.goto(f"{web_api.url}/workflows/{workflow_id}")
    await page.get_by_test_id("node-shape").click()
    await page.keyboard.press("Control+c")
    await page.keyboard.press("Control+v")
    await page.get_by_test_id("node-shape_2").wait_for()
    await page.keyboard.press("Control+z")
    await page.get_by_test_id("node-shape_2").wait_for(state="detached")
    await page.keyboard.press("Control+Shift+z")
    await page.get_by_test_id("node-shape_2").wait_for()
    await page.get_by_test_id("node-shape_2").click()
    await page.keyboard.press("Delete")
    await page.get_by_test_id("node-shape_2").wait_for(state="detached")
    await page.keyboard.press("Shift+L")
    await page.keyboard.press("?")
    await page.get_by_role("dialog", name="Keyboard shortcuts").wait_for()
    await page.keyboard.press("Escape")
    async with page.expect_download() as download:
        await page.get_by_role("toolbar").get_by_role("button", name="Export", exact=True).click()
    exported = json.loads(Path(await (await download.value).path()).read_text())
    assert exported == _draft(web_api, workflow_id)
    assert [n["id"] for n in exported["nodes"]] == ["start", "shape"]
    assert exported["nodes"][1]["position"]["y"] > exported["nodes"][0]["position"]["y"]
    assert not s.errors, s.errors


async def test_run_view_lists_every_attempt_of_a_retried_step(
    sign_in: Any, web_api: WebApi, web_worker: Any, http_peer: Any
) -> None:
    """The run view showed only an attempt count; each try's status and error were in the API alone."""
    calls: list[int] = []

    def flaky(_request: Any) -> PeerResponse:
        calls.append(1)
        return PeerResponse(503, {"error": "warming up"}) if len(calls) == 1 else PeerResponse(200, {"ok": True})

    http_peer.route("GET", "/flaky", flaky)
    graph = {"format": "gorax/graph@1", "name": "flaky", "nodes": [
        {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
        {"id": "fetch", "type": "http.request", "position": {"x": 0, "y": 150},
         "config": {"url": f"{http_peer.url}/flaky"}, "retry": {"attempts": 2, "delay_seconds": 0}}],
        "edges": [{"source": "start", "target": "fetch"}]}
    workflow_id = _create(web_api, graph)
    with _api(web_api) as c:
        assert c.post(f"/workflows/{workflow_id}/publish", json={"message": "v1"}).status_code == 201
        done = c.post(f"/workflows/{workflow_id}/execute", json={"input": {}, "wait": True, "timeout_seconds": 120})
        assert done.status_code == 200, done.text
        execution_id = done.json()["execution_id"]

    s: Session = await sign_in("viewer")
    await s.page.goto(f"{web_api.url}/runs/{execution_id}")
    await s.page.get_by_role("table", name="Steps").get_by_role("button", name="Details").last.click()
    attempts = s.page.get_by_role("table", name="Attempts of fetch")
    await attempts.wait_for()
    rows = attempts.locator("tbody tr")
    assert await rows.count() == 2
    first, second = await rows.nth(0).inner_text(), await rows.nth(1).inner_text()
    assert "failed" in first.lower() and "503" in first
    assert "completed" in second.lower()
    assert not s.errors, s.errors
