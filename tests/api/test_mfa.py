"""MFA: TOTP enrolment, the sign-in code step, replay, recovery codes, lockout, tenant policy,
API keys, and no secret in responses, logs or the database."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select

from api.auth.permissions import Role
from api.db.engine import Database
from api.models.identity import User
from api.models.mfa import RecoveryCode, UserTotp
from api.ratelimit import route_class
from api.services.audit import AuditContext
from api.services.identity import add_member
from tests.api.conftest import ApiServer, TenantHandle

pytestmark = pytest.mark.usefixtures("prefect_server")  # the sealing key lives in Prefect


@asynccontextmanager
async def _client(server: ApiServer, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=headers) as client:
        yield client


async def _login(server: ApiServer, email: str, password: str) -> httpx.Response:
    async with _client(server) as client:
        return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def _verify(server: ApiServer, challenge: str, code: str) -> httpx.Response:
    async with _client(server) as client:
        return await client.post("/api/v1/auth/mfa/verify", json={"challenge": challenge, "code": code})


async def _challenge(server: ApiServer, tenant: TenantHandle) -> str:
    response = await _login(server, tenant.email, tenant.password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True and body["step"] == "verify", body
    return body["challenge"]


async def _actions(tenant: TenantHandle, action: str) -> list[dict]:
    async with tenant.client() as admin:
        response = await admin.get("/api/v1/audit", params={"action": action, "limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


async def _enrol(server: ApiServer, tenant: TenantHandle) -> tuple[str, list[str], str]:
    """TOTP on for the tenant's admin: (secret, recovery codes, an access token)."""
    signed_in = await _login(server, tenant.email, tenant.password)
    token = signed_in.json()["access_token"]
    async with _client(server, token) as me:
        enrolment = (await me.post("/api/v1/auth/mfa/totp/enroll")).json()
        confirmed = await me.post("/api/v1/auth/mfa/totp/confirm", json={"code": _code(enrolment["secret"])})
        assert confirmed.status_code == 200, confirmed.text
    return enrolment["secret"], confirmed.json()["recovery_codes"], token


def test_mfa_paths_are_rate_limited_as_sign_in() -> None:
    assert route_class("/api/v1/auth/mfa/verify") == "auth"
    assert route_class("/api/v1/auth/mfa/totp/confirm") == "auth"
    assert route_class("/api/v1/auth/mfa") == "auth"


async def test_enrol_confirm_then_sign_in_needs_a_code(api_server: ApiServer, tenant: TenantHandle) -> None:
    token = (await _login(api_server, tenant.email, tenant.password)).json()["access_token"]
    async with _client(api_server, token) as me:
        enrolment = await me.post("/api/v1/auth/mfa/totp/enroll")
        assert enrolment.status_code == 200, enrolment.text
        body = enrolment.json()
        secret = body["secret"]
        assert body["otpauth_uri"].startswith("otpauth://totp/") and f"secret={secret}" in body["otpauth_uri"]
        assert body["qr_svg"].startswith("data:image/svg+xml")
        pending = (await me.get("/api/v1/auth/mfa")).json()
        assert pending["totp_pending"] is True and pending["totp_enabled"] is False
        # Until confirmed, signing in asks for no code.
        assert "access_token" in (await _login(api_server, tenant.email, tenant.password)).json()
        wrong = await me.post("/api/v1/auth/mfa/totp/confirm", json={"code": "000000"})
        assert wrong.status_code == 403 and wrong.json()["error"]["details"]["field"] == "code"
        confirmed = await me.post("/api/v1/auth/mfa/totp/confirm", json={"code": _code(secret)})
        assert confirmed.status_code == 200, confirmed.text
        codes = confirmed.json()["recovery_codes"]
        assert len(codes) == 10 and len(set(codes)) == 10
        status = (await me.get("/api/v1/auth/mfa")).json()
        assert status["totp_enabled"] is True and status["recovery_codes_left"] == 10
        again = await me.post("/api/v1/auth/mfa/totp/enroll")
        assert again.status_code == 409
        # The session that enrolled goes on (MFA is asked at sign-in).
        assert (await me.get("/api/v1/auth/me")).status_code == 200

    login = await _login(api_server, tenant.email, tenant.password)
    assert login.status_code == 200
    assert "access_token" not in login.json() and "refresh_token" not in login.json()
    assert not [c for c in login.headers.get_list("set-cookie") if c.startswith("gorax_session=")]
    challenge = login.json()["challenge"]
    # A challenge is not a session.
    async with _client(api_server, challenge) as not_a_session:
        assert (await not_a_session.get("/api/v1/auth/me")).status_code == 401

    wrong = await _verify(api_server, challenge, "123456" if _code(secret) != "123456" else "654321")
    assert wrong.status_code == 401 and wrong.json()["error"]["details"]["field"] == "code"
    # One code for the sign-in and the replays below: computed again it may be of a later step.
    code = _code(secret, 1)
    good = await _verify(api_server, challenge, code)
    assert good.status_code == 200, good.text
    pair = good.json()
    assert [c for c in good.headers.get_list("set-cookie") if c.startswith("gorax_session=")]
    async with _client(api_server, pair["access_token"]) as me:
        assert (await me.get("/api/v1/auth/me")).json()["user"]["email"] == tenant.email
    # The challenge is single use, even with a good code.
    assert (await _verify(api_server, challenge, code)).status_code == 401
    # The same code again, on a new sign-in: a replay within its window is refused.
    replay = await _verify(api_server, await _challenge(api_server, tenant), code)
    assert replay.status_code == 401 and "already used" in replay.json()["error"]["message"]
    # Refresh tokens keep working without a code.
    refreshed = await httpx.AsyncClient(base_url=api_server.url).post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200

    for action in ("auth.mfa_enrolled", "auth.mfa_confirmed", "auth.mfa_challenged"):
        assert await _actions(tenant, action), action
    failures = await _actions(tenant, "auth.mfa_failed")
    assert {f["details"]["reason"] for f in failures} >= {"wrong_code", "replayed"}
    assert all(f["outcome"] == "denied" for f in failures)
    logins = await _actions(tenant, "auth.login")
    assert logins[0]["details"] == {"mfa": "totp"}


async def test_recovery_codes_work_once_and_regenerate(api_server: ApiServer, tenant: TenantHandle) -> None:
    secret, codes, token = await _enrol(api_server, tenant)
    used = await _verify(api_server, await _challenge(api_server, tenant), codes[0].upper().replace("-", " "))
    assert used.status_code == 200, used.text
    again = await _verify(api_server, await _challenge(api_server, tenant), codes[0])
    assert again.status_code == 401
    assert await _actions(tenant, "auth.mfa_recovery_used")
    async with _client(api_server, token) as me:
        assert (await me.get("/api/v1/auth/mfa")).json()["recovery_codes_left"] == 9
        # Regenerating needs a TOTP code, not a recovery code.
        refused = await me.post("/api/v1/auth/mfa/totp/recovery-codes", json={"code": codes[1]})
        assert refused.status_code == 403
        fresh = await me.post("/api/v1/auth/mfa/totp/recovery-codes", json={"code": _code(secret, 1)})
        assert fresh.status_code == 200, fresh.text
        new_codes = fresh.json()["recovery_codes"]
        assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    assert (await _verify(api_server, await _challenge(api_server, tenant), codes[2])).status_code == 401
    assert (await _verify(api_server, await _challenge(api_server, tenant), new_codes[0])).status_code == 200
    assert await _actions(tenant, "auth.mfa_recovery_regenerated")


async def test_wrong_codes_void_the_challenge_then_lock_the_factor(api_server: ApiServer, tenant: TenantHandle) -> None:
    secret, codes, _ = await _enrol(api_server, tenant)
    wrong = "000000" if _code(secret) != "000000" else "111111"
    challenge = await _challenge(api_server, tenant)
    for _ in range(3):  # GORAX_MFA_CHALLENGE_MAX_ATTEMPTS
        assert (await _verify(api_server, challenge, wrong)).status_code == 401
    void = await _verify(api_server, challenge, _code(secret, 1))
    assert void.status_code == 401 and void.json()["error"]["details"]["field"] == "challenge"
    # Two more wrong codes on a new sign-in make five in a row (GORAX_LOGIN_MAX_FAILURES): locked.
    challenge = await _challenge(api_server, tenant)
    assert (await _verify(api_server, challenge, wrong)).status_code == 401
    locking = await _verify(api_server, challenge, wrong)
    assert locking.status_code == 401 and locking.json()["error"]["details"]["locked"] is True
    locked = await _verify(api_server, await _challenge(api_server, tenant), _code(secret, 1))
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    assert (await _verify(api_server, await _challenge(api_server, tenant), codes[0])).status_code == 429
    assert await _actions(tenant, "auth.mfa_locked")


async def test_policy_for_a_role_makes_its_members_enrol_at_sign_in(
    api_server: ApiServer, tenant: TenantHandle
) -> None:
    async with tenant.client() as admin:
        assert (await admin.get("/api/v1/tenant/mfa-policy")).json()["mode"] == "off"
        no_roles = await admin.put("/api/v1/tenant/mfa-policy", json={"mode": "roles", "roles": []})
        assert no_roles.status_code == 400 and no_roles.json()["error"]["details"]["field"] == "roles"
        stray = await admin.put("/api/v1/tenant/mfa-policy", json={"mode": "all", "roles": ["editor"]})
        assert stray.status_code == 400 and stray.json()["error"]["details"]["field"] == "roles"
        unknown = await admin.put("/api/v1/tenant/mfa-policy", json={"mode": "off", "enforce": True})
        assert unknown.status_code == 422
        put = await admin.put("/api/v1/tenant/mfa-policy", json={"mode": "roles", "roles": ["editor"]})
        assert put.status_code == 200, put.text
        assert put.json()["mode"] == "roles" and put.json()["roles"] == ["editor"]
        email = f"ed-{uuid.uuid4().hex[:8]}@t.test"
        invited = await admin.post("/api/v1/members/invitations", json={"email": email, "role": "editor"})
        assert invited.status_code == 201, invited.text
    async with tenant.client(role=Role.EDITOR) as editor_key:
        assert (await editor_key.get("/api/v1/tenant/mfa-policy")).status_code == 403
    changed = await _actions(tenant, "tenant.mfa_policy_changed")
    assert changed[0]["before"] == {"mode": "off", "roles": []}
    assert changed[0]["after"] == {"mode": "roles", "roles": ["editor"]}

    # The invitee registers through the invitation: joining works, signing in needs enrolment.
    password = "correct horse battery"
    async with _client(api_server) as anon:
        accepted = await anon.post(
            "/api/v1/auth/invitations/accept",
            json={"token": invited.json()["token"], "password": password, "name": "Ed"},
        )
    assert accepted.status_code == 200, accepted.text
    step = accepted.json()
    assert step["mfa_required"] is True and step["step"] == "enroll" and "access_token" not in step
    assert step["required_by"]
    async with tenant.client() as admin:
        assert (await admin.get("/api/v1/tenant/mfa-policy")).json()["members_without_mfa"] == 1
    # An admin (not required by the policy) still signs in with a password alone.
    assert "access_token" in (await _login(api_server, tenant.email, tenant.password)).json()

    login = (await _login(api_server, email, password)).json()
    assert login["step"] == "enroll"
    challenge = login["challenge"]
    # An enrolment challenge is not a code step.
    assert (await _verify(api_server, challenge, "123456")).status_code == 401
    async with _client(api_server) as anon:
        enrolment = await anon.post("/api/v1/auth/mfa/enroll", json={"challenge": challenge})
        assert enrolment.status_code == 200, enrolment.text
        secret = enrolment.json()["secret"]
        done = await anon.post("/api/v1/auth/mfa/enroll/confirm", json={"challenge": challenge, "code": _code(secret)})
        assert done.status_code == 200, done.text
    signed_in = done.json()
    assert len(signed_in["recovery_codes"]) == 10 and signed_in["tenants"][0]["role"] == "editor"
    async with _client(api_server, signed_in["access_token"]) as editor:
        status = (await editor.get("/api/v1/auth/mfa")).json()
        assert status["totp_enabled"] is True and status["required_by"] == step["required_by"]
        # Required by the tenant: it cannot be turned off.
        refused = await editor.request("DELETE", "/api/v1/auth/mfa/totp", json={"code": _code(secret, 1)})
        assert refused.status_code == 403 and refused.json()["error"]["details"]["required_by"]
    async with tenant.client() as admin:
        assert (await admin.get("/api/v1/tenant/mfa-policy")).json()["members_without_mfa"] == 0
    # From now on the editor signs in with a code.
    assert (await _login(api_server, email, password)).json()["step"] == "verify"


async def test_api_keys_stay_mfa_free(api_server: ApiServer, tenant: TenantHandle) -> None:
    await _enrol(api_server, tenant)
    async with tenant.client() as admin:
        assert (await admin.put("/api/v1/tenant/mfa-policy", json={"mode": "all"})).status_code == 200
        assert (await admin.get("/api/v1/auth/me")).status_code == 200
        assert (await admin.get("/api/v1/members")).status_code == 200
        # A key has no account: it can neither enrol nor read a user's factor.
        assert (await admin.post("/api/v1/auth/mfa/totp/enroll")).status_code == 403
        assert (await admin.get("/api/v1/auth/mfa")).status_code == 403


async def test_disable_with_a_code_then_password_alone_signs_in(api_server: ApiServer, tenant: TenantHandle) -> None:
    secret, codes, token = await _enrol(api_server, tenant)
    async with _client(api_server, token) as me:
        wrong = await me.request("DELETE", "/api/v1/auth/mfa/totp", json={"code": "not-a-code"})
        assert wrong.status_code == 403
        off = await me.request("DELETE", "/api/v1/auth/mfa/totp", json={"code": codes[3]})
        assert off.status_code == 204, off.text
        assert (await me.get("/api/v1/auth/mfa")).json()["totp_enabled"] is False
    assert "access_token" in (await _login(api_server, tenant.email, tenant.password)).json()
    assert await _actions(tenant, "auth.mfa_disabled")


async def test_secrets_never_in_responses_logs_audit_or_storage(
    api_server: ApiServer, tenant: TenantHandle, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret, codes, token = await _enrol(api_server, tenant)
    challenge = await _challenge(api_server, tenant)
    assert (await _verify(api_server, challenge, "999999" if _code(secret) != "999999" else "888888")).status_code
    assert (await _verify(api_server, challenge, _code(secret, 1))).status_code == 200
    async with _client(api_server, token) as me:
        status = (await me.get("/api/v1/auth/mfa")).text
    async with tenant.client() as admin:
        audit_text = (await admin.get("/api/v1/audit", params={"limit": 200})).text
    for text in (status, audit_text, caplog.text):
        assert secret not in text
        assert challenge not in text
        assert not any(code in text for code in codes)
    async with db.system_scope() as session:
        user = (await session.execute(select(User).where(User.email == tenant.email))).scalar_one()
        factor = await session.get(UserTotp, user.id)
        stored: list[Any] = [factor.secret_sealed if factor else None]
        stored += list(
            (await session.execute(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id))).scalars()
        )
    assert stored[0] and stored[0].startswith("gorax:v1:") and secret not in stored[0]
    assert len(stored) == 11 and not any(code in str(stored) for code in codes)


async def test_the_strictest_policy_of_a_users_tenants_applies(
    api_server: ApiServer, tenant: TenantHandle, other_tenant: TenantHandle, db: Database
) -> None:
    # The tenant's admin is also a viewer of another tenant, which requires MFA of viewers.
    async with db.tenant_scope(tenant_id=other_tenant.id) as session:
        await add_member(
            session,
            tenant_id=other_tenant.id,
            email=tenant.email,
            role=Role.VIEWER,
            context=AuditContext.system("tests"),
        )
    assert "access_token" in (await _login(api_server, tenant.email, tenant.password)).json()
    async with other_tenant.client() as admin:
        put = await admin.put("/api/v1/tenant/mfa-policy", json={"mode": "roles", "roles": ["viewer"]})
        assert put.status_code == 200 and put.json()["members_without_mfa"] == 1
        slug = (await admin.get("/api/v1/auth/me")).json()["tenant"]["slug"]
    step = (await _login(api_server, tenant.email, tenant.password)).json()
    assert step["step"] == "enroll" and step["required_by"] == [slug]
    # The tenant whose policy is off sees the challenge in its audit log too.
    assert (await _actions(tenant, "auth.mfa_challenged"))[0]["details"]["required_by"] == [slug]
