"""The SSRF guard of ``http.request``: which addresses a workflow may reach.

Refused unless an allowed network contains them: loopback, link-local, cloud metadata,
unspecified, multicast and reserved addresses, and private networks (the latter also when the
node sets ``allow_private``). Allowed networks come from ``GORAX_HTTP_ALLOWED_NETWORKS`` and the
tenant's allow-list. Names are resolved once and the connection goes to the checked address, so
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


def _why_blocked(ip: IPAddress, *, allow_private: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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
    if any(ip.version == net.version and ip in net for net in allowed):
        return
    reason = _why_blocked(ip, allow_private=allow_private)
    if reason:
        subject = f"host {host!r} resolves to {ip}, {reason}" if host else f"{ip} is {reason}"
        raise BlockedAddressError(
            f"{subject}; requests there are refused unless GORAX_HTTP_ALLOWED_NETWORKS "
            f"or the tenant's allow-list includes it"
        )


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
