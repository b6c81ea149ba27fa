"""The editor's "Eject to Python": the published version's flow file and its CEL helper."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples import load_example
from tests.web.conftest import WebApi
from translator.eject import helper_source

pytestmark = pytest.mark.browser


async def test_eject_to_python_downloads_the_flow_and_its_helper(sign_in: Any, web_api: WebApi) -> None:
    document = load_example("fan-out-join")
    headers = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    async with httpx.AsyncClient(base_url=web_api.url + "/api/v1", timeout=60, headers=headers) as api:
        created = await api.post("/workflows", json={"name": document["name"], "graph": document})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]

        s = await sign_in("viewer")  # reading the workflow is enough
        page = s.page
        await page.goto(f"{web_api.url}/workflows/{workflow_id}")
        button = page.get_by_role("toolbar").get_by_role("button", name="Eject to Python")
        await button.click()  # nothing published yet: the editor says so
        await page.get_by_text("no published version").wait_for()

        published = await api.post(f"/workflows/{workflow_id}/publish", json={"message": "v1"})
        assert published.status_code == 201, published.text
        expected = (await api.get(f"/workflows/{workflow_id}/eject")).text

    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    await button.click()
    for _ in range(100):
        if len(downloads) == 2:
            break
        await asyncio.sleep(0.1)
    files = {d.suggested_filename: Path(await d.path()).read_text() for d in downloads}
    assert files == {"service_health.py": expected, "gorax_cel.py": helper_source()}
    await page.get_by_text("Ejected the published version").wait_for()
    assert not s.errors, s.errors
