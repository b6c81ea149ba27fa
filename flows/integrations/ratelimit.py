"""Per-provider rate limits through Prefect global concurrency limits.

Each provider has a limit named ``gorax-rate-<provider>`` (``gorax-rate-slack``,
``gorax-rate-github``...). With slot decay it is a token bucket shared by every worker that
talks to the same Prefect server: ``limit`` is the burst, ``slot_decay_per_second`` the steady
rate. A missing limit means "unlimited" (Prefect skips it), so an operator opts in per provider::

    prefect gcl create gorax-rate-slack --limit 5 --slot-decay-per-second 1

or from code with :func:`ensure_rate_limit`. ``GORAX_RATE_LIMITS=off`` skips the acquisition
entirely (a worker without a Prefect API, e.g. a quick local check).
"""

from __future__ import annotations

from flows.errors import IntegrationError
from flows.settings import get_settings

PREFIX = "gorax-rate-"


def rate_limit_name(provider: str) -> str:
    """The global concurrency limit that paces calls to ``provider``."""
    return f"{PREFIX}{provider}"


async def acquire(provider: str, operation: str = "call") -> None:
    """Wait for a slot of ``provider``'s rate limit (no-op when the limit does not exist).

    Waits at most ``GORAX_RATE_LIMIT_WAIT_SECONDS`` (default 300), then fails the call with a
    retryable :class:`IntegrationError` naming the limit.
    """
    settings = get_settings().runtime
    if not settings.rate_limits:
        return
    # Node discovery imports this module and must not load Prefect (tests/test_node_contract.py).
    from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError, rate_limit  # noqa: PLC0415

    wait = settings.rate_limit_wait_seconds
    name = rate_limit_name(provider)
    try:
        await rate_limit(name, occupy=1, timeout_seconds=wait, strict=False)
    except AcquireConcurrencySlotTimeoutError:
        raise IntegrationError(
            provider, operation, f"rate limit {name!r} gave no slot within {wait:g}s; not sent", retryable=True
        ) from None


async def ensure_rate_limit(provider: str, *, burst: int, per_second: float) -> None:
    """Create or update ``provider``'s limit: ``burst`` slots refilled at ``per_second``."""
    # Node discovery must not load Prefect, as in acquire().
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.actions import (  # noqa: PLC0415
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound  # noqa: PLC0415

    name = rate_limit_name(provider)
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=burst, slot_decay_per_second=per_second, active=True)
            )
            return
        await client.update_global_concurrency_limit(
            name,
            GlobalConcurrencyLimitUpdate(limit=burst, slot_decay_per_second=per_second, active=True),
        )
