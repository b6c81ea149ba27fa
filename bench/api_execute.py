"""The workflow API's execute path against Prefect directly: ``POST /execute {wait: true}``.

Measures, for a published workflow (manual trigger and one transform) on a warm gorax worker:

* execute-and-wait round trip through the API (validate tenant, read variables, create the run,
  wait, read output and steps) against the baseline of creating the deployment run and polling
  it with the Prefect client;
* ``GET /executions/{id}`` (run, step records, result) and ``GET /executions`` (a page of 50).

Run: .venv/bin/python bench/api_execute.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import (  # noqa: E402
    chain_graph,
    create_pool,
    load_note,
    report,
    start_prefect,
    start_worker,
    wait_final,
)


async def _api(pool: str, home: Path) -> tuple[object, str, str]:
    """A running API (SQLite) and an admin key of a fresh tenant: (server, base url, key)."""
    import threading

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
    return server, f"http://127.0.0.1:{port}", created["api_key"]


async def main(runs: int) -> None:
    import httpx

    print(load_note(), flush=True)
    _, home = start_prefect()
    from prefect.client.orchestration import get_client

    pool = "bench-api"
    await create_pool(pool, "gorax")
    await start_worker(pool, "gorax", home)
    server, base, key = await _api(pool, home)
    graph = chain_graph("api-bench", 1, "data.transform", {"value": {"ok": True}})
    async with (
        httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=120, headers={"Authorization": f"Bearer {key}"}) as api,
        get_client() as client,
    ):
        wid = (await api.post("/workflows", json={"name": "api-bench", "graph": graph})).json()["id"]
        assert (await api.post(f"/workflows/{wid}/publish", json={})).status_code == 201
        body = {"input": {}, "wait": True, "timeout_seconds": 60}
        await api.post(f"/workflows/{wid}/execute", json=body)  # unmeasured: first run loads code
        through_api, direct, detail, listing = [], [], [], []
        deployments = await client.read_deployments()
        deployment_id = next(d.id for d in deployments if f"workflow:{wid}" in d.tags)
        for _ in range(runs):
            start = time.perf_counter()
            response = await api.post(f"/workflows/{wid}/execute", json=body)
            through_api.append(time.perf_counter() - start)
            if response.json().get("status") != "completed":
                raise SystemExit(f"run did not complete: {response.text}")
            execution_id = response.json()["execution_id"]
            start = time.perf_counter()
            run = await client.create_flow_run_from_deployment(deployment_id)
            await wait_final(client, [run.id])
            direct.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert (await api.get(f"/executions/{execution_id}")).status_code == 200
            detail.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            assert (await api.get("/executions", params={"limit": 50})).status_code == 200
            listing.append((time.perf_counter() - start) * 1000)
    report(
        "api_execute",
        "POST /execute wait=true round trip",
        "s",
        through_api,
        direct,
        "create deployment run + poll with the Prefect client",
    )
    report("api_execute", "GET /executions/{id} (run, steps, output)", "ms", detail)
    report("api_execute", "GET /executions (page of 50)", "ms", listing)
    server.should_exit = True  # type: ignore[attr-defined]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured executions")
    asyncio.run(main(parser.parse_args().runs))
