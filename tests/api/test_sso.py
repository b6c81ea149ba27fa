"""SSO by OpenID Connect, end to end against a real provider (tests/idp.py) on 127.0.0.1.

Each sign-in is a browser's path with an HTTP client that keeps cookies: the API's /start
redirects to the provider, the provider's consent form is submitted, its redirect comes back to
the API's /callback, and the session cookie then works on /api/v1/auth/me.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from api.auth.permissions import Role
from api.db.engine import Database
from api.models.sso import SsoConfig
from api.ratelimit import route_class
from tests.api.conftest import ApiServer, ServerThread, TenantHandle, api_settings, make_settings, new_tenant
from tests.idp import LocalIdP

CLIENT_ID = "gorax-sso"
CLIENT_SECRET = "idp-client-secret-" + uuid.uuid4().hex


@pytest.fixture
def idp() -> Iterator[LocalIdP]:
    provider = LocalIdP()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def _prefect(prefect_server: Any) -> None:
    """The client secret is sealed under the tenant's data key, whose keyring lives in Prefect."""


@dataclass
class SsoTenant:
    handle: TenantHandle
    slug: str
    config: dict[str, Any]


async def _slug(tenant: TenantHandle) -> str:
    async with tenant.client() as admin:
        return (await admin.get("/api/v1/auth/me")).json()["tenant"]["slug"]


async def configure(tenant: TenantHandle, idp: LocalIdP, **fields: Any) -> SsoTenant:
    """PUT the tenant's SSO configuration pointing at ``idp`` and register the callback there."""
    body = {
        "discovery_url": idp.url("/.well-known/openid-configuration"),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "allowed_domains": ["example.com"],
        "role_claim": "groups",
        "role_mapping": {"gorax-admins": "admin", "gorax-editors": "editor"},
        "default_role": "viewer",
        **fields,
    }
    async with tenant.client() as admin:
        response = await admin.put("/api/v1/tenants/current/sso", json=body)
    assert response.status_code == 200, response.text
    config = response.json()
    known = idp.clients[CLIENT_ID].redirect_uris if CLIENT_ID in idp.clients else []
    idp.add_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[*known, config["callback_url"]])
    return SsoTenant(tenant, await _slug(tenant), config)


@dataclass
class Outcome:
    """Where a sign-in landed, with the client (and its cookies) that made it."""

    client: httpx.AsyncClient
    location: str
    callback_url: str
    hops: list[httpx.Response]

    @property
    def error(self) -> str | None:
        return (parse_qs(urlsplit(self.location).query).get("sso_error") or [None])[0]


@pytest.fixture
async def browser_client(api_server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, slug: str, user: str, *, decision: str = "allow") -> Outcome:
    """Go through /start, the provider's form (choosing ``user``) and /callback."""
    hops = []
    start = await client.get(f"/api/v1/auth/sso/{slug}/start")
    hops.append(start)
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    page = await client.get(authorize)
    assert page.status_code == 200 and "Allow" in page.text, page.text
    consent = await client.post(authorize, data={"user": user, "decision": decision})
    hops.append(consent)
    assert consent.status_code == 302, consent.text
    callback_url = consent.headers["location"]
    done = await client.get(callback_url)
    hops.append(done)
    assert done.status_code == 303, done.text
    return Outcome(client, done.headers["location"], callback_url, hops)


async def _events(tenant: TenantHandle, action: str) -> list[dict]:
    async with tenant.client() as admin:
        response = await admin.get("/api/v1/audit", params={"action": action, "limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _users(idp: LocalIdP) -> str:
    """The provider's people, with addresses of their own per test (users are global by e-mail)."""
    tag = uuid.uuid4().hex[:8]
    idp.add_user("u-ada", email=f"ada.{tag}@example.com", name="Ada Lovelace", groups=["gorax-editors"])
    idp.add_user("u-root", email=f"root.{tag}@example.com", name="Root", groups=["gorax-editors", "gorax-admins"])
    idp.add_user("u-plain", email=f"plain.{tag}@example.com", name="Plain", groups=["other"])
    idp.add_user("u-eve", email=f"eve.{tag}@evil.test", name="Eve", groups=["gorax-admins"])
    idp.add_user("u-unverified", email=f"unverified.{tag}@example.com", email_verified=False)
    idp.add_user("u-new", email=f"new.{tag}@example.com", groups=["nothing"])
    return tag


async def test_sso_sign_in_creates_the_user_and_a_working_session(
    tenant: TenantHandle, idp: LocalIdP, browser_client: httpx.AsyncClient
) -> None:
    tag = _users(idp)
    ada = f"ada.{tag}@example.com"
    sso = await configure(tenant, idp)
    outcome = await sign_in(browser_client, sso.slug, "u-ada")
    assert outcome.error is None and outcome.location == f"/#sso_tenant={tenant.id}"
    assert "gorax_session" in browser_client.cookies and "gorax_csrf" in browser_client.cookies
    me = await browser_client.get("/api/v1/auth/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["user"]["email"] == ada and body["user"]["name"] == "Ada Lovelace"
    assert body["tenant"]["id"] == tenant.id and body["role"] == "editor"
    # One code, exchanged once, with PKCE; the browser-binding cookie is gone.
    assert idp.token_requests == {"authorization_code": 1}
    assert idp.token_request_forms[0]["code_verifier"]
    assert "gorax_sso" not in browser_client.cookies
    # Audited in the tenant, with who and what role, no token.
    events = await _events(tenant, "auth.sso_login")
    assert events[0]["details"]["email"] == ada and events[0]["details"]["user_created"] is True
    assert events[0]["details"]["role"] == "editor" and events[0]["actor_id"] == body["user"]["id"]
    # A second sign-in links the same user (no new account).
    again = await sign_in(httpx.AsyncClient(base_url=str(browser_client.base_url), timeout=30), sso.slug, "u-ada")
    try:
        assert again.error is None
        assert (await _events(tenant, "auth.sso_login"))[0]["details"]["user_created"] is False
    finally:
        await again.client.aclose()
    async with tenant.client() as admin:
        members = (await admin.get("/api/v1/members")).json()["items"]
    assert [m["role"] for m in members if m["email"] == ada] == ["editor"]


async def test_role_mapping_takes_the_highest_role_and_falls_back_to_the_default(
    tenant: TenantHandle, idp: LocalIdP, api_server: ApiServer
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    for user, role in (("u-root", "admin"), ("u-plain", "viewer")):
        async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
            assert (await sign_in(client, sso.slug, user)).error is None
            assert (await client.get("/api/v1/auth/me")).json()["role"] == role
    # No default role: a sign-in no mapping matches is refused.
    await configure(tenant, idp, default_role=None)
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        outcome = await sign_in(client, sso.slug, "u-new")
        assert outcome.error == "no_role"
        assert (await client.get("/api/v1/auth/me")).status_code == 401
    failed = await _events(tenant, "auth.sso_login_failed")
    assert failed[0]["details"]["reason"] == "no_role" and failed[0]["outcome"] == "denied"


async def test_a_domain_outside_the_allowed_list_is_refused_and_audited(
    tenant: TenantHandle, idp: LocalIdP, browser_client: httpx.AsyncClient
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    outcome = await sign_in(browser_client, sso.slug, "u-eve")
    assert outcome.error == "domain" and outcome.location.startswith("/?sso_error=domain")
    assert "gorax_session" not in browser_client.cookies
    failed = await _events(tenant, "auth.sso_login_failed")
    assert failed[0]["details"]["reason"] == "domain" and "evil.test" in failed[0]["details"]["detail"]


async def test_an_unverified_email_is_refused(
    tenant: TenantHandle, idp: LocalIdP, browser_client: httpx.AsyncClient
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    outcome = await sign_in(browser_client, sso.slug, "u-unverified")
    assert outcome.error == "email_unverified"
    assert (await browser_client.get("/api/v1/auth/me")).status_code == 401


async def test_a_bad_state_or_another_browser_is_refused(
    tenant: TenantHandle, idp: LocalIdP, api_server: ApiServer
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        forged = await client.get(f"/api/v1/auth/sso/{sso.slug}/callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 303 and forged.headers["location"] == "/?sso_error=state"
    # A callback started in one browser and finished in another (login CSRF) is refused.
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as victim:
        start = await victim.get(f"/api/v1/auth/sso/{sso.slug}/start")
        consent = await victim.post(start.headers["location"], data={"user": "u-ada", "decision": "allow"})
        callback = consent.headers["location"]
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as other:
        refused = await other.get(callback)
        assert refused.headers["location"] == "/?sso_error=state"
        assert (await other.get("/api/v1/auth/me")).status_code == 401
    assert idp.token_requests["authorization_code"] == 0
    reasons = [e["details"]["reason"] for e in await _events(tenant, "auth.sso_login_failed")]
    assert reasons[:2] == ["state", "state"]


async def test_a_replayed_callback_is_refused_and_never_reaches_the_provider_again(
    tenant: TenantHandle, idp: LocalIdP, browser_client: httpx.AsyncClient
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    outcome = await sign_in(browser_client, sso.slug, "u-ada")
    assert outcome.error is None
    replay = await browser_client.get(outcome.callback_url)
    assert replay.headers["location"] == "/?sso_error=state"
    assert idp.token_requests["authorization_code"] == 1


async def test_a_denied_consent_is_refused(
    tenant: TenantHandle, idp: LocalIdP, browser_client: httpx.AsyncClient
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    outcome = await sign_in(browser_client, sso.slug, "u-ada", decision="deny")
    assert outcome.error == "provider_denied"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"nonce": "not-the-nonce"}, id="nonce"),
        pytest.param({"iss": "http://127.0.0.1:1/other-issuer"}, id="issuer"),
        pytest.param({"aud": "another-client"}, id="audience"),
        pytest.param({"exp": 1_000_000_000}, id="expired"),
        pytest.param("unknown-key", id="signature"),
    ],
)
async def test_an_id_token_that_fails_a_check_is_refused(
    tenant: TenantHandle, idp: LocalIdP, browser_client: httpx.AsyncClient, tamper: Any
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    if tamper == "unknown-key":
        idp.sign_id_tokens_with_unknown_key = True
    else:
        idp.id_token_overrides = tamper
    outcome = await sign_in(browser_client, sso.slug, "u-ada")
    assert outcome.error == "id_token"
    assert (await browser_client.get("/api/v1/auth/me")).status_code == 401
    failed = await _events(tenant, "auth.sso_login_failed")
    assert failed[0]["details"]["reason"] == "id_token"
    if isinstance(tamper, dict):
        assert next(iter(tamper)) in failed[0]["details"]["detail"]


async def test_without_just_in_time_creation_only_existing_members_sign_in(
    tenant: TenantHandle, idp: LocalIdP, api_server: ApiServer
) -> None:
    _users(idp)
    sso = await configure(tenant, idp, jit_enabled=False)
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        assert (await sign_in(client, sso.slug, "u-ada")).error == "no_account"
    # The tenant's admin exists: their provider account (same e-mail) signs them in.
    idp.add_user("u-admin", email=tenant.email, groups=[])
    await configure(tenant, idp, jit_enabled=False, allowed_domains=[])
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        outcome = await sign_in(client, sso.slug, "u-admin")
        assert outcome.error is None
        me = (await client.get("/api/v1/auth/me")).json()
        # No mapping matched: an existing member keeps their role.
        assert me["user"]["email"] == tenant.email and me["role"] == "admin"


async def test_sso_only_refuses_password_sign_in_with_a_clear_message(
    tenant: TenantHandle, idp: LocalIdP, anon: httpx.AsyncClient
) -> None:
    _users(idp)
    assert (
        await anon.post("/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    ).status_code == 200
    sso = await configure(tenant, idp, sso_only=True)
    refused = await anon.post("/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert "only by SSO" in error["message"] and sso.slug in error["message"]
    assert error["details"]["sso_start"] == f"/api/v1/auth/sso/{sso.slug}/start"
    # A wrong password still gets the one answer of every failed sign-in (nothing revealed).
    wrong = await anon.post("/api/v1/auth/login", json={"email": tenant.email, "password": "wrong"})
    assert wrong.status_code == 401
    reasons = [e["details"]["reason"] for e in await _events(tenant, "auth.login_failed")]
    assert "sso_required" in reasons
    # Turning SSO-only off gives password sign-in back.
    await configure(tenant, idp, sso_only=False)
    ok = await anon.post("/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    assert ok.status_code == 200


async def test_sso_only_accepts_an_invitation_but_gives_no_password_session(
    tenant: TenantHandle, idp: LocalIdP, anon: httpx.AsyncClient
) -> None:
    _users(idp)
    sso = await configure(tenant, idp, sso_only=True)
    email = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    async with tenant.client() as admin:
        invited = await admin.post("/api/v1/members/invitations", json={"email": email, "role": "editor"})
    assert invited.status_code == 201, invited.text
    accepted = await anon.post(
        "/api/v1/auth/invitations/accept",
        json={"token": invited.json()["token"], "password": "a long enough password 1", "name": "Ivy"},
    )
    assert accepted.status_code == 403, accepted.text
    error = accepted.json()["error"]
    assert error["details"]["reason"] == "sso_required" and sso.slug in error["message"]
    assert "access_token" not in accepted.text
    # The invitation itself is taken: the invitee is a member, to sign in by SSO.
    async with tenant.client() as admin:
        members = (await admin.get("/api/v1/members")).json()
    assert email in {m["email"] for m in (members["items"] if isinstance(members, dict) else members)}
    assert [e for e in await _events(tenant, "auth.login_failed") if e["details"].get("reason") == "sso_required"]


async def test_secrets_and_tokens_never_appear_in_responses_urls_logs_or_audit(
    tenant: TenantHandle,
    idp: LocalIdP,
    browser_client: httpx.AsyncClient,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _users(idp)
    sso = await configure(tenant, idp)
    assert "client_secret" not in sso.config and sso.config["client_secret_set"] is True
    assert CLIENT_SECRET not in str(sso.config)
    async with tenant.client() as admin:
        got = await admin.get("/api/v1/tenants/current/sso")
        # Changing other fields keeps the stored secret.
        kept = await admin.put(
            "/api/v1/tenants/current/sso",
            json={
                "discovery_url": sso.config["discovery_url"],
                "client_id": CLIENT_ID,
                "allowed_domains": ["example.com"],
                "role_mapping": sso.config["role_mapping"],
            },
        )
        audit_page = await admin.get("/api/v1/audit", params={"limit": 100})
    assert got.status_code == 200 and CLIENT_SECRET not in got.text and got.json()["client_secret_set"] is True
    assert kept.status_code == 200, kept.text
    async with db.system_scope() as session:
        sealed = (
            await session.execute(select(SsoConfig.client_secret_sealed).where(SsoConfig.tenant_id == tenant.id))
        ).scalar_one()
    assert sealed.startswith("gorax:v1:") and CLIENT_SECRET not in sealed

    outcome = await sign_in(browser_client, sso.slug, "u-ada")
    assert outcome.error is None
    issued = [t.access_token for t in idp.tokens] + [t.refresh_token for t in idp.tokens if t.refresh_token]
    assert issued
    me = await browser_client.get("/api/v1/auth/me")
    seen = [audit_page.text, me.text, got.text, kept.text]
    for hop in outcome.hops:
        seen += [hop.text, str(hop.headers)]
    # Every log line of the process but the provider's own library (it runs here, in the tests).
    seen += [f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("authlib")]
    seen += [path for _, path in idp.requests]  # what the API sent the browser to, and itself called
    seen.append((await _events(tenant, "auth.sso_login"))[0].__repr__())
    for text in seen:
        assert CLIENT_SECRET not in text
        for token in issued:
            assert token not in text
    # The secret went to the provider only in the token request's Authorization header, never a URL.
    assert all("client_secret" not in form for form in idp.token_request_forms)


async def test_the_configuration_is_per_tenant_and_admin_only(
    tenant: TenantHandle, other_tenant: TenantHandle, idp: LocalIdP, api_server: ApiServer, db: Database
) -> None:
    _users(idp)
    sso = await configure(tenant, idp)
    async with other_tenant.client() as other_admin:
        assert (await other_admin.get("/api/v1/tenants/current/sso")).status_code == 404
    for role in (Role.EDITOR, Role.VIEWER):
        async with tenant.client(role) as client:
            assert (await client.get("/api/v1/tenants/current/sso")).status_code == 403
            assert (await client.put("/api/v1/tenants/current/sso", json={})).status_code == 403
    # A sign-in started for one tenant cannot finish at another tenant's callback.
    other = await configure(other_tenant, idp)
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        start = await client.get(f"/api/v1/auth/sso/{sso.slug}/start")
        consent = await client.post(start.headers["location"], data={"user": "u-ada", "decision": "allow"})
        stolen = consent.headers["location"].replace(f"/sso/{sso.slug}/", f"/sso/{other.slug}/")
        refused = await client.get(stolen)
        assert refused.headers["location"] == "/?sso_error=state"
    # Deleting removes it (and is audited); the start then refuses.
    async with tenant.client() as admin:
        assert (await admin.delete("/api/v1/tenants/current/sso")).status_code == 204
        assert (await admin.get("/api/v1/tenants/current/sso")).status_code == 404
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        gone = await client.get(f"/api/v1/auth/sso/{sso.slug}/start")
        assert gone.headers["location"] == "/?sso_error=not_configured"
    actions = {e["action"] for e in (await _events(tenant, "sso.deleted")) + (await _events(tenant, "sso.configured"))}
    assert actions == {"sso.deleted", "sso.configured"}


async def test_invalid_configuration_names_the_field(tenant: TenantHandle, idp: LocalIdP) -> None:
    async with tenant.client() as admin:
        first = await admin.put(
            "/api/v1/tenants/current/sso",
            json={"discovery_url": idp.url("/.well-known/openid-configuration"), "client_id": "x"},
        )
        assert first.status_code == 400 and first.json()["error"]["details"]["field"] == "client_secret"
        bad = await admin.put(
            "/api/v1/tenants/current/sso",
            json={
                "discovery_url": "ftp://x",
                "client_id": "x",
                "client_secret": "s",
                "role_mapping": {"g": "king"},
                "allowed_domains": ["not a domain"],
                "surprise": 1,
            },
        )
    assert bad.status_code == 422, bad.text
    text = bad.text
    for field in ("discovery_url", "role_mapping", "allowed_domains", "surprise"):
        assert field in text


async def test_discovery_by_email_domain(tenant: TenantHandle, idp: LocalIdP, anon: httpx.AsyncClient) -> None:
    domain = f"d{uuid.uuid4().hex[:8]}.example"
    sso = await configure(tenant, idp, allowed_domains=[domain])
    found = await anon.get("/api/v1/auth/sso/discover", params={"email": f"someone@{domain.upper()}"})
    assert found.status_code == 200 and found.json() == {
        "tenant": sso.slug,
        "start_url": f"/api/v1/auth/sso/{sso.slug}/start",
    }
    assert (await anon.get("/api/v1/auth/sso/discover", params={"email": "x@nowhere.example"})).status_code == 404


def test_sso_endpoints_count_against_the_sign_in_rate_limit() -> None:
    assert route_class("/api/v1/auth/sso/acme/start") == "auth"
    assert route_class("/api/v1/auth/sso/acme/callback") == "auth"
    assert route_class("/api/v1/auth/sso/discover") == "auth"
    assert route_class("/api/v1/auth/me") == "api"


async def test_brute_force_on_the_sso_callback_is_rate_limited(sqlite_url: str) -> None:
    api = api_settings(rate_limit_auth=3, rate_limit_window_seconds=3600)
    thread = ServerThread(create_app(make_settings(sqlite_url, api=api))).start()
    try:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as client:
            statuses = [
                (await client.get("/api/v1/auth/sso/acme/callback", params={"code": "c", "state": f"s{i}"})).status_code
                for i in range(5)
            ]
            refused = await client.get("/api/v1/auth/sso/acme/start")
    finally:
        thread.stop()
    assert statuses == [303, 303, 303, 429, 429]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMITED"


async def test_unknown_tenant_or_unreachable_provider_lands_on_the_sign_in_page(
    tenant: TenantHandle, idp: LocalIdP, anon: httpx.AsyncClient, db: Database, api_server: ApiServer
) -> None:
    unknown = await anon.get("/api/v1/auth/sso/no-such-tenant-x/start")
    assert unknown.status_code == 303 and unknown.headers["location"] == "/?sso_error=unknown_tenant"
    fresh = await new_tenant(db, api_server.url)
    sso = await configure(fresh, idp, discovery_url="http://127.0.0.1:9/.well-known/openid-configuration")
    down = await anon.get(f"/api/v1/auth/sso/{sso.slug}/start")
    assert down.headers["location"] == "/?sso_error=provider_unreachable"
    failed = await _events(fresh, "auth.sso_login_failed")
    assert failed[0]["details"]["reason"] == "provider_unreachable"
