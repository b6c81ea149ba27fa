"""The "Import from n8n" dialog in headless Chromium against the real API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.flows.importers.conftest import N8N_FIXTURES
from tests.web.conftest import Session, WebApi

pytestmark = pytest.mark.browser


async def test_paste_n8n_json_see_the_report_and_open_the_draft(sign_in: Any, web_api: WebApi) -> None:
    s: Session = await sign_in("editor")
    page = s.page
    await page.get_by_role("link", name="Workflows").click()
    await page.get_by_role("button", name="Import from n8n").click()
    dialog = page.get_by_role("dialog", name="Import from n8n")

    # Not JSON: said at once, nothing sent
    await dialog.get_by_label("n8n workflow JSON").fill("{ nodes: ")
    await dialog.get_by_role("button", name="Import").click()
    assert "not valid JSON" in await dialog.get_by_role("alert").inner_text()

    # JSON that is not an n8n workflow: the API's 422 names the path
    await dialog.get_by_label("n8n workflow JSON").fill(json.dumps({"nodes": [{"name": "A"}]}))
    await dialog.get_by_role("button", name="Import").click()
    alert = dialog.get_by_role("alert")
    await alert.filter(has_text="nodes[0].type").wait_for()

    # A real n8n file, uploaded
    await dialog.get_by_label("Upload n8n JSON file").set_input_files(
        str(N8N_FIXTURES / "AwsS3.file.upload.V2.workflow.json")
    )
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=n8n-json]').value.includes('moveBinaryData')"
    )
    await dialog.get_by_label("Name (optional)").fill("S3 from n8n")
    await dialog.get_by_role("button", name="Import").click()
    status = dialog.get_by_role("status")
    await status.wait_for()
    assert "2 of 4 nodes mapped, 2 placeholders" in await status.inner_text()
    placeholders = dialog.get_by_role("table", name="Placeholders")
    assert "n8n-nodes-base.moveBinaryData" in await placeholders.inner_text()
    credentials = dialog.get_by_role("table", name="Credentials needed")
    assert "aws_account" in await credentials.inner_text() and "aws-credentials" in await credentials.inner_text()
    await s.shot("import-n8n-report")

    await dialog.get_by_role("button", name="Open draft").click()
    await page.wait_for_url("**/workflows/*")
    for node in ("aws_s3", "move_binary_data", "when_clicking_execute_workflow"):
        await page.get_by_test_id(f"node-{node}").wait_for()
    assert s.errors == []


async def test_viewer_has_no_import(sign_in: Any, web_api: WebApi) -> None:
    s: Session = await sign_in("viewer")
    await s.page.get_by_role("link", name="Workflows").click()
    await s.page.get_by_role("heading", name="Workflows").wait_for()
    assert await s.page.get_by_role("button", name="Import from n8n").count() == 0
