"""``gorax setup`` and the API's start: the work pool and what its runs need, idempotently."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker
from starlette.testclient import TestClient

from api.app import create_app
from api.cli import main
from api.config import StackSettings, get_api_settings
from api.prefect.pools import worker_token_block
from api.prefect.setup import setup_prefect
from tests.api.conftest import make_settings

API_URL = "http://gorax-api.internal:8080"


@pytest.fixture
async def prefect(prefect_server: Any) -> AsyncIterator[PrefectClient]:
    async with get_client() as client:
        yield client


def _pool_name() -> str:
    return f"setup-{uuid.uuid4().hex[:8]}"


async def _run_env(client: PrefectClient, pool: str) -> dict[str, Any]:
    """The environment a process worker gives a run of ``pool`` (Prefect's own resolution)."""
    template = (await client.read_work_pool(pool)).base_job_template
    configuration = await ProcessJobConfiguration.from_template_and_values(template, {}, client=client)
    return dict(configuration.env)


async def test_setup_makes_a_process_pool_whose_runs_can_reach_the_api(prefect: PrefectClient) -> None:
    pool = _pool_name()
    report = await setup_prefect(
        prefect, work_pool=pool, worker_type="process", api_url=API_URL, worker_token="gxw_first"
    )
    assert report.pool.created and report.pool.type == "process"
    assert "webhook-secret" in report.block_types
    env = await _run_env(prefect, pool)
    assert env["GORAX_API_URL"] == API_URL and env["GORAX_WORKER_TOKEN"] == "gxw_first"
    # The template names the Secret block; the token itself is not in it.
    template = (await prefect.read_work_pool(pool)).base_job_template
    assert "gxw_first" not in str(template)
    assert worker_token_block(pool) in str(template)

    again = await setup_prefect(
        prefect, work_pool=pool, worker_type="process", api_url=API_URL, worker_token="gxw_first"
    )
    assert not again.pool.created and not again.pool.updated
    assert again.lines()[0] == f"work pool {pool!r} (type process): already set up"

    rotated = await setup_prefect(
        prefect, work_pool=pool, worker_type="process", api_url=API_URL, worker_token="gxw_second"
    )
    assert not rotated.pool.updated  # the template still names the block, whose value changed
    assert (await _run_env(prefect, pool))["GORAX_WORKER_TOKEN"] == "gxw_second"


async def test_setup_completes_a_pool_a_worker_made_and_keeps_what_an_operator_added(prefect: PrefectClient) -> None:
    pool = _pool_name()
    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["env"]["default"] = {"HTTPS_PROXY": "http://proxy:3128"}
    await prefect.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
    report = await setup_prefect(prefect, work_pool=pool, worker_type="gorax", api_url=API_URL, worker_token="gxw_t")
    assert report.pool.updated and not report.pool.created
    assert report.pool.type == "process" and "it is kept" in report.pool.notes[0]
    env = await _run_env(prefect, pool)
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["GORAX_WORKER_TOKEN"] == "gxw_t"


async def test_a_warm_worker_pool_gets_no_run_environment(prefect: PrefectClient) -> None:
    pool = _pool_name()
    report = await setup_prefect(prefect, work_pool=pool, worker_type="gorax", api_url=API_URL, worker_token="gxw_w")
    assert report.pool.created and report.pool.type == "gorax"
    assert any("own environment" in note for note in report.pool.notes)
    with pytest.raises(ObjectNotFound):
        await prefect.read_block_document_by_name(worker_token_block(pool), block_type_slug="secret")


async def test_the_api_sets_prefect_up_when_it_starts(prefect: PrefectClient, sqlite_url: str, tmp_path: Path) -> None:
    pool = _pool_name()
    settings = make_settings(
        sqlite_url.replace(".db", "-setup.db"),
        work_pool=pool,
        stack=StackSettings(worker_type="process"),
        api_url=API_URL,
    )
    with TestClient(create_app(settings, web_dist=tmp_path)):
        for _ in range(120):
            try:
                env = await _run_env(prefect, pool)
                if "GORAX_WORKER_TOKEN" in env:
                    break
            except ObjectNotFound:
                pass
            await asyncio.sleep(0.25)
        else:
            pytest.fail(f"the API did not set up work pool {pool!r}")
    assert env["GORAX_API_URL"] == API_URL and env["GORAX_WORKER_TOKEN"].startswith("gxw_")


async def test_gorax_setup_says_what_it_did(
    prefect: PrefectClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pool = _pool_name()
    monkeypatch.setenv("GORAX_WORK_POOL", pool)
    monkeypatch.setenv("GORAX_WORKER_TYPE", "process")
    monkeypatch.setenv("GORAX_HOME", str(tmp_path))
    token = "gxw_setup-" + uuid.uuid4().hex
    monkeypatch.setenv("GORAX_WORKER_TOKEN", token)
    get_api_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, ["setup"]) == 0
        assert await asyncio.to_thread(main, ["setup"]) == 0
    finally:
        get_api_settings.cache_clear()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"work pool {pool!r} (type process): created"
    assert f"work pool {pool!r} (type process): already set up" in out
    assert (await _run_env(prefect, pool))["GORAX_WORKER_TOKEN"] == token
