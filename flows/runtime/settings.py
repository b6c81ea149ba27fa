"""The runtime's settings section: what a run's nodes may reach and how they pace their calls.

Nested in the settings root as ``GoraxSettings.runtime``; each field is the variable
``GORAX_<FIELD>``. A worker reads these from its own environment (the work pool's job
variables), never from the API.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _items(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class RuntimeSettings(BaseSettings):
    """Outbound reach, database-node allow-lists, rate limits and circuit breakers of runs."""

    model_config = SettingsConfigDict(env_prefix="GORAX_", extra="ignore")

    http_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that outbound calls (HTTP requests, database nodes) may "
        "reach although they are loopback/private/link-local (empty: none).",
    )
    db_allowed_directories: str = Field(
        default="",
        description="Comma-separated directories whose SQLite files database nodes may open (empty: "
        "no SQLite files; Gorax's and Prefect's own never).",
    )
    db_protected_urls: str = Field(
        default="",
        description="Comma-separated database URLs no database node may reach, besides Gorax's and "
        "Prefect's own (for a worker that does not share the API's environment).",
    )
    rate_limits: bool = Field(
        default=True,
        description="Take a slot of the provider's Prefect rate limit before each integration call "
        "(`off`: never, e.g. a worker without a Prefect API).",
    )
    rate_limit_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Longest wait for a rate-limit slot; past it the call fails, retryably, unsent.",
    )
    circuit_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="Consecutive service failures (5xx, 429, network) of an integration, per tenant, "
        "that open its circuit.",
    )
    circuit_cooldown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long an open circuit refuses calls before one trial call.",
    )
    oauth_refresh_margin_seconds: float = Field(
        default=60.0,
        ge=0,
        description="An OAuth access token that expires within this many seconds is refreshed before a node uses it.",
    )
    oauth_lock_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait for another worker's refresh of the same OAuth credential (its Prefect lock).",
    )
    slack_api_url: str | None = Field(
        default=None,
        description="Slack's API base (a Slack-compatible server) when the credential names none.",
    )
    github_api_url: str | None = Field(
        default=None, description="GitHub's API base (GitHub Enterprise) when the credential names none."
    )
    jira_api_url: str | None = Field(default=None, description="Jira's base URL when the credential names none.")
    pagerduty_api_url: str | None = Field(
        default=None, description="PagerDuty's Events API base when the credential names none."
    )
    sendgrid_api_url: str | None = Field(
        default=None, description="SendGrid's API base (e.g. its EU region's) when the credential names none."
    )
    twilio_api_url: str | None = Field(default=None, description="Twilio's API base when the credential names none.")
    mcp_stdio_servers: str = Field(
        default="",
        description="MCP servers run as local processes that agents may use: a JSON object "
        'name -> {"command", "args", "env"}. A workflow names one; it never gives a command.',
    )

    @property
    def allowed_networks(self) -> list[Network]:
        """The networks of ``GORAX_HTTP_ALLOWED_NETWORKS``."""
        return [ipaddress.ip_network(part, strict=False) for part in _items(self.http_allowed_networks)]

    @property
    def db_directories(self) -> list[Path]:
        """The directories of ``GORAX_DB_ALLOWED_DIRECTORIES``, resolved (symlinks followed)."""
        return [Path(part).expanduser().resolve() for part in _items(self.db_allowed_directories)]

    def mcp_stdio_server(self, name: str) -> dict[str, Any]:
        """The declared stdio MCP server ``name``: ``{command, args, env}``.

        Raises ``LookupError`` naming the declared servers when there is none of that name."""
        try:
            declared = json.loads(self.mcp_stdio_servers) if self.mcp_stdio_servers.strip() else {}
        except ValueError as exc:
            raise LookupError(f"GORAX_MCP_STDIO_SERVERS is not a JSON object: {exc}") from None
        server = declared.get(name) if isinstance(declared, dict) else None
        if not isinstance(server, dict) or not isinstance(server.get("command"), str):
            names = ", ".join(sorted(declared)) if isinstance(declared, dict) and declared else "none"
            raise LookupError(f"no stdio MCP server {name!r} is declared (GORAX_MCP_STDIO_SERVERS declares: {names})")
        return {
            "command": server["command"],
            "args": [str(a) for a in server.get("args") or []],
            "env": {str(k): str(v) for k, v in (server.get("env") or {}).items()},
        }

    def provider_api_url(self, provider: str) -> str | None:
        """The operator's base URL for ``provider`` (``GORAX_<PROVIDER>_API_URL``), if set."""
        value = getattr(self, f"{provider.lower()}_api_url", None)
        return value if isinstance(value, str) and value else None
