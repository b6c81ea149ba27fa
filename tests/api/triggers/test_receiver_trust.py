"""What the receiver must refuse, through a real API and Prefect: bodies nested too deeply,
replays under new delivery ids, rotated-out secrets, unsigned deliveries to a signed webhook."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from api.observability import JsonFormatter
from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import (
    add_secret,
    api_client,
    eventually,
    graph,
    hook,
    publish_new,
    webhook_urls,
)
from tests.api.triggers.test_outage import _api_process, _wait_http
from tests.conftest import session_dir
from tests.peers import free_port

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
    handler.setFormatter(JsonFormatter())  # as the API writes them: message, extras, traceback
    logger = logging.getLogger("gorax")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


async def test_a_deeply_nested_body_is_a_400_naming_the_limit_and_never_logged(
    tr_tenant: TenantHandle, api_logs: _Records
) -> None:
    async with api_client(tr_tenant) as client:
        workflow_id = await publish_new(
            client, graph(f"deep-{uuid.uuid4().hex[:6]}", [hook("open", {"scheme": "none"})])
        )
        webhook = (await webhook_urls(client, workflow_id))["open"]
        url = webhook["url"]
        json_type = {"Content-Type": "application/json"}
        # 200 KB of brackets broke the parser (500); 900 levels parsed, were stored, and then
        # every dispatch of them failed in Prefect's events API.
        for levels in (100_000, 900, 101):
            refused = await client.post(url, content=_nested(levels), headers=json_type)
            assert refused.status_code == 400, (levels, refused.text)
            error = refused.json()["error"]
            assert error["message"] == (
                "the body nests arrays and objects more than 100 levels deep; at most 100 are accepted"
            )
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


def _svix_headers(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    """What a Svix-based sender sends: the Standard Webhooks signature (``v1,`` base64
    HMAC-SHA256 with the key after ``whsec_`` over ``id.timestamp.body``, from the spec's text)
    under the ``svix-*`` header names."""
    stamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": msg_id,
        "svix-timestamp": stamp,
        "svix-signature": "v1," + base64.b64encode(mac).decode(),
        "Content-Type": "application/json",
    }


async def test_svix_headers_are_accepted_and_a_signature_without_scheme_is_verified(tr_tenant: TenantHandle) -> None:
    secret = "whsec_" + base64.b64encode(b"svix-secret-svix-secret-svix-123").decode()
    async with api_client(tr_tenant) as client:
        await add_secret(client, "svix_secret", secret)
        workflow_id = await publish_new(
            client,
            graph(
                f"svix-{uuid.uuid4().hex[:6]}",
                [
                    hook("svix", {"scheme": "standard-webhooks", "secret": "svix_secret"}),
                    # No scheme: validation reads it as standard-webhooks (the model's default).
                    hook("implicit", {"secret": "svix_secret"}),
                ],
            ),
        )
        hooks = await webhook_urls(client, workflow_id)
        body = json.dumps({"type": "user.created"}).encode()
        headers = _svix_headers(secret, f"msg_{uuid.uuid4().hex}", body)
        first = await client.post(hooks["svix"]["url"], content=body, headers=headers)
        assert first.status_code == 202, first.text
        again = await client.post(hooks["svix"]["url"], content=body, headers=headers)
        assert again.json() == {"delivery_id": first.json()["delivery_id"], "duplicate": True}

        assert hooks["implicit"]["scheme"] == "standard-webhooks"
        unsigned = await client.post(hooks["implicit"]["url"], json={"type": "user.created"})
        assert unsigned.status_code == 401, unsigned.text
        assert unsigned.json()["error"]["message"] == "signature rejected: header webhook-id is missing"
        signed_body = json.dumps({"type": "user.deleted"}).encode()
        signed_svix = _svix_headers(secret, f"msg_{uuid.uuid4().hex}", signed_body)
        accepted = await client.post(hooks["implicit"]["url"], content=signed_body, headers=signed_svix)
        assert accepted.status_code == 202, accepted.text


def _github_headers(secret: str, body: bytes, delivery: str, stamp: int | None = None) -> dict[str, str]:
    """An ``hmac-sha256`` delivery as GitHub signs it (hex HMAC-SHA256 of the body after
    ``sha256=``; with ``X-Gorax-Timestamp``, of ``timestamp.body``) and an unsigned delivery id."""
    content = body if stamp is None else f"{stamp}.".encode() + body
    mac = hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={mac}",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }
    if stamp is not None:
        headers["X-Gorax-Timestamp"] = str(stamp)
    return headers


async def test_a_replayed_hmac_delivery_under_a_new_delivery_id_is_a_duplicate(tr_tenant: TenantHandle) -> None:
    secret = "github-shared-secret"
    scheme = {"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256=", "secret": "gh_secret"}
    async with api_client(tr_tenant) as client:
        await add_secret(client, "gh_secret", secret)
        workflow_id = await publish_new(client, graph(f"replay-{uuid.uuid4().hex[:6]}", [hook("gh", scheme)]))
        webhook = (await webhook_urls(client, workflow_id))["gh"]
        url = webhook["url"]
        # GitHub's form: no timestamp, so nothing but the body is signed.
        body = json.dumps({"action": "opened", "number": 1}).encode()
        first = await client.post(url, content=body, headers=_github_headers(secret, body, "d-1"))
        assert first.status_code == 202, first.text
        # Captured and sent again, each time under a fresh delivery id (which is not signed),
        # some of them at the same moment (one commit): not one is accepted.
        replays = await asyncio.gather(
            *(client.post(url, content=body, headers=_github_headers(secret, body, f"forged-{n}")) for n in range(5))
        )
        for replay in replays:
            assert replay.status_code == 200, replay.text
            assert replay.json() == {"delivery_id": first.json()["delivery_id"], "duplicate": True}
        # With the signed timestamp: the same within the tolerance.
        stamp = int(time.time())
        timed = json.dumps({"action": "closed", "number": 1}).encode()
        second = await client.post(url, content=timed, headers=_github_headers(secret, timed, "d-2", stamp))
        assert second.status_code == 202, second.text
        forged = await client.post(url, content=timed, headers=_github_headers(secret, timed, "forged-x", stamp))
        assert forged.json() == {"delivery_id": second.json()["delivery_id"], "duplicate": True}
        # A sender's own retry, signed again with a new timestamp, is still known by its id.
        retry = await client.post(url, content=timed, headers=_github_headers(secret, timed, "d-2", stamp + 1))
        assert retry.json() == {"delivery_id": second.json()["delivery_id"], "duplicate": True}

        items = (await client.get(f"/api/v1/webhooks/{webhook['id']}/events")).json()["items"]
        kept = [d for d in items if d["status"] in ("accepted", "dispatched")]
        assert sorted(d["id"] for d in kept) == sorted([first.json()["delivery_id"], second.json()["delivery_id"]])
        reasons = sorted(d["reason"] for d in items if d["status"] == "duplicate")
        assert (
            reasons
            == ["delivery id 'd-2' was received before"]
            + ["the same signed delivery was received before (a replay; its delivery id is not signed)"] * 6
        )


@pytest.fixture
async def replica(database_url: str, tr_tenant: TenantHandle) -> AsyncIterator[str]:
    """A second API process on the trigger API's database and the same Prefect and key file:
    another replica, with a secret cache of its own."""
    port = free_port()
    env = {**os.environ, "GORAX_DATABASE_URL": database_url, "GORAX_RATE_LIMIT_WEBHOOK": "100000"}
    log = session_dir() / f"replica-{port}.log"
    process = _api_process(port, env, log)
    try:
        await _wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_a_changed_secret_takes_effect_at_once_on_every_replica(tr_tenant: TenantHandle, replica: str) -> None:
    scheme = {"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256=", "secret": "rotating"}
    async with api_client(tr_tenant) as client, httpx.AsyncClient(timeout=60) as sender:
        await add_secret(client, "rotating", "old-secret")
        workflow_id = await publish_new(client, graph(f"rotate-{uuid.uuid4().hex[:6]}", [hook("gh", scheme)]))
        path = httpx.URL((await webhook_urls(client, workflow_id))["gh"]["url"]).path
        here, there = tr_tenant.base_url + path, replica + path

        def delivery(secret: str) -> tuple[bytes, dict[str, str]]:
            body = json.dumps({"n": uuid.uuid4().hex}).encode()
            return body, _github_headers(secret, body, uuid.uuid4().hex)

        async def post(url: str, secret: str) -> int:
            body, headers = delivery(secret)
            return (await sender.post(url, content=body, headers=headers)).status_code

        new = "It's a Secret to Everybody"  # GitHub's example: spaces are part of the secret

        async def rotate(*secrets: str) -> None:
            changed = await client.put("/api/v1/credentials/rotating", json={"values": {"secrets": list(secrets)}})
            assert changed.status_code == 200, changed.text

        # Both replicas know the old secret (the other one from a delivery of its own).
        assert [await post(there, "old-secret"), await post(here, "old-secret")] == [202, 202]
        # Rotation: the new secret beside the old, at once on both replicas, then the old removed.
        await rotate("old-secret", new)
        for url in (there, here):
            answers = [await post(url, "old-secret"), await post(url, new), await post(url, "It's")]
            assert answers == [202, 202, 401]
        await rotate(new)
        for url in (there, here):
            assert [await post(url, "old-secret"), await post(url, new)] == [401, 202]

        # A replay of a delivery the other replica accepted is a duplicate here too.
        body, headers = delivery(new)
        first = await sender.post(there, content=body, headers=headers)
        assert first.status_code == 202, first.text
        replayed = await sender.post(here, content=body, headers={**headers, "X-GitHub-Delivery": "forged"})
        assert replayed.json() == {"delivery_id": first.json()["delivery_id"], "duplicate": True}

        assert (await client.delete("/api/v1/credentials/rotating")).status_code == 204
        gone = await sender.post(there, content=body, headers=headers)
        assert gone.status_code == 503, gone.text
        assert gone.json()["error"]["message"] == "the signing secret cannot be read right now; retry later"
