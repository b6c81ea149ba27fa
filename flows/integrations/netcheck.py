"""Where integration calls may go: the runtime's SSRF guard applied to an API base URL.

Private networks are fine (enterprise installs of GitHub or Jira live there); loopback,
link-local and cloud metadata addresses are refused unless ``GORAX_HTTP_ALLOWED_NETWORKS``
allows them, so a credential's base URL cannot be aimed at the worker's own metadata service.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flows.integrations.errors import IntegrationError
from flows.runtime.errors import BlockedAddressError
from flows.runtime.netguard import Network, resolve_checked
from flows.settings import get_settings


def allowed_networks_of(ctx: Any) -> list[Network]:
    """The networks a node may reach although they are private or loopback: the run's
    (``GORAX_HTTP_ALLOWED_NETWORKS`` plus the tenant's allow-list), else the operator's alone."""
    allowed = getattr(ctx, "allowed_networks", None)
    return list(allowed) if allowed is not None else get_settings().runtime.allowed_networks


async def check_endpoint(url: str, integration: str, operation: str) -> None:
    """Raise :class:`IntegrationError` unless ``url``'s host may be reached."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IntegrationError(integration, operation, f"API URL {url!r} is not an absolute http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        allowed = get_settings().runtime.allowed_networks
        await resolve_checked(parts.hostname, port, allowed=allowed, allow_private=True)
    except BlockedAddressError as exc:
        raise IntegrationError(integration, operation, f"API URL refused: {exc}") from None
