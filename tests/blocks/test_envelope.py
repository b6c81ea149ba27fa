"""Sealed values: round trip, and every tampering fails with an error that says what failed."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from blocks import envelope
from blocks.envelope import SealContext
from blocks.errors import KeyProviderError, SealedValueError
from blocks.providers import LocalKeyFileProvider, create_key_file
from tests.blocks.test_randomness import in_forked_child

KEY = os.urandom(32)
WHERE = SealContext("tenant-1", "gh", "token")


def _seal(value: str = "s3cret", key: bytes = KEY, key_id: str = "dk-1") -> str:
    return envelope.seal(value, key=key, key_id=key_id, where=WHERE)


def _open(token: str, where: SealContext = WHERE, key: bytes = KEY) -> str:
    return envelope.open_sealed(envelope.parse(token, where), key=key, where=where)


def test_round_trip_and_format() -> None:
    token = _seal("p\u00e4ss:word/+=")
    assert token.startswith("gorax:v1:dk-1:")
    assert _open(token) == "p\u00e4ss:word/+="
    assert _seal() != _seal()  # fresh nonce every time


def test_flipped_byte_fails() -> None:
    prefix, _, encoded = _seal().rpartition(":")
    payload = bytearray(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload[-1] ^= 0x01
    tampered = f"{prefix}:{base64.urlsafe_b64encode(bytes(payload)).decode().rstrip('=')}"
    with pytest.raises(SealedValueError, match="field 'token' of credential 'gh' .*failed authentication"):
        _open(tampered)


@pytest.mark.parametrize(
    "where",
    [
        SealContext("tenant-2", "gh", "token"),
        SealContext("tenant-1", "gh", "password"),
        SealContext("tenant-1", "other", "token"),
    ],
    ids=["other-tenant", "other-field", "other-credential"],
)
def test_moved_value_fails(where: SealContext) -> None:
    with pytest.raises(SealedValueError, match="moved from another tenant, credential or field"):
        _open(_seal(), where=where)


def test_wrong_key_and_relabelled_key_id_fail() -> None:
    with pytest.raises(SealedValueError, match="under data key 'dk-1'"):
        _open(_seal(), key=os.urandom(32))
    relabelled = _seal().replace(":dk-1:", ":dk-2:")
    with pytest.raises(SealedValueError, match="failed authentication"):
        _open(relabelled)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("plain", "is not a sealed value"),
        ("gorax:v9:dk-1:AAAA", "format 'v9' is not supported"),
        ("gorax:v1:dk-1:!!!", "not valid base64"),
        ("gorax:v1:dk-1:AAAA", "truncated"),
        ("gorax:v1:dk 1:AAAA", "malformed key id"),
        ("gorax:v1:AAAA", "3 parts"),
    ],
)
def test_malformed_values_are_named(token: str, message: str) -> None:
    with pytest.raises(SealedValueError, match=message):
        envelope.parse(token, WHERE)


def test_local_key_file_created_private_and_rotation_keeps_old_wraps(tmp_path) -> None:
    create_key_file(tmp_path / "state" / "kek.json")
    provider = LocalKeyFileProvider(tmp_path / "state" / "kek.json")
    context = {"gorax_tenant": "t1", "gorax_data_key": "dk-1"}
    key, wrapped = provider.generate_data_key(context)
    assert stat.S_IMODE((tmp_path / "state" / "kek.json").stat().st_mode) == 0o600
    assert base64.b64encode(key).decode() not in (tmp_path / "state" / "kek.json").read_text()
    old_kek = wrapped.kek_id
    new_kek = provider.rotate_kek()
    assert new_kek != old_kek and provider.current_kek_id() == new_kek
    assert stat.S_IMODE((tmp_path / "state" / "kek.json").stat().st_mode) == 0o600
    assert provider.unwrap(wrapped, context) == key
    rewrapped = provider.rewrap(wrapped, context)
    assert rewrapped.kek_id == new_kek and provider.unwrap(rewrapped, context) == key
    with pytest.raises(KeyProviderError, match="does not open"):
        provider.unwrap(wrapped, {**context, "gorax_tenant": "t2"})


def test_wrong_key_file_fails_clearly(tmp_path) -> None:
    create_key_file(tmp_path / "a.json")
    create_key_file(tmp_path / "b.json")
    mine, theirs = LocalKeyFileProvider(tmp_path / "a.json"), LocalKeyFileProvider(tmp_path / "b.json")
    _, wrapped = mine.generate_data_key({"t": "1"})
    with pytest.raises(KeyProviderError, match="is not in key file .*b.json"):
        theirs.unwrap(wrapped, {"t": "1"})
    (tmp_path / "a.json").chmod(0o644)
    with pytest.raises(KeyProviderError, match="readable by others"):
        LocalKeyFileProvider(tmp_path / "a.json").current_kek_id()


def test_nonces_never_repeat_across_refills_and_a_forked_child() -> None:
    # Nonces come from a pool refilled from the OS; a refill, and a child process that
    # inherited the pool, must still never hand out a nonce twice under the same key.
    def nonces(count: int) -> list[bytes]:
        return [envelope.parse(_seal(), WHERE).payload[: envelope.NONCE_BYTES] for _ in range(count)]

    parent = nonces(1000)  # more than one pool's worth
    child = in_forked_child(lambda: b"".join(nonces(20)))
    child_nonces = [child[i : i + envelope.NONCE_BYTES] for i in range(0, len(child), envelope.NONCE_BYTES)]
    after = nonces(20)  # the parent goes on from where it was
    assert len(child_nonces) == 20
    every = parent + child_nonces + after
    assert len(set(every)) == len(every)
