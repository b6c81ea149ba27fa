"""What one API app holds for its lifetime (``app.state.gorax``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.auth.tokens import TokenSigner
from api.config import ApiConfig
from api.db.engine import Database
from api.observability import Metrics
from api.ratelimit import RateLimiter
from flows.settings import GoraxSettings


@dataclass
class AppState:
    """Settings, database, token signer, rate limiter, metrics and the worker token."""

    settings: GoraxSettings
    config: ApiConfig
    db: Database
    signer: TokenSigner
    limiter: RateLimiter
    metrics: Metrics
    worker_token: str
    #: Prefect's ``AsyncClientContext`` every request shares (opened by the app's lifespan).
    prefect_clients: Any = None
