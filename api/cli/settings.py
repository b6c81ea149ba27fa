"""``gorax settings``: every ``GORAX_*`` variable this process sees, or (``--markdown``) the
configuration reference docs/configuration.md holds."""

from __future__ import annotations

import argparse


def _settings(args: argparse.Namespace) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.settings_reference import current_values, settings_markdown  # noqa: PLC0415

    if args.markdown:
        print(settings_markdown(), end="")
        return 0
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.cli.common import cli_settings  # noqa: PLC0415

    for name, value in current_values(cli_settings()):
        print(f"{name}={value}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gorax settings`` to the CLI."""
    parser = subparsers.add_parser(
        "settings",
        help="show every GORAX_* setting (--markdown: the reference table)",
        description="Print the value of every GORAX_* setting this process sees (secrets only as "
        "<set>), or with --markdown the configuration reference generated from the settings classes.",
    )
    parser.add_argument("--markdown", action="store_true", help="print the reference as Markdown tables")
    parser.set_defaults(handler=_settings)
