"""Editor rendering in Chromium: first render of a 5,000-node graph, frame times while panning and zooming.

The built editor (web/dist) is served with the real collaboration server (on a fresh SQLite
database) and node catalogue; sign-in and the workflow record are fixed answers so no Prefect
server is needed. Baseline, measured the same way in the same run: the same editor with a
10-node graph.

"First render" is navigation start to the first frame in which the viewport has been fitted to
the graph and every node inside it is on screen: as a DOM node (React Flow renders only what is
visible) or, zoomed far out on a large graph, on the overview canvas.
"Pan/zoom" is the interval between animation frames while the mouse drags the canvas and the
wheel zooms it.

    (cd web && npm run build) && .venv/bin/python bench/editor.py [--nodes 5000] [--runs 3]
        [--trace trace.json]   # also write a Chromium performance trace of one large load
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import uvicorn  # noqa: E402
from _harness import load_note, report  # noqa: E402
from fastapi import FastAPI, WebSocket  # noqa: E402

from api.collab.server import CollabServer  # noqa: E402
from api.db.base import new_id  # noqa: E402
from api.db.engine import Database  # noqa: E402
from api.models.workflows import Workflow  # noqa: E402
from api.services.identity import create_tenant_with_admin  # noqa: E402
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


async def seed(database: Database, graphs: dict[str, dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """A migrated database with a tenant and one workflow per graph: (tenant id, name -> id)."""
    await database.migrate()
    created = await create_tenant_with_admin(database, name="Bench", admin_email="bench@bench.test")
    ids = {name: new_id() for name in graphs}
    async with database.tenant_scope(tenant_id=created["tenant_id"]) as session:
        for name, workflow_id in ids.items():
            session.add(Workflow(id=workflow_id, tenant_id=created["tenant_id"], name=name, graph=graphs[name]))
        await session.commit()
    return created["tenant_id"], ids


def bench_app(database_url: str, graphs: dict[str, dict[str, Any]], ready: dict[str, Any]) -> FastAPI:
    holder: dict[str, Any] = {}

    async def lifespan(_: FastAPI) -> Any:
        database = Database(database_url)
        try:
            tenant_id, ids = await seed(database, graphs)
            async with CollabServer(database) as server:
                for name, workflow_id in ids.items():
                    await server.write(workflow_id, tenant_id, graphs[name])
                holder.update(server=server, tenant_id=tenant_id, graphs={ids[k]: v for k, v in graphs.items()})
                ready.update(ids)
                yield
        finally:
            await database.dispose()

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
        graph = holder["graphs"][workflow_id]
        return {"id": workflow_id, "name": graph["name"], "status": "draft", "version": None, "graph": graph}

    @app.websocket("/api/v1/workflows/{workflow_id}/collab")
    async def collab(websocket: WebSocket, workflow_id: str) -> None:
        await websocket.accept()
        await holder["server"].serve(websocket, workflow_id, holder["tenant_id"], can_write=True)

    static = web_app(WEB_DIST)
    if static is None:
        raise SystemExit("web/dist is missing: run `cd web && npm ci && npm run build` first")
    app.mount("/", static)
    return app


#: True once the viewport is fitted to the graph and every node inside it is on screen.
ON_SCREEN = """([boxes, minZoom]) => {
  const pane = document.querySelector('.react-flow__renderer');
  const vp = document.querySelector('.react-flow__viewport');
  if (!pane || !vp) return false;
  const m = new DOMMatrixReadOnly(getComputedStyle(vp).transform);
  const r = pane.getBoundingClientRect();
  const z = m.a, x0 = -m.e / z, y0 = -m.f / z, x1 = x0 + r.width / z, y1 = y0 + r.height / z;
  let inside = 0, all = true;
  const want = [];
  for (const [id, x, y] of boxes) {
    const visible = x + 200 > x0 && x < x1 && y + 80 > y0 && y < y1;
    if (visible) want.push(id); else all = false;
  }
  if (!all && Math.abs(z - minZoom) > 1e-6) return false;  // not fitted yet
  if (!want.length) return false;
  // Far out, a large graph is painted on the overview canvas instead (web/src/editor/Overview.tsx).
  const overview = document.querySelector('canvas.overview');
  if (overview && Number(overview.dataset.drawn) >= want.length) return want.length;
  const drawn = new Set();
  for (const el of document.querySelectorAll('.react-flow__node')) drawn.add(el.dataset.id);
  for (const id of want) if (drawn.has(id)) inside++;
  return inside === want.length ? want.length : false;
}"""

#: Animation frame timestamps into window.__frames (a new call stops the previous recording).
RECORD_FRAMES = """() => { const frames = []; window.__frames = frames;
  const tick = (t) => { if (window.__frames !== frames) return; frames.push(t);
    if (frames.length < 100000) requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""


async def _frames(page: Any) -> list[float]:
    frames = await page.evaluate("window.__frames")
    return [b - a for a, b in itertools.pairwise(frames)]


async def measure(page: Any, url: str, workflow_id: str, graph: dict[str, Any]) -> dict[str, Any]:
    """First render (ms), visible nodes, frame intervals (ms) while panning and while zooming."""
    boxes = [[n["id"], n["position"]["x"], n["position"]["y"]] for n in graph["nodes"]]
    await page.goto(f"{url}/workflows/{workflow_id}")
    handle = await page.wait_for_function(ON_SCREEN, arg=[boxes, 0.05], timeout=120_000, polling="raf")
    first_render = await page.evaluate("performance.now()")
    visible = await handle.json_value()
    await page.wait_for_timeout(500)
    box = await page.locator(".react-flow__pane").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.evaluate(RECORD_FRAMES)
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    for i in range(120):  # pan back and forth for about two seconds of input
        dx = 200 * (1 if (i // 30) % 2 == 0 else -1)
        await page.mouse.move(cx + dx * ((i % 30) / 30), cy + (i % 30), steps=1)
        await page.wait_for_timeout(16)
    await page.mouse.up()
    pan = await _frames(page)
    await page.evaluate(RECORD_FRAMES)
    for i in range(60):  # zoom in and out around the centre
        await page.mouse.wheel(0, -60 if (i // 15) % 2 == 0 else 60)
        await page.wait_for_timeout(16)
    zoom = await _frames(page)
    return {"first": first_render, "visible": visible, "pan": pan, "zoom": zoom}


def _line(name: str, m: dict[str, Any]) -> str:
    def q(gaps: list[float]) -> str:
        slow = sum(1 for g in gaps if g > 33.4)
        p95 = statistics.quantiles(gaps, n=100)[94]
        return f"p50 {statistics.median(gaps):5.1f} p95 {p95:6.1f} max {max(gaps):6.1f} ms (>33 ms: {slow}/{len(gaps)})"

    return (
        f"{name:<12} first render {m['first']:7.0f} ms ({m['visible']} nodes on screen) | "
        f"pan {q(m['pan'])} | zoom {q(m['zoom'])}"
    )


async def run(n: int, runs: int, trace: Path | None) -> None:
    from playwright.async_api import async_playwright  # noqa: PLC0415 (only this script needs it)

    graphs = {"baseline": make_graph(10), "large": make_graph(n)}
    ready: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        app = bench_app(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", graphs, ready)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise SystemExit("the bench server did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        results: dict[str, list[dict[str, Any]]] = {"baseline": [], "large": []}
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
                print(f"editor in headless Chromium, 1280x800, software rendering; {load_note()}")
                for _ in range(runs):
                    for name in ("baseline", "large"):  # interleaved: both see the same machine load
                        page = await browser.new_page(viewport={"width": 1280, "height": 800})
                        m = await measure(page, url, ready[name], graphs[name])
                        results[name].append(m)
                        print(_line(f"{len(graphs[name]['nodes'])} nodes", m), flush=True)
                        await page.close()
                if trace:
                    page = await browser.new_page(viewport={"width": 1280, "height": 800})
                    await browser.start_tracing(page=page, screenshots=False)
                    boxes = [[x["id"], x["position"]["x"], x["position"]["y"]] for x in graphs["large"]["nodes"]]
                    await page.goto(f"{url}/workflows/{ready['large']}")
                    await page.wait_for_function(ON_SCREEN, arg=[boxes, 0.05], timeout=120_000, polling="raf")
                    trace.write_bytes(await browser.stop_tracing())
                    print(f"trace of one large load: {trace}")
                    await page.close()
                await browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    base, large = results["baseline"], results["large"]
    label = "same editor, 10-node graph"
    report(
        "editor",
        f"first render, {n} nodes (navigation to fitted view, visible nodes drawn)",
        "ms",
        [m["first"] for m in large],
        [m["first"] for m in base],
        label,
        goal="< 2000 ms",
    )
    report(
        "editor",
        f"pan frame interval p50, {n} nodes",
        "ms",
        [statistics.median(m["pan"]) for m in large],
        [statistics.median(m["pan"]) for m in base],
        label,
        goal="< 16.7 ms",
    )
    report(
        "editor",
        f"zoom frame interval p50, {n} nodes",
        "ms",
        [statistics.median(m["zoom"]) for m in large],
        [statistics.median(m["zoom"]) for m in base],
        label,
        goal="< 16.7 ms",
    )
    print(json.dumps({"visible_nodes_at_first_render": [m["visible"] for m in large]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trace", type=Path, help="write a Chromium performance trace of one large load here")
    args = parser.parse_args()
    asyncio.run(run(args.nodes, args.runs, args.trace))


if __name__ == "__main__":
    main()
