"""In the browser: create an OAuth credential from a preset, Connect, approve at the local
provider, and see it connected on the Credentials screen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from flows.settings import get_settings
from tests.idp import LocalIdP
from tests.web.conftest import WebApi


@pytest.fixture
def idp(web_api: WebApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalIdP]:
    monkeypatch.setenv("GORAX_HTTP_ALLOWED_NETWORKS", "127.0.0.0/8")  # the provider is on loopback
    get_settings.cache_clear()
    provider = LocalIdP(require_pkce=True)
    provider.add_client(
        "web-app", "web-app-secret-42", redirect_uris=[f"{web_api.url}/api/v1/oauth/callback"], scopes="openid email"
    )
    provider.add_user("ada", email="ada@example.com", name="Ada")
    provider.start()
    yield provider
    provider.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


def _field(page: Any, title: str) -> Any:
    """The form control whose label starts with ``title`` (labels go on with the description)."""
    return page.get_by_label(re.compile(rf"^{re.escape(title)}"))


async def test_connect_an_oauth_credential_in_the_browser(sign_in: Any, web_api: WebApi, idp: LocalIdP) -> None:
    admin = await sign_in("admin")
    page = admin.page
    await page.goto(web_api.url + "/credentials")
    await page.get_by_role("button", name="New credential").click()
    await _field(page, "Name").fill("local_idp")
    await _field(page, "Type").select_option(label="Gorax OAuth 2.0 Connection")
    await _field(page, "Provider").select_option("generic")
    await _field(page, "Client Id").fill("web-app")
    await _field(page, "Client Secret").fill("web-app-secret-42")
    await _field(page, "Authorize Url").fill(idp.url("/authorize"))
    await _field(page, "Token Url").fill(idp.url("/token"))
    await _field(page, "Scopes").fill("openid email")
    # The form tells which redirect URL to register, and asks for no token.
    await page.get_by_text(f"{web_api.url}/api/v1/oauth/callback").wait_for()
    assert await _field(page, "Access Token").count() == 0
    await page.get_by_role("button", name="Save").click()

    status = page.get_by_test_id("status-local_idp")
    await status.wait_for(timeout=60_000)  # saving seals and stores through Prefect: slow on a loaded machine
    assert await status.inner_text() == "not connected"
    await page.get_by_role("button", name="Connect", exact=True).click()

    # The provider's consent page, then back to the Credentials screen.
    await page.get_by_role("heading", name="Sign in to Local IdP").wait_for(timeout=60_000)
    await page.get_by_role("button", name="Allow").click()
    await page.get_by_role("status").filter(has_text="is connected").wait_for(timeout=60_000)
    assert "oauth=connected" in page.url and "code=" not in page.url
    await page.get_by_test_id("status-local_idp").filter(has_text="connected").wait_for()
    assert await page.get_by_test_id("status-local_idp").inner_text() == "connected"
    assert await page.get_by_role("button", name="Reconnect").count() == 1
    assert idp.token_requests["authorization_code"] == 1
    assert not admin.errors
