"""Run data on the canvas: first render of a large graph with every node's overlay (status,
duration, item count) against the same graph without run data, and pan frame times of both.

The built editor (web/dist) is served as in bench/editor.py, plus fixed answers for the run list
and one run whose step records cover every node. The graph without runs, measured the same way
in the same run (alternating, several rounds), is the baseline.

    (cd web && npm run build) && .venv/bin/python bench/editor_data.py [--nodes 1000] [--rounds 3]
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
sys.path.insert(0, str(ROOT / "bench"))

import uvicorn  # noqa: E402
from _harness import load_note, report  # noqa: E402
from editor import BROWSER_ARGS, RECORD_FRAMES, bench_app, make_graph  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from tests.peers import free_port  # noqa: E402

RUN_ID = "00000000-0000-4000-8000-000000000001"


def with_run_data(app: FastAPI, graph: dict[str, Any], workflow_id: str) -> FastAPI:
    """Answer the run list (one run for ``workflow_id``, none for others) and that run's steps."""
    steps = [
        {
            "node_id": node["id"],
            "name": node["id"],
            "type": node["type"],
            "status": "completed",
            "attempts": 1,
            "duration_ms": 10 + index % 90,
            "iteration": [],
            "input": {"value": index},
            "output": [{"i": index, "ok": True}] * (1 + index % 5),
        }
        for index, node in enumerate(graph["nodes"])
    ]
    run = {"id": RUN_ID, "workflow_id": workflow_id, "status": "completed", "started_at": "2026-01-01T00:00:00Z"}

    async def executions(workflow_id: str = "") -> dict[str, Any]:
        return {"items": [run] if workflow_id == run["workflow_id"] else [], "next_cursor": None, "total": 1}

    async def execution(execution_id: str) -> dict[str, Any]:
        return {**run, "input": {}, "steps": steps}

    app.add_api_route("/api/v1/executions", executions, methods=["GET"])
    app.add_api_route("/api/v1/executions/{execution_id}", execution, methods=["GET"])
    # The editor's static mount answers everything else: it stays last.
    app.router.routes.sort(key=lambda r: isinstance(r, Mount) and r.path == "")
    return app


async def render_and_pan(page: Any, url: str, workflow_id: str, n: int, *, overlays: bool) -> tuple[float, list[float]]:
    """(ms from navigation to every node on screen, with its overlay when ``overlays``; frame
    intervals in ms while panning), as bench/editor.py measures them."""
    await page.goto(f"{url}/workflows/{workflow_id}")
    await page.wait_for_function(f"document.querySelectorAll('.react-flow__node').length >= {n}", timeout=120_000)
    if overlays:
        await page.wait_for_function(f"document.querySelectorAll('.gx-overlay').length >= {n}", timeout=120_000)
    first_render = await page.evaluate("performance.now()")
    await page.wait_for_timeout(500)
    box = await page.locator(".react-flow__pane").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.evaluate(RECORD_FRAMES)
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    for i in range(120):
        dx = 200 * (1 if (i // 30) % 2 == 0 else -1)
        await page.mouse.move(cx + dx * ((i % 30) / 30), cy + (i % 30), steps=1)
        await page.wait_for_timeout(16)
    await page.mouse.up()
    frames = await page.evaluate("window.__frames")
    return first_render, [b - a for a, b in itertools.pairwise(frames)]


async def run(n: int, rounds: int) -> None:
    from playwright.async_api import async_playwright

    graph = make_graph(n)
    graphs = {"plain": graph, "data": graph}
    print(f"editor in headless Chromium, 1280x800, software rendering; {n} nodes; {load_note()}")
    timings: dict[str, list[float]] = {"plain": [], "data": []}
    frames: dict[str, list[float]] = {"plain": [], "data": []}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        app = with_run_data(bench_app(Path(tmp), graphs), graph, "data")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
                for _ in range(rounds):
                    for workflow_id in ("plain", "data"):
                        page = await browser.new_page(viewport={"width": 1280, "height": 800})
                        first, gaps = await render_and_pan(page, url, workflow_id, n, overlays=workflow_id == "data")
                        timings[workflow_id].append(first)
                        frames[workflow_id].extend(gaps)
                        await page.close()
                await browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    report("editor_data", f"first render, {n} nodes with run overlays", "ms", timings["data"],
           timings["plain"], f"{n} nodes without run data")  # fmt: skip
    report("editor_data", f"pan frame interval, {n} nodes with run overlays", "ms", frames["data"],
           frames["plain"], f"{n} nodes without run data")  # fmt: skip
    print(f"pan frames p95: with overlays {statistics.quantiles(frames['data'], n=100)[94]:.1f} ms, "
          f"without {statistics.quantiles(frames['plain'], n=100)[94]:.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.nodes, args.rounds))


if __name__ == "__main__":
    main()
