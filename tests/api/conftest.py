"""API test fixtures: a real uvicorn server per database, tenants with keys of every role."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.auth.permissions import Role
from api.config import ApiSettings, GoraxApiSettings
from api.db.engine import Database
from api.services.identity import create_tenant_with_admin
from flows.settings import PrefectSettings
from tests.conftest import session_dir
from tests.peers import free_port


class ServerThread:
    """A uvicorn server for one app, on its own event loop in a thread."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                access_log=False,
                # Several servers share this process, each on a loop in its own
                # thread: the standard loop (uvloop has crashed here, in a thread).
                loop="asyncio",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 90) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("API server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class ApiServer:
    """A running API on one database."""

    url: str
    database_url: str
    settings: GoraxApiSettings
    app: object
    dialect: str = field(init=False)

    def __post_init__(self) -> None:
        self.dialect = "postgresql" if self.database_url.startswith("postgresql") else "sqlite"


#: The test APIs' token-signing key and worker token (every test API accepts the same worker).
TEST_SIGNING_KEY = "5e" * 32
TEST_WORKER_TOKEN = "gxw_tests-" + uuid.uuid4().hex


def api_settings(**fields: object) -> ApiSettings:
    """The API section of a test app: the tests' signing key, plus ``fields``."""
    return ApiSettings(**{"token_signing_key": TEST_SIGNING_KEY, **fields})  # type: ignore[arg-type]


def make_settings(database_url: str, *, api: ApiSettings | None = None, **overrides: object) -> GoraxApiSettings:
    """Settings for a test API with its own state directory (the tests' signing key and worker
    token unless ``api`` or ``overrides`` say otherwise)."""
    home = session_dir() / f"api-{uuid.uuid4().hex[:8]}"
    overrides.setdefault("worker_token", TEST_WORKER_TOKEN)
    return GoraxApiSettings(
        home=home,
        database_url=database_url,
        api=api or api_settings(),
        **overrides,  # type: ignore[arg-type]
    )


def session_prefect() -> PrefectSettings:
    """The session's Prefect server, as a settings section."""
    return PrefectSettings(api_url=os.environ["PREFECT_API_URL"])


# Generous limits for the shared server; the rate-limit tests start their own.
_SHARED_CONFIG = api_settings(
    rate_limit_api=100_000, rate_limit_auth=100_000, rate_limit_execute=100_000, rate_limit_credentials=100_000
)


@pytest.fixture(scope="session")
def api_server(database_url: str) -> Iterator[ApiServer]:
    """The API on the session's database (once for SQLite, once for PostgreSQL).

    It points at the session's Prefect server; tests that reach Prefect through other areas'
    routes (the role matrix, schema fuzzing) request the ``prefect_server`` fixture to start it.
    """
    settings = make_settings(database_url, api=_SHARED_CONFIG, prefect=session_prefect())
    app = create_app(settings)
    thread = ServerThread(app).start()
    yield ApiServer(thread.url, database_url, settings, app)
    thread.stop()


@pytest.fixture(scope="session")
async def db(api_server: ApiServer) -> AsyncIterator[Database]:
    """A connection pool to the server's database, on the test event loop."""
    database = Database(api_server.database_url)
    yield database
    await database.dispose()


@dataclass
class TenantHandle:
    """A fresh tenant: its admin's e-mail and password, and an API key per role."""

    id: str
    email: str
    password: str
    keys: dict[Role, str]
    base_url: str

    def client(self, role: Role = Role.ADMIN, **kwargs: object) -> httpx.AsyncClient:
        """An HTTP client authenticated with this tenant's key for ``role``."""
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30, **kwargs)


async def new_tenant(db: Database, base_url: str) -> TenantHandle:
    """Create a tenant with an admin, then a key for every other role through the API."""
    tag = uuid.uuid4().hex[:8]
    created = await create_tenant_with_admin(db, name=f"T {tag}", admin_email=f"admin-{tag}@t.test")
    keys = {Role.ADMIN: created["api_key"]}
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {created['api_key']}"}
    ) as c:
        for role in (Role.EDITOR, Role.OPERATOR, Role.VIEWER):
            response = await c.post("/api/v1/api-keys", json={"name": role.value, "role": role.value})
            assert response.status_code == 201, response.text
            keys[role] = response.json()["key"]
    return TenantHandle(created["tenant_id"], created["email"], created["password"], keys, base_url)


@pytest.fixture
async def tenant(db: Database, api_server: ApiServer) -> TenantHandle:
    """A fresh tenant on the shared server."""
    return await new_tenant(db, api_server.url)


@pytest.fixture
async def other_tenant(db: Database, api_server: ApiServer) -> TenantHandle:
    """A second fresh tenant, for isolation checks."""
    return await new_tenant(db, api_server.url)


@pytest.fixture
async def anon(api_server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of the shared server."""
    async with httpx.AsyncClient(base_url=api_server.url, timeout=30) as client:
        yield client
