"""Data on the canvas, expression editing and node help, in headless Chromium against the real
API, Prefect server and worker: run a workflow, click a node, read its output; type an expression
and see autocomplete, a syntax error and the preview; palette icons and an unknown node's badge."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import Session, WebApi

# The first test also starts the session's stack (Prefect, the API, a worker, Chromium).
pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

ROWS = [{"sku": "a-1", "qty": 1}, {"sku": "b-2", "qty": 3}]


def _node(node_id: str, node_type: str, y: int, config: dict[str, Any]) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "position": {"x": 200, "y": y}, "config": config}


GRAPH = {
    "format": "gorax/graph@1",
    "name": "data panel",
    "nodes": [
        _node("start", "trigger.manual", 0, {}),
        _node("greet", "data.transform", 130, {"value": {"greeting": "Hello {{ trigger.name }}"}}),
        _node("rows", "data.transform", 260, {"value": ROWS}),
        _node("check", "control.condition", 390, {"expression": "true"}),
        _node("done", "control.output", 520, {"value": "{{ steps.greet.greeting }}"}),
        # Only on the condition's false branch: skipped, never sends anything.
        _node("notify", "http.request", 650, {"url": "http://127.0.0.1:9/{{ steps.greet.greeting }}"}),
    ],
    "edges": [
        {"id": "e1", "source": "start", "target": "greet"},
        {"id": "e2", "source": "greet", "target": "rows"},
        {"id": "e3", "source": "rows", "target": "check"},
        {"id": "e4", "source": "check", "target": "done", "sourceHandle": "true"},
        {"id": "e5", "source": "check", "target": "notify", "sourceHandle": "false"},
    ],
}


def _api(web_api: WebApi) -> httpx.Client:
    return httpx.Client(
        base_url=web_api.url + "/api/v1",
        timeout=120,
        headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"},
    )


@pytest.fixture(scope="module")
def ran_workflow(web_api: WebApi, web_worker: Any) -> str:
    """A published workflow run once with ``{"name": "Ada"}``: the data the tests read."""
    with _api(web_api) as c:
        created = c.post("/workflows", json={"name": "data panel", "graph": GRAPH})
        assert created.status_code == 201, created.text
        wid = created.json()["id"]
        assert c.post(f"/workflows/{wid}/publish", json={"message": "v1"}).status_code == 201
        ran = c.post(f"/workflows/{wid}/execute", json={"input": {"name": "Ada"}, "wait": True, "timeout_seconds": 90})
        assert ran.status_code == 200 and ran.json()["status"] == "completed", ran.text
        return wid


async def _open(s: Session, workflow_id: str) -> Any:
    page = s.page
    await page.goto(f"{s.api.url}/workflows/{workflow_id}")
    await page.get_by_test_id("connection").filter(has_text="connected").wait_for()
    return page


async def test_a_node_output_in_tree_and_table_with_overlays_and_copy(
    sign_in: Any, web_api: WebApi, ran_workflow: str
) -> None:
    wid = ran_workflow
    s: Session = await sign_in("editor")
    await s.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_api.url)
    page = await _open(s, wid)

    # The canvas shows each node's last status, duration and item count from the newest run.
    overlay = page.get_by_test_id("overlay-rows")
    await overlay.filter(has_text="2 items").wait_for()
    assert await overlay.get_attribute("data-status") == "completed"
    assert "ms" in await overlay.inner_text() or " s" in await overlay.inner_text()
    assert "completed" in await page.get_by_test_id("overlay-greet").inner_text()

    # Click a node: its input and output beside the settings.
    await page.get_by_test_id("node-greet").click()
    panel = page.get_by_test_id("data-panel")
    await panel.get_by_test_id("json-output").filter(has_text="Hello Ada").wait_for()
    assert "Hello {{ trigger.name }}" not in await panel.get_by_test_id("json-input").inner_text()
    assert "string · 9 chars" in await panel.get_by_test_id("json-output").inner_text()
    await panel.get_by_role("button", name="Copy path of greeting").click()
    await panel.get_by_test_id("copied").filter(has_text="steps.greet.greeting").wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == "steps.greet.greeting"

    # A list of objects reads as a table too; search narrows the tree.
    await page.get_by_test_id("node-rows").click()
    panel = page.get_by_role("complementary", name="Properties of rows").get_by_test_id("data-panel")
    output = panel.get_by_test_id("json-output")
    await output.filter(has_text="list · 2 items").wait_for()
    await output.get_by_role("button", name="Table").click()
    table = output.get_by_test_id("json-table")
    await table.wait_for()
    assert await table.locator("tbody tr").count() == 2
    # Stored step records keep keys sorted: the columns are the rows' keys.
    assert sorted(await table.locator("thead th").all_inner_texts()) == ["#", "qty⧉", "sku⧉"]
    assert "b-2" in await table.locator("tbody tr").nth(1).inner_text()
    await output.get_by_role("button", name="Tree").click()
    await output.get_by_label("Search output").fill("b-2")
    tree = output.get_by_role("tree")
    await tree.filter(has_text="b-2").wait_for()
    assert "a-1" not in await tree.inner_text()
    await output.get_by_role("button", name="Copy path of sku").click()
    await panel.get_by_test_id("copied").filter(has_text="steps.rows[1].sku").wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == "steps.rows[1].sku"

    # The run list: the run picked is the one shown.
    options = await panel.get_by_label("Run").locator("option").all_inner_texts()
    assert len(options) == 1 and options[0].startswith("completed")
    await s.shot("editor-data-panel")
    assert s.errors == []


async def test_expression_autocomplete_syntax_error_and_preview(sign_in: Any, ran_workflow: str) -> None:
    wid = ran_workflow
    s: Session = await sign_in("editor")
    page = await _open(s, wid)
    await page.get_by_test_id("overlay-check").wait_for()
    await page.get_by_test_id("node-check").click()
    props = page.get_by_role("complementary", name="Properties of check")
    box = props.get_by_test_id("field-expression").locator("textarea, input").first
    await box.fill("")
    await box.press_sequentially("steps.")
    suggestions = props.get_by_test_id("suggestions-expression")
    await suggestions.wait_for()
    # Upstream nodes only: not the node itself, not what comes after it.
    assert await suggestions.get_by_role("option").all_inner_texts() == ["start node", "greet node", "rows node"]
    await box.press_sequentially("gr")
    await box.press("Enter")
    assert await box.input_value() == "steps.greet"
    await box.press_sequentially(".")
    await suggestions.get_by_role("option", name="greeting").wait_for()
    await box.press("Enter")
    assert await box.input_value() == "steps.greet.greeting"

    preview = props.get_by_test_id("preview-expression")
    await preview.filter(has_text='"Hello Ada"').wait_for()
    assert "(string)" in await preview.inner_text()

    # A syntax error as you type, with where it is; no preview until it is fixed.
    await box.press_sequentially(" ==")
    syntax = props.get_by_test_id("syntax-expression")
    await syntax.filter(has_text="ends too early").wait_for()
    assert "syntax error at 23" in await syntax.inner_text()
    assert await preview.count() == 0
    await box.press_sequentially(" 'Hello Ada'")
    await preview.filter(has_text="true").wait_for()
    assert "(boolean)" in await preview.inner_text()
    assert await syntax.count() == 0

    # A text field with templates previews the rendered text; a missing field is named.
    await page.get_by_test_id("node-notify").click()
    notify = page.get_by_role("complementary", name="Properties of notify")
    url = notify.get_by_test_id("field-url").locator("input").first
    await url.fill("http://127.0.0.1:9/?q={{ steps.greet.nope }}")
    await notify.get_by_test_id("preview-url").filter(has_text="nope").wait_for()
    await url.fill("http://127.0.0.1:9/?q={{ steps.check.")
    await notify.get_by_test_id("suggestions-url").get_by_role("option", name="result").wait_for()
    await url.fill("http://127.0.0.1:9/?q={{ steps.greet.greeting }}")
    await notify.get_by_test_id("preview-url").filter(has_text="?q=Hello Ada").wait_for()
    await s.shot("editor-expression-preview")
    assert s.errors == []


async def test_palette_icons_help_and_an_unknown_node(sign_in: Any, web_api: WebApi) -> None:
    graph = {
        "format": "gorax/graph@1",
        "name": "unknown",
        "nodes": [
            _node("start", "trigger.manual", 0, {}),
            _node("mystery", "vendor.not_installed", 150, {}),
        ],
        "edges": [{"id": "e1", "source": "start", "target": "mystery"}],
    }
    with _api(web_api) as c:
        created = c.post("/workflows", json={"name": "unknown", "graph": graph})
        assert created.status_code == 201, created.text
        wid = created.json()["id"]
        catalogue = c.get("/node-types").json()
    s: Session = await sign_in("editor")
    page = await _open(s, wid)

    # Every node type in the palette draws its own icon and says what it does, with an example.
    items = page.locator(".palette-item")
    newest: dict[str, dict[str, Any]] = {}
    for entry in catalogue:
        if entry["type"] not in newest or newest[entry["type"]]["version"] < entry["version"]:
            newest[entry["type"]] = entry
    assert await items.count() == len(newest)
    assert sum(1 for e in newest.values() if e["icon"]) >= 40
    shown = await items.evaluate_all("els => els.map(e => [e.dataset.testid, e.dataset.icon, e.title])")
    for testid, icon, title in shown:
        entry = newest[testid.removeprefix("palette-")]
        assert icon == (entry["icon"] or "box"), testid
        assert entry["description"] in title, testid
        if entry["example"]:
            assert "Example:" in title, testid
    manual = page.get_by_test_id("palette-trigger.manual")
    assert await manual.locator('svg[data-icon="play"]').count() == 1
    assert await page.get_by_test_id("node-start").locator('svg[data-icon="play"]').count() == 1

    # The unknown node says so on the canvas and in its help.
    badge = page.get_by_test_id("node-unknown-mystery")
    await badge.wait_for()
    assert await page.get_by_test_id("node-mystery").locator('svg[data-icon="box"]').count() == 1
    await page.get_by_test_id("node-mystery").click()
    help_ = page.get_by_test_id("help-unknown")
    await help_.wait_for()
    assert "vendor.not_installed" in await help_.inner_text()
    # A known node's help shows the example.
    await page.get_by_test_id("node-start").click()
    props = page.get_by_role("complementary", name="Properties of start")
    await props.get_by_text("Example").click()
    assert "input_schema" in await props.locator(".node-example pre").inner_text()
    assert s.errors == []
