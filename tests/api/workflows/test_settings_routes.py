"""Variables and credentials through the HTTP API (both live in Prefect: one database suffices)."""

from __future__ import annotations

from api.auth.permissions import Role
from flows.variables import tenant_env
from tests.api.conftest import TenantHandle

API = "/api/v1"


async def test_variables_crud_case_and_isolation(sq_tenant: TenantHandle, sq_other: TenantHandle) -> None:
    async with sq_tenant.client(Role.EDITOR) as editor, sq_tenant.client(Role.VIEWER) as viewer:
        created = await editor.post(f"{API}/variables", json={"name": "API_URL", "value": "http://a"})
        assert created.status_code == 201
        await editor.post(f"{API}/variables", json={"name": "LIMITS", "value": {"max": 3}})
        clash = await editor.post(f"{API}/variables", json={"name": "api_url", "value": "x"})
        assert clash.status_code == 409 and "API_URL" in clash.json()["error"]["message"]
        bad = await editor.post(f"{API}/variables", json={"name": "9lives", "value": 1})
        assert bad.status_code == 422
        # A number PostgreSQL's jsonb would turn into one Prefect cannot read back: refused, with
        # the place inside the value named.
        huge = await editor.post(f"{API}/variables", json={"name": "HUGE", "value": {"limits": [1, 1e30]}})
        assert huge.status_code == 422 and "value.limits[1]" in huge.text
        # Text jsonb cannot hold at all (a NUL character): refused here, not after Prefect's
        # 503s and its client's retries.
        nul = await editor.post(f"{API}/variables", json={"name": "NUL", "value": {"a": ["ok", "x\u0000y"]}})
        assert nul.status_code == 422 and "value.a[1]" in nul.text and "NUL" in nul.text
        updated = await editor.put(f"{API}/variables/API_URL", json={"value": "http://b"})
        assert updated.status_code == 200
        listed = (await viewer.get(f"{API}/variables")).json()["items"]
        assert listed == [{"name": "API_URL", "value": "http://b"}, {"name": "LIMITS", "value": {"max": 3}}]
        assert (await viewer.post(f"{API}/variables", json={"name": "X", "value": 1})).status_code == 403
        assert (await editor.put(f"{API}/variables/NOPE", json={"value": 1})).status_code == 404
        assert (await editor.put(f"{API}/variables/api_url", json={"value": 1})).status_code == 404

    async with sq_other.client() as intruder:
        assert (await intruder.get(f"{API}/variables")).json()["items"] == []
        assert (await intruder.put(f"{API}/variables/API_URL", json={"value": "evil"})).status_code == 404
        assert (await intruder.delete(f"{API}/variables/API_URL")).status_code == 404

    assert await tenant_env(sq_tenant.id) == {"API_URL": "http://b", "LIMITS": {"max": 3}}
    async with sq_tenant.client() as admin:
        assert (await admin.delete(f"{API}/variables/LIMITS")).status_code == 204
        assert [v["name"] for v in (await admin.get(f"{API}/variables")).json()["items"]] == ["API_URL"]


async def test_credentials_never_return_values(sq_tenant: TenantHandle, sq_other: TenantHandle) -> None:
    secret = "tok-4d1c-very-secret"
    async with sq_tenant.client(Role.EDITOR) as editor:
        types = (await editor.get(f"{API}/credential-types")).json()
        http_auth = next(t for t in types if t["slug"] == "http-auth")
        assert "token" in http_auth["secret_fields"]
        created = await editor.post(
            f"{API}/credentials",
            json={"name": "crm", "type": "http-auth", "values": {"scheme": "bearer", "token": secret}},
        )
        assert created.status_code == 201, created.text
        assert secret not in created.text and "token" in created.json()["fields"]
        dup = await editor.post(
            f"{API}/credentials",
            json={"name": "crm", "type": "http-auth", "values": {"scheme": "bearer", "token": secret}},
        )
        assert dup.status_code == 422
        unknown = await editor.post(f"{API}/credentials", json={"name": "x", "type": "nope", "values": {}})
        assert unknown.status_code == 422
        listed = await editor.get(f"{API}/credentials")
        assert [c["name"] for c in listed.json()["items"]] == ["crm"] and secret not in listed.text
        changed = await editor.put(f"{API}/credentials/crm", json={"values": {"token": "tok-2"}})
        assert changed.status_code == 200 and "tok-2" not in changed.text
    async with sq_tenant.client(Role.VIEWER) as viewer:
        assert (await viewer.get(f"{API}/credentials")).status_code == 403
    async with sq_other.client() as intruder:
        assert (await intruder.get(f"{API}/credentials")).json()["items"] == []
        assert (await intruder.put(f"{API}/credentials/crm", json={"values": {}})).status_code == 404
        assert (await intruder.delete(f"{API}/credentials/{created.json()['id']}")).status_code == 404
    async with sq_tenant.client() as admin:
        assert (await admin.delete(f"{API}/credentials/crm")).status_code == 204
        assert (await admin.get(f"{API}/credentials")).json()["items"] == []
