"""Multi-factor authentication: a user's TOTP factor, recovery codes, sign-in challenges, and
each tenant's MFA policy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow


class UserTotp(Base):
    """A user's TOTP factor: the secret, sealed (never stored or shown again in clear).

    Enrolled but not in force until ``confirmed_at`` is set by a first good code.
    ``last_step`` is the 30-second step of the last code accepted: a code of that step or an
    earlier one is refused (no replay within its window). ``failures`` counts wrong codes in a
    row; at the sign-in failure limit the factor locks until ``locked_until``.
    """

    __tablename__ = "user_totp"

    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecoveryCode(Base):
    """One single-use recovery code of a user (only its hash)."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MfaChallenge(Base):
    """The pending second step of one password sign-in: not a session.

    ``purpose`` is ``verify`` (enter a code) or ``enroll`` (the user must set up TOTP before
    signing in). Only the token's hash is stored; it is single use, short-lived and void after
    ``mfa_challenge_max_attempts`` wrong codes.
    """

    __tablename__ = "mfa_challenges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    purpose: Mapped[str] = mapped_column(String(10), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TenantMfaPolicy(TenantScoped, Base):
    """Whether a tenant's members must sign in with MFA: ``off``, ``all``, or ``roles`` (the
    members whose role is in ``roles``). No row: ``off``."""

    __tablename__ = "tenant_mfa_policies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    mode: Mapped[str] = mapped_column(String(10), nullable=False)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
