"""API-only settings (token lifetimes, lockout, invitations, rate limits, size limits, CORS), read
from ``GORAX_*``.

The shared :class:`flows.settings.GoraxSettings` holds what every process needs; what only the
HTTP layer needs lives here so the API can tune it without touching the shared class.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiConfig(BaseSettings):
    """HTTP-layer configuration. Each field is the variable ``GORAX_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GORAX_", extra="ignore")

    access_token_ttl_seconds: int = Field(default=900, description="Lifetime of access tokens.")
    refresh_token_ttl_seconds: int = Field(
        default=30 * 24 * 3600, description="Lifetime of a refresh token family."
    )
    login_max_failures: int = Field(default=5, description="Failed sign-ins before lockout.")
    lockout_seconds: int = Field(default=900, description="How long a locked account stays locked.")
    cookie_secure: bool = Field(
        default=False, description="Mark session cookies Secure (set behind TLS)."
    )
    cors_origins: str = Field(
        default="", description="Comma-separated origins allowed by CORS (empty: CORS off)."
    )
    rate_limit_api: int = Field(default=1000, description="Requests/minute per tenant on /api/v1.")
    rate_limit_execute: int = Field(default=100, description="Executions/minute per tenant.")
    rate_limit_credentials: int = Field(default=50, description="Credential requests/minute.")
    rate_limit_webhook: int = Field(default=5000, description="Webhook deliveries/minute.")
    rate_limit_auth: int = Field(
        default=60, description="Sign-in/refresh requests/minute per client address."
    )
    webhook_resend_after_seconds: float = Field(
        default=600.0, gt=0,
        description="A dispatched webhook delivery whose event started no run in this many "
        "seconds (times its attempts) is run directly from the deployment. Longer than Prefect "
        "can take to turn a backlog of events into runs: a shorter wait can run one twice.",
    )
    rate_limit_window_seconds: int = Field(default=60, description="Rate-limit window length.")
    invitation_ttl_seconds: int = Field(
        default=7 * 24 * 3600, gt=0, description="How long an invitation to a tenant can be accepted."
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024,
        description="Largest request body of every route but the webhook receiver (413 past it).",
    )
    webhook_max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024,
        description="Largest body the webhook receiver reads at all; each webhook trigger's own "
        "max_body_bytes (at most 10 MiB) applies below it.",
    )
    graph_max_nodes: int = Field(default=2000, ge=1, description="Most nodes in one graph.")
    graph_max_edges: int = Field(default=5000, ge=0, description="Most edges in one graph.")
    max_variable_bytes: int = Field(
        default=4096, ge=1, le=4800,
        description="Largest tenant variable value, as JSON (at most 4,800: Prefect stores at "
        "most 5,000 characters of a variable, its name included).",
    )
    max_input_bytes: int = Field(
        default=256 * 1024, ge=1,
        description="Largest execution input, as JSON (Prefect's server stores at most 512 KiB "
        "of a run's parameters by default).",
    )
    worker_token: str | None = Field(
        default=None,
        description="Token of the internal worker principal; default: generated in the state dir.",
    )

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
