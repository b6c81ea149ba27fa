"""The role matrix: every route, every role, checked against the declared permission."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from api.auth.deps import Public, Requires
from api.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from api.auth.principal import Principal
from api.errors import Forbidden
from tests.api.conftest import ApiServer, TenantHandle
from tests.api.permission_matrix import declared_rules
from tests.conftest import PrefectServer

# Bodies that pass validation far enough to reach a handler are not needed: the access rule
# runs before the body is read, and an allowed role only has to get past it.
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def test_every_route_declares_exactly_one_access_rule(api_server: ApiServer) -> None:
    rules, problems = declared_rules(api_server.app)
    assert not problems, "routes without a single Requires(...)/Public():\n" + "\n".join(problems)
    paths = {(r.method, r.path) for r in rules}
    assert ("GET", "/api/v1/audit") in paths and ("POST", "/api/v1/auth/login") in paths


def test_a_tenant_route_gets_the_tenant_or_refuses() -> None:
    member = Principal(kind="api_key", id="k1", tenant_id="t1", role=Role.VIEWER)
    assert member.required_tenant_id() == "t1"
    worker = Principal(kind="worker", id="w1", tenant_id=None, role=None)
    with pytest.raises(Forbidden, match="belongs to no tenant"):
        worker.required_tenant_id()


def test_roles_and_permissions_read_as_their_values() -> None:
    assert f"{Role.ADMIN}" == str(Role.ADMIN) == "admin"
    assert str(Permission.WORKFLOW_READ) == "workflow:read"


def test_matrix_follows_the_prd() -> None:
    can = {role: ROLE_PERMISSIONS[role] for role in Role}
    assert Permission.MEMBER_MANAGE in can[Role.ADMIN]
    assert Permission.CREDENTIAL_MANAGE in can[Role.EDITOR]
    assert Permission.MEMBER_MANAGE not in can[Role.EDITOR]
    assert Permission.API_KEY_MANAGE not in can[Role.EDITOR]
    assert Permission.EXECUTION_RUN in can[Role.OPERATOR]
    assert Permission.WORKFLOW_EDIT not in can[Role.OPERATOR]
    assert Permission.CREDENTIAL_MANAGE not in can[Role.OPERATOR]
    assert can[Role.VIEWER] <= can[Role.OPERATOR] <= can[Role.EDITOR] <= can[Role.ADMIN]
    assert Permission.EXECUTION_RUN not in can[Role.VIEWER]
    assert all(Permission.INTERNAL not in perms for perms in can.values())
    # A user's own account goes with the sign-in, not a role: no API key holds it.
    assert all(Permission.ACCOUNT not in perms for perms in can.values())


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
async def test_each_role_gets_exactly_its_routes(
    api_server: ApiServer, tenant: TenantHandle, role: Role, prefect_server: PrefectServer
) -> None:
    rules, _ = declared_rules(api_server.app)
    mismatches = []
    async with tenant.client(role) as client:
        for rule in rules:
            if rule.permission is None or rule.path == "/api/v1/auth/logout":
                continue  # public; logout would end nothing for a key but keep it simple
            kwargs = {"json": {}} if rule.method in _BODY_METHODS else {}
            response = await client.request(rule.method, rule.concrete_path(), **kwargs)
            denied = (
                response.status_code == 403
                and response.json()["error"]["details"].get("permission") == rule.permission.value
            )
            allowed = rule.permission in ROLE_PERMISSIONS[role]
            if response.status_code == 401 or denied == allowed or response.status_code >= 500:
                mismatches.append(
                    f"{rule.method} {rule.path}: {response.status_code} "
                    f"(permission {rule.permission.value}, allowed={allowed})"
                )
    assert not mismatches, "\n".join(mismatches)


async def test_account_routes_take_signed_in_users_only(
    api_server: ApiServer, tenant: TenantHandle, anon: httpx.AsyncClient
) -> None:
    rules, _ = declared_rules(api_server.app)
    account = [rule for rule in rules if rule.permission is Permission.ACCOUNT]
    assert ("GET", "/api/v1/auth/invitations") in {(r.method, r.path) for r in account}
    signed_in = await anon.post("/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    user = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    mismatches = []
    async with tenant.client(Role.ADMIN) as admin_key:
        for rule in account:
            as_user = await anon.request(rule.method, rule.concrete_path(), headers=user)
            as_key = await admin_key.request(rule.method, rule.concrete_path())
            if as_user.status_code in (401, 403) or as_user.status_code >= 500:
                mismatches.append(f"user: {rule.method} {rule.path}: {as_user.status_code}")
            if as_key.status_code != 403:
                mismatches.append(f"key: {rule.method} {rule.path}: {as_key.status_code}")
    assert not mismatches, "\n".join(mismatches)


async def test_denials_are_audited(tenant: TenantHandle) -> None:
    async with tenant.client(Role.VIEWER) as viewer:
        assert (await viewer.get("/api/v1/members")).status_code == 403
    async with tenant.client() as admin:
        events = (await admin.get("/api/v1/audit", params={"action": "authz.denied"})).json()
    event = events["items"][0]
    assert event["outcome"] == "denied" and event["actor_type"] == "api_key"
    assert event["details"]["permission"] == "member:read"


async def test_worker_principal_reaches_internal_routes_only(api_server: ApiServer, tenant: TenantHandle) -> None:
    assert api_server.settings.worker_token is not None
    token = api_server.settings.worker_token.get_secret_value()
    async with httpx.AsyncClient(base_url=api_server.url, headers={"Authorization": f"Bearer {token}"}) as worker:
        me = await worker.get("/api/v1/internal/whoami", headers={"X-Tenant-ID": tenant.id})
        assert me.status_code == 200 and me.json() == {"principal": "worker:worker", "tenant_id": tenant.id}
        assert (await worker.get("/api/v1/members", headers={"X-Tenant-ID": tenant.id})).status_code == 403
    async with tenant.client() as admin:
        assert (await admin.get("/api/v1/internal/whoami")).status_code == 403


def test_a_route_without_a_declaration_is_reported() -> None:
    app = FastAPI()
    router = APIRouter(prefix="/api/v1/things")

    @router.get("")
    async def undeclared() -> dict:
        return {}

    @router.post("", dependencies=[Requires(Permission.WORKFLOW_EDIT), Public()])
    async def twice() -> dict:
        return {}

    @router.delete("/{thing_id}", dependencies=[Requires(Permission.WORKFLOW_DELETE)])
    async def declared(thing_id: str) -> dict:
        return {}

    app.include_router(router)
    rules, problems = declared_rules(app)
    assert [p.split(":")[0] for p in problems] == ["GET /api/v1/things", "POST /api/v1/things"]
    assert [(r.method, r.path, r.permission) for r in rules] == [
        ("DELETE", "/api/v1/things/{thing_id}", Permission.WORKFLOW_DELETE)
    ]
