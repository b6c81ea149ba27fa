"""What authentication, authorization and the audit log cost per API request.

Starts the API on a fresh SQLite database (no Prefect needed), creates a tenant, then times
sequential requests from one client. Baseline: ``GET /healthz`` on the same server (no
credential, no database), so the figures show the cost the identity layer adds.

Run: .venv/bin/python bench/api_auth.py
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import _free_port, load_note, report  # noqa: E402

N = 200


async def _timed(client: httpx.AsyncClient, method: str, path: str, n: int, **kwargs: object) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.request(method, path, **kwargs)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code < 400, response.text
    return samples


async def main() -> None:
    from api.app import create_app
    from api.config import ApiSettings, GoraxApiSettings
    from api.db.engine import Database
    from api.services.identity import create_tenant_with_admin

    home = Path(tempfile.mkdtemp(prefix="gorax-bench-api-"))
    url = f"sqlite+aiosqlite:///{home / 'gorax.db'}"
    api = ApiSettings(token_signing_key=secrets.token_hex(32), rate_limit_api=10**9, rate_limit_auth=10**9)
    settings = GoraxApiSettings(home=home, database_url=url, api=api)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, web_dist=home), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        await asyncio.sleep(0.05)
    db = Database(url)
    created = await create_tenant_with_admin(db, name="bench", admin_email="bench@x.test")
    await db.dispose()
    print(load_note())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        baseline = await _timed(client, "GET", "/healthz", N)
        key = {"Authorization": f"Bearer {created['api_key']}"}
        login = await _timed(
            client, "POST", "/api/v1/auth/login", 10, json={"email": created["email"], "password": created["password"]}
        )
        token = (
            await client.post("/api/v1/auth/login", json={"email": created["email"], "password": created["password"]})
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        with_key = await _timed(client, "GET", "/api/v1/auth/me", N, headers=key)
        with_token = await _timed(client, "GET", "/api/v1/auth/me", N, headers=bearer)
        audited = await _timed(
            client, "POST", "/api/v1/api-keys", 50, headers=key, json={"name": "b", "role": "viewer"}
        )
    server.should_exit = True
    thread.join(10)
    label = "GET /healthz (no auth, no DB)"
    report("api_auth", "GET /auth/me with an API key", "ms", with_key, baseline, label)
    report("api_auth", "GET /auth/me with an access token", "ms", with_token, baseline, label)
    report("api_auth", "POST /api-keys (write + hash-chained audit event)", "ms", audited, baseline, label)
    report(
        "api_auth",
        "POST /auth/login (scrypt N=2^15)",
        "ms",
        login,
        baseline,
        label,
        note="deliberately slow: password hashing",
    )


if __name__ == "__main__":
    asyncio.run(main())
