"""The API's JSON log lines never carry a registered secret, whatever carried it there."""

from __future__ import annotations

import json
import logging
import uuid

from api.observability import JsonFormatter
from blocks.redact import register_secret


def _record(message: str, *, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("gorax.api", logging.ERROR, __file__, 1, message, None, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    return record


def test_an_unhandled_errors_text_and_extras_are_masked() -> None:
    """The API's "unhandled error" line printed an exception's text, secret included."""
    secret = "sk-" + uuid.uuid4().hex
    register_secret(secret)
    try:
        raise RuntimeError(f"provider refused token {secret}")
    except RuntimeError as exc:
        error = exc
    line = JsonFormatter().format(_record("unhandled error", exc=error, path=f"/x/{secret}", details={"t": secret}))
    assert secret not in line
    payload = json.loads(line)
    assert "provider refused token" in payload["exc"] and "RuntimeError" in payload["exc"]
    assert payload["msg"] == "unhandled error" and payload["path"].startswith("/x/")
