"""Signature schemes in isolation: valid, wrong, stale, rotated keys, malformed headers."""

from __future__ import annotations

import base64
import time

import pytest

from api.webhooks.signatures import SignatureConfig, SignatureError, delivery_id, sign, verify

BODY = b'{"hello": "world"}'
STD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SCHEMES = {
    "standard-webhooks": SignatureConfig(scheme="standard-webhooks"),
    "hmac-sha256": SignatureConfig(scheme="hmac-sha256", header="X-Hub-Signature-256"),
    "stripe": SignatureConfig(scheme="stripe"),
}


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_valid_signature_verifies_and_wrong_secret_does_not(scheme: str) -> None:
    config = SCHEMES[scheme]
    headers = _lower(sign(config, BODY, STD_SECRET, msg_id="m1"))
    verify(config, headers, BODY, STD_SECRET)
    with pytest.raises(SignatureError, match="does not match"):
        verify(config, headers, BODY, STD_SECRET[:-4] + "AAA=")
    with pytest.raises(SignatureError, match="does not match"):
        verify(config, headers, BODY + b" ", STD_SECRET)


@pytest.mark.parametrize("scheme", ["standard-webhooks", "stripe"])
def test_stale_timestamp_is_refused(scheme: str) -> None:
    config = SCHEMES[scheme]
    old = int(time.time()) - 301
    headers = _lower(sign(config, BODY, STD_SECRET, msg_id="m1", timestamp=old))
    with pytest.raises(SignatureError, match="tolerance is 300 s"):
        verify(config, headers, BODY, STD_SECRET)
    verify(SignatureConfig(scheme=scheme, tolerance_seconds=600), headers, BODY, STD_SECRET)


def test_hmac_with_signed_timestamp_header_checks_tolerance() -> None:
    import hashlib
    import hmac

    config = SCHEMES["hmac-sha256"]
    stamp = str(int(time.time()) - 1000)
    mac = hmac.new(b"k", stamp.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    headers = {"x-hub-signature-256": f"sha256={mac}", "x-gorax-timestamp": stamp}
    with pytest.raises(SignatureError, match="tolerance"):
        verify(config, headers, BODY, "k")
    # Dropping the timestamp header does not help: the body alone was not what was signed.
    with pytest.raises(SignatureError, match="does not match"):
        verify(config, {"x-hub-signature-256": f"sha256={mac}"}, BODY, "k")


def test_standard_webhooks_accepts_any_of_several_signatures_and_keys() -> None:
    config = SCHEMES["standard-webhooks"]
    other = "whsec_" + base64.b64encode(b"another-key-another-key-another!!").decode()
    headers = _lower(sign(config, BODY, other, msg_id="m2"))
    headers["webhook-signature"] = "v1,bm90LWEtc2lnbmF0dXJl " + headers["webhook-signature"]
    verify(config, headers, BODY, f"{STD_SECRET} {other}")
    with pytest.raises(SignatureError):
        verify(config, headers, BODY, STD_SECRET)


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "webhook-id is missing"),
    ({"webhook-id": "a", "webhook-timestamp": "soon", "webhook-signature": "v1,xx"}, "not a unix"),
    ({"webhook-id": "a", "webhook-timestamp": "NOW", "webhook-signature": "v2,xx"},
     "no v1 signature"),
])
def test_malformed_standard_headers_name_the_problem(headers: dict[str, str], message: str) -> None:
    if headers.get("webhook-timestamp") == "NOW":  # resolved at run time, not at collection
        headers = {**headers, "webhook-timestamp": str(int(time.time()))}
    with pytest.raises(SignatureError, match=message):
        verify(SCHEMES["standard-webhooks"], headers, BODY, STD_SECRET)


def test_hmac_prefix_and_missing_header() -> None:
    config = SignatureConfig(scheme="hmac-sha256", header="X-Sig", prefix="sha256=")
    good = _lower(sign(config, BODY, "k", msg_id="m"))
    verify(config, good, BODY, "k")
    with pytest.raises(SignatureError, match="does not start with 'sha256='"):
        verify(config, {"x-sig": good["x-sig"][len("sha256="):]}, BODY, "k")
    with pytest.raises(SignatureError, match="header X-Sig is missing"):
        verify(config, {}, BODY, "k")


def test_none_scheme_and_delivery_ids() -> None:
    verify(SignatureConfig(scheme="none"), {}, BODY, None)
    assert delivery_id(SCHEMES["standard-webhooks"], {"webhook-id": "w1"}, BODY) == "w1"
    assert delivery_id(SCHEMES["stripe"], {}, b'{"id": "evt_1"}') == "evt_1"
    assert delivery_id(SCHEMES["hmac-sha256"], {"x-github-delivery": "g1"}, BODY) == "g1"
    assert delivery_id(SignatureConfig(), {}, BODY) is None
