"""OAuth 2.0 connections end to end against the local provider (tests/idp.py): Connect through the
API (authorization code + PKCE), client credentials, refresh before expiry and on a 401, one
refresh for concurrent runs, a revoked refresh token, and no token in any response, URL or log."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import select

from api.db.engine import Database
from api.models.audit import AuditEvent
from blocks import keys
from blocks.loader import load_credential
from blocks.sealing import block_document_name
from blocks.types import OAuth2Connection
from flows import oauth
from flows.run_graph import run_graph
from flows.settings import get_settings
from tests.api.conftest import TEST_WORKER_TOKEN, ApiServer, TenantHandle
from tests.api.human_tasks.conftest import Mailbox
from tests.idp import LocalIdP

CLIENT_ID = "gorax-app"
CLIENT_SECRET = "idp-client-secret-0123456789"


@pytest.fixture
def idp(api_server: ApiServer) -> Iterator[LocalIdP]:
    provider = LocalIdP(require_pkce=True)
    provider.add_client(
        CLIENT_ID,
        CLIENT_SECRET,
        redirect_uris=[f"{api_server.url}/api/v1/oauth/callback"],
        scopes="openid profile email offline_access",
    )
    provider.add_user("alice", email="alice@example.com", name="Alice")
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, api_server: ApiServer, prefect_server: Any) -> Iterator[None]:
    """Loopback providers allowed; runs report to the test API as the worker."""
    monkeypatch.setenv("GORAX_HTTP_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("GORAX_API_URL", api_server.url)
    monkeypatch.setenv("GORAX_WORKER_TOKEN", TEST_WORKER_TOKEN)
    monkeypatch.setenv("GORAX_RATE_LIMITS", "off")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
async def admin(tenant: TenantHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with tenant.client() as client:
        yield client


def _values(idp: LocalIdP, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "generic",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorize_url": idp.url("/authorize"),
        "token_url": idp.url("/token"),
        "revoke_url": idp.url("/revoke"),
        "scopes": "openid email offline_access",
        **extra,
    }


async def _connect(admin: httpx.AsyncClient, idp: LocalIdP, name: str) -> httpx.Response:
    """Connect ``name`` as a browser would: Connect, the provider's consent page, Allow, callback."""
    started = await admin.post(f"/api/v1/credentials/{name}/oauth/connect")
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert "code_verifier" not in query and CLIENT_SECRET not in url
    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(url)
        assert page.status_code == 200 and "Sign in to Local IdP" in page.text
        consent = await browser.post(url, data={"user": "alice", "decision": "allow"})
    assert consent.status_code == 302, consent.text
    callback = consent.headers["location"]
    assert callback.startswith(str(admin.base_url).rstrip("/") + "/api/v1/oauth/callback?")
    # Back in the browser that started the flow (it holds the flow's cookie).
    return await admin.get(callback)


async def _stored_data(tenant: TenantHandle, name: str, slug: str) -> dict[str, Any]:
    async with get_client() as client:
        document = await client.read_block_document_by_name(
            block_document_name(slug, name), block_type_slug="oauth2-connection", include_secrets=True
        )
    return dict(document.data)


async def _slug(tenant: TenantHandle) -> str:
    slug = await keys.tenant_slug_of(tenant.id)
    assert slug
    return slug


async def _audit(db: Database, tenant_id: str, prefix: str) -> list[AuditEvent]:
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        rows = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == tenant_id, AuditEvent.action.like(f"{prefix}%"))
            .order_by(AuditEvent.seq)
        )
        return list(rows.scalars())


async def _create(admin: httpx.AsyncClient, name: str, values: dict[str, Any]) -> dict[str, Any]:
    created = await admin.post(
        "/api/v1/credentials", json={"name": name, "type": "oauth2-connection", "values": values}
    )
    assert created.status_code == 201, created.text
    return created.json()


def _graph(name: str, url: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": "oauth-me",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {"id": "me", "type": "http.request", "config": {"url": url, "credential": name}},
            {"id": "out", "type": "control.output", "config": {"value": "{{ steps.me.body }}"}},
        ],
        "edges": [{"source": "start", "target": "me"}, {"source": "me", "target": "out"}],
    }


async def _run(tenant: TenantHandle, name: str, idp: LocalIdP) -> Any:
    return await run_graph(graph=_graph(name, idp.url("/api/me")), trigger={}, tenant=tenant.id, return_state=True)


def _tokens(idp: LocalIdP) -> list[str]:
    with idp._lock:
        found = []
        for token in idp.tokens:
            found += [t for t in (token.access_token, token.refresh_token) if t]
        return found


async def test_connect_seals_tokens_and_never_shows_them(
    admin: httpx.AsyncClient, tenant: TenantHandle, idp: LocalIdP, db: Database
) -> None:
    await _create(admin, "idp", _values(idp))
    listed = (await admin.get("/api/v1/credentials")).json()["items"]
    assert listed[0]["connection"]["status"] == "not_connected"

    back = await _connect(admin, idp, "idp")
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/credentials?oauth=connected&credential=idp"
    assert idp.token_requests["authorization_code"] == 1
    form = idp.token_request_forms[0]
    assert form.get("code_verifier"), "the PKCE verifier went with the code"

    slug = await _slug(tenant)
    data = await _stored_data(tenant, "idp", slug)
    issued = _tokens(idp)
    assert len(issued) == 2
    for field in ("access_token", "refresh_token", "client_secret"):
        assert str(data[field]).startswith("gorax:"), f"{field} is stored sealed"
    opened = await load_credential("idp", tenant_id=tenant.id)
    assert opened.access_token.get_secret_value() in issued
    assert opened.status == "connected" and opened.expires_at is not None

    listed_text = (await admin.get("/api/v1/credentials")).text
    assert '"status":"connected"' in listed_text
    for token in [*issued, CLIENT_SECRET]:
        assert token not in listed_text
        assert token not in back.headers["location"]
        assert all(token not in path for _method, path in idp.requests)

    actions = [(e.action, e.outcome) for e in await _audit(db, tenant.id, "credential.oauth")]
    assert actions == [("credential.oauth.connect_start", "success"), ("credential.oauth.connect", "success")]
    for event in await _audit(db, tenant.id, "credential"):
        assert not any(token in str(event.details) for token in issued)


async def test_callback_refuses_a_replayed_state_and_another_browser(
    admin: httpx.AsyncClient, tenant: TenantHandle, idp: LocalIdP, db: Database
) -> None:
    await _create(admin, "idp", _values(idp))
    started = (await admin.post("/api/v1/credentials/idp/oauth/connect")).json()["authorization_url"]
    async with httpx.AsyncClient(timeout=30) as browser:
        consent = await browser.post(started, data={"user": "alice", "decision": "allow"})
        callback = consent.headers["location"]
        # Another browser (no flow cookie) brings the code back: refused, and the flow is used up.
        stolen = await browser.get(callback.replace("http://127.0.0.1", "http://localhost"), follow_redirects=False)
    assert stolen.status_code == 303
    assert "oauth=error" in stolen.headers["location"] and "reason=browser_mismatch" in stolen.headers["location"]
    replay = await admin.get(callback)
    assert "reason=unknown_state" in replay.headers["location"]
    assert idp.token_requests["authorization_code"] == 0
    failures = [e for e in await _audit(db, tenant.id, "credential.oauth.connect") if e.outcome == "failure"]
    assert failures and failures[0].details["error"] == "browser_mismatch"


async def test_client_credentials_test_connection(
    admin: httpx.AsyncClient, tenant: TenantHandle, idp: LocalIdP, db: Database
) -> None:
    await _create(admin, "machine", _values(idp, grant="client_credentials", scopes="email"))
    tested = await admin.post("/api/v1/credentials/machine/oauth/test")
    assert tested.status_code == 200, tested.text
    assert tested.json()["connection"]["status"] == "connected"
    assert idp.token_requests["client_credentials"] == 1
    for token in _tokens(idp):
        assert token not in tested.text
    # The token it fetched reaches the provider's API.
    state = await _run(tenant, "machine", idp)
    assert state.is_completed(), state.message
    assert (await state.result())["client_id"] == CLIENT_ID

    idp.fail_token_requests("invalid_client")
    refused = await admin.post("/api/v1/credentials/machine/oauth/test")
    assert refused.status_code == 422
    assert "invalid_client" in refused.json()["error"]["message"]
    assert CLIENT_SECRET not in refused.text


async def test_refresh_before_expiry_and_on_401(
    admin: httpx.AsyncClient,
    tenant: TenantHandle,
    idp: LocalIdP,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    idp.access_token_lifetime = 30  # within the 60 s margin: refreshed before use
    await _create(admin, "idp", _values(idp))
    await _connect(admin, idp, "idp")
    first = (await load_credential("idp", tenant_id=tenant.id)).access_token.get_secret_value()

    idp.access_token_lifetime = 3600  # the refreshed token is good for the rest of the test
    state = await _run(tenant, "idp", idp)
    assert state.is_completed(), state.message
    assert (await state.result())["sub"] == "alice"
    assert idp.token_requests["refresh_token"] == 1
    stored = await load_credential("idp", tenant_id=tenant.id)
    assert stored.access_token.get_secret_value() != first
    assert stored.refresh_token.get_secret_value() in idp.live_refresh_tokens(CLIENT_ID)  # the rotated one

    # A token that is still valid by the clock but refused by the provider: refreshed once, sent again.
    monkeypatch.setenv("GORAX_OAUTH_REFRESH_MARGIN_SECONDS", "0")
    get_settings.cache_clear()
    idp.revoke_all_access_tokens(CLIENT_ID)
    idp.reset_counters()
    state = await _run(tenant, "idp", idp)
    assert state.is_completed(), state.message
    assert idp.token_requests["refresh_token"] == 1
    assert idp.resource_requests == 2  # the 401, then the retry

    logged = caplog.text
    for token in [*_tokens(idp), CLIENT_SECRET]:
        assert token not in logged


async def test_concurrent_runs_make_one_refresh(admin: httpx.AsyncClient, tenant: TenantHandle, idp: LocalIdP) -> None:
    idp.access_token_lifetime = 30  # within the refresh margin
    await _create(admin, "idp", _values(idp))
    await _connect(admin, idp, "idp")
    idp.access_token_lifetime = 3600
    idp.reset_counters()
    # Four runs loaded the credential (each its own copy, each about to expire) and need it now.
    copies = [await load_credential("idp", tenant_id=tenant.id) for _ in range(4)]
    await asyncio.gather(*(oauth.ensure_fresh(c, tenant_id=tenant.id, name="idp") for c in copies))
    # One token request: the others waited for the lock, reloaded, and took the stored tokens (a
    # second refresh would have sent a rotated-away refresh token and been refused).
    assert idp.token_requests["refresh_token"] == 1
    assert len({c.access_token.get_secret_value() for c in copies}) == 1
    assert copies[0].refresh_token.get_secret_value() in idp.live_refresh_tokens(CLIENT_ID)
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(oauth.lock_name(tenant.id, "idp"))
    assert limit.limit == 1
    # And runs started together use the one fresh token.
    states = await asyncio.gather(*(_run(tenant, "idp", idp) for _ in range(2)))
    assert all(state.is_completed() for state in states)
    assert idp.token_requests["refresh_token"] == 1


#: One worker process: load the credential, say so, wait for "go", then make sure it is fresh.
_WORKER = """
import asyncio, sys
from blocks.loader import load_credential
from flows import oauth

async def main() -> None:
    name, tenant = sys.argv[1], sys.argv[2]
    block = await load_credential(name, tenant_id=tenant)
    print("loaded", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await oauth.ensure_fresh(block, tenant_id=tenant, name=name)
    print("fresh", block.expires_within(60), flush=True)

asyncio.run(main())
"""


async def test_worker_processes_make_one_refresh(admin: httpx.AsyncClient, tenant: TenantHandle, idp: LocalIdP) -> None:
    idp.access_token_lifetime = 30
    await _create(admin, "idp", _values(idp))
    await _connect(admin, idp, "idp")
    idp.access_token_lifetime = 3600
    idp.reset_counters()
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            "idp",
            tenant.id,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        for _ in range(2)
    ]
    # Both hold the about-to-expire token before either refreshes.
    for worker in workers:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), 120)
        assert line.strip() == b"loaded", (await worker.stderr.read()).decode()[-2000:]  # type: ignore[union-attr]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    outputs = [await asyncio.wait_for(worker.communicate(), 120) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()[-2000:]
        assert out.strip() == b"fresh False"
    assert idp.token_requests["refresh_token"] == 1


async def test_revoked_refresh_token_needs_reconnection(
    admin: httpx.AsyncClient, tenant: TenantHandle, idp: LocalIdP, db: Database
) -> None:
    mailbox = Mailbox()
    mailbox.controller.start()
    try:
        mail = await admin.post(
            "/api/v1/credentials",
            json={
                "name": "alerts",
                "type": "smtp-server",
                "values": {
                    "host": "127.0.0.1",
                    "port": mailbox.port,
                    "security": "none",
                    "from_address": "gorax@t.test",
                },
            },
        )
        assert mail.status_code == 201, mail.text
        await _create(admin, "idp", _values(idp, alert_email_credential="alerts"))
        await _connect(admin, idp, "idp")
        idp.revoke_all_refresh_tokens(CLIENT_ID)
        idp.expire_access_tokens(CLIENT_ID)
        idp.access_token_lifetime = 1

        state = await _run(tenant, "idp", idp)
        assert state.is_failed()
        assert "credential 'idp' needs to be reconnected" in str(state.message)

        listed = (await admin.get("/api/v1/credentials")).json()["items"]
        connection = next(c for c in listed if c["name"] == "idp")["connection"]
        assert connection["status"] == "needs_reconnection"
        assert "invalid_grant" in connection["status_reason"]

        # The next run fails at once, without asking the provider again.
        idp.reset_counters()
        again = await _run(tenant, "idp", idp)
        assert again.is_failed() and "needs to be reconnected" in str(again.message)
        assert sum(idp.token_requests.values()) == 0

        revoked = await _audit(db, tenant.id, "credential.oauth.revoked")
        assert len(revoked) == 1 and revoked[0].outcome == "failure"
        assert revoked[0].details["admins"] == [tenant.email]
        assert revoked[0].details["emailed"] == [tenant.email]
        for _ in range(50):
            if mailbox.messages:
                break
            await asyncio.sleep(0.1)
        assert [m.rcpt_tos for m in mailbox.messages] == [[tenant.email]]
        assert b"needs to be reconnected" in mailbox.messages[0].content

        # Reconnecting makes it usable again.
        back = await _connect(admin, idp, "idp")
        assert "oauth=connected" in back.headers["location"]
        idp.access_token_lifetime = 3600
        state = await _run(tenant, "idp", idp)
        assert state.is_completed(), state.message
    finally:
        mailbox.controller.stop()


async def test_a_failed_refresh_is_audited_and_the_connection_kept(
    admin: httpx.AsyncClient, tenant: TenantHandle, idp: LocalIdP, db: Database
) -> None:
    """A provider outage during a refresh fails the run and is audited; the connection is not
    marked for reconnection (only a refused refresh token does that) and works once it is back."""
    idp.access_token_lifetime = 30  # within the refresh margin: the run refreshes first
    await _create(admin, "idp", _values(idp))
    await _connect(admin, idp, "idp")
    idp.access_token_lifetime = 3600
    idp.fail_token_requests("temporarily_unavailable", status=503, grant_types=["refresh_token"])

    state = await _run(tenant, "idp", idp)
    assert state.is_failed()
    failed = await _audit(db, tenant.id, "credential.oauth.refresh_failed")
    assert failed and all(e.outcome == "failure" and e.resource_id == "idp" for e in failed)
    assert failed[0].details["reason"].startswith(f"token endpoint {idp.url('/token')} ")
    assert await _audit(db, tenant.id, "credential.oauth.revoked") == []
    listed = (await admin.get("/api/v1/credentials")).json()["items"]
    assert next(c for c in listed if c["name"] == "idp")["connection"]["status"] == "connected"
    for event in failed:
        for token in [*_tokens(idp), CLIENT_SECRET]:
            assert token not in str(event.details)

    idp.clear_failures()
    state = await _run(tenant, "idp", idp)
    assert state.is_completed(), state.message


async def test_connect_is_refused_for_other_types_and_grants(admin: httpx.AsyncClient, idp: LocalIdP) -> None:
    await admin.post(
        "/api/v1/credentials", json={"name": "plain", "type": "http-auth", "values": {"scheme": "bearer", "token": "t"}}
    )
    refused = await admin.post("/api/v1/credentials/plain/oauth/connect")
    assert refused.status_code == 422 and "not an OAuth 2.0 connection" in refused.json()["error"]["message"]
    await _create(admin, "machine", _values(idp, grant="client_credentials"))
    refused = await admin.post("/api/v1/credentials/machine/oauth/connect")
    assert refused.status_code == 422 and "client-credentials" in refused.json()["error"]["message"]
    providers = (await admin.get("/api/v1/oauth/providers")).json()
    assert {p["slug"] for p in providers} == {"github", "slack", "google", "microsoft", "generic"}
    assert re.match(r"https://", next(p for p in providers if p["slug"] == "google")["token_url"])


def test_presets_fill_the_endpoints() -> None:
    github = OAuth2Connection(provider="github", client_id="c", client_secret="s")
    assert github.token_url == "https://github.com/login/oauth/access_token" and github.scopes
    with pytest.raises(ValueError, match="authorize_url, token_url"):
        OAuth2Connection(client_id="c")


async def test_another_tenant_cannot_connect_or_test_it(
    admin: httpx.AsyncClient, other_tenant: TenantHandle, idp: LocalIdP
) -> None:
    created = await _create(admin, "idp", _values(idp))
    async with other_tenant.client() as other:
        for ref in ("idp", created["id"]):
            refused = await other.post(f"/api/v1/credentials/{ref}/oauth/connect")
            assert refused.status_code == 404, refused.text
            assert (await other.post(f"/api/v1/credentials/{ref}/oauth/test")).status_code == 404
    assert idp.authorize_requests == 0 and sum(idp.token_requests.values()) == 0
