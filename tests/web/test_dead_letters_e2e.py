"""The Dead letters page in headless Chromium: counts, filters, the detail drawer, a replay that
cannot happen (and says why), a discard, and a bulk discard of a selection; viewers only read."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from api.db.base import utcnow
from api.db.engine import Database
from api.deadletters.models import DeadLetter
from tests.web.conftest import WebApi

pytestmark = pytest.mark.browser


async def _letters(sqlite_url: str, tenant_id: str) -> dict[str, DeadLetter]:
    """Three open dead letters of a workflow that no longer exists, and one discarded."""
    workflow_id = str(uuid.uuid4())
    now = utcnow()
    made: dict[str, DeadLetter] = {}
    db = Database(sqlite_url)
    try:
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            for name, source, status in (
                ("a", "webhook", "open"),
                ("b", "webhook", "open"),
                ("c", "schedule", "open"),
                ("d", "webhook", "discarded"),
            ):
                ref = f"{'delivery' if source == 'webhook' else 'flow-run'}:{uuid.uuid4()}"
                letter = DeadLetter(
                    tenant_id=tenant_id,
                    source=source,
                    reference=ref,
                    workflow_id=workflow_id,
                    node_id="hook" if source == "webhook" else "every-hour",
                    payload={"body": {"order": name}},
                    reason=f"its workflow no longer exists ({name})",
                    attempts=2,
                    first_seen_at=now - timedelta(hours=8),
                    last_seen_at=now - timedelta(minutes=ord(name)),
                    status=status,
                )
                session.add(letter)
                made[name] = letter
            await session.commit()
    finally:
        await db.dispose()
    return made


async def test_dead_letters_page(sign_in: Any, web_api: WebApi, sqlite_url: str) -> None:
    letters = await _letters(sqlite_url, web_api.tenant_id)
    editor = await sign_in("editor")
    page = editor.page
    await page.get_by_role("link", name="Dead letters").click()
    counts = page.get_by_test_id("dl-counts")
    await page.get_by_role("heading", name="Dead letters").wait_for()
    rows = page.get_by_test_id("dl-row")
    await rows.nth(2).wait_for()
    assert await rows.count() == 3  # open ones, by default
    assert "3 open" in await counts.inner_text() and "1 discarded" in await counts.inner_text()

    await page.get_by_label("Source").select_option("schedule")
    await expect(page.get_by_test_id("dl-row")).to_have_count(1)
    assert "(c)" in await rows.first.inner_text()
    await page.get_by_label("Source").select_option("")
    await rows.nth(2).wait_for()

    # The drawer: the reason and payload; a replay that cannot happen says why and stays open.
    await page.get_by_role("button", name=f"Details of {letters['a'].reference}").click()
    drawer = page.get_by_role("dialog", name="Dead letter")
    assert "(a)" in await drawer.get_by_test_id("dl-reason").inner_text()
    assert '"order": "a"' in await drawer.locator("pre.json").inner_text()
    await drawer.get_by_role("button", name="Replay").click()
    await drawer.get_by_text("its workflow no longer exists: discard it instead").wait_for()
    assert await drawer.get_by_role("button", name="Discard").is_disabled()  # a reason first
    await drawer.get_by_label("Reason to discard").fill("workflow was removed on purpose")
    await drawer.get_by_role("button", name="Discard").click()
    await drawer.get_by_text("workflow was removed on purpose").wait_for()
    await drawer.get_by_role("button", name="Close").click()
    await expect(page.get_by_test_id("dl-row")).to_have_count(2)

    # Bulk: select all open ones, discard with a reason.
    await page.get_by_label("Select all open").check()
    bar = page.get_by_role("group", name="Bulk actions")
    assert "2 selected" in await bar.inner_text()
    await bar.get_by_label("Discard reason").fill("cleanup after incident 42")
    await bar.get_by_role("button", name="Discard selected").click()
    outcome = page.get_by_test_id("dl-outcome")
    await outcome.wait_for()
    assert "discard: 2 done, 0 failed" in await outcome.inner_text()
    await page.get_by_text("No dead letters open.").wait_for()
    assert "0 open" in await counts.inner_text() and "4 discarded" in await counts.inner_text()
    await page.get_by_label("Status").select_option("discarded")
    await expect(page.get_by_test_id("dl-row")).to_have_count(4)
    assert editor.errors == []

    viewer = await sign_in("viewer")
    await viewer.page.goto(web_api.url + "/dead-letters")
    await viewer.page.get_by_role("heading", name="Dead letters").wait_for()
    await viewer.page.get_by_label("Status").select_option("")
    await viewer.page.get_by_test_id("dl-row").nth(3).wait_for()
    assert await viewer.page.get_by_label("Select all open").count() == 0
    await viewer.page.get_by_role("button", name=f"Details of {letters['d'].reference}").click()
    drawer = viewer.page.get_by_role("dialog", name="Dead letter")
    await drawer.get_by_test_id("dl-reason").wait_for()
    assert await drawer.get_by_role("button", name="Replay").count() == 0
