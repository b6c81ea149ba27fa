"""http.request at run time: guarded httpx against a loopback peer."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from blocks.types import HttpAuth
from flows.nodes.http_request import HttpRequest
from flows.runtime.errors import BlockedAddressError, ResponseTooLarge
from flows.runtime.http import HttpStatusError, send_request
from flows.integrations.errors import IntegrationError
from flows.integrations.netcheck import check_endpoint
from flows.runtime.netguard import check_address
from tests.peers import PeerResponse

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


async def test_json_round_trip_with_query_headers_and_bearer(http_peer) -> None:
    http_peer.route("POST", "/items", PeerResponse(201, {"id": 7}, headers={"X-Trace": "t1"}))
    result = await send_request(
        config(method="POST", url=f"{http_peer.url}/items", query={"a": [1, 2]},
               headers={"X-Team": "ops"}, json={"name": "n"}, credential="api"),
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


@pytest.mark.parametrize(
    ("address", "reason"),
    [("169.254.169.254", "metadata"), ("10.0.0.1", "private"), ("192.168.1.1", "private"),
     ("169.254.1.1", "link-local"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
     ("0.0.0.0", "reserved"), ("fd00:ec2::254", "metadata")],
)
def test_guard_refuses_internal_addresses(address: str, reason: str) -> None:
    with pytest.raises(BlockedAddressError, match=reason):
        check_address(ipaddress.ip_address(address), allowed=[])


def test_allow_private_opens_private_networks_only() -> None:
    check_address(ipaddress.ip_address("10.1.2.3"), allowed=[], allow_private=True)
    check_address(ipaddress.ip_address("93.184.216.34"), allowed=[])
    with pytest.raises(BlockedAddressError):
        check_address(ipaddress.ip_address("169.254.169.254"), allowed=[], allow_private=True)
    with pytest.raises(BlockedAddressError):
        check_address(ipaddress.ip_address("127.0.0.1"), allowed=[], allow_private=True)


# IPv6 addresses that carry a blocked IPv4 address: 6to4 (2002::/16), Teredo (2001::/32, the
# client is the inverted last 32 bits), NAT64 (64:ff9b::/96), IPv4-compatible and -mapped.
_CARRIERS = [
    ("2002:a9fe:a9fe::1", "metadata"), ("2002:7f00:2::1", "loopback"),
    ("2002:a00:1::1", "private"), ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", "metadata"), ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b::7f00:1", "loopback"), ("::a9fe:a9fe", "metadata"), ("::ffff:a9fe:a9fe", "metadata"),
]


@pytest.mark.parametrize(("address", "reason"), _CARRIERS)
def test_guard_judges_an_ipv6_address_by_the_ipv4_it_carries(address: str, reason: str) -> None:
    allow_private = reason != "private"  # even where private networks are open
    with pytest.raises(BlockedAddressError, match=rf"carrying .*{reason}"):
        check_address(ipaddress.ip_address(address), allowed=[], allow_private=allow_private)


def test_ipv6_carriers_of_public_or_allowed_ipv4_pass() -> None:
    for public in ("2002:808:808::1", "64:ff9b::808:808", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"):
        check_address(ipaddress.ip_address(public), allowed=[])
    check_address(ipaddress.ip_address("2002:7f00:1::1"), allowed=[ipaddress.ip_network("127.0.0.0/8")])


# The session allows 127.0.0.0/8 (the peers live there): metadata and link-local stay refused.
@pytest.mark.parametrize("address", ["2002:a9fe:a9fe::1", "2002:a9fe:101::1", "64:ff9b::a9fe:a9fe"])
async def test_integration_endpoints_refuse_ipv6_carriers_of_blocked_ipv4(address: str) -> None:
    with pytest.raises(IntegrationError, match="carrying"):
        await check_endpoint(f"http://[{address}]:8080/api", "github", "get_issue")


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


async def test_response_size_cap_and_status_errors(http_peer) -> None:
    http_peer.route("GET", "/big", PeerResponse(200, "x" * 5000))
    http_peer.route("GET", "/bad", PeerResponse(503, {"error": "down"}))
    with pytest.raises(ResponseTooLarge, match="1000"):
        await send_request(config(url=f"{http_peer.url}/big", max_response_bytes=1000), Ctx())
    with pytest.raises(HttpStatusError, match="503"):
        await send_request(config(url=f"{http_peer.url}/bad"), Ctx())
    soft = await send_request(config(url=f"{http_peer.url}/bad", fail_on_status=False), Ctx())
    assert soft == {"status": 503, "headers": soft["headers"], "body": {"error": "down"}}
