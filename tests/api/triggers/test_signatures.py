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
    verify(config, headers, BODY, [STD_SECRET, other])
    with pytest.raises(SignatureError):
        verify(config, headers, BODY, STD_SECRET)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "webhook-id is missing"),
        ({"webhook-id": "a", "webhook-timestamp": "soon", "webhook-signature": "v1,xx"}, "not a unix"),
        ({"webhook-id": "a", "webhook-timestamp": "NOW", "webhook-signature": "v2,xx"}, "no v1 signature"),
    ],
)
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
        verify(config, {"x-sig": good["x-sig"][len("sha256=") :]}, BODY, "k")
    with pytest.raises(SignatureError, match="header X-Sig is missing"):
        verify(config, {}, BODY, "k")


def test_none_scheme_and_delivery_ids() -> None:
    verify(SignatureConfig(scheme="none"), {}, BODY, None)
    assert delivery_id(SCHEMES["standard-webhooks"], {"webhook-id": "w1"}, BODY) == "w1"
    assert delivery_id(SCHEMES["stripe"], {}, b'{"id": "evt_1"}') == "evt_1"
    assert delivery_id(SCHEMES["hmac-sha256"], {"x-github-delivery": "g1"}, BODY) == "g1"
    assert delivery_id(SignatureConfig(), {}, BODY) is None


def _spec_signed(secret: str, msg_id: str, stamp: int, body: bytes) -> str:
    """``v1,<base64>`` as the Standard Webhooks spec defines it: HMAC-SHA256 with the base64
    key after ``whsec_`` over ``{msg_id}.{timestamp}.{payload}`` (written from the spec's text,
    not with the code under test)."""
    import hashlib
    import hmac

    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_svix_header_names_verify_and_name_the_delivery() -> None:
    stamp = int(time.time())
    svix = {
        "svix-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "svix-timestamp": str(stamp),
        "svix-signature": _spec_signed(STD_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", stamp, BODY),
    }
    config = SCHEMES["standard-webhooks"]
    verify(config, svix, BODY, STD_SECRET)
    assert delivery_id(config, svix, BODY) == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    with pytest.raises(SignatureError, match="does not match") as wrong:
        verify(config, {**svix, "svix-id": "msg_other"}, BODY, STD_SECRET)
    assert wrong.value.header == "svix-signature"
    # The three come from one set: a webhook-id cannot stand in for the signed svix-id.
    with pytest.raises(SignatureError, match="header webhook-timestamp is missing"):
        verify(config, {**svix, "webhook-id": "msg_other", "svix-id": ""}, BODY, STD_SECRET)
    with pytest.raises(SignatureError, match="header svix-signature is missing"):
        verify(config, {"svix-id": "m", "svix-timestamp": str(stamp)}, BODY, STD_SECRET)


def test_tolerance_zero_is_refused_not_a_switch_that_turns_the_check_off() -> None:
    from pydantic import ValidationError

    from flows.nodes.trigger_webhook import WebhookSignature

    with pytest.raises(
        ValidationError, match="the timestamp check that refuses replayed deliveries cannot be turned off"
    ):
        WebhookSignature(scheme="stripe", secret="s", tolerance_seconds=0)
    # A webhook published with 0 before the rule: its deliveries are refused with the reason.
    with pytest.raises(SignatureError, match=r"signature.tolerance_seconds: .*at least 1"):
        SignatureConfig.from_config({"scheme": "stripe", "secret": "s", "tolerance_seconds": 0})
    yesterday = int(time.time()) - 86400
    day_old = _lower(sign(SCHEMES["stripe"], BODY, STD_SECRET, msg_id="m", timestamp=yesterday))
    with pytest.raises(SignatureError, match="the tolerance is 0 s"):
        verify(SignatureConfig(scheme="stripe", tolerance_seconds=0), day_old, BODY, STD_SECRET)


def test_a_signature_without_scheme_is_standard_webhooks_as_validation_reads_it() -> None:
    # The node's model defaults the scheme to standard-webhooks; the receiver read it as "none"
    # and accepted unsigned deliveries.
    config = SignatureConfig.from_config({"secret": "hook"})
    assert config.scheme == "standard-webhooks"
    assert config.secret == "hook"
    with pytest.raises(SignatureError, match="webhook-id is missing"):
        verify(config, {}, BODY, STD_SECRET)
    assert SignatureConfig.from_config(None).scheme == "none"


def test_the_replay_key_is_the_digest_of_what_was_signed_whatever_the_unsigned_id() -> None:
    import hashlib
    import hmac

    config = SCHEMES["hmac-sha256"]
    mac = hmac.new(b"k", BODY, hashlib.sha256).hexdigest()
    keys = {
        verify(config, {"x-hub-signature-256": f"sha256={mac}", "x-gorax-delivery-id": delivery}, BODY, "k")
        for delivery in ("d-1", "d-2")
    }
    assert keys == {hashlib.sha256(BODY).hexdigest()}
    stamp = str(int(time.time()))
    timed = hmac.new(b"k", f"{stamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert (
        verify(config, {"x-hub-signature-256": f"sha256={timed}", "x-gorax-timestamp": stamp}, BODY, "k")
        == hashlib.sha256(f"{stamp}.".encode() + BODY).hexdigest()
    )
    assert verify(SignatureConfig(scheme="none"), {}, BODY, None) is None


def test_a_secret_with_spaces_is_used_whole() -> None:
    # GitHub's documented example: the secret "It's a Secret to Everybody" signs "Hello, World!"
    # as below. Split on whitespace, it verified with none of the pieces.
    config = SignatureConfig(scheme="hmac-sha256", header="X-Hub-Signature-256")
    headers = {"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    verify(config, headers, b"Hello, World!", "It's a Secret to Everybody")
    verify(config, headers, b"Hello, World!", ["rotated-out", "It's a Secret to Everybody"])
    with pytest.raises(SignatureError, match="does not match"):
        verify(config, headers, b"Hello, World!", ["It's", "a", "Secret", "to", "Everybody"])
