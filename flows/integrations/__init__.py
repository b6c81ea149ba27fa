"""Shared pieces of the integration node types: a circuit breaker per (integration, tenant),
per-provider rate limits on Prefect global concurrency limits, the ``check_endpoint`` and
``guarded`` call wrappers and a JSON API client. Their errors are in :mod:`flows.errors`."""

from flows.integrations.breaker import CircuitBreaker, breaker_for, reset_breakers
from flows.integrations.guard import check_endpoint, guarded, provider_message
from flows.integrations.jsonapi import JsonApi
from flows.integrations.ratelimit import ensure_rate_limit, rate_limit_name

__all__ = [
    "CircuitBreaker",
    "JsonApi",
    "breaker_for",
    "check_endpoint",
    "ensure_rate_limit",
    "guarded",
    "provider_message",
    "rate_limit_name",
    "reset_breakers",
]
