"""A real Prefect process worker on the ``gorax`` pool, for the few tests that need one, and a
Gorax API that the deploy steps of ``prefect.yaml`` check their tenant with.

A process worker takes 5-17 s to start each flow run, so only deployment tests use it; graph
semantics are tested in-process (tests/flows/graphs).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from api.app import create_app
from api.db.engine import Database
from api.services.identity import create_tenant_with_admin
from tests.api.conftest import ServerThread, make_settings, session_prefect
from tests.conftest import session_dir

PROJECT_ROOT = Path(__file__).resolve().parents[3]
POOL = "gorax"


async def _pool_type() -> str:
    """The ``gorax`` pool's type, creating it as a process pool when it does not exist."""
    async with get_client() as client:
        try:
            return (await client.read_work_pool(POOL)).type
        except ObjectNotFound:
            try:
                await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
            except ObjectAlreadyExists:
                pass
            return (await client.read_work_pool(POOL)).type


async def _worker_online(name: str) -> bool:
    async with get_client() as client:
        workers = await client.read_workers_for_work_pool(POOL)
    return any(w.name == name for w in workers)


@pytest.fixture(scope="session")
def gorax_worker(prefect_server: Any) -> Iterator[str]:
    """A ``prefect worker start --pool gorax`` subprocess (the pool's own type) for the session."""
    pool_type = asyncio.run(_pool_type())
    name = f"gorax-flows-test-{os.getpid()}"
    log_path = session_dir() / "flows-worker.log"
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", pool_type, "--name", name],
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Poll for runs every second rather than every 10 s: fewer idle seconds per test run.
        env={**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not asyncio.run(_worker_online(name)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the Prefect worker did not come online: {log_path.read_text()[-2000:]}")
        time.sleep(1)
    yield name
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class GoraxApi:
    """A running Gorax API with the tenant ``default`` (its slug) and an admin key of it."""

    url: str
    tenant_id: str
    api_key: str

    def deploy_env(self) -> dict[str, str]:
        """The environment CI gives ``prefect deploy``: Prefect's address, the API's and the key."""
        return {**os.environ, "GORAX_API_URL": self.url, "GORAX_API_KEY": self.api_key}


async def _default_tenant(database_url: str) -> dict[str, Any]:
    db = Database(database_url)
    try:
        await db.migrate()
        return await create_tenant_with_admin(db, name="Default", admin_email="ci@deploy.test", slug="default")
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def gorax_api(prefect_server: Any) -> Iterator[GoraxApi]:
    """The Gorax API the graphs of ``prefect.yaml`` are deployed for (tenant ``default``)."""
    database_url = f"sqlite+aiosqlite:///{session_dir() / f'deploy-{uuid.uuid4().hex[:8]}.db'}"
    created = asyncio.run(_default_tenant(database_url))
    settings = make_settings(database_url, prefect=session_prefect())
    server = ServerThread(create_app(settings)).start()
    yield GoraxApi(server.url, created["tenant_id"], created["api_key"])
    server.stop()
