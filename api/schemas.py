"""Request and response models of the identity, key and audit routes (XCreate / XPublic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from api.auth.permissions import Role

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list: ``{"items", "next_cursor", "total"}``."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page.")
    total: int | None = Field(default=None, description="Total count when cheap to know.")


class LoginRequest(BaseModel):
    email: str = Field(max_length=320, description="The user's e-mail address.")
    password: str = Field(max_length=1024, description="The user's password.")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=512, description="The newest refresh token.")


class UserPublic(BaseModel):
    id: str
    email: str
    name: str


class TenantPublic(BaseModel):
    id: str
    slug: str
    name: str


class TenantMembershipPublic(TenantPublic):
    role: Role


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserPublic
    tenants: list[TenantMembershipPublic]


class MeResponse(BaseModel):
    user: UserPublic | None = Field(description="The signed-in user (None for API keys).")
    principal: str = Field(description="user:<id>, api_key:<id> or worker:worker.")
    tenant: TenantPublic | None
    role: Role | None
    tenants: list[TenantMembershipPublic]


class MemberUpdate(BaseModel):
    role: Role


class MemberPublic(BaseModel):
    user_id: str
    email: str
    name: str
    role: Role
    created_at: datetime


class InvitationCreate(BaseModel):
    email: str = Field(max_length=320, description="The invitee's e-mail address.")
    role: Role = Field(description="The role the invitee gets on accepting.")


class InvitationPublic(BaseModel):
    id: str
    email: str
    role: Role
    invited_by: str | None = Field(description="user:<id> or api_key:<id> of who invited.")
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationPublic):
    token: str = Field(
        description="Shown only in this response: give it to the invitee, who accepts with it "
        "(POST /auth/invitations/accept), registering an account if the address has none."
    )


class OpenInvitationPublic(BaseModel):
    id: str
    tenant: TenantPublic
    role: Role
    created_at: datetime
    expires_at: datetime


class InvitationAccept(BaseModel):
    token: str = Field(max_length=200, description="The invitation's token.")
    password: str = Field(
        min_length=10,
        max_length=1024,
        description="The invited address's password; for an address without an account, the new account's password.",
    )
    name: str = Field(default="", max_length=200, description="Your name, for a new account.")


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    expires_at: datetime | None = Field(default=None, description="Optional expiry (with zone).")


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    role: Role
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself, shown only in this response.")


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seq: int
    at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    outcome: str
    ip: str | None
    user_agent: str | None
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None
    prev_hash: str
    hash: str


class AuditVerification(BaseModel):
    valid: bool
    broken_at_seq: int | None = Field(description="First event whose hash link is broken.")


# --- MFA -------------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid")
_CODE = Field(
    min_length=1,
    max_length=32,
    description="A 6-digit code from the authenticator app, or (where accepted) a recovery code.",
)
_CHALLENGE = Field(min_length=1, max_length=200, description="The challenge the sign-in answered.")


class MfaChallengeResponse(BaseModel):
    """What a password sign-in answers when a second step is needed: not a session."""

    mfa_required: bool = True
    step: str = Field(description="'verify': send a code to /auth/mfa/verify; 'enroll': set up TOTP first.")
    challenge: str = Field(description="Single-use token for the second step (send it in the body).")
    expires_in: int = Field(description="Seconds the challenge stays usable.")
    required_by: list[str] = Field(description="Slugs of the tenants whose policy requires MFA of this user.")


class MfaVerifyRequest(BaseModel):
    model_config = _STRICT

    challenge: str = _CHALLENGE
    code: str = _CODE


class MfaChallengeRequest(BaseModel):
    model_config = _STRICT

    challenge: str = _CHALLENGE


class MfaCodeRequest(BaseModel):
    model_config = _STRICT

    code: str = _CODE


class TotpEnrolment(BaseModel):
    """A new TOTP secret, shown in this response only."""

    secret: str = Field(description="Base32 secret, for typing into an authenticator app.")
    otpauth_uri: str = Field(description="otpauth:// URI, what the QR code holds.")
    qr_svg: str = Field(description="The QR code as an SVG data URI.")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Single-use recovery codes, shown in this response only.")


class EnrolledTokenResponse(TokenResponse):
    recovery_codes: list[str] = Field(description="Single-use recovery codes, shown in this response only.")


class MfaStatus(BaseModel):
    totp_enabled: bool
    totp_pending: bool = Field(description="Enrolment started, not yet confirmed with a code.")
    confirmed_at: datetime | None
    recovery_codes_left: int
    required_by: list[str] = Field(description="Slugs of the tenants whose policy requires MFA of this user.")


class MfaPolicyUpdate(BaseModel):
    model_config = _STRICT

    mode: Literal["off", "all", "roles"] = Field(
        description="off: nobody; all: every member; roles: the members with one of roles."
    )
    roles: list[Role] = Field(default_factory=list, max_length=4, description="With mode 'roles' only.")


class MfaPolicyPublic(BaseModel):
    mode: str
    roles: list[Role]
    updated_at: datetime | None
    updated_by: str | None
    members_without_mfa: int = Field(description="Members the policy requires MFA of who have not enrolled.")
