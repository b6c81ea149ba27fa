"""llm.chat and llm.extract through litellm against an OpenAI-compatible loopback server."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from flows import warmup
from flows.errors import IntegrationError
from flows.nodes.llm import LlmChat, LlmExtract, warm_up
from tests.flows.integrations.conftest import NodeTestContext
from tests.flows.integrations.peers import OpenAIPeer

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {"invoice": {"type": "string"}, "total": {"type": "number"}, "currency": {"type": "string"}},
    "required": ["invoice", "total", "currency"],
    "additionalProperties": False,
}


async def test_chat_returns_content_and_usage(llm_peer: OpenAIPeer, llm_credential: Any) -> None:
    llm_peer.answers.append("Paris.")
    out = await LlmChat().run(
        LlmChat.Config(
            credential="llm",
            temperature=0.2,
            max_tokens=20,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        ),
        NodeTestContext({"llm": llm_credential}),
    )
    assert out["content"] == "Paris." and out["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    sent = llm_peer.chats[0]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.2 and sent["max_tokens"] == 20
    assert sent["messages"][1] == {"role": "user", "content": "Capital of France?"}


async def test_extract_retries_invalid_answers_then_validates(llm_peer: OpenAIPeer, llm_credential: Any) -> None:
    llm_peer.answers += [
        "Sure! The invoice is INV-1",  # not JSON
        '{"invoice": "INV-1", "total": "1,250.00", "currency": "EUR"}',  # wrong type
        '```json\n{"invoice": "INV-1", "total": 1250.0, "currency": "{{ credentials.bank.token }}"}\n```',
    ]
    out = await LlmExtract().run(
        LlmExtract.Config(credential="llm", text="INVOICE INV-1 Total 1,250.00 EUR", schema=INVOICE_SCHEMA),
        NodeTestContext({"llm": llm_credential}),
    )
    assert out["attempts"] == 3
    # The answer is data: a template-looking string stays a literal string.
    assert out["data"] == {"invoice": "INV-1", "total": 1250.0, "currency": "{{ credentials.bank.token }}"}
    assert out["usage"]["total_tokens"] > 0
    retry = llm_peer.chats[2]["messages"]
    assert "not JSON" in retry[-3]["content"] and "at total: '1,250.00' is not of type 'number'" in retry[-1]["content"]
    assert json.dumps(INVOICE_SCHEMA) in llm_peer.chats[0]["messages"][0]["content"]


async def test_extract_gives_up_after_max_attempts(llm_peer: OpenAIPeer, llm_credential: Any) -> None:
    llm_peer.answers += ["[]", "[]"]
    with pytest.raises(IntegrationError, match="no valid JSON after 2 attempts.*is not of type 'object'"):
        await LlmExtract().run(
            LlmExtract.Config(credential="llm", text="x", schema=INVOICE_SCHEMA, max_attempts=2),
            NodeTestContext({"llm": llm_credential}),
        )
    assert len(llm_peer.chats) == 2


async def test_provider_errors_are_named_and_the_key_masked(llm_peer: OpenAIPeer, llm_credential: Any) -> None:
    bad_key = llm_credential.model_copy(update={"api_key": "sk-wrong-key-should-not-appear"})
    with pytest.raises(IntegrationError) as info:
        await LlmChat().run(
            LlmChat.Config(credential="llm", messages=[{"role": "user", "content": "hi"}]),
            NodeTestContext({"llm": bad_key}),
        )
    assert info.value.status == 401 and "Incorrect API key" in str(info.value)
    assert "sk-wrong-key-should-not-appear" not in str(info.value)

    llm_peer.answers.append((503, {"error": {"message": "overloaded", "type": "server_error"}}))
    with pytest.raises(IntegrationError) as info:
        await LlmChat().run(
            LlmChat.Config(credential="llm", messages=[{"role": "user", "content": "hi"}]),
            NodeTestContext({"llm": llm_credential}),
        )
    assert info.value.status == 503 and info.value.retryable and "overloaded" in str(info.value)


def test_invalid_schema_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        LlmExtract.Config(credential="llm", text="x", schema={"type": "bogus"})


async def test_warm_up_sends_nothing_and_the_next_call_works(llm_peer: OpenAIPeer, llm_credential: Any) -> None:
    """The worker's background warm-up answers its one completion in memory (on a loop of its
    own); a node's call on the run's loop afterwards goes to the provider as usual."""
    await asyncio.to_thread(warm_up)
    assert llm_peer.received() == []
    llm_peer.answers.append("Paris.")
    out = await LlmChat().run(
        LlmChat.Config(credential="llm", messages=[{"role": "user", "content": "Capital of France?"}]),
        NodeTestContext({"llm": llm_credential}),
    )
    assert out["content"] == "Paris." and len(llm_peer.chats) == 1


def test_the_worker_warms_up_in_the_background_once() -> None:
    warmup.start_warm_up()
    warmup.start_warm_up()
    threads = [t for t in threading.enumerate() if t.name == "gorax-warm-up"]
    assert len(threads) <= 1 and all(t.daemon for t in threads)
    for thread in threads:
        thread.join(120)
    assert warmup.WARM_UPS == ("flows.nodes.llm:warm_up",)
