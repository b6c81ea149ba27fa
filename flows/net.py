"""Where nodes may connect: the one outbound guard (SSRF) and the one pinned-address HTTP client.

**The guard.** Refused unless an allowed network contains them: loopback, link-local, cloud
metadata, unspecified, multicast and reserved addresses, and private networks (the latter also
when the caller sets ``allow_private``). An IPv6 address that carries an IPv4 address
(IPv4-mapped and -compatible, 6to4, Teredo, NAT64) is judged as the IPv4 address it carries,
since that is where a relay or translator delivers the packets. Allowed networks come from
``GORAX_HTTP_ALLOWED_NETWORKS`` and the tenant's allow-list. A name must pass with every address
it resolves to.

**The client.** :func:`send` resolves a name once and connects to the checked address, so a name
that re-resolves elsewhere (DNS rebinding) cannot slip past; the Host header and the TLS server
name, and so the certificate check, stay the URL's host. Each redirect it follows is checked
again, and credentials never follow one to another origin. Bodies are capped, calls time out,
and proxy settings in the environment are ignored (a proxy would resolve names itself).

``http.request`` and the REST integrations send through :func:`send`; the database nodes connect
to what :func:`resolve_checked` returns.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from opentelemetry.semconv.attributes.http_attributes import HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_SCHEME

from flows import tracing
from flows.errors import BlockedAddressError, ResponseTooLarge, RunError
from flows.settings import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba, Oracle).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "169.254.170.2")
)

#: IPv6 networks whose last 32 bits are an IPv4 address: IPv4-compatible (deprecated) and the
#: NAT64 well-known prefix (RFC 6052).
_IPV4_IN_LAST_32_BITS = (ipaddress.IPv6Network("::/96"), ipaddress.IPv6Network("64:ff9b::/96"))

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Request headers that never follow a redirect to another origin (besides a caller's own).
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


# -- The guard -------------------------------------------------------------------------------


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, Teredo client, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # (server, client): packets go to the client
    # :: and ::1 are IPv6's own unspecified and loopback addresses, not IPv4-compatible ones.
    if int(ip) > 1 and any(ip in net for net in _IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _why_blocked(ip: IPAddress, *, allow_private: bool) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "a reserved address"
    if (ip.is_private or not ip.is_global) and not allow_private:
        return "a private-network address"
    return None


def _in_any(ip: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def check_address(
    ip: IPAddress, *, allowed: Iterable[Network], allow_private: bool = False, host: str | None = None
) -> None:
    """Raise :class:`BlockedAddressError` unless ``ip`` (which ``host`` resolved to) may be reached."""
    allowed = tuple(allowed)
    if _in_any(ip, allowed):
        return
    inner = embedded_ipv4(ip)
    if inner is not None and _in_any(inner, allowed):
        return
    reason = _why_blocked(inner or ip, allow_private=allow_private)
    if reason:
        shown = f"{ip} (carrying {inner})" if inner is not None else str(ip)
        subject = f"host {host!r} resolves to {shown}, {reason}" if host else f"{shown} is {reason}"
        raise BlockedAddressError(
            f"{subject}; requests there are refused unless GORAX_HTTP_ALLOWED_NETWORKS "
            f"or the tenant's allow-list includes it"
        )


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (brackets allowed), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def addresses_of(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order; raises ``OSError`` when none."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


async def resolve_checked(
    host: str, port: int, *, allowed: Iterable[Network], allow_private: bool = False
) -> IPAddress:
    """Resolve ``host`` and return an address to connect to; every address it has must pass."""
    allowed = tuple(allowed)
    try:
        addresses = await addresses_of(host, port)
    except socket.gaierror as exc:
        raise BlockedAddressError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    named = None if literal_address(host) is not None else host
    for ip in addresses:
        check_address(ip, allowed=allowed, allow_private=allow_private, host=named)
    return addresses[0]


def allowed_networks_of(ctx: Any) -> list[Network]:
    """The networks a node may reach although they are private or loopback: the run's
    (``GORAX_HTTP_ALLOWED_NETWORKS`` plus the tenant's allow-list), else the operator's alone."""
    allowed = getattr(ctx, "allowed_networks", None)
    return list(allowed) if allowed is not None else get_settings().runtime.allowed_networks


# -- The client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """An origin whose address passed the guard: requests to it connect to ``address``."""

    scheme: str
    host: str
    port: int
    address: IPAddress

    def serves(self, url: httpx.URL) -> bool:
        """Whether ``url`` is on this origin (so its checked address may be used)."""
        return (url.scheme, url.host, _port(url)) == (self.scheme, self.host, self.port)

    def pin(self, request: httpx.Request) -> None:
        """Send ``request`` (to this origin) to the checked address; Host and the TLS server name
        stay its URL's host. Any httpx-like request (the MCP SDK's ``httpx2`` too)."""
        url = request.url
        if str(self.address) != url.host:
            request.url = url.copy_with(host=str(self.address))
            request.extensions["sni_hostname"] = url.host


@dataclass(frozen=True)
class Reply:
    """A response read whole, and the request that got it (the last one, after redirects)."""

    status: int
    reason: str
    headers: httpx.Headers
    content: bytes
    method: str
    #: The URL as the caller named it (not the address connected to), without ``params``.
    url: httpx.URL

    @property
    def text(self) -> str:
        """The body decoded by its declared charset (UTF-8 when none)."""
        return httpx.Response(self.status, headers=self.headers, content=self.content).text


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every call: building it (loading the CA bundle) costs far more than
    a request."""
    return httpx.create_ssl_context()


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


async def check_url(url: str | httpx.URL, *, allowed: Iterable[Network], allow_private: bool = False) -> Destination:
    """Check an http(s) URL's host; the :class:`Destination` to send to it through."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise RunError(f"URL scheme {parsed.scheme!r} is not http or https: {parsed}")
    if not parsed.host:
        raise RunError(f"URL {str(url)!r} names no host")
    address = await resolve_checked(parsed.host, _port(parsed), allowed=allowed, allow_private=allow_private)
    return Destination(parsed.scheme, parsed.host, _port(parsed), address)


async def _read_capped(response: httpx.Response, limit: int | None) -> bytes:
    if limit is None:
        return await response.aread()
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"response of {declared} bytes is larger than max_response_bytes ({limit})")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"response is larger than max_response_bytes ({limit})")
        chunks.append(chunk)
    return b"".join(chunks)


async def send(
    method: str,
    url: str | httpx.URL,
    *,
    allowed: Iterable[Network],
    allow_private: bool = False,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Mapping[str, Any] | None = None,
    content: bytes | None = None,
    timeout: float = 30,
    follow_redirects: bool = False,
    max_redirects: int = 0,
    max_bytes: int | None = None,
    origin_headers: Collection[str] = (),
    checked: Destination | None = None,
) -> Reply:
    """Send one request through the guard, following up to ``max_redirects`` redirects.

    ``params`` go on the first request only: a redirect's target is its ``Location`` as given.
    ``origin_headers`` (besides Authorization, Proxy-Authorization and Cookie) are dropped when a
    redirect leaves the origin: give the headers a credential added. ``checked`` is a
    :class:`Destination` the caller checked already (used for requests on its origin).

    The call is a client span of the current trace, and its ``traceparent`` goes out with
    each request (when traces are on); the span names the host, never the path or query, which
    may hold a credential.
    """
    target = httpx.URL(url)
    with tracing.client_span(
        f"HTTP {method.upper()}",
        {
            HTTP_REQUEST_METHOD: method.upper(),
            SERVER_ADDRESS: target.host,
            SERVER_PORT: _port(target) if target.scheme in ("http", "https") else None,
            URL_SCHEME: target.scheme,
        },
    ) as span:
        reply = await _send(
            method,
            target,
            allowed=tuple(allowed),
            allow_private=allow_private,
            headers=headers,
            params=params,
            json=json,
            data=data,
            content=content,
            timeout=timeout,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            max_bytes=max_bytes,
            origin_headers=origin_headers,
            checked=checked,
        )
        if span.is_recording():
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, reply.status)
        return reply


async def _send(
    method: str,
    target: httpx.URL,
    *,
    allowed: tuple[Network, ...],
    allow_private: bool,
    headers: Mapping[str, str] | None,
    params: Mapping[str, Any] | None,
    json: Any,
    data: Mapping[str, Any] | None,
    content: bytes | None,
    timeout: float,
    follow_redirects: bool,
    max_redirects: int,
    max_bytes: int | None,
    origin_headers: Collection[str],
    checked: Destination | None,
) -> Reply:
    url = target
    sent_headers = dict(headers or {})
    body: dict[str, Any] = {k: v for k, v in (("json", json), ("data", data), ("content", content)) if v is not None}
    query = dict(params) if params else None
    bound = _ORIGIN_BOUND_HEADERS | {name.lower() for name in origin_headers}
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls()) as client:
        for hop in range(max_redirects + 1):
            if checked is None or not checked.serves(target):
                checked = await check_url(target, allowed=allowed, allow_private=allow_private)
            outgoing = dict(sent_headers)
            tracing.inject(outgoing)
            request = client.build_request(method, target, headers=outgoing, params=query, **body)
            checked.pin(request)
            response = await client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if follow_redirects and response.status_code in REDIRECT_STATUSES and location is not None:
                    if hop == max_redirects:
                        raise RunError(f"more than max_redirects ({max_redirects}) redirects from {url}")
                    following = target.join(location)
                    if _origin(following) != _origin(target):
                        sent_headers = {k: v for k, v in sent_headers.items() if k.lower() not in bound}
                    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                        method, body = "GET", {}
                    target, query = following, None
                    continue
                received = await _read_capped(response, max_bytes)
            finally:
                await response.aclose()
            return Reply(response.status_code, response.reason_phrase, response.headers, received, method, target)
    raise AssertionError("unreachable")  # pragma: no cover
