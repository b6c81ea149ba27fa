"""Signature schemes of webhook deliveries. Every comparison is constant-time.

- ``standard-webhooks``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``
  (space-separated ``v1,<base64>`` values, several accepted for key rotation); HMAC-SHA256 over
  ``id.timestamp.body`` with the base64 key after ``whsec_``.
- ``hmac-sha256``: hex HMAC-SHA256 of the raw body in a configurable header with an optional
  prefix (GitHub: ``X-Hub-Signature-256: sha256=...``). When the sender adds
  ``X-Gorax-Timestamp`` the signed content is ``timestamp.body`` and the tolerance applies.
- ``stripe``: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` over ``t.body``.
- ``none``: nothing to check.

A secret may hold several keys separated by whitespace (rotation on the receiving side).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

DEFAULT_HMAC_HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Gorax-Timestamp"
DELIVERY_HEADERS = ("x-gorax-delivery-id", "x-github-delivery", "idempotency-key", "webhook-id")


class SignatureError(Exception):
    """A delivery whose signature is missing, malformed, wrong or stale (answered 401)."""

    def __init__(self, reason: str, *, header: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.header = header


@dataclass(frozen=True)
class SignatureConfig:
    """The verification part of a ``trigger.webhook`` node's config."""

    scheme: str = "none"
    header: str | None = None
    prefix: str | None = None
    tolerance_seconds: int = 300

    @classmethod
    def from_config(cls, signature: Mapping[str, Any] | None) -> "SignatureConfig":
        """From the node config's ``signature`` object."""
        signature = signature or {}
        return cls(scheme=signature.get("scheme") or "none", header=signature.get("header"),
                   prefix=signature.get("prefix"),
                   tolerance_seconds=int(signature.get("tolerance_seconds", 300)))


def _keys(secret: str) -> list[str]:
    return [key for key in secret.split() if key]


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _check_timestamp(value: str, tolerance: int, header: str, now: float | None) -> None:
    try:
        stamp = int(value.strip())
    except ValueError:
        raise SignatureError(f"{header} is not a unix timestamp", header=header) from None
    skew = abs((now if now is not None else time.time()) - stamp)
    if tolerance and skew > tolerance:
        raise SignatureError(
            f"timestamp is {int(skew)} s away from now; the tolerance is {tolerance} s",
            header=header)


def _standard_key(secret: str) -> bytes:
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


def _verify_standard(headers: Mapping[str, str], body: bytes, secret: str,
                     config: SignatureConfig, now: float | None) -> None:
    msg_id, stamp, sent = (headers.get("webhook-id"), headers.get("webhook-timestamp"),
                           headers.get("webhook-signature"))
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", stamp),
                        ("webhook-signature", sent)):
        if not value:
            raise SignatureError(f"header {name} is missing", header=name)
    assert msg_id and stamp and sent
    _check_timestamp(stamp, config.tolerance_seconds, "webhook-timestamp", now)
    content = f"{msg_id}.{stamp}.".encode() + body
    candidates = []
    for part in sent.split():
        version, _, value = part.partition(",")
        if version == "v1" and value:
            try:
                candidates.append(base64.b64decode(value))
            except (binascii.Error, ValueError):
                continue
    if not candidates:
        raise SignatureError("webhook-signature has no v1 signature", header="webhook-signature")
    expected = [_hmac(_standard_key(key), content) for key in _keys(secret)]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("signature does not match", header="webhook-signature")


def _verify_hmac(headers: Mapping[str, str], body: bytes, secret: str,
                 config: SignatureConfig, now: float | None) -> None:
    header = config.header or DEFAULT_HMAC_HEADER
    sent = headers.get(header.lower())
    if not sent:
        raise SignatureError(f"header {header} is missing", header=header)
    prefix = config.prefix if config.prefix is not None else "sha256="
    if prefix and sent.startswith(prefix):
        sent = sent[len(prefix):]
    elif prefix and config.prefix is not None:
        raise SignatureError(f"{header} does not start with {prefix!r}", header=header)
    content = body
    stamp = headers.get(TIMESTAMP_HEADER.lower())
    if stamp is not None:
        _check_timestamp(stamp, config.tolerance_seconds, TIMESTAMP_HEADER, now)
        content = stamp.strip().encode() + b"." + body
    given = sent.strip().lower().encode()
    if not any(hmac.compare_digest(_hmac(key.encode(), content).hex().encode(), given)
               for key in _keys(secret)):
        raise SignatureError("signature does not match", header=header)


def _verify_stripe(headers: Mapping[str, str], body: bytes, secret: str,
                   config: SignatureConfig, now: float | None) -> None:
    header = config.header or "Stripe-Signature"
    sent = headers.get(header.lower())
    if not sent:
        raise SignatureError(f"header {header} is missing", header=header)
    stamp, candidates = None, []
    for item in sent.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1" and value:
            candidates.append(value.strip().lower().encode())
    if stamp is None or not candidates:
        raise SignatureError(f"{header} needs t=<timestamp> and v1=<signature>", header=header)
    _check_timestamp(stamp, config.tolerance_seconds, header, now)
    content = stamp.encode() + b"." + body
    expected = [_hmac(key.encode(), content).hex().encode() for key in _keys(secret)]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("signature does not match", header=header)


_VERIFIERS = {"standard-webhooks": _verify_standard, "hmac-sha256": _verify_hmac,
              "stripe": _verify_stripe}


def verify(config: SignatureConfig, headers: Mapping[str, str], body: bytes,
           secret: str | None, *, now: float | None = None) -> None:
    """Raise :class:`SignatureError` unless ``body`` is signed per ``config`` with ``secret``.

    ``headers`` must have lower-case names.
    """
    if config.scheme == "none":
        return
    verifier = _VERIFIERS.get(config.scheme)
    if verifier is None:
        raise SignatureError(f"unknown signature scheme {config.scheme!r}")
    if not secret:
        raise SignatureError("the webhook's signing secret is empty")
    verifier(headers, body, secret, config, now)


def delivery_id(config: SignatureConfig, headers: Mapping[str, str], body: bytes) -> str | None:
    """The sender's id of a delivery (for replay detection), when it sends one."""
    if config.scheme == "standard-webhooks":
        return headers.get("webhook-id")
    if config.scheme == "stripe":
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("id"), str):
            return event["id"]
    for name in DELIVERY_HEADERS:
        if headers.get(name):
            return headers[name]
    return None


def sign(config: SignatureConfig, body: bytes, secret: str, *, msg_id: str,
         timestamp: int | None = None) -> dict[str, str]:
    """Headers that sign ``body`` per ``config`` (the test route and the tests use this)."""
    stamp = int(timestamp if timestamp is not None else time.time())
    key = _keys(secret)[0] if secret and _keys(secret) else ""
    if config.scheme == "standard-webhooks":
        mac = _hmac(_standard_key(key), f"{msg_id}.{stamp}.".encode() + body)
        return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
                "webhook-signature": "v1," + base64.b64encode(mac).decode()}
    if config.scheme == "hmac-sha256":
        prefix = config.prefix if config.prefix is not None else "sha256="
        return {config.header or DEFAULT_HMAC_HEADER: prefix + _hmac(key.encode(), body).hex(),
                "X-Gorax-Delivery-ID": msg_id}
    if config.scheme == "stripe":
        mac = _hmac(key.encode(), f"{stamp}.".encode() + body).hex()
        return {config.header or "Stripe-Signature": f"t={stamp},v1={mac}"}
    return {"X-Gorax-Delivery-ID": msg_id}
