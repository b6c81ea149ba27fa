"""Gorax settings: one pydantic-settings class, read from ``GORAX_*`` variables.

Every process (API, worker, CLI) builds the same :class:`GoraxSettings`. ``gorax up`` writes
what it started to ``$GORAX_HOME/stack.json``; :func:`load_stack` reads it back so a later
``gorax`` command with the same ``GORAX_HOME`` finds the running stack.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GoraxSettings(BaseSettings):
    """All Gorax configuration. Each field is the variable ``GORAX_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GORAX_", extra="ignore")

    home: Path = Field(default=Path(".gorax"), description="State directory (databases, keys, logs).")
    database_url: str | None = Field(
        default=None,
        description="Gorax database; default sqlite+aiosqlite in the state directory. "
        "postgresql+asyncpg://... for production.",
    )
    api_host: str = Field(default="127.0.0.1", description="Interface the API binds to.")
    api_port: int = Field(default=8080, description="Port of the API and editor.")
    prefect_port: int = Field(default=4200, description="Port of the embedded Prefect server.")
    prefect_api_url: str | None = Field(
        default=None, description="Use this external Prefect server instead of starting one."
    )
    prefect_auth_string: str | None = Field(
        default=None, description="user:password for an external Prefect server's basic auth."
    )
    redis_url: str | None = Field(default=None, description="Redis for shared rate limits (optional).")
    http_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that outbound calls (HTTP requests, ...) may reach although they are "
        "loopback/private/link-local (empty: none).",
    )
    db_allowed_directories: str = Field(
        default="",
        description="Comma-separated directories whose SQLite files database nodes may "
        "open (empty: no SQLite files; Gorax's and Prefect's own never).",
    )
    db_protected_urls: str = Field(
        default="",
        description="Comma-separated database URLs no database node may reach, besides Gorax's "
        "and Prefect's own (for a worker that does not share the API's environment).",
    )
    key_provider: Literal["local", "aws-kms"] = Field(
        default="local", description="Key-encryption key provider: a local key file or AWS KMS."
    )
    kms_key_id: str | None = Field(default=None, description="AWS KMS key id or ARN (aws-kms provider).")
    kms_endpoint_url: str | None = Field(default=None, description="AWS KMS endpoint override.")
    worker_type: Literal["gorax", "process"] = Field(
        default="gorax", description="Worker `gorax up` starts: warm in-process or process."
    )
    work_pool: str = Field(default="gorax", description="Prefect work pool for Gorax runs.")
    api_url: str | None = Field(
        default=None, description="Public base URL of the Gorax API (links in e-mails, workers)."
    )
    log_level: str = Field(default="INFO", description="Log level of Gorax processes.")
    log_max_line_bytes: int = Field(
        default=8192, ge=0,
        description="Longest log line a Gorax process writes (message and traceback are cut "
        "past it, with a marker of how much; at least 1,024; 0: no cap).",
    )

    @property
    def state_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.state_dir / 'gorax.db'}"

    @property
    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.http_allowed_networks.split(",")
            if part.strip()
        ]

    @property
    def db_directories(self) -> list[Path]:
        """The directories of ``GORAX_DB_ALLOWED_DIRECTORIES``, resolved (symlinks followed)."""
        return [Path(part.strip()).expanduser().resolve()
                for part in self.db_allowed_directories.split(",") if part.strip()]

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def load_stack(self) -> dict[str, Any]:
        """What ``gorax up`` recorded for this state directory ({} when nothing is running)."""
        try:
            return json.loads(self.stack_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    @property
    def effective_prefect_api_url(self) -> str:
        if self.prefect_api_url:
            return self.prefect_api_url
        return self.load_stack().get("prefect_api_url") or f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def effective_api_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        return self.load_stack().get("api_url") or f"http://{self.api_host}:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> GoraxSettings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after changing env)."""
    return GoraxSettings()
