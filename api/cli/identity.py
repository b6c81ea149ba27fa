"""``gorax tenants ...`` and ``gorax users ...``: identity administration on the API's database.

The CLI opens the same database as the API (``GORAX_HOME`` / ``GORAX_DATABASE_URL``) and runs
the migrations first, so it works before the API has ever started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from api.errors import ApiError


def _run(coro_factory: Callable[[Any], Awaitable[int]]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        # Imported when the command runs: `gorax --help` imports every command module and stays fast.
        from api.cli.common import cli_settings  # noqa: PLC0415
        from api.db.engine import Database  # noqa: PLC0415

        async def main() -> int:
            db = Database(cli_settings().resolved_database_url)
            try:
                await db.migrate()
                return await coro_factory((db, args))
            finally:
                await db.dispose()

        try:
            return asyncio.run(main())
        except ApiError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1

    return handler


async def _tenants_create(ctx: Any) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.services.identity import create_tenant_with_admin  # noqa: PLC0415

    db, args = ctx
    result = await create_tenant_with_admin(
        db,
        name=args.name,
        admin_email=args.admin,
        admin_name=args.admin_name or "",
        slug=args.slug,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"tenant:   {args.name} ({result['tenant_id']})")
        print(f"admin:    {result['email']}")
        if result["password"]:
            print(f"password: {result['password']}   (shown once; change it after signing in)")
        else:
            print("password: (existing user keeps their password)")
        print(f"api key:  {result['api_key']}   (shown once)")
    return 0


async def _tenants_list(ctx: Any) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from sqlalchemy import select  # noqa: PLC0415

    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.models.identity import Tenant  # noqa: PLC0415

    db, args = ctx
    async with db.system_scope() as session:
        tenants = (await session.execute(select(Tenant).order_by(Tenant.created_at))).scalars()
        rows = [{"id": t.id, "slug": t.slug, "name": t.name} for t in tenants]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['id']}  {row['slug']:<24} {row['name']}")
    return 0


async def _users_add(ctx: Any) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.auth.permissions import Role  # noqa: PLC0415
    from api.services.audit import AuditContext  # noqa: PLC0415
    from api.services.identity import add_member, get_tenant_by_ref  # noqa: PLC0415

    db, args = ctx
    async with db.system_scope() as session:
        tenant = await get_tenant_by_ref(session, args.tenant)
    if tenant is None:
        print(f"error: no tenant {args.tenant!r}", file=sys.stderr)
        return 1
    async with db.tenant_scope(tenant_id=tenant.id) as session:
        member, password = await add_member(
            session,
            tenant_id=tenant.id,
            email=args.email,
            role=Role(args.role),
            name=args.name or "",
            context=AuditContext.system("cli"),
        )
    result = {
        "tenant_id": tenant.id,
        "user_id": member.user_id,
        "email": member.email,
        "role": member.role,
        "password": password,
    }
    print(
        json.dumps(result)
        if args.json
        else f"{member.email} is {member.role} in {tenant.slug}"
        + (f"; one-time password: {password}" if password else "")
    )
    return 0


async def _users_set_password(ctx: Any) -> int:
    # Imported when the command runs: `gorax --help` imports every command module and stays fast.
    from api.services.identity import set_password  # noqa: PLC0415

    db, args = ctx
    password = await set_password(db, email=args.email, password=None)
    print(
        json.dumps({"email": args.email, "password": password})
        if args.json
        else f"new password for {args.email}: {password}   (lockout cleared)"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tenants`` and ``users`` to the ``gorax`` command."""
    tenants = subparsers.add_parser("tenants", help="Manage tenants")
    tenant_cmds = tenants.add_subparsers(dest="tenants_command", metavar="ACTION", required=True)
    create = tenant_cmds.add_parser("create", help="Create a tenant with an admin and API key")
    create.add_argument("name", help="Tenant name")
    create.add_argument("--admin", required=True, metavar="EMAIL", help="Admin's e-mail")
    create.add_argument("--admin-name", help="Admin's display name")
    create.add_argument("--slug", help="URL slug (default: from the name)")
    create.add_argument("--json", action="store_true", help="Print {tenant_id, email, password, api_key} as JSON")
    create.set_defaults(handler=_run(_tenants_create))
    listing = tenant_cmds.add_parser("list", help="List tenants")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_run(_tenants_list))

    users = subparsers.add_parser("users", help="Manage users")
    user_cmds = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = user_cmds.add_parser("add", help="Add a user to a tenant (created if new)")
    add.add_argument("email")
    add.add_argument("--tenant", required=True, help="Tenant id or slug")
    add.add_argument("--role", default="viewer", choices=["admin", "editor", "operator", "viewer"])
    add.add_argument("--name")
    add.add_argument("--json", action="store_true")
    add.set_defaults(handler=_run(_users_add))
    reset = user_cmds.add_parser("set-password", help="Generate a new password, clear lockout")
    reset.add_argument("email")
    reset.add_argument("--json", action="store_true")
    reset.set_defaults(handler=_run(_users_set_password))
