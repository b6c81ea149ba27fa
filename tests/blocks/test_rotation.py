"""``gorax keys rotate``: KEK rotation and per-tenant data-key rotation keep values readable."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from blocks import keys, service
from blocks.loader import load_credential
from blocks.providers import KEY_FILE_NAME, create_key_file
from blocks.settings import KeySettings
from flows.run_graph import run_graph
from flows.settings import get_settings
from tests.blocks.conftest import Tenant, new_tenant
from tests.peers import HttpPeer


async def _gorax(*args: str) -> tuple[int, str, str]:
    """Run the real ``gorax`` CLI in its own process, as an operator would."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gorax"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def read_secret(name: str, tenant_id: str, peer: HttpPeer) -> str:
    """Run a workflow whose http.request authenticates with credential ``name``; returns the
    bearer token the peer received."""
    before = len(peer.requests)
    graph = {
        "format": "gorax/graph@1",
        "name": "rotation-check",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {"id": "call", "type": "http.request", "config": {"url": f"{peer.url}/who", "credential": name}},
        ],
        "edges": [{"source": "start", "target": "call"}],
    }
    state = await run_graph(graph=graph, tenant=tenant_id, return_state=True)
    assert state.is_completed(), state.message
    (request,) = peer.requests[before:]
    return request.headers["authorization"].removeprefix("Bearer ")


async def test_kek_rotation_rewraps_every_tenant(prefect_server, http_peer: HttpPeer) -> None:
    first, second = new_tenant(), new_tenant()
    await service.create_credential("gh", "http-auth", {"token": "tok-first-1"}, **first.kw)
    await service.create_credential("gh", "http-auth", {"token": "tok-second-2"}, **second.kw)
    server_key_file = get_settings().state_dir / keys.SERVER_KEY_FILE
    server_key = keys.prefect_server_encryption_key(server_key_file)
    assert await read_secret("gh", first.id, http_peer) == "tok-first-1"
    before = await keys.read_keyring(first.id)
    assert before is not None

    code, out, err = await _gorax("keys", "rotate")
    assert code == 0, err
    report = json.loads(out)
    assert report["kek"] != report["previous_kek"]
    assert report["tenants"][first.id] == 1 and report["tenants"][second.id] == 1

    keys.forget_cached_keys()  # a fresh worker: unwraps the data keys under the new KEK
    for tenant, value in ((first, "tok-first-1"), (second, "tok-second-2")):
        keyring = await keys.read_keyring(tenant.id)
        assert keyring is not None
        assert {entry.kek_id for entry in keyring.keys.values()} == {report["kek"]}
        assert await read_secret("gh", tenant.id, http_peer) == value
        if tenant is first:  # same data key, new wrapping
            assert keyring.current == before.current
            assert keyring.keys[keyring.current].wrapped != before.keys[before.current].wrapped
    assert keys.prefect_server_encryption_key(server_key_file) == server_key
    key_file = get_settings().state_dir / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert set(json.loads(key_file.read_text())["keys"]) >= {report["kek"], report["previous_kek"]}


async def test_data_key_rotation_reseals_one_tenant(prefect_server, tenant: Tenant, http_peer: HttpPeer) -> None:
    other = new_tenant()
    await service.create_credential("gh", "http-auth", {"token": "tok-rot-1"}, **tenant.kw)
    await service.create_credential("db", "database-url", {"url": "postgresql://u:pw-rot@127.0.0.1/db"}, **tenant.kw)
    await service.create_credential("gh", "http-auth", {"token": "tok-other"}, **other.kw)
    old = await keys.read_keyring(tenant.id)
    other_before = await keys.read_keyring(other.id)
    assert old is not None and other_before is not None
    assert await read_secret("gh", tenant.id, http_peer) == "tok-rot-1"

    code, out, err = await _gorax("keys", "rotate", "--tenant", tenant.slug, "--data-key", "--drop-old")
    assert code == 0, err
    report = json.loads(out)
    assert sorted(report["resealed"]) == ["db", "gh"] and report["dropped_keys"] == [old.current]

    new = await keys.read_keyring(tenant.id)
    assert new is not None and list(new.keys) == [report["data_key"]] != [old.current]
    keys.forget_cached_keys()
    assert await read_secret("gh", tenant.id, http_peer) == "tok-rot-1"
    db = await load_credential("db", **tenant.kw)
    assert db.url.get_secret_value() == "postgresql://u:pw-rot@127.0.0.1/db"
    assert await keys.read_keyring(other.id) == other_before  # other tenants untouched
    assert await read_secret("gh", other.id, http_peer) == "tok-other"


async def test_cli_refuses_tenant_without_data_key() -> None:
    code, _, err = await _gorax("keys", "rotate", "--tenant", "acme")
    assert code == 2 and "--tenant goes with --data-key" in err


def test_prefect_server_key_is_a_stable_fernet_key_stored_wrapped(tmp_path) -> None:
    settings = KeySettings(key_file=tmp_path / KEY_FILE_NAME)
    create_key_file(tmp_path / KEY_FILE_NAME)
    path = tmp_path / keys.SERVER_KEY_FILE
    key = keys.prefect_server_encryption_key(path, settings)
    Fernet(key)  # a valid Fernet key
    stored = path.read_text()
    assert key not in stored and base64.urlsafe_b64decode(key).hex() not in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.prefect_server_encryption_key(path, KeySettings(key_file=tmp_path / KEY_FILE_NAME)) == key
