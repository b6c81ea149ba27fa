"""``gorax tenants create`` / ``gorax users`` and the first-run bootstrap."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

from api.auth.tokens import TokenSigner
from api.bootstrap import bootstrap_first_tenant
from api.db.engine import Database
from api.services import auth as auth_service
from api.services.api_keys import authenticate_api_key
from api.services.audit import AuditContext
from tests.api.conftest import api_settings, make_settings


def _gorax(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    gorax = str(Path(sys.executable).parent / "gorax")
    return subprocess.run([gorax, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


async def test_tenants_create_json_then_sign_in(sqlite_url: str) -> None:
    # The CLI is the same code on both databases; SQLite keeps this test quick.
    settings = make_settings(sqlite_url)
    env = {"GORAX_HOME": str(settings.home), "GORAX_DATABASE_URL": sqlite_url}
    email = f"cli-{uuid.uuid4().hex[:6]}@x.test"
    created = _gorax(env, "tenants", "create", "CLI Co", "--admin", email, "--json")
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert set(result) == {"tenant_id", "email", "password", "api_key"}
    added = _gorax(env, "users", "add", f"op-{email}", "--tenant", result["tenant_id"], "--role", "operator", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "operator"
    db = Database(sqlite_url)
    try:
        pair = await auth_service.login(
            db,
            TokenSigner(b"k" * 32, 60),
            api_settings(),
            email=email,
            password=result["password"],
            context=AuditContext.system("test"),
        )
        assert [(t.id, t.role) for t in pair.tenants] == [(result["tenant_id"], "admin")]
        async with db.system_scope() as session:
            key = await authenticate_api_key(session, result["api_key"])
        assert (key.tenant_id, key.role) == (result["tenant_id"], "admin")
    finally:
        await db.dispose()


async def test_bootstrap_creates_the_first_tenant_once(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    first = await bootstrap_first_tenant(settings)
    assert first is not None and set(first) == {"tenant_id", "email", "password", "api_key"}
    assert first["api_key"].startswith("gx_") and first["password"]
    assert await bootstrap_first_tenant(settings) is None


def test_keys_init_makes_the_key_file_once(tmp_path: Path) -> None:
    env = {"GORAX_HOME": str(tmp_path)}
    made = _gorax(env, "keys", "init")
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / "gorax-kek.json"
    assert json.loads(made.stdout) == {
        "provider": "local",
        "key_file": str(key_file),
        "kek": json.loads(key_file.read_text())["current"],
    }
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_text()
    again = _gorax(env, "keys", "init")
    assert again.returncode == 1 and "already exists; it was left as it is" in again.stderr
    assert key_file.read_text() == before
    elsewhere = _gorax({**env, "GORAX_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}, "keys", "init")
    assert elsewhere.returncode == 2 and "kept outside Gorax" in elsewhere.stderr
