"""Loading an integration node's credential and reading its fields.

The credential types themselves are their Block classes (``blocks.types``): a node type names
the ones it takes in ``credential_types``, by the class's slug.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretBytes, SecretStr

from flows.errors import IntegrationError
from flows.settings import get_settings
from translator.nodetypes import NodeContext


def plain(value: Any) -> Any:
    """A Block field's value with ``SecretStr``/``SecretBytes`` unwrapped."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode()
    return value


def field(block: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` the Block has a non-empty value for (unwrapped), else ``default``."""
    for name in names:
        value = plain(getattr(block, name, None))
        if value not in (None, ""):
            return value
    return default


def required(block: Any, integration: str, credential: str, *names: str) -> Any:
    """Like :func:`field`, but a missing value is an error naming the credential and field."""
    value = field(block, *names)
    if value is None:
        raise IntegrationError(integration, "load credential", f"credential {credential!r} has no {names[0]!r}")
    return value


async def load(ctx: NodeContext, name: str, integration: str, accepted: tuple[str, ...]) -> Any:
    """The unsealed credential ``name``, checked to be one of the ``accepted`` Block types."""
    try:
        block = await ctx.credential(name)
    except Exception as exc:
        raise IntegrationError(
            integration, "load credential", f"credential {name!r} could not be loaded: {exc}"
        ) from exc
    slug_of = getattr(block, "get_block_type_slug", None)
    slug = slug_of() if callable(slug_of) else None
    if slug is not None and accepted and slug not in accepted:
        raise IntegrationError(
            integration,
            "load credential",
            f"credential {name!r} is a {slug!r}; this node takes {', '.join(accepted)}",
        )
    return block


async def refresh_rejected(ctx: NodeContext, name: str, block: Any) -> bool:
    """The provider answered 401 to credential ``name``: for an OAuth connection, refresh its
    access token once (the block is updated in place) and say whether to retry; other types: False."""
    if not hasattr(block, "refresh_token") or not hasattr(block, "access_token"):
        return False
    # Node discovery imports this module and must not load Prefect (the refresh takes its lock).
    from flows import oauth  # noqa: PLC0415

    return await oauth.refresh_rejected(
        block, tenant_id=ctx.tenant_id, name=name, flow_run_id=getattr(ctx, "flow_run_id", None)
    )


def bearer_refresher(ctx: NodeContext, name: str, block: Any) -> Callable[[], Awaitable[dict[str, str] | None]] | None:
    """For an OAuth connection: what gives a :class:`~flows.integrations.JsonApi` a new bearer
    header after a 401 (one refresh); None for other credential types."""
    if not hasattr(block, "refresh_token") or not hasattr(block, "access_token"):
        return None

    async def refreshed() -> dict[str, str] | None:
        if not await refresh_rejected(ctx, name, block):
            return None
        return {"Authorization": f"Bearer {plain(block.access_token)}"}

    return refreshed


def api_base(block: Any, provider: str, default: str) -> str:
    """Where ``provider``'s API lives: the credential's own base URL field if it has one, else
    the operator's ``GORAX_<PROVIDER>_API_URL``, else the public ``default``.

    Deliberately not a node setting: a workflow editor must not be able to send a stored token
    to another host by editing a node.
    """
    from_block = field(block, "base_url", "api_url", "url")
    if from_block:
        return str(from_block)
    return get_settings().runtime.provider_api_url(provider) or default
