"""SSO in the browser: sign in at a real OIDC provider on 127.0.0.1 and land in the app signed in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.idp import LocalIdP
from tests.web.conftest import ARTIFACTS, WebApi

pytestmark = pytest.mark.browser


@pytest.fixture
def idp() -> Iterator[LocalIdP]:
    provider = LocalIdP(title="Acme Identity")
    provider.start()
    yield provider
    provider.stop()


async def test_sign_in_with_sso_lands_in_the_app_signed_in(browser: Any, web_api: WebApi, idp: LocalIdP) -> None:
    tag = uuid.uuid4().hex[:6]
    email = f"sam.{tag}@sso.example"
    idp.add_user("u-other", email=f"other.{tag}@sso.example", name="Someone Else", groups=[])
    idp.add_user("u-sam", email=email, name="Sam Single", groups=["gorax-editors"])
    secret = "browser-secret-" + tag
    admin_key = web_api.users["admin"].api_key
    async with httpx.AsyncClient(base_url=web_api.url, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
        slug = (await admin.get("/api/v1/auth/me")).json()["tenant"]["slug"]
        put = await admin.put(
            "/api/v1/tenants/current/sso",
            json={
                "discovery_url": idp.url("/.well-known/openid-configuration"),
                "client_id": "gorax-web",
                "client_secret": secret,
                "allowed_domains": ["sso.example"],
                "role_mapping": {"gorax-editors": "editor"},
                "default_role": None,
            },
        )
        assert put.status_code == 200, put.text
        idp.add_client("gorax-web", secret, redirect_uris=[put.json()["callback_url"]])
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = await context.new_page()
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(web_api.url + "/")
            await page.get_by_role("heading", name="Sign in with SSO").wait_for()
            await page.get_by_label("Organisation or work e-mail").fill(slug)
            await page.get_by_role("button", name="Continue with SSO").click()
            # The provider's own page: choose the account and allow.
            await page.get_by_role("heading", name="Sign in to Acme Identity").wait_for()
            await page.get_by_label("Sam Single").check()
            await page.get_by_role("button", name="Allow").click()
            whoami = page.get_by_test_id("whoami")
            await whoami.wait_for()
            text = await whoami.inner_text()
            assert "Sam Single" in text and "editor" in text
            assert "#" not in page.url and "code=" not in page.url and "state=" not in page.url
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "sso-signed-in.png"))
            assert errors == []
            # A refused sign-in (wrong domain) lands on the sign-in page with a readable reason.
            idp.add_user(
                "u-mallory", email=f"mallory.{tag}@elsewhere.example", name="Mallory", groups=["gorax-editors"]
            )
            other = await browser.new_context(viewport={"width": 1280, "height": 800})
            try:
                page2 = await other.new_page()
                page2.set_default_timeout(20_000)
                await page2.goto(web_api.url + "/")
                await page2.get_by_label("Organisation or work e-mail").fill(slug)
                await page2.get_by_role("button", name="Continue with SSO").click()
                await page2.get_by_label("Mallory").check()
                await page2.get_by_role("button", name="Allow").click()
                alert = page2.get_by_role("alert").filter(has_text="domain")
                await alert.wait_for()
                await page2.screenshot(path=str(ARTIFACTS / "sso-refused.png"))
            finally:
                await other.close()
        finally:
            await context.close()
            assert (await admin.delete("/api/v1/tenants/current/sso")).status_code == 204


async def test_an_admin_configures_sso_on_the_admin_page(sign_in: Any, web_api: WebApi) -> None:
    admin = await sign_in("admin")
    page = admin.page
    headers = {"Authorization": f"Bearer {web_api.users['admin'].api_key}"}
    async with httpx.AsyncClient(base_url=web_api.url, headers=headers) as api:
        try:
            await page.goto(web_api.url + "/admin")
            form = page.get_by_role("form", name="Single sign-on settings")
            await form.get_by_label("Discovery URL").fill("https://idp.example.com/.well-known/openid-configuration")
            await form.get_by_label("Client ID").fill("gorax-admin-page")
            await form.get_by_label("Client secret").fill("admin-page-secret")
            await form.get_by_label("Allowed e-mail domains").fill("example.com, Example.org")
            await form.get_by_label("Role mapping").fill("gorax-admins=admin\ngorax-editors=editor")
            await form.get_by_label("SSO only").check()
            await form.get_by_role("button", name="Save SSO settings").click()
            await form.get_by_role("status").wait_for()
            await page.get_by_text("Redirect URI to register at your provider").wait_for()
            # The secret is write-only: the field is empty again and says a secret is stored.
            secret = form.get_by_label("Client secret")
            assert await secret.input_value() == ""
            assert "stored" in (await secret.get_attribute("placeholder") or "")
            saved = (await api.get("/api/v1/tenants/current/sso")).json()
            assert saved["allowed_domains"] == ["example.com", "example.org"] and saved["sso_only"] is True
            assert saved["role_mapping"] == {"gorax-admins": "admin", "gorax-editors": "editor"}
            assert "admin-page-secret" not in str(saved)
        finally:
            # SSO-only would refuse the other browser tests' password sign-ins.
            await api.delete("/api/v1/tenants/current/sso")
    assert admin.errors == []
