"""What one API app holds for its lifetime (``app.state.gorax``)."""

from __future__ import annotations

from dataclasses import dataclass
from api.auth.tokens import TokenSigner
from api.config import ApiConfig
from api.db.engine import Database
from api.observability import Metrics
from api.prefect import PrefectClient
from api.ratelimit import RateLimiter
from flows.settings import GoraxSettings


@dataclass
class AppState:
    """Settings, database, token signer, rate limiter, metrics, the worker token and Prefect."""

    settings: GoraxSettings
    config: ApiConfig
    db: Database
    signer: TokenSigner
    limiter: RateLimiter
    metrics: Metrics
    worker_token: str
    #: The app's one Prefect client (opened by the app's lifespan; None before and after it).
    prefect: PrefectClient | None = None
