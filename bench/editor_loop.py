"""Run one node from the editor: the round trip from the click on **Run node** to its output on
screen, in headless Chromium against the real API, Prefect server and a warm gorax worker.

The baseline, measured in the same run, is the same test run started through the API without the
editor (``POST /workflows/{id}/test-runs {mode: node, wait: true}``). Between samples the
upstream node's pin changes (not measured), so each sample waits for a new output.

    (cd web && npm run build) && .venv/bin/python bench/editor_loop.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import create_pool, load_note, report, start_prefect, start_worker  # noqa: E402

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
GRAPH = {
    "format": "gorax/graph@1",
    "name": "editor-loop",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
        {"id": "shape", "type": "data.transform", "position": {"x": 0, "y": 150}, "config": {"value": {"n": 1}}},
        {
            "id": "done",
            "type": "data.transform",
            "position": {"x": 0, "y": 300},
            "config": {"value": {"doubled": "{{ steps.shape.n * 2 }}"}},
        },
    ],
    "edges": [{"source": "start", "target": "shape"}, {"source": "shape", "target": "done"}],
}


async def _api(pool: str, home: Path) -> tuple[object, str, dict[str, str]]:
    """A running API (SQLite, serving the built editor) and a fresh tenant's admin."""
    import threading
    import uuid

    import uvicorn

    from api.app import create_app
    from api.config import GoraxApiSettings
    from api.db.engine import Database
    from api.services.identity import create_tenant_with_admin
    from tests.peers import free_port

    url = f"sqlite+aiosqlite:///{home / 'gorax.db'}"
    app = create_app(GoraxApiSettings(home=home / "gorax", database_url=url, work_pool=pool))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        await asyncio.sleep(0.05)
    db = Database(url)
    created = await create_tenant_with_admin(db, name="Bench", admin_email=f"b-{uuid.uuid4().hex[:6]}@b.test")
    await db.dispose()
    return server, f"http://127.0.0.1:{port}", created


async def main(runs: int) -> None:
    import httpx
    from playwright.async_api import async_playwright

    print(load_note(), flush=True)
    _, home = start_prefect()
    pool = "bench-editor-loop"
    await create_pool(pool, "gorax")
    await start_worker(pool, "gorax", home)
    server, base, admin = await _api(pool, home)
    headers = {"Authorization": f"Bearer {admin['api_key']}"}
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=120, headers=headers) as api:
        wid = (await api.post("/workflows", json={"name": "editor-loop", "graph": GRAPH})).json()["id"]
        body = {"node_id": "done", "mode": "node", "wait": True}
        await api.put(f"/workflows/{wid}/pins/shape", json={"output": {"n": 0}})
        warm = await api.post(f"/workflows/{wid}/test-runs", json=body)  # unmeasured: first run loads code
        assert warm.json()["output"] == {"doubled": 0}, warm.text

        through_api = []
        for i in range(1, runs + 1):
            await api.put(f"/workflows/{wid}/pins/shape", json={"output": {"n": 1000 + i}})
            start = time.perf_counter()
            response = await api.post(f"/workflows/{wid}/test-runs", json=body)
            through_api.append(time.perf_counter() - start)
            assert response.json()["output"] == {"doubled": 2 * (1000 + i)}, response.text

        in_editor = []
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
            page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
            page.set_default_timeout(60_000)
            await page.goto(base + "/")
            await page.get_by_label("Email").fill(admin["email"])
            await page.get_by_label("Password").fill(admin["password"])
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_test_id("whoami").wait_for()
            await page.goto(f"{base}/workflows/{wid}")
            await page.get_by_test_id("connection").filter(has_text="connected").wait_for()
            await page.get_by_test_id("node-done").click()
            section = page.get_by_role("region", name="Test done")
            button = section.get_by_role("button", name="Run node", exact=True)
            for i in range(1, runs + 1):
                # 202, 204, ...: no value is the start of another one
                await api.put(f"/workflows/{wid}/pins/shape", json={"output": {"n": 100 + i}})
                await button.wait_for()
                start = time.perf_counter()
                await button.click()
                await section.get_by_test_id("node-output").filter(has_text=f'"doubled": {200 + 2 * i}').wait_for()
                in_editor.append(time.perf_counter() - start)
            await browser.close()
    report(
        "editor_loop",
        "Run node: click -> output shown (3-node draft, upstream pinned)",
        "s",
        in_editor,
        through_api,
        "the same test run through the API (POST /test-runs wait=true)",
    )
    server.should_exit = True  # type: ignore[attr-defined]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured round trips of each kind")
    asyncio.run(main(parser.parse_args().runs))
