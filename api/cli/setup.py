"""``gorax setup``: set up what this install needs in Prefect, and say what was done.

Idempotent: run it after installing or upgrading (the API also runs it when it starts).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from typing import Any


async def _setup(settings: Any) -> Any:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.prefect import open_client  # noqa: PLC0415
    from api.prefect.setup import setup_prefect  # noqa: PLC0415

    token = settings.worker_token.get_secret_value() if settings.worker_token else None
    async with AsyncExitStack() as stack:
        client = await open_client(stack)
        return await setup_prefect(
            client,
            work_pool=settings.work_pool,
            worker_type=settings.stack.worker_type,
            api_url=settings.effective_api_url,
            worker_token=token,
            dead_after_seconds=settings.worker.dead_after_seconds,
        )


def _run(args: argparse.Namespace) -> int:
    """Set Prefect up; exit 1 naming the reason when Prefect cannot be reached or refuses."""
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.cli.common import use_prefect  # noqa: PLC0415

    settings = use_prefect()
    try:
        report = asyncio.run(_setup(settings))
    except Exception as exc:  # Prefect unreachable or refusing: say which, and what was asked
        print(f"gorax setup: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gorax setup`` to the ``gorax`` parser."""
    parser = subparsers.add_parser(
        "setup",
        help="set up Prefect for Gorax (work pool, block types); idempotent",
        description="Create or complete what Gorax needs in Prefect: the work pool "
        "(GORAX_WORK_POOL, of type GORAX_WORKER_TYPE) with GORAX_API_URL and the worker token in "
        "its job template's environment, and Gorax's credential block types. Safe to run again.",
    )
    parser.set_defaults(handler=_run)
