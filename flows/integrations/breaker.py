"""A circuit breaker per (integration, tenant).

After ``failure_threshold`` consecutive failures of the service (5xx, 429, network errors;
not a tenant's own bad request) the breaker opens: calls fail at once with
:class:`CircuitOpenError` (naming the integration, the tenant and when it retries) instead of
piling onto a service that is down. After ``cooldown_seconds`` it half-opens: one trial call
goes through; its success closes the breaker, its failure opens it again.

State lives in the worker process: each worker protects itself, which is what matters for a
struggling provider and keeps the hot path free of a network round trip. Thresholds come from
``GORAX_CIRCUIT_FAILURE_THRESHOLD`` (default 5) and ``GORAX_CIRCUIT_COOLDOWN_SECONDS`` (30).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from flows.errors import CircuitOpenError
from flows.settings import get_settings

State = Literal["closed", "open", "half_open"]


@dataclass
class CircuitBreaker:
    """Consecutive-failure breaker with a cool-down and a single half-open trial."""

    integration: str
    tenant: str
    failure_threshold: int = 5
    cooldown_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial_in_flight: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown_seconds:
            return "half_open"
        return "open"

    def before_call(self, operation: str) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go out now."""
        with self._lock:
            state = self.state
            if state == "closed":
                return
            if state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True  # exactly one probe while half-open
                return
            assert self.opened_at is not None
            retry_in = max(0.0, self.cooldown_seconds - (self.clock() - self.opened_at))
            raise CircuitOpenError(
                self.integration,
                operation,
                f"circuit open for tenant {self.tenant!r} after {self.failures} consecutive "
                f"failures; no call made, next trial in {retry_in:.0f}s",
                retryable=True,
            )

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self._trial_in_flight or self.failures >= self.failure_threshold:
                self.opened_at = self.clock()
            self._trial_in_flight = False

    def release_trial(self) -> None:
        """A trial call ended without telling about the service (e.g. a 4xx): allow another."""
        with self._lock:
            self._trial_in_flight = False


_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker_for(integration: str, tenant: str | None) -> CircuitBreaker:
    """The process-wide breaker of ``integration`` for ``tenant`` (created on first use)."""
    key = (integration, tenant or "-")
    with _registry_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            settings = get_settings().runtime
            breaker = _breakers[key] = CircuitBreaker(
                integration,
                key[1],
                failure_threshold=settings.circuit_failure_threshold,
                cooldown_seconds=settings.circuit_cooldown_seconds,
            )
        return breaker


def reset_breakers() -> None:
    """Forget every breaker's state (tests, and an operator's manual reset)."""
    with _registry_lock:
        _breakers.clear()
