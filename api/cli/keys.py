"""``gorax keys rotate``: re-wrap data keys under a new KEK, or re-seal a tenant's values."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``gorax keys ...`` to the CLI."""
    keys = subparsers.add_parser("keys", help="Manage credential encryption keys.")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys.set_defaults(handler=lambda args: keys.print_help() or 2)
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


def _point_prefect_client() -> None:
    """Talk to the Prefect server of this state directory unless PREFECT_API_URL says otherwise."""
    from flows.settings import get_settings

    settings = get_settings()
    if "PREFECT_API_URL" not in os.environ:
        os.environ["PREFECT_API_URL"] = settings.effective_prefect_api_url
    if "PREFECT_API_AUTH_STRING" not in os.environ:
        auth = settings.prefect_auth_string
        auth_file = settings.state_dir / "prefect-auth"
        if not auth and auth_file.exists():
            auth = auth_file.read_text().strip()
        if auth:
            os.environ["PREFECT_API_AUTH_STRING"] = auth


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from blocks import keys, rotation

    if not args.data_key:
        return [await rotation.rotate_kek(new_kek_id=args.new_kms_key_id)]
    tenants = [args.tenant] if args.tenant else [k.tenant_id for k in await keys.list_keyrings()]
    return [await rotation.rotate_data_key(tenant, drop_old=args.drop_old) for tenant in tenants]


def _rotate(args: argparse.Namespace) -> int:
    from blocks.errors import CredentialError

    if args.tenant and not args.data_key:
        print("gorax keys rotate: --tenant goes with --data-key (a KEK rotation covers every tenant)", file=sys.stderr)
        return 2
    if args.drop_old and not args.data_key:
        print("gorax keys rotate: --drop-old goes with --data-key", file=sys.stderr)
        return 2
    _point_prefect_client()
    try:
        results = asyncio.run(_run(args))
    except CredentialError as exc:
        print(f"gorax keys rotate: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(json.dumps(result, sort_keys=True))
    failed = [tenant for result in results for tenant in result.get("failed", {})]
    if failed:
        print(f"gorax keys rotate: {len(failed)} tenant keyring(s) not re-wrapped: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0
