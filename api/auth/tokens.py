"""Short-lived access tokens (HS256 JWT) and opaque secrets (refresh tokens, API keys)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from api.errors import Unauthorized

_ISSUER = "gorax"


@dataclass(frozen=True)
class AccessClaims:
    """What an access token proves: a user, and the refresh family it was issued from."""

    user_id: str
    family_id: str
    expires_at: int
    csrf: str | None = None


class TokenSigner:
    """Issues and verifies access tokens with one symmetric key."""

    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = OctKey.import_key(key)
        self.ttl_seconds = ttl_seconds

    def issue(
        self,
        *,
        user_id: str,
        family_id: str,
        kind: str = "access",
        ttl: int | None = None,
        csrf: str | None = None,
    ) -> str:
        """A signed token for ``user_id``: ``access`` (bearer) or ``session`` (cookie, CSRF-bound)."""
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": _ISSUER,
            "sub": user_id,
            "fam": family_id,
            "iat": now,
            "exp": now + (ttl or self.ttl_seconds),
            "typ": kind,
        }
        if csrf:
            claims["csrf"] = csrf
        return jwt.encode({"alg": "HS256"}, claims, self._key)

    def verify(self, token: str, kind: str = "access") -> AccessClaims:
        """The claims of a valid, unexpired token of ``kind``; :class:`Unauthorized` otherwise."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=["HS256"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": _ISSUER},
                exp={"essential": True},
                sub={"essential": True},
                typ={"essential": True, "value": kind},
                leeway=0,
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise Unauthorized(f"invalid or expired {kind} token") from exc
        claims = decoded.claims
        return AccessClaims(
            user_id=str(claims["sub"]),
            family_id=str(claims.get("fam", "")),
            expires_at=int(claims["exp"]),
            csrf=claims.get("csrf"),
        )


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """SHA-256 hex of a high-entropy secret (fit for lookup; secrets are never stored raw)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token has the three-part shape of a JWT."""
    return token.count(".") == 2
