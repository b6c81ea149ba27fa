"""Invitations: nobody is added by e-mail; the invitee accepts, signed in or with the token."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import sqlalchemy as sa

from api.db.base import utcnow
from api.db.engine import Database
from tests.api.conftest import TenantHandle

PASSWORD = "a long enough password"


def _address() -> str:
    return f"invitee-{uuid.uuid4().hex[:8]}@invited.test"


async def _invite(tenant: TenantHandle, email: str, role: str = "editor") -> httpx.Response:
    async with tenant.client() as admin:
        return await admin.post("/api/v1/members/invitations", json={"email": email, "role": role})


async def _sign_in(anon: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await anon.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _members(tenant: TenantHandle) -> dict[str, str]:
    async with tenant.client() as admin:
        items = (await admin.get("/api/v1/members")).json()["items"]
    return {m["email"]: m["role"] for m in items}


async def _audit(tenant: TenantHandle, action: str) -> list[dict]:
    async with tenant.client() as admin:
        return (await admin.get("/api/v1/audit", params={"action": action})).json()["items"]


async def test_inviting_answers_alike_for_accounts_and_strangers_and_grants_nothing(
    anon: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    existing, stranger = await _invite(tenant, other_tenant.email), await _invite(tenant, _address())
    assert existing.status_code == stranger.status_code == 201
    shape = {key: type(value).__name__ for key, value in existing.json().items()}
    assert shape == {key: type(value).__name__ for key, value in stranger.json().items()}
    assert existing.json()["token"].startswith("gxi_")
    # The invited user is no member until they accept.
    assert other_tenant.email not in await _members(tenant)
    me = await anon.get("/api/v1/auth/me", headers=await _sign_in(anon, other_tenant.email, other_tenant.password))
    assert [t["id"] for t in me.json()["tenants"]] == [other_tenant.id]
    created = await _audit(tenant, "invitation.created")
    assert {e["after"]["email"] for e in created} == {other_tenant.email, stranger.json()["email"]}


async def test_adding_a_member_by_e_mail_is_gone(tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        response = await admin.post("/api/v1/members", json={"email": other_tenant.email, "role": "admin"})
    assert response.status_code == 405
    assert other_tenant.email not in await _members(tenant)


async def test_a_user_sees_and_accepts_invitations_after_signing_in(
    anon: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    invited = (await _invite(tenant, other_tenant.email, "operator")).json()
    headers = await _sign_in(anon, other_tenant.email, other_tenant.password)
    pending = (await anon.get("/api/v1/auth/invitations", headers=headers)).json()["items"]
    assert [(i["id"], i["tenant"]["id"], i["role"]) for i in pending] == [(invited["id"], tenant.id, "operator")]
    accepted = await anon.post(f"/api/v1/auth/invitations/{invited['id']}/accept", headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["id"] == tenant.id and accepted.json()["role"] == "operator"
    assert (await _members(tenant))[other_tenant.email] == "operator"
    again = await anon.post(f"/api/v1/auth/invitations/{invited['id']}/accept", headers=headers)
    assert again.status_code == 404
    assert (await anon.get("/api/v1/auth/invitations", headers=headers)).json()["items"] == []
    event = (await _audit(tenant, "invitation.accepted"))[0]
    assert event["actor_type"] == "user" and event["resource_id"] == invited["id"]
    assert event["details"] == {"account_created": False}


async def test_an_invitation_to_someone_else_cannot_be_accepted(
    anon: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    invited = (await _invite(tenant, _address())).json()
    headers = await _sign_in(anon, other_tenant.email, other_tenant.password)
    response = await anon.post(f"/api/v1/auth/invitations/{invited['id']}/accept", headers=headers)
    assert response.status_code == 404
    assert (await anon.get("/api/v1/auth/invitations", headers=headers)).json()["items"] == []
    assert other_tenant.email not in await _members(tenant)


async def test_a_new_user_registers_through_the_invitation(anon: httpx.AsyncClient, tenant: TenantHandle) -> None:
    email = _address()
    token = (await _invite(tenant, email.upper(), "viewer")).json()["token"]
    joined = await anon.post(
        "/api/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD, "name": "Ivy"}
    )
    assert joined.status_code == 200, joined.text
    body = joined.json()
    assert body["user"]["email"] == email and body["user"]["name"] == "Ivy"
    assert [(t["id"], t["role"]) for t in body["tenants"]] == [(tenant.id, "viewer")]
    assert "gorax_session=" in joined.headers.get("set-cookie", "")
    me = await anon.get("/api/v1/auth/me", headers=await _sign_in(anon, email, PASSWORD))
    assert me.json()["tenant"]["id"] == tenant.id and me.json()["role"] == "viewer"
    reused = await anon.post("/api/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD})
    assert reused.status_code == 404
    event = (await _audit(tenant, "invitation.accepted"))[0]
    assert event["actor_id"] == body["user"]["id"]
    assert event["details"] == {"account_created": True}


async def test_the_token_of_an_existing_account_needs_its_password(
    anon: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    token = (await _invite(tenant, other_tenant.email)).json()["token"]
    wrong = await anon.post("/api/v1/auth/invitations/accept", json={"token": token, "password": "not their password"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "invalid e-mail or password"
    assert other_tenant.email not in await _members(tenant)
    right = await anon.post("/api/v1/auth/invitations/accept", json={"token": token, "password": other_tenant.password})
    assert right.status_code == 200, right.text
    assert {t["id"] for t in right.json()["tenants"]} == {tenant.id, other_tenant.id}
    # The account kept its password.
    await _sign_in(anon, other_tenant.email, other_tenant.password)


async def test_revoked_replaced_and_expired_invitations_cannot_be_accepted(
    anon: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    email = _address()
    first = (await _invite(tenant, email)).json()
    second = (await _invite(tenant, email)).json()
    assert second["token"] != first["token"]
    async with tenant.client() as admin:
        listed = (await admin.get("/api/v1/members/invitations")).json()["items"]
        assert [i["id"] for i in listed if i["email"] == email] == [second["id"]]
        assert "token" not in listed[0]
        assert (await admin.delete(f"/api/v1/members/invitations/{second['id']}")).status_code == 204
        assert (await admin.delete(f"/api/v1/members/invitations/{second['id']}")).status_code == 404
    for token in (first["token"], second["token"]):
        response = await anon.post("/api/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD})
        assert response.status_code == 404, token
    third = (await _invite(tenant, email)).json()
    async with db.system_scope() as session:
        await session.execute(
            sa.text("UPDATE invitations SET expires_at = :at WHERE id = :id"),
            {"at": utcnow() - timedelta(seconds=1), "id": third["id"]},
        )
        await session.commit()
    expired = await anon.post("/api/v1/auth/invitations/accept", json={"token": third["token"], "password": PASSWORD})
    assert expired.status_code == 404
    revoked = await _audit(tenant, "invitation.revoked")
    assert revoked[0]["resource_id"] == second["id"] and revoked[0]["before"]["email"] == email


async def test_invitations_stay_in_their_tenant(tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    invited = (await _invite(tenant, _address())).json()
    async with other_tenant.client() as theirs:
        listed = (await theirs.get("/api/v1/members/invitations")).json()["items"]
        assert invited["id"] not in {i["id"] for i in listed}
        gone = await theirs.delete(f"/api/v1/members/invitations/{invited['id']}")
        assert gone.status_code == 404
    async with tenant.client() as mine:
        assert invited["id"] in {i["id"] for i in (await mine.get("/api/v1/members/invitations")).json()["items"]}


async def test_a_user_without_a_tenant_can_still_accept_invitations(
    anon: httpx.AsyncClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    email = _address()
    token = (await _invite(tenant, email)).json()["token"]
    joined = (await anon.post("/api/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD})).json()
    async with tenant.client() as admin:
        assert (await admin.delete(f"/api/v1/members/{joined['user']['id']}")).status_code == 204
    invited = (await _invite(other_tenant, email, "viewer")).json()
    headers = await _sign_in(anon, email, PASSWORD)
    pending = (await anon.get("/api/v1/auth/invitations", headers=headers)).json()["items"]
    assert [i["id"] for i in pending] == [invited["id"]]
    accepted = await anon.post(f"/api/v1/auth/invitations/{invited['id']}/accept", headers=headers)
    assert accepted.status_code == 200 and accepted.json()["id"] == other_tenant.id


async def test_api_keys_have_no_invitations_of_their_own(tenant: TenantHandle) -> None:
    async with tenant.client() as admin:
        response = await admin.get("/api/v1/auth/invitations")
    assert response.status_code == 403
    assert response.json()["error"]["details"]["permission"] == "account"
