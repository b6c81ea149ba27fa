"""Nothing lost: 500 signed deliveries while Prefect is down become exactly 500 runs.

Runs an API process and a Prefect server of its own (so stopping Prefect disturbs no other
test), stops that Prefect, sends the deliveries, starts Prefect again on the same database and
counts the runs the automation created. That Prefect keeps its state in a fresh PostgreSQL
database: on SQLite its automations create about one run a second here (its services queue on the
database lock), so 500 runs would take most of ten minutes to appear; ``GORAX_SOAK_PREFECT_DB=
sqlite`` runs it there anyway.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.db.engine import Database
from api.services.identity import create_tenant_with_admin
from blocks.providers import create_key_file
from tests.api.conftest import TEST_SIGNING_KEY, TEST_WORKER_TOKEN
from tests.api.triggers.conftest import graph, hook, signed
from tests.conftest import PrefectServer, _pg_admin, session_dir
from tests.peers import free_port

DELIVERIES = 500
SECRET = "whsec_" + base64.b64encode(b"outage-secret-outage-secret-1234").decode()
ROOT = Path(__file__).resolve().parents[3]


def _api_process(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """An API process configured as a replica of the test APIs: their signing key and worker token."""
    env = {"GORAX_TOKEN_SIGNING_KEY": TEST_SIGNING_KEY, "GORAX_WORKER_TOKEN": TEST_WORKER_TOKEN, **env}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {timeout}s")


async def _count_runs(prefect_url: str, workflow_id: str) -> int:
    """Runs of the workflow (-1 while Prefect is too busy creating them to answer)."""
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                f"{prefect_url}/flow_runs/count", json={"flow_runs": {"tags": {"all_": [f"workflow:{workflow_id}"]}}}
            )
            response.raise_for_status()
            return int(response.json())
    except httpx.HTTPError:
        return -1


# A soak test (two Prefect starts, 500 runs): `make test-soak`, not part of `make test`.
@pytest.mark.soak
@pytest.mark.timeout(1500)  # two Prefect starts and 500 automation runs
async def test_500_deliveries_while_prefect_is_down_make_500_runs() -> None:
    home = session_dir() / f"outage-{uuid.uuid4().hex[:6]}"
    home.mkdir(parents=True)
    prefect_port, api_port = free_port(), free_port()
    pg_name = None
    if os.environ.get("GORAX_SOAK_PREFECT_DB", "postgres") == "sqlite":
        prefect_db = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    else:
        pg_name = f"gorax_soak_{uuid.uuid4().hex[:10]}"
        await _pg_admin(f'CREATE DATABASE "{pg_name}"')
        prefect_db = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
    env = os.environ.copy()
    env.update(
        {
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db,
            "GORAX_HOME": str(home / "gorax"),
            "GORAX_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'gorax.db'}",
            "GORAX_RATE_LIMIT_WEBHOOK": "100000",
        }
    )
    create_key_file(home / "gorax" / "gorax-kek.json")  # as `gorax keys init` does
    own = {k: env[k] for k in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")}
    prefect = PrefectServer(prefect_port, home / "prefect")

    def start_prefect() -> None:
        # PrefectServer starts with this process's environment: point it at our own database,
        # the same one on the restart.
        saved = dict(os.environ)
        os.environ.update(own)
        try:
            prefect.start(timeout=480)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    start_prefect()
    api = _api_process(api_port, env, home / "api.log")
    base = f"http://127.0.0.1:{api_port}"
    try:
        await _wait_http(f"{base}/healthz")
        db = Database(env["GORAX_DATABASE_URL"])
        created = await create_tenant_with_admin(db, name="Outage", admin_email="o@t.test")
        await db.dispose()
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        scheme = {"scheme": "standard-webhooks", "secret": "outage"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=180) as client:
            response = await client.post(
                "/api/v1/credentials",
                json={"name": "outage", "type": "webhook-secret", "values": {"secrets": [SECRET]}},
            )
            assert response.status_code == 201, response.text
            g = graph("outage", [hook("hook", scheme)])
            response = await client.post("/api/v1/workflows", json={"name": "outage", "graph": g})
            workflow_id = response.json()["id"]
            response = await client.post(f"/api/v1/workflows/{workflow_id}/publish", json={})
            assert response.status_code == 201, response.text
            url = (await client.get("/api/v1/webhooks")).json()["items"][0]["url"]

            prefect.stop()
            limit = asyncio.Semaphore(16)

            async def deliver(n: int) -> tuple[int, Any]:
                body = json.dumps({"n": n}).encode()
                async with limit:
                    r = await client.post(url, content=body, headers=signed(scheme, body, SECRET))
                return r.status_code, r.json()

            answers = await asyncio.gather(*(deliver(n) for n in range(DELIVERIES)))
            assert [status for status, _ in answers] == [202] * DELIVERIES, answers[:3]
            assert len({a["delivery_id"] for _, a in answers}) == DELIVERIES

            start_prefect()

            async def settled() -> int:
                return await _count_runs(prefect.api_url, workflow_id)

            back = time.monotonic()
            deadline = back + 900
            count = 0
            while time.monotonic() < deadline:
                count = await settled()
                if count >= DELIVERIES:
                    break
                await asyncio.sleep(1)
            assert count == DELIVERIES, f"{count} runs after the restart"
            print(f"\n{DELIVERIES} runs {time.monotonic() - back:.0f} s after Prefect came back")
            await asyncio.sleep(5)  # a late duplicate would show up here
            assert await settled() == DELIVERIES
            waiting = (await client.get("/api/v1/webhooks", params={"workflow_id": workflow_id})).json()
            webhook_id = waiting["items"][0]["id"]
            left = (await client.get(f"/api/v1/webhooks/{webhook_id}/events", params={"status": "accepted"})).json()
            assert left["total"] == 0
    finally:
        api.terminate()
        try:
            api.wait(15)
        except subprocess.TimeoutExpired:
            api.kill()
        prefect.stop()
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
