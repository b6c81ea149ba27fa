"""``gorax webhooks repair``: post again the events of deliveries that started no run.

A maintenance job an operator runs rarely (after a Prefect restart that lost events, say): see
:mod:`api.webhooks.repair`. It opens the API's database and Prefect as the other commands do,
prints what it found and did (``--json``: one JSON object) and audits what it changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AsyncExitStack
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``gorax webhooks ...`` to the CLI."""
    webhooks = subparsers.add_parser("webhooks", help="Webhook maintenance.")
    actions = webhooks.add_subparsers(dest="webhooks_command", metavar="ACTION")
    webhooks.set_defaults(handler=lambda args: webhooks.print_help() or 2)
    repair = actions.add_parser(
        "repair",
        help="Post again the event of each delivery dispatched long ago without a run.",
        description="For each webhook delivery dispatched more than --older-than seconds ago "
        "that has no run: link it to its run if one exists by now, else post its event again "
        "with the same event id (Prefect starts one run for it however often it arrives). One "
        "repair runs at a time across API replicas; a paused workflow's deliveries wait.",
    )
    repair.add_argument(
        "--older-than",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="Only deliveries dispatched longer ago than this (default GORAX_WEBHOOK_REPAIR_AFTER_SECONDS, "
        "3600: past Prefect's 30 minutes of remembering an event id).",
    )
    repair.add_argument("--dry-run", action="store_true", help="Report what would be done; change and post nothing.")
    repair.add_argument("--tenant", help="Only this tenant's deliveries (its id).")
    repair.add_argument("--limit", type=int, default=1000, help="At most this many deliveries (1000).")
    repair.add_argument("--json", action="store_true", help="Print the report as one JSON object.")
    repair.set_defaults(handler=_repair)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--older-than: {value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 10 * 366 * 24 * 3600:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"--older-than: {value!r} is not between 0 and ten years of seconds")
    return seconds


async def _run(args: argparse.Namespace) -> Any:
    # Imported here, as every command's modules are: `gorax --help` imports them all, and
    # Prefect reads its settings when first imported, after use_prefect() has pointed them.
    from api.cli.common import use_prefect  # noqa: PLC0415

    settings = use_prefect()
    from api.db.engine import Database  # noqa: PLC0415
    from api.prefect import open_client  # noqa: PLC0415
    from api.services.audit import AuditContext  # noqa: PLC0415
    from api.webhooks.repair import repair  # noqa: PLC0415

    older_than = settings.api.webhook_repair_after_seconds if args.older_than is None else args.older_than
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        async with AsyncExitStack() as stack:
            client = await open_client(stack)
            return await repair(
                db,
                client,
                older_than=older_than,
                dry_run=args.dry_run,
                tenant_id=args.tenant,
                limit=args.limit,
                context=AuditContext.system("cli:gorax webhooks repair"),
            )
    finally:
        await db.dispose()


def _repair(args: argparse.Namespace) -> int:
    """Exit 0 when done (or nothing to do), 3 when another repair is running, 1 on failure."""
    if args.limit < 1:
        print("gorax webhooks repair: --limit must be 1 or more", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_run(args))
    except Exception as exc:  # database or Prefect unreachable or refusing: say which
        print(f"gorax webhooks repair: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    else:
        for line in report.lines():
            print(line)
    return 3 if report.busy else 0
