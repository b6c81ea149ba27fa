"""Web and collaboration test fixtures: the real API (SQLite) in a uvicorn thread, users per role."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.config import GoraxApiSettings

COLLAB_PATH = "/api/v1/workflows/{workflow_id}/collab"


@dataclass
class User:
    email: str
    password: str
    role: str
    api_key: str | None = None


@dataclass
class WebApi:
    """The running API with a tenant whose admin, editor and viewer can sign in."""

    url: str
    app: Any
    settings: GoraxApiSettings
    tenant_id: str
    users: dict[str, User]

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def collab_url(self, workflow_id: str, token: str | None = None) -> str:
        url = self.ws_url + COLLAB_PATH.format(workflow_id=workflow_id)
        return url + (f"?token={token}" if token else "")

    @property
    def collab(self) -> Any:
        return self.app.state.collab

    def on_loop(self, coro: Any) -> Any:
        """Run a coroutine on the API's event loop (its rooms live there) and return the result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.collab.loop)
        return future.result(30)


def _mount_collab(app: Any) -> None:
    # The API mounts api.collab.routes with its route modules; mount it here if it does not yet.
    from api.routes import ROUTE_MODULES

    if "api.collab.routes" not in ROUTE_MODULES:
        from api.collab.routes import router

        app.include_router(router, prefix="/api/v1")
        # Keep the editor's catch-all static mount last, as the API's own routes are.
        from starlette.routing import Mount

        routes = app.router.routes
        routes.sort(key=lambda r: isinstance(r, Mount) and r.path == "")


@pytest.fixture(scope="session")
def web_api(sqlite_url: str, prefect_server: Any) -> Iterator[WebApi]:
    """The API on SQLite with a fresh tenant: an admin, an editor and a viewer (API keys too).

    Publishing deploys to a work pool of this session's own (see ``web_worker``).
    """
    from api.app import create_app
    from api.auth.permissions import Role
    from api.services.audit import AuditContext
    from api.services.identity import add_member, create_tenant_with_admin
    from api.db.engine import Database
    from tests.api.conftest import _SHARED_CONFIG, ServerThread, make_settings

    settings = make_settings(sqlite_url, api=_SHARED_CONFIG, work_pool=f"web-{uuid.uuid4().hex[:6]}")
    app = create_app(settings)
    _mount_collab(app)
    thread = ServerThread(app).start()

    async def bootstrap() -> tuple[str, dict[str, User]]:
        db = Database(sqlite_url)
        try:
            tag = uuid.uuid4().hex[:6]
            created = await create_tenant_with_admin(db, name=f"Web {tag}", admin_email=f"admin-{tag}@web.test",
                                                     admin_name="Ada Admin")
            members = {}
            # Users of the other roles as an operator adds them (gorax users add).
            async with db.tenant_scope(tenant_id=created["tenant_id"]) as session:
                for role, name in (("editor", "Eve Editor"), ("viewer", "Vic Viewer")):
                    members[role] = await add_member(
                        session, tenant_id=created["tenant_id"], email=f"{role}-{tag}@web.test",
                        role=Role(role), name=name, context=AuditContext.system("tests"))
        finally:
            await db.dispose()
        users = {"admin": User(created["email"], created["password"], "admin", created["api_key"])}
        async with httpx.AsyncClient(base_url=thread.url, timeout=30,
                                     headers={"Authorization": f"Bearer {created['api_key']}"}) as c:
            for role, (member, password) in members.items():
                k = await c.post("/api/v1/api-keys", json={"name": role, "role": role})
                assert k.status_code == 201, k.text
                users[role] = User(member.email, password, role, k.json()["key"])
        return created["tenant_id"], users

    tenant_id, users = asyncio.run(bootstrap())
    yield WebApi(thread.url, app, settings, tenant_id, users)
    thread.stop()


@pytest.fixture(scope="session")
def web_worker(web_api: WebApi) -> Iterator[Any]:
    """A warm Gorax worker polling the web tests' work pool (runs published workflows)."""
    from tests.flows.worker.conftest import WorkerProcess

    worker = WorkerProcess(web_api.settings.work_pool, f"web-{uuid.uuid4().hex[:6]}").start()
    asyncio.run(worker.started())
    yield worker
    worker.stop()


BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        yield b
        await b.close()


class Session:
    """One signed-in browser context and its page."""

    def __init__(self, context: Any, page: Any, api: WebApi, user: User) -> None:
        self.context, self.page, self.api, self.user = context, page, api, user
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    async def shot(self, name: str) -> Path:
        """Save a screenshot under tests/artifacts/ and return its path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path


@pytest.fixture
async def sign_in(browser: Any, web_api: WebApi) -> AsyncIterator[Callable[[str], Awaitable[Session]]]:
    """Open a fresh 1280x800 context and sign in through the form as ``role``."""
    contexts: list[Any] = []

    async def open_as(role: str) -> Session:
        user = web_api.users[role]
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(20_000)
        await page.goto(web_api.url + "/")
        await page.get_by_label("Email").fill(user.email)
        await page.get_by_label("Password").fill(user.password)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_test_id("whoami").wait_for()
        return Session(context, page, web_api, user)

    yield open_as
    for context in contexts:
        await context.close()
