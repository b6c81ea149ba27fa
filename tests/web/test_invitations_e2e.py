"""Invitations in the browser: an admin invites, the invitee registers with the token."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.web.conftest import WebApi

pytestmark = pytest.mark.browser


async def test_an_admin_invites_and_the_invitee_joins_from_the_sign_in_screen(
    sign_in: Any, browser: Any, web_api: WebApi
) -> None:
    admin = await sign_in("admin")
    page = admin.page
    await page.goto(web_api.url + "/admin")
    email = f"nia-{uuid.uuid4().hex[:6]}@web.test"
    await page.get_by_label("Invitee email").fill(email)
    await page.get_by_label("Invitee role").select_option("viewer")
    await page.get_by_role("button", name="Invite", exact=True).click()
    token = await page.get_by_role("status").locator("code").inner_text()
    assert token.startswith("gxi_")
    await page.get_by_role("table", name="Pending invitations").get_by_text(email).wait_for()

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        invitee = await context.new_page()
        invitee.set_default_timeout(20_000)
        await invitee.goto(web_api.url + "/")
        await invitee.get_by_role("button", name="I have an invitation").click()
        await invitee.get_by_label("Invitation token").fill(token)
        await invitee.get_by_label("Your name (new accounts)").fill("Nia New")
        await invitee.get_by_label("Password").fill("a long new password")
        await invitee.get_by_role("button", name="Accept and sign in").click()
        whoami = invitee.get_by_test_id("whoami")
        await whoami.wait_for()
        assert "Nia New" in await whoami.inner_text() and "viewer" in await whoami.inner_text()
    finally:
        await context.close()
    assert admin.errors == []
