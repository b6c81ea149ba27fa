"""Shared pieces of the integration node types: errors with masked secrets, a circuit breaker
per (integration, tenant), per-provider rate limits on Prefect global concurrency limits, the
``guarded`` call wrapper and a JSON API client."""

from flows.integrations.breaker import CircuitBreaker, breaker_for, reset_breakers
from flows.integrations.errors import (
    CircuitOpenError,
    IntegrationError,
    SandboxError,
    mask,
    provider_message,
)
from flows.integrations.guard import guarded
from flows.integrations.http import JsonApi
from flows.integrations.ratelimit import ensure_rate_limit, rate_limit_name

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "IntegrationError",
    "JsonApi",
    "SandboxError",
    "breaker_for",
    "ensure_rate_limit",
    "guarded",
    "mask",
    "provider_message",
    "rate_limit_name",
    "reset_breakers",
]
