"""The ``gorax`` command. Each subcommand module exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

# One module per concern; each adds its subcommands. Imports inside the commands stay lazy so
# ``gorax --help`` is fast.
_COMMAND_MODULES = (
    "api.cli.stack",  # gorax up
    "api.cli.setup",  # gorax setup
    "api.cli.graphs",  # gorax validate / deploy / run
    "api.cli.keys",  # gorax keys init / rotate
    "api.cli.identity",  # gorax tenants / users
    "api.cli.settings",  # gorax settings
    "api.cli.webhooks",  # gorax webhooks repair
    "api.cli.imports",  # gorax import n8n
    "api.cli.eject",  # gorax eject
    "api.cli.quotas",  # gorax quotas set / show
    "api.cli.testing",  # gorax test
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gorax", description="Gorax workflow automation")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that concern is not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    result = args.handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
