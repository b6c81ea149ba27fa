"""Run results in shared storage: a worker on another disk writes them to S3, the API reads them.

The worker runs in its own working directory with its own Gorax and Prefect state directories
(no disk shared with the API) and ``GORAX_RESULTS_URL`` naming a bucket on a moto S3 server on
127.0.0.1. The API is not told the URL: a stored result names its storage block, which the API
loads from Prefect. A result that cannot be read is an error naming the run, never a null output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from api.app import create_app
from api.db.engine import Database
from flows.settings import get_settings
from tests.api.conftest import _SHARED_CONFIG, ServerThread, TenantHandle, make_settings, new_tenant
from tests.api.workflows.conftest import MANUAL, publish, transform
from tests.conftest import session_dir
from tests.flows.worker.conftest import WorkerProcess, create_pool

API = "/api/v1"
BUCKET = "gorax-results-test"
PREFIX = "team/runs"
SECRET = "shared-result-secret-9c1b"


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """A moto S3 server on 127.0.0.1 with the results bucket: (endpoint URL, client)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


class RemoteWorker(WorkerProcess):
    """A warm worker that shares no disk with the API: its own cwd, state directories and results URL."""

    def __init__(self, pool: str, root: Path, endpoint: str) -> None:
        super().__init__(pool, f"s3-{uuid.uuid4().hex[:6]}")
        self.root = root
        self.endpoint = endpoint

    def start(self) -> RemoteWorker:
        for name in ("cwd", "gorax", "prefect"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        env = os.environ.copy()
        env.update(
            {
                "GORAX_HOME": str(self.root / "gorax"),
                "PREFECT_HOME": str(self.root / "prefect"),
                # The key-encryption key every process of a deployment shares (not the API's disk:
                # the operator's key file, as in production a mounted secret or GORAX_KEY_ENCRYPTION_KEY).
                "GORAX_KEY_FILE": str(get_settings().keys.key_file),
                "GORAX_RESULTS_URL": f"s3://{BUCKET}/{PREFIX}",
                "GORAX_RESULTS_ENDPOINT_URL": self.endpoint,
                "GORAX_WORKER_PRELOAD": "flows.run_graph",
                "GORAX_WORKER_SHUTDOWN_GRACE_SECONDS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("PYTHONPATH", None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "worker",
                    "start",
                    "--pool",
                    self.pool,
                    "--type",
                    "gorax",
                    "--name",
                    self.name,
                    "--limit",
                    "10",
                ],
                cwd=self.root / "cwd",
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self


@pytest.fixture(scope="module")
async def remote_worker(prefect_server: Any, s3: tuple[str, Any]) -> AsyncIterator[RemoteWorker]:
    pool = await create_pool()
    worker = RemoteWorker(pool, session_dir() / f"remote-worker-{uuid.uuid4().hex[:6]}", s3[0])
    worker.start()
    await worker.started()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
async def s3_tenant(remote_worker: RemoteWorker, sqlite_url: str) -> AsyncIterator[TenantHandle]:
    """A tenant of an API deploying to the remote worker's pool."""
    settings = make_settings(sqlite_url, api=_SHARED_CONFIG, work_pool=remote_worker.pool)
    assert not settings.results.remote  # the API reads results through the block a result names
    thread = ServerThread(create_app(settings)).start()
    database = Database(sqlite_url)
    try:
        yield await new_tenant(database, thread.url)
    finally:
        await database.dispose()
        thread.stop()


def _graph(name: str, value: Any) -> dict[str, Any]:
    hook = {
        "id": "hook",
        "type": "trigger.webhook",
        "position": {"x": 0, "y": 0},
        "config": {"signature": {"scheme": "none"}, "respond": "after_run"},
    }
    out = {"id": "done", "type": "control.output", "position": {"x": 0, "y": 200}, "config": {"value": value}}
    nodes = [MANUAL, hook, transform("shape", {"n": "{{ 6 * 7 }}", "secret": SECRET}), out]
    edges = [
        {"id": "e0", "source": "start", "target": "shape"},
        {"id": "e1", "source": "hook", "target": "shape"},
        {"id": "e2", "source": "shape", "target": "done"},
    ]
    return {"format": "gorax/graph@1", "name": f"{name}-{uuid.uuid4().hex[:6]}", "nodes": nodes, "edges": edges}


async def _published(client: httpx.AsyncClient, g: dict[str, Any]) -> str:
    response = await client.post(f"{API}/workflows", json={"name": g["name"], "graph": g})
    assert response.status_code == 201, response.text
    await publish(client, response.json()["id"])
    return response.json()["id"]


async def _execute(client: httpx.AsyncClient, workflow_id: str) -> httpx.Response:
    return await client.post(
        f"{API}/workflows/{workflow_id}/execute", json={"input": {}, "wait": True, "timeout_seconds": 120}, timeout=180
    )


def _objects(client: Any) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


async def test_a_result_stored_by_a_worker_on_another_disk_is_read_by_the_api(
    s3_tenant: TenantHandle, remote_worker: RemoteWorker, s3: tuple[str, Any]
) -> None:
    client_s3 = s3[1]
    expected = {"n": 42, "secret": SECRET}
    async with s3_tenant.client() as client:
        client.timeout = httpx.Timeout(180)
        workflow_id = await _published(
            client, _graph("shared", {"n": "{{ steps.shape.n }}", "secret": "{{ steps.shape.secret }}"})
        )
        response = await _execute(client, workflow_id)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed", response.text
        assert response.json()["output"] == expected
        execution_id = response.json()["execution_id"]
        detail = await client.get(f"{API}/executions/{execution_id}")
        assert detail.status_code == 200 and detail.json()["output"] == expected, detail.text

        # A webhook that answers after the run answers with the output read from S3.
        hooks = (await client.get(f"{API}/webhooks", params={"workflow_id": workflow_id})).json()["items"]
        hooked = await client.post(hooks[0]["url"], json={"n": 1}, timeout=180)
        assert hooked.status_code == 200, hooked.text
        assert hooked.json() == expected

        # The worker's disk is gone (its host replaced): the API still answers both outputs.
        shutil.rmtree(remote_worker.root / "prefect" / "storage", ignore_errors=True)
        for run_id in (execution_id, hooked.headers["X-Gorax-Execution-ID"]):
            again = await client.get(f"{API}/executions/{run_id}")
            assert again.status_code == 200 and again.json()["output"] == expected, again.text

    # The results are in the bucket under the prefix, sealed; the node results of each run are
    # one segment object beside them. Nothing went to the worker's own disk.
    stored = _objects(client_s3)
    assert stored and all(key.startswith(f"{PREFIX}/") for key in stored), sorted(stored)
    assert any(".results-" in key for key in stored), sorted(stored)
    for key, content in stored.items():
        assert SECRET.encode() not in content, key
        assert b"gorax:v1:" in content, key
    on_disk = [p for p in (remote_worker.root / "prefect").rglob("*") if p.is_file() and "storage" in p.parts]
    assert on_disk == []


async def test_a_result_that_cannot_be_read_is_an_error_naming_the_run(
    s3_tenant: TenantHandle, s3: tuple[str, Any]
) -> None:
    client_s3 = s3[1]
    async with s3_tenant.client() as client:
        client.timeout = httpx.Timeout(180)
        # A run whose result is null answers null: that is its result, not a missing one.
        nothing = await _execute(client, await _published(client, _graph("nothing", None)))
        assert nothing.status_code == 200, nothing.text
        assert nothing.json()["status"] == "completed" and nothing.json()["output"] is None

        before = set(_objects(client_s3))
        response = await _execute(client, await _published(client, _graph("deleted", "{{ steps.shape.n }}")))
        assert response.status_code == 200 and response.json()["output"] == 42, response.text
        execution_id = response.json()["execution_id"]
        new = [key for key in set(_objects(client_s3)) - before if ".results-" not in key]
        assert len(new) == 1, new  # the flow run's result
        client_s3.delete_object(Bucket=BUCKET, Key=new[0])

        detail = await client.get(f"{API}/executions/{execution_id}")
        assert detail.status_code == 502, detail.text
        error = detail.json()["error"]
        assert error["code"] == "RESULT_UNAVAILABLE"
        assert execution_id in error["message"] and new[0] in error["message"], error
        assert error["details"]["execution_id"] == execution_id
        assert "does not exist" in error["details"]["reason"]
