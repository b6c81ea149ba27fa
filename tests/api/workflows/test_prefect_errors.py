"""A run input Prefect refuses: a 422 naming Prefect's reason, and no payload in the logs."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from api.app import create_app
from api.db.engine import Database
from tests.api.conftest import (
    _SHARED_CONFIG,
    ApiServer,
    ServerThread,
    TenantHandle,
    make_settings,
    new_tenant,
)
from tests.api.workflows.conftest import create, graph, publish, transform

MARKER = "PAYLOAD-THAT-MUST-NOT-BE-LOGGED-"


@pytest.fixture(scope="module")
def roomy_api(wf_pool: str, sqlite_url: str) -> Iterator[ApiServer]:
    """An API that lets inputs larger than Prefect's 512 KiB of run parameters through."""
    api = _SHARED_CONFIG.model_copy(update={"max_input_bytes": 4 * 1024 * 1024})
    settings = make_settings(sqlite_url, api=api, work_pool=wf_pool)
    app = create_app(settings)
    thread = ServerThread(app).start()
    yield ApiServer(thread.url, sqlite_url, settings, app)
    thread.stop()


@pytest.fixture
async def roomy_tenant(roomy_api: ApiServer) -> AsyncIterator[TenantHandle]:
    database = Database(roomy_api.database_url)
    try:
        yield await new_tenant(database, roomy_api.url)
    finally:
        await database.dispose()


@pytest.fixture
def api_log_lines() -> Iterator[io.StringIO]:
    """What the API's ``gorax`` loggers write, formatted as the API formats it."""
    logger = logging.getLogger("gorax")
    formatter = next(h.formatter for h in logger.handlers if getattr(h, "_gorax_json", False))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


async def test_an_input_prefect_refuses_is_a_422_and_is_not_logged(
    roomy_tenant: TenantHandle, api_log_lines: io.StringIO
) -> None:
    async with roomy_tenant.client() as client:
        wid = (await create(client, graph("big input", transform("t", 1))))["id"]
        await publish(client, wid)
        payload = {"text": MARKER * 40_000}  # 1.3 MB: past Prefect's 512 KiB of parameters
        response = await client.post(f"/api/v1/workflows/{wid}/execute", json={"input": payload})
    assert response.status_code == 422, response.text[:500]
    error = response.json()["error"]
    assert error["message"].startswith("Prefect refused the request as invalid")
    assert "524,288" in error["message"] and error["details"]["upstream_status"] == 422
    assert MARKER not in response.text and len(response.content) < 5000
    lines = api_log_lines.getvalue().splitlines()
    assert any("Prefect answered an error" in line for line in lines)
    assert not [line[:200] for line in lines if MARKER in line or len(line.encode()) > 8192]
