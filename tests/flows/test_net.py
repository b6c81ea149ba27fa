"""The outbound guard and the pinned-address client (flows.net), against loopback peers."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from flows import net
from flows.errors import BlockedAddressError, IntegrationError, RunError
from flows.integrations import JsonApi, check_endpoint
from flows.net import check_address, send
from flows.settings import get_settings
from tests.flows.conftest import Resolver

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "metadata"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "reserved"),
        ("fd00:ec2::254", "metadata"),
    ],
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
    ("2002:a9fe:a9fe::1", "metadata"),
    ("2002:7f00:2::1", "loopback"),
    ("2002:a00:1::1", "private"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", "metadata"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b::7f00:1", "loopback"),
    ("::a9fe:a9fe", "metadata"),
    ("::ffff:a9fe:a9fe", "metadata"),
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


async def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected_to(
    http_peer, resolver: Resolver
) -> None:
    # DNS rebinding: the first answer passes the guard, a later one points elsewhere (another
    # loopback address here, so nothing leaves the machine). The request goes to the checked
    # address, with the name as its Host.
    resolver.answers["rebind.test"] = [("127.0.0.1",), ("127.0.0.2",)]
    port = int(http_peer.url.rsplit(":", 1)[1])
    reply = await send("GET", f"http://rebind.test:{port}/who", allowed=LOOPBACK, timeout=5)
    assert reply.status == 200 and resolver.asked == ["rebind.test"]
    assert http_peer.received("GET", "/who")[0].headers["host"] == f"rebind.test:{port}"


@pytest.fixture
def rate_limits_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No rate-limit round trip to Prefect: the settings read again with the variable, and after."""
    monkeypatch.setenv("GORAX_RATE_LIMITS", "off")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_integration_calls_go_to_the_address_their_api_url_was_checked_at(
    http_peer, resolver: Resolver, rate_limits_off: None
) -> None:
    resolver.answers["api.rebind.test"] = [("127.0.0.1",), ("127.0.0.2",)]
    port = int(http_peer.url.rsplit(":", 1)[1])
    api = JsonApi("rebind", f"http://api.rebind.test:{port}", tenant="acme", headers={}, secrets=[])
    assert await api.call("GET", "/ping") == {"ok": True}
    assert resolver.asked == ["api.rebind.test"]
    assert http_peer.received("GET", "/ping")[0].headers["host"] == f"api.rebind.test:{port}"


async def test_every_address_of_a_name_must_pass(resolver: Resolver) -> None:
    resolver.answers["mixed.test"] = [("127.0.0.1", "169.254.169.254")]
    with pytest.raises(BlockedAddressError, match="'mixed.test' resolves to 169.254.169.254"):
        await send("GET", "http://mixed.test/", allowed=LOOPBACK, timeout=5)


async def test_a_url_must_be_http_or_https_and_name_a_host() -> None:
    with pytest.raises(RunError, match="URL scheme 'ftp' is not http or https"):
        await send("GET", "ftp://files.test/x", allowed=LOOPBACK)
    with pytest.raises(RunError, match="names no host"):
        await send("GET", "http:///x", allowed=LOOPBACK)


# -- TLS: the certificate is checked against the URL's name while the socket goes to the address


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA, and a server certificate it signed for ``peer.test``: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    span = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=1))

    def build(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(span[0])
            .not_valid_after(span[1])
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("Gorax test CA", ca_key, "Gorax test CA", ca_key, ca=True)
    server_cert = build("peer.test", server_key, "Gorax test CA", ca_key, ca=False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b'{"tls": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tls_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 whose certificate names ``peer.test``; the client trusts its CA."""
    ca, cert, key = _certificates(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    net._tls.cache_clear()  # the client reads its trust store once per process
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    net._tls.cache_clear()


async def test_tls_checks_the_url_name_while_connecting_to_the_checked_address(
    tls_peer: int, resolver: Resolver
) -> None:
    resolver.answers.update({"peer.test": [("127.0.0.1",)], "impostor.test": [("127.0.0.1",)]})
    reply = await send("GET", f"https://peer.test:{tls_peer}/", allowed=LOOPBACK, timeout=5)
    assert reply.status == 200 and reply.content == b'{"tls": true}'
    # Same address, another name: the certificate does not name it, so the call fails.
    with pytest.raises(Exception, match="certificate|CERTIFICATE"):
        await send("GET", f"https://impostor.test:{tls_peer}/", allowed=LOOPBACK, timeout=5)
