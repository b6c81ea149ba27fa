"""What one API app holds for its lifetime (``app.state.gorax``)."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth.tokens import TokenSigner
from api.config import ApiSettings, GoraxApiSettings
from api.db.engine import Database
from api.observability import Metrics
from api.prefect import PrefectClient
from api.ratelimit import RateLimiter


@dataclass
class AppState:
    """Settings, database, token signer, rate limiter, metrics, the worker token and Prefect."""

    settings: GoraxApiSettings
    #: The API's section of ``settings`` (``settings.api``), which most routes read.
    config: ApiSettings
    db: Database
    signer: TokenSigner
    limiter: RateLimiter
    metrics: Metrics
    #: None when GORAX_WORKER_TOKEN is not set: no bearer token is then the worker's.
    worker_token: str | None
    #: The app's one Prefect client (opened by the app's lifespan; None before and after it).
    prefect: PrefectClient | None = None
