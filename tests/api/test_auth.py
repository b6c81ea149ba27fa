"""Sign-in, refresh rotation and reuse detection, sign-out, lockout, cookies and CSRF."""

from __future__ import annotations

import asyncio

import httpx

from api.db.engine import Database
from api.services.identity import set_password
from tests.api.conftest import ApiServer, TenantHandle


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def _actions(tenant: TenantHandle, action: str) -> list[dict]:
    async with tenant.client() as admin:
        response = await admin.get("/api/v1/audit", params={"action": action, "limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_login_returns_tokens_and_me_describes_the_principal(
    anon: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    response = await _login(anon, tenant.email.upper(), tenant.password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["user"]["email"] == tenant.email
    assert body["tenants"] == [
        {"id": tenant.id, "slug": body["tenants"][0]["slug"], "name": body["tenants"][0]["name"], "role": "admin"}
    ]
    me = await anon.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["tenant"]["id"] == tenant.id and me.json()["role"] == "admin"
    assert me.json()["user"]["email"] == tenant.email
    login_events = await _actions(tenant, "auth.login")
    assert login_events and login_events[0]["actor_id"] == body["user"]["id"]
    assert login_events[0]["ip"] == "127.0.0.1"


async def test_wrong_password_is_401_and_audited(anon: httpx.AsyncClient, tenant: TenantHandle) -> None:
    response = await _login(anon, tenant.email, "not-the-password")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "UNAUTHORIZED" and error["request_id"] == response.headers["x-request-id"]
    unknown = await _login(anon, "nobody@nowhere.test", "x")
    assert unknown.status_code == 401
    assert unknown.json()["error"]["message"] == error["message"]  # no user enumeration
    failed = await _actions(tenant, "auth.login_failed")
    assert failed[0]["outcome"] == "denied"


async def test_refresh_rotates_and_reuse_revokes_the_family(anon: httpx.AsyncClient, tenant: TenantHandle) -> None:
    first = (await _login(anon, tenant.email, tenant.password)).json()
    second = await anon.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    me = await anon.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    # The old refresh token comes back: someone copied it. The whole sign-in ends.
    reuse = await anon.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    newest = await anon.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert newest.status_code == 401
    me = await anon.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 401
    assert (await _actions(tenant, "auth.refresh_reused"))[0]["outcome"] == "denied"
    assert await _actions(tenant, "auth.refresh")


async def test_logout_ends_tokens(anon: httpx.AsyncClient, tenant: TenantHandle) -> None:
    pair = (await _login(anon, tenant.email, tenant.password)).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await anon.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await anon.get("/api/v1/auth/me", headers=headers)).status_code == 401
    again = await anon.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    assert await _actions(tenant, "auth.logout")


def _answer(response: httpx.Response) -> tuple[int, str, str, dict]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"], error["details"]


async def test_lockout_after_repeated_failures_answers_like_a_wrong_password(
    anon: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    for _ in range(5):
        assert (await _login(anon, tenant.email, "wrong")).status_code == 401
    locked = await _login(anon, tenant.email, tenant.password)
    # The right password of a locked account, a wrong one, and an unknown address: one answer,
    # so an attacker learns neither that the account exists nor that it is locked.
    unknown = await _login(anon, "nobody-at-all@nowhere.test", tenant.password)
    assert _answer(locked) == _answer(unknown) == (401, "UNAUTHORIZED", "invalid e-mail or password", {})
    assert "locked" not in locked.text
    assert await _actions(tenant, "auth.locked")
    reasons = [e["details"]["reason"] for e in await _actions(tenant, "auth.login_failed")]
    assert reasons[0] == "locked" and reasons.count("bad_password") == 5
    # An operator resets the password (gorax users set-password), which clears the lock.
    password = await set_password(db, email=tenant.email)
    assert (await _login(anon, tenant.email, password)).status_code == 200


async def test_cookie_session_requires_csrf_header_on_writes(api_server: ApiServer, tenant: TenantHandle) -> None:
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as browser:
        response = await _login(browser, tenant.email, tenant.password)
        assert response.status_code == 200
        set_cookie = response.headers.get_list("set-cookie")
        session_cookie = next(c for c in set_cookie if c.startswith("gorax_session="))
        assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
        csrf = browser.cookies["gorax_csrf"]
        me = await browser.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["tenant"]["id"] == tenant.id
        body = {"name": "from browser", "role": "viewer"}
        missing = await browser.post("/api/v1/api-keys", json=body)
        assert missing.status_code == 403
        assert missing.json()["error"]["details"]["header"] == "X-CSRF-Token"
        wrong = await browser.post("/api/v1/api-keys", json=body, headers={"X-CSRF-Token": "x"})
        assert wrong.status_code == 403
        ok = await browser.post("/api/v1/api-keys", json=body, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201, ok.text
        out = await browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        browser.cookies.set("gorax_session", session_cookie.split(";")[0].split("=", 1)[1])
        assert (await browser.get("/api/v1/auth/me")).status_code == 401


async def test_user_in_two_tenants_selects_with_header(
    anon: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    async with other_tenant.client() as admin:
        invited = await admin.post("/api/v1/members/invitations", json={"email": tenant.email, "role": "viewer"})
    assert invited.status_code == 201, invited.text
    access = (await _login(anon, tenant.email, tenant.password)).json()["access_token"]
    signed_in = {"Authorization": f"Bearer {access}"}
    accepted = await anon.post(f"/api/v1/auth/invitations/{invited.json()['id']}/accept", headers=signed_in)
    assert accepted.status_code == 200, accepted.text
    pair = (await _login(anon, tenant.email, tenant.password)).json()
    assert {t["id"]: t["role"] for t in pair["tenants"]} == {tenant.id: "admin", other_tenant.id: "viewer"}
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    default = await anon.get("/api/v1/auth/me", headers=headers)
    assert default.json()["tenant"]["id"] == tenant.id
    chosen = await anon.get("/api/v1/auth/me", headers={**headers, "X-Tenant-ID": other_tenant.id})
    assert chosen.json()["tenant"]["id"] == other_tenant.id and chosen.json()["role"] == "viewer"
    denied = await anon.get("/api/v1/members", headers={**headers, "X-Tenant-ID": other_tenant.id})
    assert denied.status_code == 403
    stranger = await anon.get("/api/v1/auth/me", headers={**headers, "X-Tenant-ID": "nope"})
    assert stranger.status_code == 403


async def test_bad_credentials_are_401(anon: httpx.AsyncClient) -> None:
    for header in ("Bearer nonsense", "Basic abc", "Bearer a.b.c", "Bearer gx_dead_beef"):
        response = await anon.get("/api/v1/auth/me", headers={"Authorization": header})
        assert response.status_code == 401, header
    assert (await anon.get("/api/v1/auth/me")).status_code == 401


async def test_concurrent_refreshes_with_one_token_yield_one_pair(
    anon: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    pair = (await _login(anon, tenant.email, tenant.password)).json()
    body = {"refresh_token": pair["refresh_token"]}
    results = await asyncio.gather(*(anon.post("/api/v1/auth/refresh", json=body) for _ in range(3)))
    assert sorted(r.status_code for r in results) == [200, 401, 401]
