"""API key life cycle: shown once, hashed, prefix visible, role-scoped, expiry, last use, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from api.db.engine import Database
from api.models import ApiKey
from tests.api.conftest import ApiServer, TenantHandle


async def test_key_life_cycle(api_server: ApiServer, db: Database, tenant: TenantHandle) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    async with tenant.client() as admin:
        created = await admin.post("/api/v1/api-keys", json={"name": "ci", "role": "operator", "expires_at": expires})
        assert created.status_code == 201, created.text
        body = created.json()
        key = body["key"]
        assert key.startswith(f"gx_{body['prefix']}_") and body["role"] == "operator"
        assert body["last_used_at"] is None
        listed = (await admin.get("/api/v1/api-keys")).json()["items"]
        mine = next(k for k in listed if k["id"] == body["id"])
        assert "key" not in mine and mine["prefix"] == body["prefix"]
    # Stored hashed: the secret part appears nowhere in the row.
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.id == body["id"]))).scalar_one()
        assert key.split("_", 2)[2] not in (row.secret_hash, row.prefix)
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {key}"}) as ci:
        me = await ci.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["role"] == "operator"
        assert me.json()["principal"] == f"api_key:{body['id']}"
        assert (await ci.get("/api/v1/api-keys")).status_code == 403  # operators manage no keys
        async with tenant.client() as admin:
            listed = (await admin.get("/api/v1/api-keys")).json()["items"]
            assert next(k for k in listed if k["id"] == body["id"])["last_used_at"] is not None
            assert (await admin.delete(f"/api/v1/api-keys/{body['id']}")).status_code == 204
            assert (await admin.delete(f"/api/v1/api-keys/{body['id']}")).status_code == 404
            events = (await admin.get("/api/v1/audit", params={"resource_type": "api_key"})).json()
        actions = [e["action"] for e in events["items"] if e["resource_id"] == body["id"]]
        assert actions == ["api_key.revoked", "api_key.created"]
        revoked = await ci.get("/api/v1/auth/me")
        assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]


async def test_expired_key_is_refused(api_server: ApiServer, db: Database, tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        body = (await admin.post("/api/v1/api-keys", json={"name": "short", "role": "viewer"})).json()
        past = await admin.post(
            "/api/v1/api-keys", json={"name": "past", "role": "viewer", "expires_at": "2000-01-01T00:00:00Z"}
        )
        assert past.status_code == 400 and past.json()["error"]["details"]["field"] == "expires_at"
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == body["id"]).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {body['key']}"}) as client:
        response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


async def test_tampered_secret_is_refused(api_server: ApiServer, tenant: TenantHandle) -> None:
    key = tenant.keys[next(iter(tenant.keys))]
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {forged}"}) as client:
        assert (await client.get("/api/v1/auth/me")).status_code == 401
