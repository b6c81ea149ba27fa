"""The audit log: entries for mutations, filters and pages, and tamper detection."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import sqlalchemy as sa

from api.db.engine import Database
from api.services import audit
from api.services.audit import AuditContext
from tests.api.conftest import ApiServer, TenantHandle


async def test_member_lifecycle_is_audited_with_before_and_after(tenant: TenantHandle, anon: httpx.AsyncClient) -> None:
    async with tenant.client() as admin:
        invited = await admin.post(
            "/api/v1/members/invitations", json={"email": "New.Person@Example.test", "role": "editor"}
        )
        assert invited.status_code == 201, invited.text
        joined = await anon.post(
            "/api/v1/auth/invitations/accept",
            json={"token": invited.json()["token"], "password": "a long new password", "name": "New"},
        )
        assert joined.status_code == 200, joined.text
        email, user_id = joined.json()["user"]["email"], joined.json()["user"]["id"]
        assert email == "new.person@example.test"
        again = await admin.post("/api/v1/members/invitations", json={"email": email, "role": "viewer"})
        assert again.status_code == 409
        changed = await admin.patch(f"/api/v1/members/{user_id}", json={"role": "operator"})
        assert changed.status_code == 200 and changed.json()["role"] == "operator"
        listed = (await admin.get("/api/v1/members")).json()["items"]
        assert {m["email"]: m["role"] for m in listed}[email] == "operator"
        assert (await admin.delete(f"/api/v1/members/{user_id}")).status_code == 204
        events = (await admin.get("/api/v1/audit", params={"resource_type": "member"})).json()
        offers = (await admin.get("/api/v1/audit", params={"resource_type": "invitation"})).json()
    by_action = {e["action"]: e for e in events["items"] + offers["items"]}
    assert by_action["member.role_changed"]["before"] == {"role": "editor"}
    assert by_action["member.role_changed"]["after"] == {"role": "operator"}
    assert by_action["invitation.created"]["after"]["email"] == email
    assert by_action["invitation.accepted"]["actor_id"] == user_id
    assert invited.json()["token"] not in str(offers) and "password" not in str(offers)
    assert by_action["member.removed"]["before"] == {"role": "operator"}


async def test_last_admin_cannot_be_removed(tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        me = next(m for m in (await admin.get("/api/v1/members")).json()["items"] if m["email"] == tenant.email)
        response = await admin.delete(f"/api/v1/members/{me['user_id']}")
        assert response.status_code == 409
        demote = await admin.patch(f"/api/v1/members/{me['user_id']}", json={"role": "viewer"})
        assert demote.status_code == 409


async def test_filters_and_pagination(tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        for i in range(3):
            await admin.post("/api/v1/api-keys", json={"name": f"k{i}", "role": "viewer"})
        seqs: list[int] = []
        cursor = None
        for _ in range(10):
            params = {"action": "api_key.created", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await admin.get("/api/v1/audit", params=params)).json()
            assert len(page["items"]) <= 2
            seqs += [e["seq"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # bootstrap admin key + three role keys of the fixture + three here
        assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) == 7
        prefixed = (await admin.get("/api/v1/audit", params={"action": "api_key.*"})).json()
        assert all(e["action"].startswith("api_key.") for e in prefixed["items"])
        bad = await admin.get("/api/v1/audit", params={"cursor": "abc"})
        assert bad.status_code == 400
        future = (await admin.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"})).json()
        assert future["items"] == []


async def test_tampering_breaks_the_hash_chain(api_server: ApiServer, db: Database, tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        await admin.post("/api/v1/api-keys", json={"name": "x", "role": "viewer"})
        assert (await admin.get("/api/v1/audit/verify")).json() == {"valid": True, "broken_at_seq": None}
    # Tamper as the database owner (the app role itself cannot update audit rows).
    statement = "UPDATE audit_events SET action = 'nothing.happened' WHERE tenant_id = $1 AND seq = 2"
    if api_server.dialect == "postgresql":
        conn = await asyncpg.connect(api_server.database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute(statement, tenant.id)
        finally:
            await conn.close()
    else:
        async with db.engine.begin() as conn:
            await conn.execute(sa.text(statement.replace("$1", ":t")), {"t": tenant.id})
    async with tenant.client() as admin:
        assert (await admin.get("/api/v1/audit/verify")).json() == {"valid": False, "broken_at_seq": 2}


async def test_concurrent_appenders_extend_one_chain(db: Database, tenant: TenantHandle) -> None:
    """On SQLite two requests auditing at once both took the same seq: one answered 500."""

    async def append(n: int) -> None:
        async with db.session(tenant_id=tenant.id) as session:
            await audit.record(
                session, tenant_id=tenant.id, action=f"test.concurrent_{n}", context=AuditContext.system()
            )
            await asyncio.sleep(0.05)  # the request's own work, before it commits
            await session.commit()

    await asyncio.gather(*(append(n) for n in range(6)))
    async with tenant.client() as admin:
        assert (await admin.get("/api/v1/audit/verify")).json() == {"valid": True, "broken_at_seq": None}
        listed = (await admin.get("/api/v1/audit", params={"limit": 100})).json()["items"]
    assert sorted(e["action"] for e in listed if e["action"].startswith("test.concurrent_")) == [
        f"test.concurrent_{n}" for n in range(6)
    ]
