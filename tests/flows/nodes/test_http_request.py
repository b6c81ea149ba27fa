"""http.request at run time: the node over the guarded client, against loopback peers."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from blocks.types import HttpAuth
from flows.errors import BlockedAddressError, HttpStatusError, ResponseTooLarge
from flows.nodes.http_request import HttpRequest
from tests.peers import HttpPeer, PeerResponse

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


class Ctx:
    node_id = "call"

    def __init__(self, allowed: list[Any] = LOOPBACK, credential: Any = None) -> None:
        self.allowed_networks = allowed
        self._credential = credential

    async def credential(self, name: str) -> Any:
        return self._credential


def config(**kwargs: Any) -> HttpRequest.Config:
    return HttpRequest.Config.model_validate(kwargs)


async def send_request(config: HttpRequest.Config, ctx: Ctx) -> Any:
    return await HttpRequest().run(config, ctx)  # type: ignore[arg-type]


async def test_json_round_trip_with_query_headers_and_bearer(http_peer) -> None:
    http_peer.route("POST", "/items", PeerResponse(201, {"id": 7}, headers={"X-Trace": "t1"}))
    result = await send_request(
        config(
            method="POST",
            url=f"{http_peer.url}/items",
            query={"a": [1, 2]},
            headers={"X-Team": "ops"},
            json={"name": "n"},
            credential="api",
        ),
        Ctx(credential=HttpAuth(scheme="bearer", token="tok-123456")),
    )
    assert result["status"] == 201 and result["body"] == {"id": 7}
    assert result["headers"]["x-trace"] == "t1"
    request = http_peer.received("POST", "/items")[0]
    assert request.path == "/items?a=1&a=2"
    assert request.json() == {"name": "n"}
    assert request.headers["x-team"] == "ops"
    assert request.headers["authorization"] == "Bearer tok-123456"


async def test_form_and_raw_bodies(http_peer) -> None:
    await send_request(config(method="POST", url=f"{http_peer.url}/f", form={"x": "1"}), Ctx())
    await send_request(config(method="PUT", url=f"{http_peer.url}/r", body="plain"), Ctx())
    assert http_peer.received("POST", "/f")[0].body == b"x=1"
    assert http_peer.received("PUT", "/r")[0].body == b"plain"


async def test_loopback_refused_unless_allowed(http_peer) -> None:
    with pytest.raises(BlockedAddressError, match="loopback"):
        await send_request(config(url=f"{http_peer.url}/x"), Ctx(allowed=[]))
    assert http_peer.received() == []


async def test_redirects_bounded_and_checked(http_peer) -> None:
    http_peer.route("GET", "/a", PeerResponse(302, "", headers={"Location": "/b"}))
    http_peer.route("GET", "/b", PeerResponse(200, {"done": True}))
    http_peer.route("GET", "/loop", PeerResponse(302, "", headers={"Location": "/loop"}))
    http_peer.route("GET", "/meta", PeerResponse(302, "", headers={"Location": "http://169.254.169.254/latest"}))
    assert (await send_request(config(url=f"{http_peer.url}/a"), Ctx()))["body"] == {"done": True}
    with pytest.raises(Exception, match="max_redirects"):
        await send_request(config(url=f"{http_peer.url}/loop", max_redirects=2), Ctx())
    assert len(http_peer.received("GET", "/loop")) == 3
    with pytest.raises(BlockedAddressError, match="metadata"):
        await send_request(config(url=f"{http_peer.url}/meta"), Ctx())
    no_follow = await send_request(config(url=f"{http_peer.url}/a", follow_redirects=False), Ctx())
    assert no_follow["status"] == 302


@pytest.mark.parametrize(
    "auth",
    [
        HttpAuth(scheme="bearer", token="tok-123456"),
        HttpAuth(scheme="api_key", api_key="key-123456", api_key_name="X-Api-Key"),
        HttpAuth(scheme="api_key", api_key="key-123456", api_key_name="key", api_key_in="query"),
    ],
    ids=["bearer", "api-key-header", "api-key-query"],
)
async def test_a_credential_never_follows_a_redirect_to_another_origin(http_peer, auth: HttpAuth) -> None:
    other = HttpPeer().start()  # another port: another origin
    try:
        http_peer.route("GET", "/go", PeerResponse(302, "", headers={"Location": f"{other.url}/landed"}))
        result = await send_request(config(url=f"{http_peer.url}/go", credential="api"), Ctx(credential=auth))
        assert result["status"] == 200
        first, landed = http_peer.received("GET", "/go")[0], other.requests[0]
        assert "123456" in first.path + str(first.headers)  # the credential went to its origin
        assert landed.path == "/landed"
        assert "123456" not in landed.path + str(landed.headers)
    finally:
        other.stop()


async def test_response_size_cap_and_status_errors(http_peer) -> None:
    http_peer.route("GET", "/big", PeerResponse(200, "x" * 5000))
    http_peer.route("GET", "/bad", PeerResponse(503, {"error": "down"}))
    with pytest.raises(ResponseTooLarge, match="1000"):
        await send_request(config(url=f"{http_peer.url}/big", max_response_bytes=1000), Ctx())
    with pytest.raises(HttpStatusError, match="503"):
        await send_request(config(url=f"{http_peer.url}/bad"), Ctx())
    soft = await send_request(config(url=f"{http_peer.url}/bad", fail_on_status=False), Ctx())
    assert soft == {"status": 503, "headers": soft["headers"], "body": {"error": "down"}}
