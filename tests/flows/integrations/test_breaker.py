"""The circuit breaker's states, on a controlled clock."""

from __future__ import annotations

import base64
import json

import pytest

from blocks.redact import mask_with, register_secret
from flows.errors import CircuitOpenError
from flows.integrations import CircuitBreaker, provider_message


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_half_opens_with_one_trial_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker("jira", "acme", failure_threshold=2, cooldown_seconds=30, clock=clock)
    breaker.before_call("search")
    breaker.record_failure()
    breaker.before_call("search")
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match="jira search failed: circuit open for tenant 'acme'.*30s"):
        breaker.before_call("search")

    clock.now = 31
    assert breaker.state == "half_open"
    breaker.before_call("search")  # the one trial
    with pytest.raises(CircuitOpenError):
        breaker.before_call("search")  # a second caller while the trial runs
    breaker.record_failure()  # trial failed: open again for a full cool-down
    assert breaker.state == "open"

    clock.now = 62
    breaker.before_call("search")
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0
    breaker.before_call("search")


def test_success_resets_the_count() -> None:
    breaker = CircuitBreaker("slack", "acme", failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_masking_covers_encodings_and_provider_shapes() -> None:
    secret = "s3cr3t/token+value"
    text = f"a {secret} b {base64.b64encode(secret.encode()).decode()} c s3cr3t%2Ftoken%2Bvalue"
    assert mask_with(text, [secret]) == "a *** b *** c ***"
    # The same mask as step records and logs (blocks.redact): a secret quoted inside JSON text
    # (its escaped form) and the secrets this process registered are masked too.
    quoted = 'pass"word\\with-escapes'
    registered = f"registered-{base64.b64encode(secret.encode()).decode()[:12]}"
    register_secret(registered)
    body = json.dumps({"password": quoted, "other": registered})
    assert mask_with(f"provider said {body}", [quoted]) == 'provider said {"password": "***", "other": "***"}'
    assert provider_message({"ok": False, "error": "channel_not_found"}) == "channel_not_found"
    assert provider_message({"errorMessages": ["bad"], "errors": {"summary": "required"}}) == "bad; summary: required"
    assert provider_message({"error": {"message": "Incorrect API key"}}) == "Incorrect API key"
    assert provider_message(b"<html>502 Bad Gateway</html>") == "<html>502 Bad Gateway</html>"
