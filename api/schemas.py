"""Request and response models of the identity, key and audit routes (XCreate / XPublic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

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
