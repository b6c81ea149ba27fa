"""Authentication and authorization: credentials, principals, roles and permissions."""

from __future__ import annotations

from api.auth.permissions import ROLE_PERMISSIONS, Permission, Role, role_allows
from api.auth.principal import Principal

__all__ = ["ROLE_PERMISSIONS", "Permission", "Principal", "Role", "role_allows"]
