"""ORM models of the API foundation. Other areas keep their models in their own modules."""

from __future__ import annotations

from api.models.audit import AuditEvent
from api.models.identity import ApiKey, Membership, RefreshToken, Tenant, User

__all__ = ["ApiKey", "AuditEvent", "Membership", "RefreshToken", "Tenant", "User"]
