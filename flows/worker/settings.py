"""The warm worker's settings section (``GoraxSettings.worker``), read from ``GORAX_WORKER_*``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    """How the ``gorax`` worker type runs flows. Each field is ``GORAX_WORKER_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GORAX_WORKER_", extra="ignore")

    limit: int = Field(
        default=50,
        ge=1,
        description="Concurrent flow runs when `prefect worker start` gets no --limit.",
    )
    poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Fallback poll interval for scheduled runs (new runs also wake the "
        "worker through Prefect's event stream).",
    )
    cancel_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Poll interval for cancellations when the event stream is unavailable.",
    )
    shutdown_grace_seconds: float = Field(
        default=4.0,
        ge=0,
        description="On stop, how long running flows may finish before they are crashed.",
    )
    preload: str = Field(
        default="flows.run_graph",
        description="Comma-separated modules imported when the worker starts, so the first "
        "run finds them warm (missing modules are skipped with a warning).",
    )
    heartbeat_seconds: int = Field(
        default=180,
        ge=30,
        description="Seconds between the heartbeats of each flow run the worker executes (Prefect's "
        "flow-run heartbeat, at least 30; PREFECT_FLOWS_HEARTBEAT_FREQUENCY, when set, wins).",
    )
    dead_after_seconds: float = Field(
        default=600.0,
        gt=30,
        description="A flow run heard from, then without a heartbeat for this long, is marked "
        "Crashed (the automation `gorax setup` makes). It applies to every run of the Prefect "
        "server: keep it above every heartbeat interval there (Prefect's default is 180 s); "
        "lower both together for faster detection.",
    )
    crash_retries: int = Field(
        default=1,
        ge=0,
        le=10,
        description="How many times a run that crashed (its worker died, or its heartbeat stopped) "
        "runs again, as the same flow run, unless its flow sets more retries; 0: never.",
    )
    crash_lookback_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="On start, a worker reruns the crashed runs of its pool that ended within "
        "this many seconds (crashes while no worker of the pool was running).",
    )
    shared_suspension_observer: bool = Field(
        default=False,
        description="Opt-in patch of Prefect's engine: one observer of external suspensions for all "
        "the worker's runs, instead of one per run that blocks the shared loop ~40 ms as a run starts "
        "and ~200 ms as it ends (flows/worker/suspension.py). Applies to the Prefect versions it was "
        "tested with; elsewhere it switches itself off with a warning.",
    )
