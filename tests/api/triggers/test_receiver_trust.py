"""What the receiver must refuse, through a real API and Prefect: bodies nested too deeply,
replays under new delivery ids, rotated-out secrets, unsigned deliveries to a signed webhook."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import api_client, eventually, graph, hook, publish_new, webhook_urls

pytestmark = pytest.mark.timeout(600)  # publishing deploys on a loaded machine


class _Records(logging.Handler):
    """Every record the API's ``gorax`` loggers write (they do not propagate to the root)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def api_logs() -> Iterator[_Records]:
    handler = _Records()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("gorax")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


async def test_a_deeply_nested_body_is_a_400_naming_the_limit_and_never_logged(
        tr_tenant: TenantHandle, api_logs: _Records) -> None:
    async with api_client(tr_tenant) as client:
        workflow_id = await publish_new(client, graph(f"deep-{uuid.uuid4().hex[:6]}",
                                                      [hook("open", {"scheme": "none"})]))
        webhook = (await webhook_urls(client, workflow_id))["open"]
        url = webhook["url"]
        json_type = {"Content-Type": "application/json"}
        # 200 KB of brackets broke the parser (500); 900 levels parsed, were stored, and then
        # every dispatch of them failed in Prefect's events API.
        for levels in (100_000, 900, 101):
            refused = await client.post(url, content=_nested(levels), headers=json_type)
            assert refused.status_code == 400, (levels, refused.text)
            error = refused.json()["error"]
            assert error["message"] == ("the body nests arrays and objects more than 100 levels "
                                        "deep; at most 100 are accepted")
            assert error["details"] == {"field": "body", "limit": 100}
        # Brackets inside strings are text, not nesting; 100 levels are fine.
        text = {"note": "[" * 500}
        assert (await client.post(url, json=text)).status_code == 202
        assert (await client.post(url, content=_nested(100), headers=json_type)).status_code == 202
        events = f"/api/v1/webhooks/{webhook['id']}/events"
        history = (await client.get(events)).json()
        assert history["total"] == 2  # nothing of the refused ones was stored

        async def dispatched() -> bool:  # 100 levels also pass Prefect's events API
            items = (await client.get(events)).json()["items"]
            return all(item["status"] == "dispatched" for item in items)

        await eventually(dispatched, timeout=120)
    assert not [line for line in api_logs.lines if "unhandled" in line or "[[[[" in line]
