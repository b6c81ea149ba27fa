"""LLM node types through litellm: ``llm.chat`` and ``llm.extract``.

The credential is Gorax's LLM provider Block (provider, API key, optional API base, default
model); any provider litellm supports works. A model's answer is data: ``llm.extract`` parses it
as JSON and validates it against the node's JSON Schema, nothing more; it is never evaluated as
an expression or code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from flows.errors import IntegrationError
from flows.integrations import check_endpoint, guarded
from flows.integrations import credentials as creds
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType, block_name

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class Message(NodeConfig):
    """One chat message."""

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="What is said (templates allowed).")


class _LlmConfig(NodeConfig):
    credential: str = Field(min_length=1, description="Name of the LLM provider credential.")
    model: str | None = Field(
        default=None,
        description="Model, e.g. 'gpt-4o-mini' or 'anthropic/claude-3-5-haiku'; default: the credential's.",
    )
    max_tokens: int | None = Field(default=None, ge=1, le=200_000, description="Most tokens in the answer.")
    timeout_seconds: float = Field(default=120, gt=0, le=900, description="Time limit of one model call.")


_EJECT_HELPER = '''def llm_complete(
    config: dict[str, Any],
    provider: dict[str, Any],
    messages: list[Any],
    **options: Any,
) -> dict[str, Any]:
    """One completion through litellm: {content, model, finish_reason, usage}."""
    model = config.get("model") or provider.get("default_model")
    if provider.get("provider") and "/" not in model:
        model = f"{provider['provider']}/{model}"
    if config.get("max_tokens"):
        options["max_tokens"] = config["max_tokens"]
    response = litellm.completion(
        model=model,
        messages=messages,
        api_key=provider.get("api_key"),
        api_base=provider.get("api_base"),
        timeout=config.get("timeout_seconds", 120),
        drop_params=True,
        **options,
    )
    choice, usage = response.choices[0], response.usage
    return {
        "content": choice.message.content or "",
        "model": response.model,
        "finish_reason": choice.finish_reason,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }'''


def _ejected(config: Mapping[str, Any], body: str, *imports: str) -> Ejected:
    """An LLM node as plain code: litellm, with the provider credential as a Secret Block."""
    return Ejected(
        body='provider = Secret.load(config["credential"]).get()\n' + body,
        imports=("import litellm", "from prefect.blocks.system import Secret", *imports),
        helpers=(_EJECT_HELPER,),
        blocks=(
            (
                "Secret",
                block_name(str(config.get("credential"))),
                "a JSON object: provider, api_key, api_base, default_model",
            ),
        ),
    )


class _LlmNode(NodeType):
    category = "ai"
    credential_types = ("llm-provider",)

    async def _complete(
        self, ctx: NodeContext, config: _LlmConfig, messages: list[dict[str, str]], **options: Any
    ) -> dict[str, Any]:
        """One completion: ``{content, model, finish_reason, usage}``."""
        # litellm takes seconds to import: only an LLM node or the worker's warm-up pays for it.
        import litellm  # noqa: PLC0415

        litellm.suppress_debug_info = True  # its "Give Feedback" banner goes to stdout
        block = await creds.load(ctx, config.credential, "llm", self.credential_types)
        api_key = creds.field(block, "api_key")
        provider = creds.field(block, "provider")
        model = config.model or creds.field(block, "default_model")
        if not model:
            raise IntegrationError("llm", "completion", "no model: set 'model' or the credential's default model")
        if provider and "/" not in model:
            model = f"{provider}/{model}"
        if config.max_tokens:
            options["max_tokens"] = config.max_tokens
        api_base = creds.field(block, "api_base")
        if api_base:
            await check_endpoint(api_base, "llm", f"completion with {model}")
        async with guarded("llm", f"completion with {model}", tenant=ctx.tenant_id, secrets=[api_key]):
            try:
                response = await litellm.acompletion(
                    model=model,
                    messages=messages,
                    api_key=api_key,
                    api_base=api_base,
                    timeout=config.timeout_seconds,
                    max_retries=0,
                    drop_params=True,
                    **options,
                )
            except Exception as exc:
                # litellm maps every provider's errors onto its own classes, which carry the status.
                if not type(exc).__module__.startswith("litellm"):
                    raise
                raise _llm_error(model, exc) from None
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return {
            "content": choice.message.content or "",
            "model": response.model,
            "finish_reason": choice.finish_reason,
            "usage": {
                "prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                "completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
                "total_tokens": getattr(usage, "total_tokens", 0) or 0,
            },
        }


#: The model of the warm-up call (flows.warmup): its answer comes from memory, never a provider.
_WARM_UP_MODEL = "openai/gpt-4o-mini"
_WARM_UP_ANSWER = {
    "id": "warm-up",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def warm_up() -> None:
    """Import litellm and make one completion that an in-memory transport answers.

    That call imports and builds what litellm and the OpenAI SDK leave for the first completion
    (the SDK's resource modules, response parsing, litellm's logging and cost lookup): nothing is
    sent anywhere.
    """
    # Heavy optional imports (litellm alone takes seconds): only a warm-up or an LLM node pays them.
    import httpx  # noqa: PLC0415
    import litellm  # noqa: PLC0415
    import openai  # noqa: PLC0415
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER  # noqa: PLC0415

    litellm.suppress_debug_info = True
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, json=_WARM_UP_ANSWER))

    async def complete() -> None:
        async with httpx.AsyncClient(transport=transport) as http_client:
            client = openai.AsyncOpenAI(
                api_key="warm-up", base_url="http://warm-up.invalid/v1", http_client=http_client, max_retries=0
            )
            await litellm.acompletion(
                model=_WARM_UP_MODEL,
                messages=[{"role": "user", "content": "ok"}],
                client=client,
                max_retries=0,
                drop_params=True,
            )
        # litellm logs each call through a queue bound to the loop it last ran on: drain it here,
        # so the first real call (on a run's loop) finds nothing of this one to carry over.
        # Best effort: a run's call on another loop at the same moment takes the queue over.
        with contextlib.suppress(RuntimeError, TimeoutError):
            await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout=5)

    asyncio.run(complete())


def _llm_error(model: str, exc: Exception) -> IntegrationError:
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", None) or exc)
    return IntegrationError(
        "llm",
        f"completion with {model}",
        type(exc).__name__,
        status=status,
        provider_message=message[:500],
        retryable=status is None or status >= 500 or status == 429,
    )


class LlmChat(_LlmNode):
    type = "llm.chat"
    version = 1
    display_name = "Chat with an LLM"
    description = "Send messages to a language model; the output is its answer and the token usage."
    icon = "sparkles"
    example = {"credential": "openai", "messages": [{"role": "user", "content": "Summarise: {{ trigger.text }}"}]}

    class Config(_LlmConfig):
        messages: list[Message] = Field(min_length=1, description="The conversation, oldest first.")
        temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """One completion with the messages."""
        return _ejected(
            config,
            'options = {"temperature": config.get("temperature")}\n'
            "options = {k: v for k, v in options.items() if v is not None}\n"
            'return llm_complete(config, provider, config["messages"], **options)\n',
        )

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{content, model, finish_reason, usage}``."""
        options = {"temperature": config.temperature} if config.temperature is not None else {}
        return await self._complete(ctx, config, [m.model_dump() for m in config.messages], **options)


class LlmExtract(_LlmNode):
    type = "llm.extract"
    version = 1
    display_name = "Extract data with an LLM"
    description = (
        "Turn text into JSON that fits a JSON Schema; invalid answers are sent back to the model "
        "with the error, up to max_attempts."
    )
    icon = "sparkles"
    example = {
        "credential": "openai",
        "text": "{{ trigger.email_body }}",
        "schema": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    }

    class Config(_LlmConfig):
        text: str = Field(description="The text to extract from (e.g. '{{ steps.ocr.text }}').")
        json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema the extracted value must satisfy.")
        instructions: str | None = Field(default=None, description="Extra guidance for the model.")
        max_attempts: int = Field(default=3, ge=1, le=5, description="Model calls before giving up on invalid JSON.")
        model_config = ConfigDict(extra="forbid", populate_by_name=True)

        @field_validator("json_schema")
        @classmethod
        def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
            # jsonschema is a noticeable import that node discovery need not pay: loaded on first use.
            from jsonschema import Draft202012Validator  # noqa: PLC0415
            from jsonschema.exceptions import SchemaError  # noqa: PLC0415

            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"schema is not a valid JSON Schema: {exc.message}") from None
            return value

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """Completions until the answer is JSON that fits the schema."""
        return _ejected(config, _EJECT_EXTRACT, "import json", "import jsonschema")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{data, attempts, model, usage}``; ``data`` validates against the schema."""
        from jsonschema import Draft202012Validator  # noqa: PLC0415  (loaded on first use, as above)

        validator = Draft202012Validator(config.json_schema)
        system = (
            "Extract data from the user's text. Reply with only one JSON value, no prose, that "
            f"satisfies this JSON Schema:\n{json.dumps(config.json_schema)}"
            + (f"\n{config.instructions}" if config.instructions else "")
        )
        messages = [{"role": "system", "content": system}, {"role": "user", "content": config.text}]
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        problem = ""
        for attempt in range(1, config.max_attempts + 1):
            answer = await self._complete(ctx, config, messages, temperature=0, response_format={"type": "json_object"})
            for key in usage:
                usage[key] += answer["usage"][key]
            data, problem = _parse(answer["content"], validator)
            if not problem:
                return {"data": data, "attempts": attempt, "model": answer["model"], "usage": usage}
            ctx.logger.info("llm.extract attempt %d gave invalid JSON: %s", attempt, problem)
            messages += [
                {"role": "assistant", "content": answer["content"]},
                {"role": "user", "content": f"That reply is invalid: {problem}. Reply with only the corrected JSON."},
            ]
        raise IntegrationError(
            "llm", "extract", f"no valid JSON after {config.max_attempts} attempts; last problem: {problem}"
        )


_EJECT_EXTRACT = """schema = config["schema"]
system = "Extract data from the user's text. Reply with only one JSON value, "
system += "no prose, that satisfies this JSON Schema:\\n" + json.dumps(schema)
if config.get("instructions"):
    system += "\\n" + config["instructions"]
messages = [{"role": "system", "content": system}]
messages.append({"role": "user", "content": config["text"]})
attempts, problem = config.get("max_attempts", 3), ""
for attempt in range(1, attempts + 1):
    json_only = {"type": "json_object"}
    answer = llm_complete(
        config, provider, messages, temperature=0, response_format=json_only
    )
    content = answer["content"].strip().removeprefix("```json").removesuffix("```")
    try:
        data = json.loads(content)
        jsonschema.validate(data, schema)
    except (ValueError, jsonschema.ValidationError) as exc:
        problem = str(exc).splitlines()[0]
        messages.append({"role": "assistant", "content": answer["content"]})
        retry = f"That reply is invalid: {problem}. Reply with the corrected JSON."
        messages.append({"role": "user", "content": retry})
        continue
    model, usage = answer["model"], answer["usage"]
    return {"data": data, "attempts": attempt, "model": model, "usage": usage}
raise RuntimeError(f"no valid JSON after {attempts} attempts: {problem}")
"""


def _parse(content: str, validator: Any) -> tuple[Any, str]:
    """(value, "") if ``content`` is JSON that fits, else (None, what is wrong)."""
    fenced = _FENCE.match(content)
    text = fenced.group(1) if fenced else content
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        return None, f"at {where}: {first.message}"
    return data, ""
