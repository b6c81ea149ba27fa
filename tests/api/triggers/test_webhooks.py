"""POST /webhook/{token} through a real API (SQLite and PostgreSQL) and a real Prefect server."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.api.conftest import TenantHandle
from tests.api.triggers.conftest import (
    add_secret,
    api_client,
    eventually,
    flow_runs,
    graph,
    hook,
    publish_new,
    signed,
    stripe_body,
    webhook_urls,
)

pytestmark = pytest.mark.timeout(900)  # deploys and automation runs on a loaded machine

STD = {"scheme": "standard-webhooks", "secret": "std_secret"}
GH = {"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256=", "secret": "gh_secret"}
STRIPE = {"scheme": "stripe", "secret": "stripe_secret"}
SECRETS = {
    "std_secret": "whsec_" + base64.b64encode(b"k" * 32).decode(),
    "gh_secret": "github-shared-secret",
    "stripe_secret": "whsec_stripe_plain",
}


async def _setup(tenant: TenantHandle, client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    for name, value in SECRETS.items():
        await add_secret(client, name, value)
    g = graph(
        f"signed-{uuid.uuid4().hex[:6]}",
        [
            hook("std", STD),
            hook("gh", GH),
            hook("stripe", STRIPE),
            hook(
                "open",
                {"scheme": "none"},
                filter="trigger.body.kind == 'keep'",
                max_body_bytes=64,
                content_types=["application/json", "text/plain"],
                methods=["POST", "PUT"],
            ),
        ],
    )
    workflow_id = await publish_new(client, g)
    return workflow_id, await webhook_urls(client, workflow_id)


async def test_every_scheme_valid_wrong_stale_and_replayed(tr_tenant: TenantHandle) -> None:
    async with api_client(tr_tenant) as client:
        workflow_id, hooks = await _setup(tr_tenant, client)
        assert set(hooks) == {"std", "gh", "stripe", "open"}
        assert hooks["std"]["scheme"] == "standard-webhooks"
        accepted: dict[str, str] = {}
        stale = int(time.time()) - 3600
        for node, scheme in (("std", STD), ("gh", GH), ("stripe", STRIPE)):
            url = hooks[node]["url"]
            secret = SECRETS[scheme["secret"]]
            body = stripe_body(scheme=node) if node == "stripe" else json.dumps({"scheme": node}).encode()
            headers = signed(scheme, body, secret)
            first = await client.post(url, content=body, headers=headers)
            assert first.status_code == 202, (node, first.text)
            delivery = first.json()["delivery_id"]
            accepted[delivery] = node
            again = await client.post(url, content=body, headers=headers)
            assert again.status_code == 200, (node, again.text)
            assert again.json() == {"delivery_id": delivery, "duplicate": True}
            wrong = await client.post(url, content=body, headers=signed(scheme, body, secret + "x"))
            assert wrong.status_code == 401, (node, wrong.text)
            assert "does not match" in wrong.json()["error"]["message"]
            if node == "gh":
                # GitHub signs no timestamp: a stale one is the signed X-Gorax-Timestamp form.
                import hashlib
                import hmac

                mac = hmac.new(secret.encode(), f"{stale}.".encode() + body, hashlib.sha256).hexdigest()
                old = {
                    "X-Hub-Signature-256": f"sha256={mac}",
                    "X-Gorax-Timestamp": str(stale),
                    "Content-Type": "application/json",
                }
            else:
                stale_body = stripe_body(scheme=node) if node == "stripe" else body
                old = signed(scheme, stale_body, secret, timestamp=stale)
                body = stale_body
            late = await client.post(url, content=body, headers=old)
            assert late.status_code == 401, (node, late.text)
            assert "tolerance is 300 s" in late.json()["error"]["message"]

        history = await client.get(f"/api/v1/webhooks/{hooks['std']['id']}/events")
        statuses = sorted(d["status"] for d in history.json()["items"])
        assert statuses[:2] == ["bad_signature", "bad_signature"] and "duplicate" in statuses

        async def all_dispatched() -> bool:
            for node in ("std", "gh", "stripe"):
                items = (
                    await client.get(f"/api/v1/webhooks/{hooks[node]['id']}/events", params={"status": "accepted"})
                ).json()["items"]
                if items:
                    return False
            return True

        await eventually(all_dispatched, timeout=120)

        async def runs() -> list[Any]:
            found = await flow_runs(workflow_id)
            return found if len(found) >= len(accepted) else []

        found = await eventually(runs, timeout=180)
        assert len(await flow_runs(workflow_id)) == len(accepted)
        by_delivery = {r.parameters["trigger"]["delivery_id"]: r for r in found}
        assert set(by_delivery) == set(accepted)
        for delivery, node in accepted.items():
            run = by_delivery[delivery]
            assert run.parameters["trigger_node"] == node
            assert run.parameters["trigger"]["body"]["scheme"] == node
            assert "webhook-signature" in run.parameters["trigger"]["headers"] or node != "std"


async def test_filter_size_method_type_token_and_rotation(tr_tenant: TenantHandle) -> None:
    async with api_client(tr_tenant) as client:
        workflow_id, hooks = await _setup(tr_tenant, client)
        url, webhook_id = hooks["open"]["url"], hooks["open"]["id"]
        skipped = await client.post(url, json={"kind": "skip"})
        assert skipped.status_code == 200 and skipped.json()["filtered"] is True
        kept = await client.put(url, json={"kind": "keep"})
        assert kept.status_code == 202, kept.text
        # The receiver is served directly (api/direct.py): the same request id, security and
        # rate-limit headers, and metrics by route template as every other route.
        assert kept.headers["x-request-id"].startswith("req_")
        assert kept.headers["x-content-type-options"] == "nosniff"
        assert int(kept.headers["x-ratelimit-limit"]) > 0
        metrics = (await client.get(tr_tenant.base_url + "/metrics")).text
        assert 'route="/webhook/{token}",status="202"' in metrics
        big = await client.post(url, json={"kind": "keep", "pad": "x" * 100})
        assert big.status_code == 413 and big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert (await client.delete(url)).status_code == 405
        form = await client.post(url, data={"kind": "keep"})
        assert form.status_code == 415 and form.json()["error"]["details"]["header"] == "Content-Type"
        text = await client.post(url, content=b"hello", headers={"Content-Type": "text/plain"})
        assert text.status_code == 200 and text.json()["filtered"] is True  # body.kind is absent
        bad_json = await client.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400
        nul = await client.post(url, json={"kind": "keep", "note": "a\u0000b"})
        assert nul.status_code == 400 and "request.body.note" in nul.json()["error"]["message"]
        assert (await client.post(url.rsplit("/", 1)[0] + "/" + "z" * 43, json={})).status_code == 404
        # Bad parameters are named (and nothing is stored for them).
        for bad_url, path in (
            (url + "?timeout=0", "query.timeout"),
            (url + "?wait=maybe", "query.wait"),
            (url.rsplit("/", 1)[0] + "/short", "path.token"),
        ):
            refused = await client.post(bad_url, json={"kind": "keep"})
            assert refused.status_code == 422, refused.text
            assert [e["path"] for e in refused.json()["error"]["details"]["errors"]] == [path]

        history = (await client.get(f"/api/v1/webhooks/{webhook_id}/events")).json()
        assert sorted(d["status"] for d in history["items"]) in (
            ["accepted", "filtered", "filtered"],
            ["dispatched", "filtered", "filtered"],
        )
        assert history["total"] == 3

        rotated = await client.post(f"/api/v1/webhooks/{webhook_id}/rotate")
        assert rotated.status_code == 200 and rotated.json()["url"] != url
        assert (await client.post(url, json={"kind": "keep"})).status_code == 404
        assert (await client.post(rotated.json()["url"], json={"kind": "keep"})).status_code == 202
        # The receiver keeps webhooks in a cache: pausing the workflow still applies at once.
        assert (await client.post(f"/api/v1/workflows/{workflow_id}/pause")).status_code == 200
        paused = await client.post(rotated.json()["url"], json={"kind": "keep"})
        assert paused.status_code == 409 and "paused" in paused.json()["error"]["message"]
        assert (await client.post(f"/api/v1/workflows/{workflow_id}/resume")).status_code == 200
        # The webhook's automation stayed enabled while the workflow was paused, so a delivery
        # right after the resume starts its run (no wait for Prefect to take an automation up).
        assert (await client.post(rotated.json()["url"], json={"kind": "keep"})).status_code == 202

        tested = await client.post(f"/api/v1/webhooks/{hooks['std']['id']}/test", json={"body": {"hello": "test"}})
        assert tested.status_code == 202, tested.text
        replayed = await client.post(f"/api/v1/webhooks/{webhook_id}/events/{kept.json()['delivery_id']}/replay")
        assert replayed.status_code == 202, replayed.text
        assert replayed.json()["delivery_id"] != kept.json()["delivery_id"]

        async def all_runs() -> list[Any]:  # kept, rotated, resumed, replay (+ test on std)
            found = await flow_runs(workflow_id)
            return found if len(found) >= 5 else []

        found = await eventually(all_runs, timeout=180)
        nodes = sorted(r.parameters["trigger_node"] for r in found)
        assert nodes == ["open", "open", "open", "open", "std"]
        replay_run = [r for r in found if r.parameters["trigger"].get("replay_of")]
        assert replay_run and replay_run[0].parameters["trigger"]["body"] == {"kind": "keep"}

        viewer = await client.post(
            f"/api/v1/webhooks/{webhook_id}/rotate", headers={"Authorization": f"Bearer {tr_tenant.keys['viewer']}"}
        )
        assert viewer.status_code == 403
