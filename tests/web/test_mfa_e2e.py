"""MFA in the browser: enrol TOTP from the Security screen (codes computed from the shown
secret), sign out, sign in again with password and code; the admin's MFA policy form."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pyotp
import pytest

from api.auth.permissions import Role
from api.db.engine import Database
from api.services.audit import AuditContext
from api.services.identity import add_member
from tests.web.conftest import WebApi

pytestmark = pytest.mark.browser


async def _new_member(sqlite_url: str, tenant_id: str) -> tuple[str, str]:
    """A fresh editor of the web tenant (its own, so enabling MFA touches no shared user)."""
    db = Database(sqlite_url)
    try:
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            member, password = await add_member(
                session,
                tenant_id=tenant_id,
                email=f"mfa-{uuid.uuid4().hex[:6]}@web.test",
                role=Role.EDITOR,
                name="Mo Factor",
                context=AuditContext.system("tests"),
            )
    finally:
        await db.dispose()
    assert password is not None
    return member.email, password


async def _password_step(page: Any, url: str, email: str, password: str) -> None:
    await page.goto(url + "/")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_enrol_totp_sign_out_and_sign_in_with_a_code(browser: Any, web_api: WebApi, sqlite_url: str) -> None:
    email, password = await _new_member(sqlite_url, web_api.tenant_id)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    try:
        page = await context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        await _password_step(page, web_api.url, email, password)
        await page.get_by_test_id("whoami").wait_for()

        await page.get_by_role("link", name="Security").click()
        assert (await page.get_by_test_id("mfa-state").inner_text()).startswith("Off")
        await page.get_by_role("button", name="Set up an authenticator app").click()
        qr = page.get_by_role("img", name="QR code for the authenticator app")
        assert (await qr.get_attribute("src") or "").startswith("data:image/svg+xml")
        secret = await page.get_by_test_id("totp-secret").input_value()
        totp = pyotp.TOTP(secret)
        await page.get_by_label("Code", exact=True).fill("000000" if totp.now() != "000000" else "111111")
        await page.get_by_role("button", name="Confirm").click()
        await page.get_by_role("alert").get_by_text("wrong code").wait_for()
        await page.get_by_label("Code", exact=True).fill(totp.now())
        await page.get_by_role("button", name="Confirm").click()
        codes = page.get_by_test_id("recovery-codes").locator("li")
        await codes.first.wait_for()
        assert await codes.count() == 10
        await page.get_by_role("button", name="I have saved them").click()
        # The state is read again from the API after the click: wait for it, do not race it.
        await page.get_by_test_id("mfa-state").filter(has_text="10 recovery codes left").wait_for()

        await page.get_by_role("button", name="Sign out").click()
        await _password_step(page, web_api.url, email, password)
        code_form = page.get_by_role("form", name="Two-factor code")
        await code_form.wait_for()
        assert await page.get_by_test_id("whoami").count() == 0
        # The next step's code: the one used to confirm cannot be used again.
        await page.get_by_label("Code", exact=True).fill(totp.at(time.time() + 30))
        await page.get_by_role("button", name="Verify").click()
        whoami = page.get_by_test_id("whoami")
        await whoami.wait_for()
        assert "Mo Factor" in await whoami.inner_text()
    finally:
        await context.close()
    assert errors == []


async def test_admin_sets_the_tenant_mfa_policy(sign_in: Any, web_api: WebApi) -> None:
    admin = await sign_in("admin")
    page = admin.page
    key = web_api.users["admin"].api_key
    try:
        await page.goto(web_api.url + "/admin")
        form = page.get_by_role("form", name="MFA policy")
        await form.get_by_label("MFA required of").select_option("roles")
        # No operator signs in to the web tests' tenant: this policy stops nobody else's tests.
        await form.get_by_role("group", name="Roles that need MFA").get_by_label("operator").check()
        await form.get_by_role("button", name="Save policy").click()
        await form.get_by_text("have not set up MFA yet").wait_for()
        async with httpx.AsyncClient(base_url=web_api.url, headers={"Authorization": f"Bearer {key}"}) as api:
            policy = (await api.get("/api/v1/tenant/mfa-policy")).json()
        assert policy["mode"] == "roles" and policy["roles"] == ["operator"]
    finally:
        async with httpx.AsyncClient(base_url=web_api.url, headers={"Authorization": f"Bearer {key}"}) as api:
            await api.put("/api/v1/tenant/mfa-policy", json={"mode": "off"})
    assert admin.errors == []
