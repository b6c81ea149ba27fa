"""Single sign-on: a tenant's OIDC provider, the identities it vouched for, sign-ins in flight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow


class SsoConfig(TenantScoped, Base):
    """A tenant's OpenID Connect provider (one per tenant).

    The client secret is sealed under the tenant's data key (``blocks.envelope``) and never
    leaves the API in a response. ``role_mapping`` maps a value of ``role_claim`` (e.g. a group)
    to a role; ``default_role`` None refuses a sign-in no mapping matches.
    """

    __tablename__ = "sso_configs"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_sso_configs_tenant_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    discovery_url: Mapped[str] = mapped_column(String(2000), nullable=False)
    client_id: Mapped[str] = mapped_column(String(400), nullable=False)
    client_secret_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    scopes: Mapped[str] = mapped_column(String(400), default="openid email profile", nullable=False)
    allowed_domains: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    role_claim: Mapped[str] = mapped_column(String(200), default="groups", nullable=False)
    role_mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    default_role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    jit_enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    sso_only: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class SsoIdentity(TenantScoped, Base):
    """A provider account (issuer + subject) linked to a Gorax user in a tenant."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("tenant_id", "issuer", "subject", name="uq_sso_identities_subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    issuer: Mapped[str] = mapped_column(String(2000), nullable=False)
    subject: Mapped[str] = mapped_column(String(400), nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class SsoLoginState(TenantScoped, Base):
    """One sign-in between ``/start`` and ``/callback``: single use, ten minutes.

    Only hashes of the ``state`` value and of the browser-binding cookie are kept; the nonce and
    PKCE verifier live here (never in a URL or a log) and go with the row when the callback
    consumes it.
    """

    __tablename__ = "sso_login_states"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    nonce: Mapped[str] = mapped_column(String(200), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(200), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(String(2000), nullable=False)
    next_path: Mapped[str] = mapped_column(String(2000), default="/", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
