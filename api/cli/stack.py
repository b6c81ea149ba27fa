"""``gorax up``: run the embedded stack in the foreground."""

from __future__ import annotations

import argparse


def _up(args: argparse.Namespace) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.config import get_api_settings  # noqa: PLC0415
    from api.stack import run_stack  # noqa: PLC0415

    return run_stack(get_api_settings())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start Prefect server, worker, API and editor on 127.0.0.1",
        description="Start and supervise the embedded stack until Ctrl-C or SIGTERM.",
    )
    parser.set_defaults(handler=_up)
