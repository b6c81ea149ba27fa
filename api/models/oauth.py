"""Pending OAuth authorizations: the server side of a connect flow, until its callback."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime


class OAuthAuthorization(TenantScoped, Base):
    """One started connect flow: which credential, who started it, the PKCE verifier.

    Kept by the hash of its ``state`` (the value itself only travels through the browser) and of
    the browser cookie set when it started; used once by the callback, useless after
    ``expires_at``.
    """

    __tablename__ = "oauth_authorizations"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    credential: Mapped[str] = mapped_column(String(100), nullable=False)
    actor_type: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_id: Mapped[str] = mapped_column(String(36), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(200), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(String(2000), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
