"""The principal behind a request: who is acting, in which tenant, with which role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from api.auth.permissions import Permission, Role, role_allows
from api.errors import Forbidden

PrincipalKind = Literal["user", "api_key", "worker"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``tenant_id`` is None only for the worker principal."""

    kind: PrincipalKind
    id: str
    tenant_id: str | None
    role: Role | None
    email: str | None = None
    name: str | None = None
    # For users: every (tenant_id, role) they belong to; used by /auth/me.
    memberships: tuple[tuple[str, str], ...] = field(default=())
    via_cookie: bool = False
    # The sign-in (refresh family) a user's token or cookie belongs to; logout revokes it.
    session_id: str | None = None

    def can(self, permission: Permission) -> bool:
        """Whether this principal holds ``permission``."""
        if self.kind == "worker":
            return permission in (Permission.INTERNAL,)
        if permission is Permission.ACCOUNT:
            return self.kind == "user"
        if permission is Permission.INTERNAL or self.role is None:
            return False
        return role_allows(self.role, permission)

    def required_tenant_id(self) -> str:
        """The principal's tenant; Forbidden without one (``Requires`` of a tenant permission
        lets no such principal through, so routes behind it always get a tenant)."""
        if self.tenant_id is None:
            raise Forbidden("no tenant: the principal belongs to no tenant")
        return self.tenant_id

    @property
    def actor(self) -> str:
        """``user:<id>``, ``api_key:<id>`` or ``worker:<id>`` for logs and audit."""
        return f"{self.kind}:{self.id}"
