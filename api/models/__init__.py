"""ORM models of the API foundation. Other areas keep their models in their own modules."""

from __future__ import annotations

from api.models.audit import AuditEvent
from api.models.identity import ApiKey, Membership, RefreshToken, Tenant, User
from api.models.mfa import MfaChallenge, RecoveryCode, TenantMfaPolicy, UserTotp
from api.models.slo import WorkflowSlo

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Membership",
    "MfaChallenge",
    "RecoveryCode",
    "RefreshToken",
    "Tenant",
    "TenantMfaPolicy",
    "User",
    "UserTotp",
    "WorkflowSlo",
]
