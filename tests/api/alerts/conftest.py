"""Alert fixtures: one API that Prefect's automations can post back to, peers for each channel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from api.app import create_app
from api.db.engine import Database
from flows.runtime.settings import RuntimeSettings
from tests.api.conftest import ServerThread, TenantHandle, api_settings, make_settings, new_tenant, session_prefect
from tests.peers import HttpPeer, PeerResponse, free_port


@pytest.fixture(scope="package")
def slack_peer() -> Iterator[HttpPeer]:
    """A Slack-compatible stand-in: answers chat.postMessage like Slack."""
    peer = HttpPeer().start()
    peer.route("POST", "/api/chat.postMessage", PeerResponse(200, {"ok": True, "ts": "1.0"}))
    yield peer
    peer.stop()


@pytest.fixture(scope="package")
def hook_peer() -> Iterator[HttpPeer]:
    """The receiver of webhook-channel alerts."""
    peer = HttpPeer().start()
    yield peer
    peer.stop()


class Mailbox:
    """A loopback SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture(scope="package")
async def alerts_pool(prefect_server: Any) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"gorax-al-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="gorax"))
    return name


@pytest.fixture(scope="package")
def alerts_api(alerts_pool: str, sqlite_url: str, slack_peer: HttpPeer) -> Iterator[ServerThread]:
    """The API, knowing its own URL (Prefect's alert automations post to it)."""
    port = free_port()
    settings = make_settings(
        sqlite_url.replace(".db", "-alerts.db"),
        work_pool=alerts_pool,
        api_url=f"http://127.0.0.1:{port}",
        api=api_settings(rate_limit_api=100_000, rate_limit_execute=100_000),
        prefect=session_prefect(),
        runtime=RuntimeSettings(http_allowed_networks="127.0.0.0/8", slack_api_url=f"{slack_peer.url}/api/"),
    )
    thread = ServerThread(create_app(settings))
    thread.port, thread.url = port, f"http://127.0.0.1:{port}"
    thread.server.config.port = port
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture(scope="package")
async def alerts_db(alerts_api: ServerThread, sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url.replace(".db", "-alerts.db"))
    yield database
    await database.dispose()


@pytest.fixture
async def alerts_tenant(alerts_db: Database, alerts_api: ServerThread) -> TenantHandle:
    return await new_tenant(alerts_db, alerts_api.url)


def client_of(tenant: TenantHandle, role: str = "admin") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=tenant.base_url, timeout=180, headers={"Authorization": f"Bearer {tenant.keys[role]}"}
    )  # type: ignore[index]
