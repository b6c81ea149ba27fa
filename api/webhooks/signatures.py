"""Signature schemes of webhook deliveries. Every comparison is constant-time.

- ``standard-webhooks``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, or the
  same three as ``svix-*`` (Svix's names, which the spec's reference libraries accept too);
  space-separated ``v1,<base64>`` values, several accepted for key rotation; HMAC-SHA256 over
  ``id.timestamp.body`` with the base64 key after ``whsec_``.
- ``hmac-sha256``: hex HMAC-SHA256 of the raw body in a configurable header with an optional
  prefix (GitHub: ``X-Hub-Signature-256: sha256=...``). When the sender adds
  ``X-Gorax-Timestamp`` the signed content is ``timestamp.body`` and the tolerance applies.
- ``stripe``: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` over ``t.body``.
- ``none``: nothing to check.

A webhook may have several secrets (rotation on the receiving side): a delivery signed with any
one of them verifies. Each secret is used whole, spaces included.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from flows import WebhookSignature

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
    secret: str | None = None  # the credential's name
    header: str | None = None
    prefix: str | None = None
    tolerance_seconds: int = 300

    @classmethod
    def from_config(cls, signature: Mapping[str, Any] | None) -> SignatureConfig:
        """From the node config's ``signature`` object, read by the node type's own model so
        its defaults apply here as they did when the workflow was validated (a ``signature``
        without ``scheme`` is Standard Webhooks, not "none"). Settings that no longer validate
        (published before a rule was added) raise :class:`SignatureError` naming the field."""
        if signature is None:
            return cls()
        try:
            model = WebhookSignature.model_validate(signature)
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(["signature", *(str(part) for part in error["loc"])])
            message = error["msg"].removeprefix("Value error, ")
            raise SignatureError(
                f"the webhook's signature settings are invalid ({where}: {message}); correct "
                "the trigger and publish the workflow again"
            ) from None
        return cls(
            scheme=model.scheme,
            secret=model.secret,
            header=model.header,
            prefix=model.prefix,
            tolerance_seconds=model.tolerance_seconds,
        )


def scheme_of(signature: Mapping[str, Any] | None) -> str:
    """The scheme a stored ``signature`` object names, with the node type's default."""
    if signature is None:
        return "none"
    return str(signature.get("scheme") or WebhookSignature.model_fields["scheme"].default)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _check_timestamp(value: str, tolerance: int, header: str, now: float | None) -> None:
    try:
        stamp = int(value.strip())
    except ValueError:
        raise SignatureError(f"{header} is not a unix timestamp", header=header) from None
    skew = abs((now if now is not None else time.time()) - stamp)
    if skew > tolerance:
        raise SignatureError(f"timestamp is {int(skew)} s away from now; the tolerance is {tolerance} s", header=header)


def _standard_key(secret: str) -> bytes:
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return secret.encode()


_STANDARD_PARTS = ("id", "timestamp", "signature")


def _standard_headers(headers: Mapping[str, str]) -> tuple[str, str, str, str]:
    """``(prefix, id, timestamp, signatures)`` of the first complete set: ``webhook-*``, else
    ``svix-*``. The three always come from one set: the id and timestamp are signed with it."""
    for prefix in ("webhook", "svix"):
        msg_id, stamp, sent = (headers.get(f"{prefix}-{part}") for part in _STANDARD_PARTS)
        if msg_id and stamp and sent:
            return prefix, msg_id, stamp, sent
    svix_only = any(headers.get(f"svix-{part}") for part in _STANDARD_PARTS) and not any(
        headers.get(f"webhook-{part}") for part in _STANDARD_PARTS
    )
    prefix = "svix" if svix_only else "webhook"
    missing = next(f"{prefix}-{part}" for part in _STANDARD_PARTS if not headers.get(f"{prefix}-{part}"))
    raise SignatureError(f"header {missing} is missing", header=missing)


def _verify_standard(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], config: SignatureConfig, now: float | None
) -> bytes:
    prefix, msg_id, stamp, sent = _standard_headers(headers)
    _check_timestamp(stamp, config.tolerance_seconds, f"{prefix}-timestamp", now)
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
        raise SignatureError(f"{prefix}-signature has no v1 signature", header=f"{prefix}-signature")
    expected = [_hmac(_standard_key(key), content) for key in secrets]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("signature does not match", header=f"{prefix}-signature")
    return content


def _verify_hmac(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], config: SignatureConfig, now: float | None
) -> bytes:
    header = config.header or DEFAULT_HMAC_HEADER
    sent = headers.get(header.lower())
    if not sent:
        raise SignatureError(f"header {header} is missing", header=header)
    prefix = config.prefix if config.prefix is not None else "sha256="
    if prefix and sent.startswith(prefix):
        sent = sent[len(prefix) :]
    elif prefix and config.prefix is not None:
        raise SignatureError(f"{header} does not start with {prefix!r}", header=header)
    content = body
    stamp = headers.get(TIMESTAMP_HEADER.lower())
    if stamp is not None:
        _check_timestamp(stamp, config.tolerance_seconds, TIMESTAMP_HEADER, now)
        content = stamp.strip().encode() + b"." + body
    given = sent.strip().lower().encode()
    if not any(hmac.compare_digest(_hmac(key.encode(), content).hex().encode(), given) for key in secrets):
        raise SignatureError("signature does not match", header=header)
    return content


def _verify_stripe(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], config: SignatureConfig, now: float | None
) -> bytes:
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
    expected = [_hmac(key.encode(), content).hex().encode() for key in secrets]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("signature does not match", header=header)
    return content


_VERIFIERS = {"standard-webhooks": _verify_standard, "hmac-sha256": _verify_hmac, "stripe": _verify_stripe}


def verify(
    config: SignatureConfig,
    headers: Mapping[str, str],
    body: bytes,
    secrets: str | Sequence[str] | None,
    *,
    now: float | None = None,
) -> str | None:
    """Raise :class:`SignatureError` unless ``body`` is signed per ``config`` with one of
    ``secrets`` (one text is one secret, never split); else the delivery's replay key (None for
    scheme ``none``).

    The replay key is the SHA-256 of exactly what was signed (timestamp, id and body as the
    scheme combines them). A delivery id the signature does not cover (``X-Gorax-Delivery-ID``
    beside an ``hmac-sha256`` signature) can be changed at will by whoever replays a captured
    delivery; the signed content cannot, so it is what identifies a replay.
    ``headers`` must have lower-case names.
    """
    if config.scheme == "none":
        return None
    verifier = _VERIFIERS.get(config.scheme)
    if verifier is None:
        raise SignatureError(f"unknown signature scheme {config.scheme!r}")
    keys = (secrets,) if isinstance(secrets, str) else tuple(secrets or ())
    if not any(keys):
        raise SignatureError("the webhook's signing secret is empty")
    return hashlib.sha256(verifier(headers, body, [key for key in keys if key], config, now)).hexdigest()


def delivery_id(config: SignatureConfig, headers: Mapping[str, str], body: bytes) -> str | None:
    """The sender's id of a delivery, when it sends one: it recognises the sender's own retries.
    Only Standard Webhooks signs it (and Stripe's is inside the signed body); a replay under
    another id is recognised by the replay key :func:`verify` returns."""
    if config.scheme == "standard-webhooks":
        try:  # the id of the set that was verified (another set's id is not signed)
            return _standard_headers(headers)[1]
        except SignatureError:
            return headers.get("webhook-id") or headers.get("svix-id")
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


def sign(
    config: SignatureConfig, body: bytes, key: str, *, msg_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """Headers that sign ``body`` per ``config`` with the one secret ``key`` (the test route
    and the tests use this)."""
    stamp = int(timestamp if timestamp is not None else time.time())
    if config.scheme == "standard-webhooks":
        mac = _hmac(_standard_key(key), f"{msg_id}.{stamp}.".encode() + body)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        }
    if config.scheme == "hmac-sha256":
        prefix = config.prefix if config.prefix is not None else "sha256="
        return {
            config.header or DEFAULT_HMAC_HEADER: prefix + _hmac(key.encode(), body).hex(),
            "X-Gorax-Delivery-ID": msg_id,
        }
    if config.scheme == "stripe":
        digest = _hmac(key.encode(), f"{stamp}.".encode() + body).hex()
        return {config.header or "Stripe-Signature": f"t={stamp},v1={digest}"}
    return {"X-Gorax-Delivery-ID": msg_id}
