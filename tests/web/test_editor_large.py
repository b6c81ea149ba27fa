"""A large graph in the editor: the overview far out, only on-screen nodes drawn up close,
auto-layout computed in a Web Worker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.web.conftest import Session, WebApi

pytestmark = pytest.mark.browser

COUNT = 1200  # above the overview threshold (300), below GORAX_GRAPH_MAX_NODES


def _graph(n: int) -> dict[str, Any]:
    """A pipeline of ``n`` nodes laid out in a 40-wide grid."""
    nodes = [{"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}]
    nodes += [
        {
            "id": f"n{i}",
            "type": "data.transform",
            "position": {"x": (i % 40) * 260, "y": (i // 40) * 160},
            "config": {"value": "{{ trigger }}"},
        }
        for i in range(1, n)
    ]
    edges = [{"source": nodes[i - 1]["id"], "target": nodes[i]["id"]} for i in range(1, n)]
    return {"format": "gorax/graph@1", "name": "large", "nodes": nodes, "edges": edges}


def _api(web_api: WebApi) -> httpx.Client:
    return httpx.Client(
        base_url=web_api.url + "/api/v1",
        timeout=60,
        headers={"Authorization": f"Bearer {web_api.users['admin'].api_key}"},
    )


VIEW = """() => {
  const m = new DOMMatrixReadOnly(getComputedStyle(document.querySelector('.react-flow__viewport')).transform);
  const pane = document.querySelector('.react-flow__renderer').getBoundingClientRect();
  const nodes = [...document.querySelectorAll('.react-flow__node')].map((el) => {
    const r = el.getBoundingClientRect();
    return r.right > pane.left && r.left < pane.right && r.bottom > pane.top && r.top < pane.bottom;
  });
  const overview = document.querySelector('canvas.overview');
  return { zoom: m.a, nodes: nodes.length, onScreen: nodes.filter(Boolean).length,
           edges: document.querySelectorAll('.react-flow__edge').length,
           drawn: overview ? Number(overview.dataset.drawn) : null };
}"""


async def test_large_graph_overview_culling_and_worker_layout(sign_in: Any, web_api: WebApi) -> None:
    with _api(web_api) as c:
        r = c.post("/workflows", json={"name": "large", "graph": _graph(COUNT)})
        assert r.status_code == 201, r.text
        workflow_id = r.json()["id"]
    s: Session = await sign_in("editor")
    page = s.page
    await page.goto(f"{web_api.url}/workflows/{workflow_id}")
    await page.get_by_test_id("connection").filter(has_text="connected").wait_for(timeout=60_000)

    # Fitted, the whole graph is far out: painted on the overview canvas, no DOM nodes or edges.
    await page.wait_for_function(
        f"() => Number(document.querySelector('canvas.overview')?.dataset.drawn) === {COUNT}", timeout=60_000
    )
    view = await page.evaluate(VIEW)
    assert view["zoom"] < 0.3 and view["nodes"] == 0 and view["edges"] == 0, view
    await s.shot("editor-large-overview")

    # Zoomed in: real nodes again, and only those on screen.
    pane = await page.locator(".react-flow__pane").bounding_box()
    await page.mouse.move(pane["x"] + pane["width"] / 2, pane["y"] + pane["height"] / 2)  # inside the grid
    for _ in range(40):
        view = await page.evaluate(VIEW)
        if view["zoom"] >= 0.6:
            break
        await page.mouse.wheel(0, -200)
        await asyncio.sleep(0.1)
    await page.wait_for_function("() => document.querySelectorAll('.react-flow__node').length > 0")
    await page.wait_for_timeout(300)
    view = await page.evaluate(VIEW)
    assert view["drawn"] is None, view  # the overview is gone
    assert 0 < view["nodes"] < COUNT // 4, view
    assert view["onScreen"] >= view["nodes"] - 40, view  # a margin: nodes cut by the pane's edge
    assert view["edges"] > 0, view
    await s.shot("editor-large-zoomed-in")

    # Auto-layout (in a Web Worker) puts the pipeline in one column, one layer per node.
    await page.get_by_role("toolbar").get_by_role("button", name="Layout", exact=True).click()
    with _api(web_api) as c:
        for _ in range(200):
            graph = c.get(f"/workflows/{workflow_id}").json()["graph"]
            ys = {n["id"]: n["position"] for n in graph["nodes"]}
            if ys["n1"] == {"x": 0, "y": 150}:
                break
            await asyncio.sleep(0.2)
    assert ys["start"] == {"x": 0, "y": 0}
    assert ys["n1"] == {"x": 0, "y": 150}
    assert ys[f"n{COUNT - 1}"] == {"x": 0, "y": (COUNT - 1) * 150}
    assert not s.errors, s.errors
