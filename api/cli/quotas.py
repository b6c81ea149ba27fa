"""``gorax quotas set|show``: an operator's per-tenant limits (runs per month, concurrent runs,
webhook requests per minute, storage, and the agents' tokens, cost and tool calls per month).

Operators, who run the deployment, set them; a tenant's admins only see them (``GET
/api/v1/tenant/usage`` and the Usage section of the Admin page), so a tenant cannot raise its
own limits. The command writes the API's database and the tenant's Prefect concurrency limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from api.errors import ApiError

_FLAGS = {
    "runs_per_month": "--runs-per-month",
    "concurrent_runs": "--concurrent-runs",
    "webhook_requests_per_minute": "--webhook-requests-per-minute",
    "storage_bytes": "--storage-bytes",
    "agent_tokens_per_month": "--agent-tokens-per-month",
    "agent_cost_usd_per_month": "--agent-cost-usd-per-month",
    "agent_tool_calls_per_month": "--agent-tool-calls-per-month",
}


def _value(text: str) -> int | None:
    """A limit on the command line: a number (0 = unlimited) or ``default``."""
    if text == "default":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 0 (unlimited) or 'default'")
    return int(text)


def _usd(text: str) -> float | None:
    """A limit in US dollars: a number (0 = unlimited) or ``default``."""
    if text == "default":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of US dollars, 0 (unlimited) or 'default'")
    return value


def _handler(args: argparse.Namespace) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from contextlib import AsyncExitStack  # noqa: PLC0415

    from api.cli.common import use_prefect  # noqa: PLC0415
    from api.db.engine import Database  # noqa: PLC0415
    from api.prefect import open_client  # noqa: PLC0415
    from api.services.audit import AuditContext  # noqa: PLC0415
    from api.services.quotas import set_tenant_quota  # noqa: PLC0415

    settings = use_prefect()
    values: dict[str, int | float | None] = {}
    if args.quotas_command == "set":
        values = {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not _UNSET}
        if not values:
            print(f"error: name at least one limit ({', '.join(_FLAGS.values())})", file=sys.stderr)
            return 2

    async def main() -> dict[str, Any]:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            async with AsyncExitStack() as stack:
                client = await open_client(stack)
                limits = await set_tenant_quota(
                    db,
                    client,
                    tenant_ref=args.tenant,
                    values=values,
                    config=settings.api,
                    context=AuditContext.system("gorax quotas"),
                )
            return {name: {"limit": limit.value, "source": limit.source} for name, limit in limits.items()}
        finally:
            await db.dispose()

    try:
        result = asyncio.run(main())
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        for name, item in result.items():
            shown = "unlimited" if item["limit"] == 0 else f"{item['limit']:,}"
            print(f"{name:<30} {shown:>15}  ({item['source']})")
    return 0


_UNSET: Any = object()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``quotas`` to the ``gorax`` command."""
    quotas = subparsers.add_parser("quotas", help="Set and show per-tenant quotas")
    commands = quotas.add_subparsers(dest="quotas_command", metavar="ACTION", required=True)
    setter = commands.add_parser("set", help="Set a tenant's own limits (a number, 0 = unlimited, or 'default')")
    shower = commands.add_parser("show", help="Show a tenant's effective limits")
    for parser in (setter, shower):
        parser.add_argument("tenant", help="Tenant id or slug")
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(handler=_handler)
    for name, flag in _FLAGS.items():
        usd = name == "agent_cost_usd_per_month"
        setter.add_argument(
            flag, dest=name, type=_usd if usd else _value, default=_UNSET, metavar="USD" if usd else "N"
        )
