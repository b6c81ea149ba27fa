"""The API process's settings: the Gorax settings root extended with the API's own sections.

:class:`flows.settings.GoraxSettings` is the root every process builds (API, CLI, workers, runs).
It lives in ``flows``, which must not import the API, so it cannot nest the API's section; the API
subclasses it instead (:class:`GoraxApiSettings`), adding :class:`ApiSettings` (the HTTP layer)
and :class:`StackSettings` (what ``gorax up`` starts). The API and the CLI get one object with
every section (``settings.api.*``, ``settings.keys.*``...), and a worker never reads, nor fails
on, a setting only the API has.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.settings import GoraxSettings


class ApiSettings(BaseSettings):
    """HTTP-layer configuration. Each field is the variable ``GORAX_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GORAX_", extra="ignore", hide_input_in_errors=True)

    access_token_ttl_seconds: int = Field(default=900, description="Lifetime of access tokens.")
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, description="Lifetime of a refresh token family.")
    login_max_failures: int = Field(default=5, description="Failed sign-ins before lockout.")
    lockout_seconds: int = Field(default=900, description="How long a locked account stays locked.")
    mfa_challenge_ttl_seconds: int = Field(
        default=300,
        gt=0,
        description="How long the sign-in step that asks for an MFA code (or for enrolling one) can be completed.",
    )
    mfa_challenge_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Wrong codes one MFA sign-in step takes before it is void (sign in again); wrong codes "
        "in a row across steps lock the user's MFA like wrong passwords do (GORAX_LOGIN_MAX_FAILURES, "
        "GORAX_LOCKOUT_SECONDS).",
    )
    mfa_issuer: str = Field(
        default="Gorax", min_length=1, description="Issuer name authenticator apps show beside a TOTP entry."
    )
    cookie_secure: bool = Field(default=False, description="Mark session cookies Secure (set behind TLS).")
    cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS (empty: CORS off).")
    rate_limit_api: int = Field(default=1000, description="Requests/minute per tenant on /api/v1.")
    rate_limit_execute: int = Field(default=100, description="Executions/minute per tenant.")
    rate_limit_credentials: int = Field(default=50, description="Credential requests/minute.")
    rate_limit_webhook: int = Field(default=5000, description="Webhook deliveries/minute.")
    rate_limit_auth: int = Field(default=60, description="Sign-in, refresh and MFA requests/minute per client address.")
    rate_limit_mcp: int = Field(
        default=1000,
        description="Requests/minute per tenant on the MCP server (/mcp); a tool call also counts as an execution.",
    )
    mcp_call_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="How long an MCP tool call waits for its run before it answers with the run id instead of the output.",
    )
    webhook_repair_after_seconds: float = Field(
        default=3600.0,
        ge=0,
        validation_alias=AliasChoices("GORAX_WEBHOOK_REPAIR_AFTER_SECONDS", "GORAX_WEBHOOK_RESEND_AFTER_SECONDS"),
        description="A dispatched webhook delivery whose event started no run in this many seconds "
        "is left to `gorax webhooks repair` (its default --older-than): the dispatcher stops "
        "looking for its run. Past the 30 minutes Prefect remembers an event id, so Prefect "
        "evaluates a repost even of an event it saw before its automation was loaded.",
    )
    dead_letter_after_seconds: float = Field(
        default=6 * 3600.0,
        ge=0,
        description="A webhook delivery dispatched this long ago without a run, or a scheduled run "
        "Late or Crashed this long, becomes a dead letter (kept for an operator to replay or "
        "discard). Well past `webhook_repair_after_seconds`, so a repair has had its chance.",
    )
    dead_letter_sweep_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How often each API replica looks for new dead letters (one at a time across "
        "replicas); 0 turns the sweep off.",
    )
    rate_limit_window_seconds: int = Field(default=60, description="Rate-limit window length.")
    invitation_ttl_seconds: int = Field(
        default=7 * 24 * 3600, gt=0, description="How long an invitation to a tenant can be accepted."
    )
    oauth_state_ttl_seconds: int = Field(
        default=600,
        ge=30,
        le=3600,
        description="How long an OAuth connect flow may take from Connect to the provider's callback.",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body of every route but the webhook receiver (413 past it).",
    )
    webhook_max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest body the webhook receiver reads at all; each webhook trigger's own "
        "max_body_bytes (at most 10 MiB) applies below it.",
    )
    graph_max_nodes: int = Field(default=2000, ge=1, description="Most nodes in one graph.")
    graph_max_edges: int = Field(default=5000, ge=0, description="Most edges in one graph.")
    max_variable_bytes: int = Field(
        default=4096,
        ge=1,
        le=4800,
        description="Largest tenant variable value, as JSON (at most 4,800: Prefect stores at "
        "most 5,000 characters of a variable, its name included).",
    )
    max_input_bytes: int = Field(
        default=256 * 1024,
        ge=1,
        description="Largest execution input, as JSON (Prefect's server stores at most 512 KiB "
        "of a run's parameters by default).",
    )
    quota_runs_per_month: int = Field(
        default=0,
        ge=0,
        description="Runs a tenant may start per calendar month (UTC), unless `gorax quotas set` gives it "
        "its own; past it, starting a run answers 429 until the month ends (0: unlimited).",
    )
    quota_concurrent_runs: int = Field(
        default=0,
        ge=0,
        description="Runs of one tenant that execute at once (the Prefect global concurrency limit "
        "`gorax-tenant-<id>-runs`); more runs wait for a slot (0: unlimited).",
    )
    quota_webhook_requests_per_minute: int = Field(
        default=0,
        ge=0,
        description="Webhook deliveries one tenant's webhooks accept per minute, all together; past it "
        "the receiver answers 429 with Retry-After (0: unlimited).",
    )
    quota_storage_bytes: int = Field(
        default=0,
        ge=0,
        description="Bytes a tenant may keep stored in the Gorax database (drafts, versions, webhook "
        "deliveries); past it new runs and draft saves answer 413 (0: unlimited).",
    )
    quota_agent_tokens_per_month: int = Field(
        default=0,
        ge=0,
        description="Language-model tokens (in and out) one tenant's agents may use per calendar month "
        "(UTC); past it an agent node ends with an error before its next model call (0: unlimited).",
    )
    quota_agent_cost_usd_per_month: float = Field(
        default=0,
        ge=0,
        description="US dollars of model cost one tenant's agents may spend per calendar month (UTC); "
        "past it an agent node ends with an error before its next model call (0: unlimited).",
    )
    quota_agent_tool_calls_per_month: int = Field(
        default=0,
        ge=0,
        description="Tool calls one tenant's agents may make per calendar month (UTC); past it an agent "
        "node ends with an error before its next call (0: unlimited).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for shared rate limits and for relaying draft edits between API replicas (optional; set it when running several).",
    )
    token_signing_key: SecretStr | None = Field(
        default=None,
        description="Key that signs access tokens: 64 or more hex characters (32+ bytes), the same "
        "on every replica. Or GORAX_TOKEN_SIGNING_KEY_FILE.",
    )
    token_signing_key_file: Path | None = Field(
        default=None,
        description="A file holding the token-signing key (a mounted secret); `gorax up` gives its API "
        "`$GORAX_HOME/api-signing.key`, made on its first start.",
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="How often the retention job prunes every tenant's old data (0: never on its own; "
        "admins can still run it). One API replica at a time runs it (a PostgreSQL advisory lock).",
    )
    retention_batch_size: int = Field(
        default=100, ge=1, le=200, description="Most rows or flow runs the retention job deletes in one batch."
    )
    retention_batch_pause_seconds: float = Field(
        default=0.2, ge=0, description="Pause between two retention batches, so pruning never hogs the databases."
    )
    retention_execution_days: int = Field(
        default=30,
        ge=1,
        description="Default age in days after which a finished execution (its Prefect flow "
        "run, logs and step records) is deleted; a tenant admin may choose up to the maximum.",
    )
    retention_execution_max_days: int = Field(
        default=365, ge=1, description="Longest execution age a tenant admin may choose."
    )
    retention_executions_per_workflow: int = Field(
        default=10_000,
        ge=1,
        description="Default number of finished executions kept per workflow (oldest deleted first).",
    )
    retention_executions_per_workflow_max: int = Field(
        default=100_000, ge=1, description="Most executions per workflow a tenant admin may keep."
    )
    retention_step_data_days: int = Field(
        default=7,
        ge=1,
        description="Default age in days after which the inputs and outputs of an execution's "
        "steps are removed (the step records, status and errors stay until the execution goes).",
    )
    retention_step_data_max_days: int = Field(
        default=365, ge=1, description="Longest step-data age a tenant admin may choose."
    )
    retention_delivery_days: int = Field(
        default=14, ge=1, description="Default age in days after which a webhook delivery record is deleted."
    )
    retention_delivery_max_days: int = Field(
        default=90, ge=1, description="Longest webhook-delivery age a tenant admin may choose."
    )
    retention_deliveries_per_webhook: int = Field(
        default=10_000, ge=1, description="Default number of delivery records kept per webhook."
    )
    retention_deliveries_per_webhook_max: int = Field(
        default=100_000, ge=1, description="Most delivery records per webhook a tenant admin may keep."
    )
    retention_audit_days: int = Field(
        default=730,
        ge=1,
        description="Default age in days after which audit events are pruned (the chain "
        "stays verifiable from a kept anchor).",
    )
    retention_audit_min_days: int = Field(
        default=365, ge=1, description="Shortest audit-log age a tenant admin may choose (no maximum)."
    )

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


class StackSettings(BaseSettings):
    """What ``gorax up`` starts and where. Each field is the variable ``GORAX_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GORAX_", extra="ignore")

    api_host: str = Field(default="127.0.0.1", description="Interface the API binds to.")
    api_port: int = Field(default=8080, description="Port of the API and editor.")
    worker_type: Literal["gorax", "process"] = Field(
        default="gorax", description="Worker `gorax up` starts: warm in-process or process."
    )


class GoraxApiSettings(GoraxSettings):
    """The API's and the CLI's settings: the Gorax root plus the API's sections."""

    api: ApiSettings = Field(default_factory=ApiSettings, description="The HTTP API.")
    stack: StackSettings = Field(default_factory=StackSettings, description="`gorax up`.")

    @property
    def effective_api_url(self) -> str:
        """Where the API is reached (links in e-mails): GORAX_API_URL, else its host and port."""
        if self.api_url:
            return self.api_url.rstrip("/")
        return f"http://{self.stack.api_host}:{self.stack.api_port}"


@lru_cache(maxsize=1)
def get_api_settings() -> GoraxApiSettings:
    """The API process's settings (tests call ``get_api_settings.cache_clear()`` after changing env)."""
    return GoraxApiSettings()
