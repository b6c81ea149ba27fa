"""The SSRF guard of ``http.request``: which addresses a workflow may reach.

Refused unless an allowed network contains them: loopback, link-local, cloud metadata,
unspecified, multicast and reserved addresses, and private networks (the latter also when the
node sets ``allow_private``). An IPv6 address that carries an IPv4 address (IPv4-mapped and
-compatible, 6to4, Teredo, NAT64) is judged as the IPv4 address it carries, since that is where
a relay or translator delivers the packets. Allowed networks come from
``GORAX_HTTP_ALLOWED_NETWORKS`` and the tenant's allow-list. Names are resolved once and the connection goes to the checked address, so
a name that re-resolves elsewhere (DNS rebinding) cannot slip past.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Iterable

from flows.runtime.errors import BlockedAddressError

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


def _in_any(ip: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


async def resolve_checked(
    host: str, port: int, *, allowed: Iterable[Network], allow_private: bool = False
) -> IPAddress:
    """Resolve ``host`` and return an address to connect to; every address it has must pass."""
    allowed = list(allowed)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise BlockedAddressError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for ip in addresses:
        check_address(ip, allowed=allowed, allow_private=allow_private, host=None if literal else host)
    return addresses[0]
