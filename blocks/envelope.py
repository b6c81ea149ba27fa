"""AES-256-GCM sealing of single secret values under a tenant's data key.

A sealed value is text, safe to store in a Prefect block document::

    gorax:v1:<data key id>:<base64url(nonce || ciphertext || tag)>

The nonce is 96 random bits. The associated data binds the format version, the tenant id, the
credential name, the field name and the data key id, so a ciphertext copied to another tenant,
credential or field (or relabelled with another key id) fails to open.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blocks.errors import SealedValueError
from blocks.randomness import pool as random_pool

PREFIX = "gorax:"
VERSION = "v1"
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class SealedValue:
    """The parts of a sealed value."""

    version: str
    key_id: str
    payload: bytes  # nonce || ciphertext || tag

    def render(self) -> str:
        encoded = base64.urlsafe_b64encode(self.payload).decode().rstrip("=")
        return f"{PREFIX}{self.version}:{self.key_id}:{encoded}"


@dataclass(frozen=True)
class SealContext:
    """Where a sealed value belongs; every part goes into the associated data."""

    tenant_id: str
    credential: str
    field: str

    def describe(self) -> str:
        return f"field {self.field!r} of credential {self.credential!r} (tenant {self.tenant_id})"

    def associated_data(self, version: str, key_id: str) -> bytes:
        # JSON keeps the parts unambiguous whatever characters they contain.
        return json.dumps(
            ["gorax-sealed", version, self.tenant_id, self.credential, self.field, key_id],
            separators=(",", ":"),
        ).encode()


def is_sealed(value: object) -> bool:
    """Whether ``value`` looks like a sealed value (it may still fail to open)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def parse(token: str, where: SealContext) -> SealedValue:
    """Split a sealed value into its parts; raises SealedValueError naming ``where``."""
    if not is_sealed(token):
        raise SealedValueError(f"{where.describe()} is not a sealed value")
    parts = token.split(":")
    if len(parts) != 4:
        raise SealedValueError(f"{where.describe()}: sealed value has {len(parts)} parts, expected 4")
    _, version, key_id, encoded = parts
    if version != VERSION:
        raise SealedValueError(f"{where.describe()}: sealed format {version!r} is not supported (expected {VERSION!r})")
    if not _KEY_ID.match(key_id):
        raise SealedValueError(f"{where.describe()}: sealed value has a malformed key id")
    try:
        payload = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SealedValueError(f"{where.describe()}: sealed value is not valid base64") from exc
    if len(payload) < NONCE_BYTES + 16:
        raise SealedValueError(f"{where.describe()}: sealed value is truncated")
    return SealedValue(version=version, key_id=key_id, payload=payload)


def seal(plaintext: str, *, key: bytes, key_id: str, where: SealContext) -> str:
    """Seal one value with AES-256-GCM under ``key`` (32 bytes) labelled ``key_id``."""
    if len(key) != 32:
        raise ValueError("data keys are 32 bytes (AES-256)")
    if not _KEY_ID.match(key_id):
        raise ValueError(f"key id {key_id!r} is malformed")
    nonce = random_pool.take(NONCE_BYTES)  # off the OS call's GIL hand-back (blocks.randomness)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode(), where.associated_data(VERSION, key_id))
    return SealedValue(VERSION, key_id, nonce + ciphertext).render()


def open_sealed(sealed: SealedValue, *, key: bytes, where: SealContext) -> str:
    """Open a parsed sealed value; raises SealedValueError when authentication fails."""
    nonce, ciphertext = sealed.payload[:NONCE_BYTES], sealed.payload[NONCE_BYTES:]
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, where.associated_data(sealed.version, sealed.key_id))
    except InvalidTag as exc:
        raise SealedValueError(
            f"{where.describe()} failed authentication under data key {sealed.key_id!r}: "
            "the value was altered, moved from another tenant, credential or field, "
            "or sealed under a different key"
        ) from exc
    return plaintext.decode()
