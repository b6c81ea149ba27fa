"""``gorax keys init`` makes the local key-encryption key; ``gorax keys rotate`` re-wraps data keys
under a new KEK, or re-seals a tenant's values."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from blocks.errors import CredentialError, KeyProviderError


def register(subparsers: Any) -> None:
    """Add ``gorax keys ...`` to the CLI."""
    keys = subparsers.add_parser("keys", help="Manage credential encryption keys.")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys.set_defaults(handler=lambda args: keys.print_help() or 2)
    init = actions.add_parser(
        "init",
        help="Create the local key file (GORAX_KEY_FILE, default $GORAX_HOME/gorax-kek.json) once.",
        description="Create the local provider's key-encryption key. Nothing else creates one: "
        "`gorax up` does this on its first start. An existing key file is left as it is.",
    )
    init.set_defaults(handler=_init)
    rotate = actions.add_parser(
        "rotate",
        help="Re-wrap every tenant data key under a new key-encryption key "
        "(or, with --data-key, re-seal values under new data keys).",
    )
    rotate.add_argument("--tenant", help="Tenant id or slug (with --data-key).")
    rotate.add_argument(
        "--data-key",
        action="store_true",
        help="Give the tenant (every tenant without --tenant) a new data key and re-seal its values.",
    )
    rotate.add_argument(
        "--drop-old",
        action="store_true",
        help="With --data-key: remove the previous data keys afterwards (do it when no run is active).",
    )
    rotate.add_argument("--new-kms-key-id", help="AWS KMS provider: the KMS key to re-wrap under.")
    rotate.set_defaults(handler=_rotate)


def _init(args: argparse.Namespace) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.cli.common import cli_settings  # noqa: PLC0415
    from blocks.providers import create_key_file  # noqa: PLC0415

    keys = cli_settings().keys
    if keys.provider != "local" or keys.key_file is None:
        print(
            f"gorax keys init: the {keys.provider} provider's key is kept outside Gorax "
            "(GORAX_KEY_ENCRYPTION_KEY or AWS KMS); there is no key file to create",
            file=sys.stderr,
        )
        return 2
    try:
        kek = create_key_file(keys.key_file)
    except KeyProviderError as exc:
        print(f"gorax keys init: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"provider": "local", "key_file": str(keys.key_file), "kek": kek}))
    return 0


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.cli.common import use_prefect  # noqa: PLC0415
    from blocks import keys, rotation  # noqa: PLC0415

    settings = use_prefect()
    if not args.data_key:
        server_key_file = settings.state_dir / keys.SERVER_KEY_FILE
        return [
            await rotation.rotate_kek(settings.keys, server_key_file=server_key_file, new_kek_id=args.new_kms_key_id)
        ]
    tenants = [args.tenant] if args.tenant else [k.tenant_id for k in await keys.list_keyrings()]
    return [await rotation.rotate_data_key(tenant, drop_old=args.drop_old) for tenant in tenants]


def _rotate(args: argparse.Namespace) -> int:
    if args.tenant and not args.data_key:
        print("gorax keys rotate: --tenant goes with --data-key (a KEK rotation covers every tenant)", file=sys.stderr)
        return 2
    if args.drop_old and not args.data_key:
        print("gorax keys rotate: --drop-old goes with --data-key", file=sys.stderr)
        return 2
    try:
        results = asyncio.run(_run(args))
    except CredentialError as exc:
        print(f"gorax keys rotate: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(json.dumps(result, sort_keys=True))
    failed = [tenant for result in results for tenant in result.get("failed", {})]
    if failed:
        print(
            f"gorax keys rotate: {len(failed)} tenant keyring(s) not re-wrapped: {', '.join(failed)}", file=sys.stderr
        )
        return 1
    return 0
