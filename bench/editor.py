"""Editor rendering in Chromium: first render of a 1,000-node graph, frame times while panning.

The built editor (web/dist) is served with the real collaboration server and node catalogue;
sign-in and the workflow record are fixed answers so no database or Prefect server is needed.
A 10-node graph measured the same way in the same run is the baseline.

    (cd web && npm run build) && .venv/bin/python bench/editor.py [--nodes 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from fastapi import FastAPI, WebSocket  # noqa: E402

from api.collab.server import CollabServer  # noqa: E402
from api.web import WEB_DIST, web_app  # noqa: E402
from tests.peers import free_port  # noqa: E402
from translator.nodetypes import get_registry  # noqa: E402

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TYPES = ["http.request", "data.transform", "control.condition", "slack.send_message", "control.merge"]


def make_graph(n: int) -> dict[str, Any]:
    """``n`` nodes in a 40-wide grid, each wired to the one before it (a long pipeline)."""
    nodes = [{"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}]
    for i in range(1, n):
        t = TYPES[i % len(TYPES)]
        config: dict[str, Any] = (
            {"expression": "trigger.ok"}
            if t == "control.condition"
            else {"value": f"{{{{ steps.n{i - 1} }}}}"}
            if t == "data.transform"
            else {}
        )
        nodes.append(
            {"id": f"n{i}", "type": t, "position": {"x": (i % 40) * 260, "y": (i // 40) * 160}, "config": config}
        )
    edges = [
        {
            "source": nodes[i - 1]["id"],
            "target": nodes[i]["id"],
            **({"sourceHandle": "true"} if nodes[i - 1]["type"] == "control.condition" else {}),
        }
        for i in range(1, n)
    ]
    return {"format": "gorax/graph@1", "name": f"bench-{n}", "nodes": nodes, "edges": edges}


def bench_app(directory: Path, graphs: dict[str, dict[str, Any]]) -> FastAPI:
    holder: dict[str, CollabServer] = {}

    async def lifespan(_: FastAPI) -> Any:
        async with CollabServer(directory) as server:
            for workflow_id, graph in graphs.items():
                await server.write(workflow_id, graph)
            holder["server"] = server
            yield

    app = FastAPI(lifespan=lifespan)
    me = {
        "user": {"id": "u1", "email": "bench@gorax.test", "name": "Bench"},
        "tenant": {"id": "t1", "slug": "bench", "name": "Bench"},
        "role": "admin",
        "tenants": [{"id": "t1", "slug": "bench", "name": "Bench", "role": "admin"}],
    }
    catalogue = get_registry().catalogue()

    @app.get("/api/v1/auth/me")
    async def auth_me() -> dict[str, Any]:
        return me

    @app.get("/api/v1/node-types")
    async def node_types() -> list[dict[str, Any]]:
        return catalogue

    @app.get("/api/v1/workflows/{workflow_id}")
    async def workflow(workflow_id: str) -> dict[str, Any]:
        return {
            "id": workflow_id,
            "name": workflow_id,
            "status": "draft",
            "version": None,
            "graph": graphs[workflow_id],
        }

    @app.websocket("/api/v1/workflows/{workflow_id}/collab")
    async def collab(websocket: WebSocket, workflow_id: str) -> None:
        await websocket.accept()
        await holder["server"].serve(websocket, workflow_id, can_write=True)

    static = web_app(WEB_DIST)
    if static is None:
        raise SystemExit("web/dist is missing: run `cd web && npm ci && npm run build` first")
    app.mount("/", static)
    return app


RECORD_FRAMES = """() => { window.__frames = []; const tick = (t) => { window.__frames.push(t);
  if (window.__frames.length < 100000) requestAnimationFrame(tick); }; requestAnimationFrame(tick); }"""


async def measure(page: Any, url: str, workflow_id: str, n: int) -> tuple[float, list[float]]:
    """(ms from navigation to all nodes on screen, frame intervals in ms while panning)."""
    await page.goto(f"{url}/workflows/{workflow_id}")
    await page.wait_for_function(f"document.querySelectorAll('.react-flow__node').length >= {n}", timeout=120_000)
    first_render = await page.evaluate("performance.now()")
    await page.wait_for_timeout(500)
    box = await page.locator(".react-flow__pane").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.evaluate(RECORD_FRAMES)
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    for i in range(120):  # pan in a loop for about two seconds of input
        dx = 200 * (1 if (i // 30) % 2 == 0 else -1)
        await page.mouse.move(cx + dx * ((i % 30) / 30), cy + (i % 30), steps=1)
        await page.wait_for_timeout(16)
    await page.mouse.up()
    frames = await page.evaluate("window.__frames")
    return first_render, [b - a for a, b in itertools.pairwise(frames)]


def _line(name: str, first: float, gaps: list[float]) -> str:
    q = statistics.quantiles(gaps, n=100)
    slow = sum(1 for g in gaps if g > 33.4)
    return (
        f"{name:<12} first render {first:8.0f} ms | pan frames p50 {statistics.median(gaps):6.1f} ms "
        f"p95 {q[94]:6.1f} ms max {max(gaps):6.1f} ms | >33 ms: {slow}/{len(gaps)}"
    )


async def run(n: int) -> None:
    from playwright.async_api import async_playwright

    graphs = {"baseline": make_graph(10), "large": make_graph(n)}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(bench_app(Path(tmp), graphs), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
                print("editor in headless Chromium, 1280x800, software rendering")
                for workflow_id, count in (("baseline", 10), ("large", n)):
                    page = await browser.new_page(viewport={"width": 1280, "height": 800})
                    first, gaps = await measure(page, url, workflow_id, count)
                    print(_line(f"{count} nodes", first, gaps))
                    await page.close()
                await browser.close()
        finally:
            server.should_exit = True
            thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    asyncio.run(run(parser.parse_args().nodes))


if __name__ == "__main__":
    main()
