"""The redactor: encoded forms, JSON data, log records (with tracebacks), Prefect's API logs."""

from __future__ import annotations

import base64
import io
import logging
import uuid
from urllib.parse import quote

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.runtime import flow_run

from blocks.redact import RedactingFilter, install_log_filter, mask, mask_values, register_secret

SECRET = "hunter2/with+chars=&more"


def test_masks_value_and_its_encoded_forms() -> None:
    register_secret(SECRET)
    b64 = base64.b64encode(SECRET.encode()).decode()
    url_b64 = base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")
    text = f"raw {SECRET} b64 {b64} urlsafe {url_b64} url ?q={quote(SECRET, safe='')} end"
    assert mask(text) == "raw *** b64 *** urlsafe *** url ?q=*** end"


def test_masks_json_like_data_and_leaves_others() -> None:
    register_secret(SECRET)
    data = {"headers": {"Authorization": f"Bearer {SECRET}"}, "items": [SECRET, 3, None], SECRET: True}
    assert mask(data) == {"headers": {"Authorization": "Bearer ***"}, "items": ["***", 3, None], "***": True}
    assert mask("nothing here") == "nothing here"


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert mask("a cab b") == "a cab b"


def test_filter_masks_message_args_and_traceback() -> None:
    register_secret(SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("gorax.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling with %s", SECRET)
        try:
            raise RuntimeError(f"request to https://x/?key={SECRET} failed")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert SECRET not in output
    assert "calling with ***" in output and "key=*** failed" in output and "RuntimeError" in output


async def test_prefect_run_logs_reach_the_api_masked(prefect_server) -> None:
    register_secret(SECRET)

    @flow(name="gorax-redact-check")
    async def leaky() -> str:
        install_log_filter()
        get_run_logger().info("token is %s", SECRET)

        return flow_run.id

    run_id = await leaky()
    await APILogHandler.aflush()
    async with get_client() as client:
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    messages = [log.message for log in logs]
    assert "token is ***" in messages
    assert not any(SECRET in m for m in messages)


def test_mask_values_keeps_a_records_field_names() -> None:
    """A protocol record (a human-task request) keeps its field names even when a secret is
    part of one: a worker holds every secret it has loaded, short ones included."""
    secret = "onds" + uuid.uuid4().hex[:6]
    register_secret(secret)
    record = {f"timeout_sec{secret}": 60, "title": f"pay with {secret}", "options": [{"label": secret}]}
    assert mask_values(record) == {f"timeout_sec{secret}": 60, "title": "pay with ***", "options": [{"label": "***"}]}
    # A free-form field is masked keys and all.
    assert mask_values({"snapshot": {secret: 1}, "n": 1}, free=("snapshot",)) == {"snapshot": {"***": 1}, "n": 1}
    # Free-form data keeps being masked keys and all.
    assert mask(record) == {"timeout_sec***": 60, "title": "pay with ***", "options": [{"label": "***"}]}
