"""The Gorax settings root: general settings plus one section per area, read from ``GORAX_*``.

Shaped like Prefect's ``Settings``: each section is defined beside the code that consumes it and
nested here, and every variable keeps its flat ``GORAX_*`` name::

    GoraxSettings                     home, database_url, work_pool, api_url, worker_token, log_*
      .prefect   PrefectSettings      GORAX_PREFECT_*      (this module: every process's Prefect)
      .keys      blocks.settings.KeySettings               GORAX_KEY_*, GORAX_KMS_*
      .runtime   flows.runtime.settings.RuntimeSettings    networks, database nodes, rate limits
      .worker    flows.worker.settings.WorkerSettings      GORAX_WORKER_*
      .results   ResultSettings       GORAX_RESULTS_*      (this module: where every process's run results are)

The API's process extends this root with its own sections (``api.config``): flows must not
import the API. Every process reads its own environment: no setting falls back to a file another
process wrote (one exception, in the CLI: a ``gorax`` command run beside ``gorax up`` uses the
auth string of its embedded Prefect server).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from blocks import providers as key_providers
from blocks.providers import KEY_FILE_NAME
from blocks.settings import KeySettings
from flows.runtime.settings import RuntimeSettings
from flows.worker.settings import WorkerSettings


class SettingMissing(RuntimeError):
    """A setting a step needs is not set; the message names the variable and where it goes."""


class PrefectSettings(BaseSettings):
    """The Prefect server every Gorax process talks to. Each field is ``GORAX_PREFECT_<FIELD>``.

    Prefect's own names (``PREFECT_API_URL``, ``PREFECT_API_AUTH_STRING``) are read too, after
    Gorax's: a worker started the Prefect way is configured by the same one setting.
    """

    model_config = SettingsConfigDict(
        env_prefix="GORAX_PREFECT_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GORAX_PREFECT_API_URL", "PREFECT_API_URL"),
        description="The Prefect API of every Gorax process (API, CLI, workers, runs); Gorax sets "
        "Prefect's client settings from it. Unset: the embedded server `gorax up` starts.",
    )
    auth_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("GORAX_PREFECT_AUTH_STRING", "PREFECT_API_AUTH_STRING"),
        description="`user:password` for that Prefect server's basic auth (`gorax up` makes one for "
        "its embedded server).",
    )
    port: int = Field(default=4200, description="Port of the embedded Prefect server.")
    patches: str = Field(
        default="",
        description="Prefect server patches to apply, comma-separated (`sqlite-immediate`, "
        "`shallow-copies`, `sqlite-event-inserts`, `task-run-recorder`) or `all`; empty: the stock "
        "`prefect server start`. Each switches itself off outside the Prefect versions it was "
        "tested with (see flows/prefect_patches).",
    )

    @property
    def embedded(self) -> bool:
        """True when no Prefect server is named: Gorax's own, started by ``gorax up``."""
        return not self.api_url

    @property
    def url(self) -> str:
        """The Prefect API URL, without a trailing slash."""
        return (self.api_url or f"http://127.0.0.1:{self.port}/api").rstrip("/")

    def basic_auth(self) -> tuple[str, str] | None:
        """The auth string as an HTTP basic-auth pair (None without one)."""
        raw = self.auth_string.get_secret_value() if self.auth_string else ""
        if ":" not in raw:
            return None
        user, _, password = raw.partition(":")
        return user, password


class ResultSettings(BaseSettings):
    """Where run results are stored. Each field is ``GORAX_RESULTS_<FIELD>``.

    Every process that writes or reads results (workers, API replicas) needs the same value:
    the API answers a run's output from where its worker stored it.
    """

    model_config = SettingsConfigDict(env_prefix="GORAX_RESULTS_", extra="ignore", hide_input_in_errors=True)

    url: str = Field(
        default="local",
        description="Where run results are stored: `local` (Prefect's local storage path: one machine, "
        "as `gorax up` runs) or `s3://bucket/prefix` (read by API replicas and workers on any host, "
        "with the AWS credentials of each one's environment).",
    )
    endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, ...) for an `s3://` results URL."
    )
    region: str | None = Field(default=None, description="Region of the results bucket (unset: the AWS environment's).")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        value = value.strip()
        if value == "local":
            return value
        if not value.startswith("s3://") or not value[len("s3://") :].split("/", 1)[0]:
            raise ValueError(f"GORAX_RESULTS_URL must be `local` or `s3://bucket/prefix`, not {value!r}")
        return value

    @property
    def remote(self) -> bool:
        """True when results go to shared storage rather than this machine's disk."""
        return self.url != "local"

    def s3_location(self) -> tuple[str, str]:
        """``(bucket, prefix)`` of an ``s3://`` URL (the prefix without slashes at its ends)."""
        bucket, _, prefix = self.url[len("s3://") :].partition("/")
        return bucket, prefix.strip("/")


def is_section(field: FieldInfo) -> bool:
    """True for a field that nests a section (which reads its own variables)."""
    return isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)


class _OwnVariablesOnly(EnvSettingsSource):
    """The root's own variables. A section reads its variables itself, so ``GORAX_API`` (say,
    the editor's dev-server address) is never taken for the ``api`` section."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if is_section(field):
            return None, field_name, False
        return super().get_field_value(field, field_name)


class GoraxSettings(BaseSettings):
    """What every Gorax process needs. Each general field is the variable ``GORAX_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GORAX_", extra="ignore", hide_input_in_errors=True)

    home: Path = Field(default=Path(".gorax"), description="State directory (databases, keys, logs).")
    database_url: str | None = Field(
        default=None,
        description="Gorax database; default sqlite+aiosqlite in the state directory. "
        "postgresql+asyncpg://... for production.",
    )
    work_pool: str = Field(default="gorax", description="Prefect work pool for Gorax runs.")
    api_url: str | None = Field(
        default=None,
        description="Base URL of the Gorax API: where runs record human tasks (a worker needs it) "
        "and what links in e-mails point at (default for the API: its host and port).",
    )
    worker_token: SecretStr | None = Field(
        default=None,
        description="Token of the internal worker principal: the API accepts it, runs send it "
        "(`gorax up` makes one and gives it to both).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="An API key of a tenant, for commands that call the Gorax API at GORAX_API_URL "
        "(`gorax test --workflow`).",
    )
    log_level: str = Field(default="INFO", description="Log level of Gorax processes.")
    log_max_line_bytes: int = Field(
        default=8192,
        ge=0,
        description="Longest log line a Gorax process writes (message and traceback are cut "
        "past it, with a marker of how much; at least 1,024; 0: no cap).",
    )

    prefect: PrefectSettings = Field(default_factory=PrefectSettings, description="The Prefect server.")
    keys: KeySettings = Field(default_factory=KeySettings, description="Credential encryption keys.")
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings, description="What runs may reach.")
    worker: WorkerSettings = Field(default_factory=WorkerSettings, description="The warm worker.")
    results: ResultSettings = Field(default_factory=ResultSettings, description="Run results.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _OwnVariablesOnly(settings_cls)

    @model_validator(mode="after")
    def _defaults_from_home(self) -> GoraxSettings:
        # A section cannot see the root: what it defaults to inside the state directory is filled
        # in here, as Prefect's root does for its paths under PREFECT_HOME.
        if self.keys.key_file is None:
            self.keys = self.keys.model_copy(update={"key_file": self.state_dir / KEY_FILE_NAME})
        return self

    @property
    def state_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.state_dir / 'gorax.db'}"

    def required_api_url(self) -> str:
        """``GORAX_API_URL`` without a trailing slash; a clear error where a run needs it unset."""
        if not self.api_url:
            raise SettingMissing(
                "GORAX_API_URL is not set: a run reaches the Gorax API (to record a human task) at "
                "that address. Give it to the worker's environment (the work pool's job variables)."
            )
        return self.api_url.rstrip("/")

    def required_worker_token(self) -> str:
        """``GORAX_WORKER_TOKEN``; a clear error where a run needs it unset."""
        if self.worker_token is None or not self.worker_token.get_secret_value():
            raise SettingMissing(
                "GORAX_WORKER_TOKEN is not set: a run authenticates to the Gorax API (to record a "
                "human task) with the API's worker token. Give it to the worker's environment (the "
                "work pool's job variables)."
            )
        return self.worker_token.get_secret_value()


@lru_cache(maxsize=1)
def get_settings() -> GoraxSettings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after changing env)."""
    return GoraxSettings()


# blocks imports nothing of Gorax's: its key settings reach it from the root, once per process
# (a callable, so settings rebuilt after ``get_settings.cache_clear()`` are followed).
key_providers.use_settings(lambda: get_settings().keys)
