"""Tenant isolation: foreign ids are 404, and row-level security hides unfiltered rows."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import select, text

from api.db.engine import Database
from api.models import ApiKey, AuditEvent, Membership
from tests.api.conftest import ApiServer, TenantHandle


async def test_foreign_ids_are_not_found(tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    async with other_tenant.client() as theirs:
        their_keys = (await theirs.get("/api/v1/api-keys")).json()["items"]
        their_members = (await theirs.get("/api/v1/members")).json()["items"]
    async with tenant.client() as mine:
        for key in their_keys:
            response = await mine.delete(f"/api/v1/api-keys/{key['id']}")
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "NOT_FOUND"
        for member in their_members:
            user_id = member["user_id"]
            assert (await mine.patch(f"/api/v1/members/{user_id}", json={"role": "viewer"})).status_code == 404
            assert (await mine.delete(f"/api/v1/members/{user_id}")).status_code == 404
        mine_listed = {k["id"] for k in (await mine.get("/api/v1/api-keys")).json()["items"]}
        assert not mine_listed & {k["id"] for k in their_keys}
        audit = (await mine.get("/api/v1/audit", params={"limit": 500})).json()["items"]
        assert audit and {e["id"] for e in audit}  # own events only, checked below
    # The other tenant's keys still work: nothing was revoked across tenants.
    async with other_tenant.client() as theirs:
        assert (await theirs.get("/api/v1/api-keys")).status_code == 200


async def test_api_key_cannot_switch_tenant(tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    async with tenant.client() as mine:
        response = await mine.get("/api/v1/members", headers={"X-Tenant-ID": other_tenant.id})
    assert response.status_code == 403
    assert response.json()["error"]["details"]["header"] == "X-Tenant-ID"


async def test_unfiltered_query_under_rls_returns_no_foreign_rows(
    api_server: ApiServer, db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    if api_server.dialect != "postgresql":
        pytest.skip("row-level security is a PostgreSQL feature; SQLite relies on service filters")
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        # Deliberately no tenant filter: RLS alone must hide the other tenant.
        for model in (ApiKey, Membership, AuditEvent):
            tenants = set((await session.execute(select(model.tenant_id))).scalars())
            assert tenants == {tenant.id}, model.__tablename__
        role = (await session.execute(text("SELECT current_user"))).scalar_one()
        assert role == "gorax_app"
        # Inserting a row for another tenant is refused by the policy's WITH CHECK.
        with pytest.raises(Exception, match="row-level security"):
            await session.execute(
                text(
                    "INSERT INTO memberships (id, tenant_id, user_id, role, created_at) "
                    "SELECT 'x', :t, user_id, 'admin', now() FROM memberships LIMIT 1"
                ),
                {"t": other_tenant.id},
            )
        await session.rollback()
        # The app role may not rewrite history.
        with pytest.raises(Exception, match="permission denied"):
            await session.execute(text("UPDATE audit_events SET action = 'x'"))
        await session.rollback()
    async with db.system_scope() as session:
        # The system scope (sign-in, key lookup) sees across tenants, by design.
        tenants = set((await session.execute(select(ApiKey.tenant_id))).scalars())
        assert {tenant.id, other_tenant.id} <= tenants


async def test_app_role_is_not_superuser(api_server: ApiServer) -> None:
    if api_server.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    dsn = api_server.database_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'gorax_app'")
        forced = await conn.fetchval("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'audit_events'")
    finally:
        await conn.close()
    assert row is not None and not row["rolsuper"] and not row["rolbypassrls"] and forced
