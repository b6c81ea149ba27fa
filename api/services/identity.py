"""Tenants, users and memberships; the first-tenant bootstrap shared by CLI and launcher."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.passwords import generate_password, hash_password
from api.auth.permissions import Role
from api.db.engine import Database
from api.errors import BadRequest, Conflict, NotFound
from api.models.identity import Membership, Tenant, User
from api.services import api_keys, audit
from api.services.audit import AuditContext

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def normalize_email(email: str) -> str:
    """Lower-cased, trimmed e-mail; :class:`BadRequest` when it is not an address."""
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise BadRequest(f"not an e-mail address: {email!r}", details={"field": "email"})
    return value


def slugify(name: str) -> str:
    """A URL-safe slug for a tenant name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    return slug or "tenant"


@dataclass(frozen=True)
class MemberView:
    """A member as the API shows it."""

    user_id: str
    email: str
    name: str
    role: str
    created_at: Any


async def get_tenant_by_ref(session: AsyncSession, ref: str) -> Tenant | None:
    """A tenant by id or slug."""
    return (await session.execute(select(Tenant).where((Tenant.id == ref) | (Tenant.slug == ref)))).scalar_one_or_none()


async def create_tenant(session: AsyncSession, *, name: str, slug: str | None = None) -> Tenant:
    """A new tenant (system session); a taken slug gets a numeric suffix unless given explicitly."""
    name = name.strip()
    if not name:
        raise BadRequest("tenant name must not be empty", details={"field": "name"})
    base = slug or slugify(name)
    candidate, n = base, 1
    while (await session.execute(select(Tenant.id).where(Tenant.slug == candidate))).first():
        if slug:
            raise Conflict(f"tenant slug {slug!r} is taken", details={"field": "slug"})
        n += 1
        candidate = f"{base[:58]}-{n}"
    tenant = Tenant(name=name, slug=candidate)
    session.add(tenant)
    await session.flush()
    return tenant


async def ensure_user(session: AsyncSession, *, email: str, name: str = "") -> tuple[User, str | None]:
    """The user with ``email``, created with a one-time password if new (returned once)."""
    email = normalize_email(email)
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is not None:
        return user, None
    password = generate_password()
    user = User(email=email, name=name.strip(), password_hash=hash_password(password))
    session.add(user)
    await session.flush()
    return user, password


async def create_tenant_with_admin(
    db: Database, *, name: str, admin_email: str, admin_name: str = "", slug: str | None = None
) -> dict[str, Any]:
    """A tenant, its admin (new users get a one-time password) and an admin API key.

    Returns ``{tenant_id, email, password, api_key}``; ``password`` is None when the user
    already existed (they keep their password).
    """
    async with db.system_scope() as session:
        tenant = await create_tenant(session, name=name, slug=slug)
        user, password = await ensure_user(session, email=admin_email, name=admin_name)
        session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.ADMIN.value))
        await session.commit()
        tenant_id, email, user_id = tenant.id, user.email, user.id
    context = AuditContext.system("cli")
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        await audit.record(
            session,
            tenant_id=tenant_id,
            action="tenant.created",
            context=context,
            resource_type="tenant",
            resource_id=tenant_id,
            after={"name": name, "admin": email},
        )
        _, key = await api_keys.create_api_key(
            session,
            tenant_id=tenant_id,
            name="admin (bootstrap)",
            role=Role.ADMIN,
            created_by=user_id,
            context=context,
        )
        await session.commit()
    return {"tenant_id": tenant_id, "email": email, "password": password, "api_key": key}


async def count_tenants(db: Database) -> int:
    """How many tenants exist."""
    async with db.system_scope() as session:
        return int((await session.execute(select(func.count(Tenant.id)))).scalar_one())


async def list_members(session: AsyncSession, *, tenant_id: str) -> list[MemberView]:
    """The tenant's members, oldest first."""
    rows = await session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant_id)
        .order_by(Membership.created_at, User.email)
    )
    return [MemberView(user.id, user.email, user.name, m.role, m.created_at) for m, user in rows.all()]


async def _membership(session: AsyncSession, *, tenant_id: str, user_id: str) -> Membership:
    membership = (
        await session.execute(
            select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
        )
    ).scalar_one_or_none()
    if membership is None:
        raise NotFound(f"member {user_id!r} not found", details={"user_id": user_id})
    return membership


async def _admin_count(session: AsyncSession, *, tenant_id: str) -> int:
    return int(
        (
            await session.execute(
                select(func.count(Membership.id)).where(
                    Membership.tenant_id == tenant_id, Membership.role == Role.ADMIN.value
                )
            )
        ).scalar_one()
    )


async def add_member(
    session: AsyncSession,
    *,
    tenant_id: str,
    email: str,
    role: Role,
    name: str = "",
    context: AuditContext,
) -> tuple[MemberView, str | None]:
    """Add ``email`` to the tenant (creating the user if new); returns a one-time password if created."""
    user, password = await ensure_user(session, email=email, name=name)
    existing = (
        await session.execute(
            select(Membership.id).where(Membership.tenant_id == tenant_id, Membership.user_id == user.id)
        )
    ).first()
    if existing:
        raise Conflict(f"{user.email} is already a member", details={"email": user.email})
    membership = Membership(tenant_id=tenant_id, user_id=user.id, role=Role(role).value)
    session.add(membership)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="member.added",
        context=context,
        resource_type="member",
        resource_id=user.id,
        after={"email": user.email, "role": membership.role, "user_created": password is not None},
    )
    await session.commit()
    view = MemberView(user.id, user.email, user.name, membership.role, membership.created_at)
    return view, password


async def change_role(
    session: AsyncSession, *, tenant_id: str, user_id: str, role: Role, context: AuditContext
) -> MemberView:
    """Change a member's role; the last admin cannot be demoted."""
    membership = await _membership(session, tenant_id=tenant_id, user_id=user_id)
    old = membership.role
    if old == Role.ADMIN.value and role != Role.ADMIN and await _admin_count(session, tenant_id=tenant_id) <= 1:
        raise Conflict("the last admin cannot be demoted", details={"user_id": user_id})
    membership.role = Role(role).value
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="member.role_changed",
        context=context,
        resource_type="member",
        resource_id=user_id,
        before={"role": old},
        after={"role": membership.role},
    )
    await session.commit()
    user = await session.get(User, user_id)
    assert user is not None
    return MemberView(user.id, user.email, user.name, membership.role, membership.created_at)


async def remove_member(session: AsyncSession, *, tenant_id: str, user_id: str, context: AuditContext) -> None:
    """Remove a member from the tenant (the user remains); the last admin cannot be removed."""
    membership = await _membership(session, tenant_id=tenant_id, user_id=user_id)
    if membership.role == Role.ADMIN.value and await _admin_count(session, tenant_id=tenant_id) <= 1:
        raise Conflict("the last admin cannot be removed", details={"user_id": user_id})
    await session.delete(membership)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="member.removed",
        context=context,
        resource_type="member",
        resource_id=user_id,
        before={"role": membership.role},
    )
    await session.commit()


async def set_password(db: Database, *, email: str, password: str | None = None) -> str:
    """Set (or generate) a user's password and clear any lockout; returns the password."""
    password = password or generate_password()
    async with db.system_scope() as session:
        user = (await session.execute(select(User).where(User.email == normalize_email(email)))).scalar_one_or_none()
        if user is None:
            raise NotFound(f"no user with e-mail {email!r}", details={"email": email})
        user.password_hash = hash_password(password)
        user.failed_logins = 0
        user.locked_until = None
        await session.commit()
    return password
