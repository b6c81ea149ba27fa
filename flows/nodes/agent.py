"""``ai.agent``: a language model that works a task with tools, within a budget, under review.

The model (any provider litellm serves, through Gorax's LLM provider credential) gets a system
prompt and a task (templates), and the tools chosen in the editor:

- ``node``: another node type, its config partly ``fixed`` (templates allowed) and partly
  ``open`` to the model (those fields of the type's JSON Schema are the tool's parameters);
- ``workflow``: a published workflow of the tenant, run as a sub-workflow with the arguments
  as its trigger input;
- ``mcp``: the tools of an MCP server (streamable HTTP, or a stdio server the operator declared).

Each model call is a Prefect task run ``llm[<turn>]`` and each tool call a task run named after
the tool, each with its result stored under a key of the flow run: a rerun of the flow run
(a retry after a failure, a resume after an approval) takes the stored answers back, so the
earlier turns are neither paid for again nor changed, and only the new turns call the model.

A tool may require approval: the run suspends on a human task that shows the call's arguments;
the reviewer approves (optionally with edited arguments, validated against the tool's schema) or
rejects with a reason, and the model is told the outcome as the tool's result.

The node's output carries ``usage`` (model, tokens in/out, cost, LLM and tool calls), summed by
analytics per run and per workflow; a budget (tokens, cost, tool calls) ends the node with an
error naming the limit, the value reached and the node. A model's answer and a tool's result are
data: never rendered as templates nor evaluated as expressions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from blocks.redact import mask, mask_values
from flows.agent_quota import MODEL_LIMITS, TOOL_LIMITS, AgentQuotaExceeded, agent_limits, agent_over, agent_usage
from flows.errors import IntegrationError
from flows.integrations import check_endpoint, guarded
from flows.integrations import credentials as creds
from flows.internal_api import post_internal
from flows.mcp import McpError
from flows.mcp import call_tool as mcp_call_tool
from flows.mcp import list_tools as mcp_list_tools
from flows.net import allowed_networks_of
from flows.nodes._common import check_duration, parse_duration
from flows.nodes.approval import ApprovalDecision, Escalation, PersonOrRole
from translator.nodetypes import NodeConfig, NodeContext, NodeType, Suspend, get_registry, input_key

TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
#: Options of a gated tool call's human task: the reviewer approves or rejects.
APPROVE, REJECT = "approved", "rejected"


class AgentError(RuntimeError):
    """The agent cannot go on: a budget is spent, no final answer came, a tool cannot be set up."""


class AgentToolDecision(ApprovalDecision):
    """What resumes a run suspended on a gated tool call: the decision, maybe edited arguments."""

    arguments: dict[str, Any] | None = None


class _Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requires_approval: bool = Field(default=False, description="A person decides before each call runs.")
    approvers: list[PersonOrRole] = Field(
        default_factory=list, description="Who may decide a gated call: user emails or 'role:<role>'."
    )
    approval_timeout: str | None = Field(default=None, description="How long a gated call waits, e.g. '24h'.")
    approval_escalation: list[Escalation] = Field(
        default_factory=list, description="Reminders and automatic decisions ('approved'/'rejected') of a gated call."
    )

    @field_validator("approval_timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        return check_duration(value)

    @model_validator(mode="after")
    def _approval(self) -> _Tool:
        if self.requires_approval and not self.approvers:
            raise ValueError("a tool that requires approval needs 'approvers'")
        for i, step in enumerate(self.approval_escalation):
            if step.decide is not None and step.decide not in (APPROVE, REJECT):
                raise ValueError(f"approval_escalation[{i}].decide must be '{APPROVE}' or '{REJECT}'")
        return self


class NodeTool(_Tool):
    """Another node type as a tool: ``fixed`` config plus the ``open`` fields the model fills."""

    kind: Literal["node"] = Field(default="node", description="The kind of tool source.")
    type: str = Field(description="The node type's slug, e.g. 'http.request'.")
    name: str | None = Field(default=None, pattern=TOOL_NAME, description="Tool name (default: from the type).")
    description: str | None = Field(default=None, description="What the tool does, for the model.")
    fixed: dict[str, Any] = Field(default_factory=dict, description="Config set here (templates allowed).")
    open: list[str] = Field(default_factory=list, description="Config fields (dotted paths) the model fills.")

    @model_validator(mode="after")
    def _fits_type(self) -> NodeTool:
        node_type = get_registry().get(self.type)
        if node_type is None:
            raise ValueError(f"type: no node type {self.type!r}")
        if node_type.is_trigger() or node_type.has_body or node_type.suspends_for is not None:
            raise ValueError(f"type: {self.type!r} cannot be a tool (triggers, containers and approvals cannot)")
        if node_type.type == Agent.type:
            raise ValueError("type: an agent cannot be another agent's tool")
        if node_type.expression_fields:
            raise ValueError(f"type: {self.type!r} has bare-CEL fields and cannot be a tool")
        fields = node_type.Config.model_fields
        aliases = {info.alias or name for name, info in fields.items()}
        for key in self.fixed:
            if key not in aliases:
                raise ValueError(f"fixed.{key}: {self.type!r} has no config field {key!r}")
        for path in self.open:
            last = path.split(".")[-1]
            if last == "credential" or last.endswith("_credential") or path in node_type.credential_fields:
                raise ValueError(f"open: {path!r} names a credential: credentials are fixed, never the model's choice")
            if path.split(".")[0] not in aliases:
                raise ValueError(f"open: {self.type!r} has no config field {path.split('.')[0]!r}")
            if path.split(".")[0] in self.fixed and "." not in path:
                raise ValueError(f"open: {path!r} is also fixed")
            if _field_schema(node_type.Config.model_json_schema(by_alias=True), path) is None:
                raise ValueError(f"open: {path!r} is not a field of {self.type!r}")
        return self

    def tool_name(self) -> str:
        return self.name or re.sub(r"[^a-zA-Z0-9_-]", "_", self.type)


class WorkflowTool(_Tool):
    """A published workflow of the tenant as a tool: the arguments are its trigger input."""

    kind: Literal["workflow"] = Field(default="workflow", description="The kind of tool source.")
    workflow_id: str = Field(min_length=1, description="Id of a published workflow of the tenant.")
    name: str = Field(pattern=TOOL_NAME, description="Tool name.")
    description: str = Field(min_length=1, description="What the workflow does, for the model.")
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of the trigger input."
    )


class McpServerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="Streamable HTTP endpoint of the server.")
    stdio: str | None = Field(default=None, description="Name of a stdio server the operator declared.")

    @model_validator(mode="after")
    def _one(self) -> McpServerRef:
        if (self.url is None) == (self.stdio is None):
            raise ValueError("set exactly one of 'url' and 'stdio'")
        return self


class McpTool(_Tool):
    """The tools of an MCP server (all, or the ones named)."""

    kind: Literal["mcp"] = Field(default="mcp", description="The kind of tool source.")
    server: McpServerRef = Field(description="The MCP server: a streamable HTTP url or a declared stdio server.")
    credential: str | None = Field(default=None, description="HTTP auth credential for the server's headers.")
    tools: list[str] | None = Field(default=None, description="Only these of the server's tools (default: all).")
    prefix: str = Field(
        default="", pattern=r"^[a-zA-Z0-9_-]{0,20}$", description="Put before each tool's name (keeps servers apart)."
    )


ToolSource = Annotated[NodeTool | WorkflowTool | McpTool, Field(discriminator="kind")]


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens (in + out) over every model call.")
    max_cost_usd: float | None = Field(default=None, gt=0, description="Most cost in USD over every model call.")
    max_tool_calls: int | None = Field(default=None, ge=0, description="Most tool calls.")


def _field_schema(schema: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """The JSON Schema of the field at dotted ``path`` ($refs into ``$defs`` followed)."""
    defs = schema.get("$defs") or {}
    node: Any = schema
    for part in path.split("."):
        node = _deref(node, defs)
        properties = node.get("properties") if isinstance(node, Mapping) else None
        if not isinstance(properties, Mapping) or part not in properties:
            return None
        node = properties[part]
    return dict(node) if isinstance(node, Mapping) else None


def _deref(node: Any, defs: Mapping[str, Any]) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
    if isinstance(node, Mapping) and "anyOf" in node:
        objects = [_deref(o, defs) for o in node["anyOf"]]
        with_props = [o for o in objects if isinstance(o, Mapping) and "properties" in o]
        if with_props:
            return with_props[0]
    return node


class _Resolved:
    """One tool as the model sees it, and how to call it."""

    def __init__(self, name: str, description: str, schema: dict[str, Any], source: Any, index: int) -> None:
        self.name, self.description, self.schema, self.source, self.index = name, description, schema, source, index
        self.remote: str | None = None  # an MCP tool's own name

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.schema},
        }


class Agent(NodeType):
    type = "ai.agent"
    version = 1
    display_name = "AI agent"
    category = "ai"
    description = (
        "A language model works a task with tools (node types, workflows, MCP servers), within a "
        "budget; gated tools wait for a person's approval."
    )
    icon = "sparkles"
    example = {
        "credential": "openai",
        "task": "Find order {{ trigger.body.order_id }} and answer the customer.",
        "tools": [
            {
                "kind": "node",
                "name": "lookup_order",
                "type": "http.request",
                "fixed": {"method": "GET"},
                "open": ["url"],
            }
        ],
    }
    credential_types = ("llm-provider",)
    suspends_for = AgentToolDecision

    class Config(NodeConfig):
        credential: str = Field(min_length=1, description="Name of the LLM provider credential.")
        model: str | None = Field(default=None, description="Model; default: the credential's.")
        system: str = Field(default="You are a careful assistant.", description="System prompt (templates).")
        task: str = Field(min_length=1, description="The task (templates, e.g. '{{ trigger.body.text }}').")
        tools: list[ToolSource] = Field(default_factory=list, description="What the model may call.")
        max_iterations: int = Field(default=10, ge=1, le=100, description="Most model calls.")
        output_schema: dict[str, Any] | None = Field(
            default=None, description="JSON Schema the final answer must satisfy (else it is text)."
        )
        output_attempts: int = Field(
            default=2, ge=1, le=5, description="Final answers tried against output_schema before failing."
        )
        budget: Budget = Field(default_factory=Budget, description="Limits on tokens, cost and tool calls.")
        temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
        timeout_seconds: float = Field(default=120, gt=0, le=900, description="Time limit of one model call.")

        @field_validator("output_schema")
        @classmethod
        def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
            if value is None:
                return None
            # jsonschema is loaded on first use, not by node discovery.
            from jsonschema import Draft202012Validator  # noqa: PLC0415
            from jsonschema.exceptions import SchemaError  # noqa: PLC0415

            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
            return value

        @model_validator(mode="after")
        def _unique_names(self) -> Agent.Config:
            seen: dict[str, int] = {}
            for i, tool in enumerate(self.tools):
                if isinstance(tool, McpTool):
                    continue
                name = tool.tool_name() if isinstance(tool, NodeTool) else tool.name
                if name in seen:
                    raise ValueError(f"tools[{i}].name: {name!r} is also the name of tools[{seen[name]}]")
                seen[name] = i
            return self

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Output: ``{output, content, turns, usage}`` (``output`` fits ``output_schema`` when set)."""
        return await _AgentRun(config, ctx).run()


async def node_step(name: str, label: str, cache_key: str | None, execute: Any) -> Any:
    """A step of the agent as a task run of its own (:func:`flows.runtime.tasks.node_step`)."""
    # Prefect is the runtime's: node discovery (the translator, the editor's checks) must not
    # import it, so the runtime's task helpers are loaded when an agent runs.
    from flows.runtime.tasks import node_step as run_as_task  # noqa: PLC0415

    return await run_as_task(name, label, cache_key, execute)


def node_cache_key(flow_run_id: Any, node_id: str, path: tuple[int, ...]) -> str:
    """Where the node's own result is stored in its flow run (the prefix of its steps' keys)."""
    from flows.runtime.tasks import node_cache_key as key_of  # noqa: PLC0415  (as above)

    return key_of(flow_run_id, node_id, path)


class _AgentRun:
    def __init__(self, config: Agent.Config, ctx: NodeContext) -> None:
        self.config = config
        self.ctx = ctx
        flow_run = ctx.flow_run_id
        self.key = node_cache_key(flow_run, ctx.node_id, ctx.path) if flow_run else None
        self.usage: dict[str, Any] = {
            "model": None,
            "tokens_in": 0,
            "tokens_out": 0,
            "cost_usd": 0.0,
            "llm_calls": 0,
            "tool_calls": 0,
        }
        self.turns: list[dict[str, Any]] = []
        self.received: Mapping[str, Any] = getattr(ctx, "received", None) or {}
        self.tenant_limits: dict[str, float] = {}

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> Any:
        config = self.config
        if self.ctx.tenant_id:
            self.tenant_limits = await agent_limits(self.ctx.tenant_id)
        tools = await self._tools()
        by_name = {t.name: t for t in tools}
        system = config.system
        if config.output_schema is not None:
            system += (
                "\n\nWhen you are done, reply with only one JSON value, no prose, that satisfies this "
                f"JSON Schema:\n{json.dumps(config.output_schema)}"
            )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": config.task},
        ]
        validator = _validator(config.output_schema)
        attempts = 0
        for turn in range(1, config.max_iterations + 1):
            self._check_budget()
            await self._check_tenant(MODEL_LIMITS, f"model call {turn}")
            answer = await node_step(
                f"{Agent.type} llm",
                f"llm[{turn}]",
                self._key(f"llm-{turn}"),
                lambda: self._complete(messages, tools),
            )
            self._count(answer)
            message = answer["message"]
            messages.append(message)
            record: dict[str, Any] = {
                "turn": turn,
                "model": answer["model"],
                "tokens_in": answer["tokens_in"],
                "tokens_out": answer["tokens_out"],
                "cost_usd": answer["cost_usd"],
                "latency_ms": answer["latency_ms"],
                "content": message.get("content"),
                "tool_calls": [],
            }
            self.turns.append(record)
            self.ctx.logger.info(
                "agent %s llm[%d] %s: %d tokens in, %d out, $%.6f, %d ms, %d tool call(s)",
                self.ctx.node_id,
                turn,
                answer["model"],
                answer["tokens_in"],
                answer["tokens_out"],
                answer["cost_usd"],
                answer["latency_ms"],
                len(message.get("tool_calls") or []),
            )
            self._check_budget()
            calls = message.get("tool_calls") or []
            if calls:
                for index, call in enumerate(calls):
                    outcome = await self._tool_call(turn, index, call, by_name)
                    if isinstance(outcome, Suspend):
                        return outcome
                    record["tool_calls"].append(outcome)
                    messages.append(
                        {
                            "role": "tool",
                            "tool_call_id": call.get("id") or f"call_{turn}_{index}",
                            "content": json.dumps(outcome.get("result", {"error": outcome.get("error")}), default=str),
                        }
                    )
                continue
            content = message.get("content") or ""
            if validator is None:
                return self._output(content, content)
            attempts += 1
            data, problem = _parse(content, validator)
            if not problem:
                return self._output(data, content)
            if attempts >= config.output_attempts:
                raise AgentError(
                    f"node '{self.ctx.node_id}': no final answer fit output_schema after {attempts} "
                    f"attempt(s); last problem: {problem}"
                )
            messages.append(
                {"role": "user", "content": f"That reply is invalid: {problem}. Reply with only the corrected JSON."}
            )
        raise AgentError(
            f"node '{self.ctx.node_id}': no final answer within max_iterations ({config.max_iterations} model calls)"
        )

    def _output(self, output: Any, content: str) -> dict[str, Any]:
        return {"output": output, "content": content, "turns": self.turns, "usage": dict(self.usage)}

    def _key(self, suffix: str) -> str | None:
        return f"{self.key}-{suffix}" if self.key else None

    def _count(self, answer: Mapping[str, Any]) -> None:
        self.usage["model"] = answer["model"]
        self.usage["tokens_in"] += int(answer["tokens_in"])
        self.usage["tokens_out"] += int(answer["tokens_out"])
        self.usage["cost_usd"] = round(self.usage["cost_usd"] + float(answer["cost_usd"]), 8)
        self.usage["llm_calls"] += 1

    async def _check_tenant(self, names: tuple[str, ...], before: str) -> None:
        """End the node when its tenant used up a monthly agent limit of ``names`` (none set:
        no call)."""
        if not any(name in self.tenant_limits for name in names):
            return
        used = await agent_usage(str(self.ctx.tenant_id))
        reason = agent_over(used, self.tenant_limits, names=names, node=self.ctx.node_id, before=before)
        if reason:
            raise AgentQuotaExceeded(reason)

    async def _record_tenant(self, *, tokens: int = 0, cost_usd: float = 0.0, tool_calls: int = 0) -> None:
        if self.tenant_limits:
            await agent_usage(str(self.ctx.tenant_id), tokens=tokens, cost_usd=cost_usd, tool_calls=tool_calls)

    def _check_budget(self) -> None:
        budget = self.config.budget
        tokens = self.usage["tokens_in"] + self.usage["tokens_out"]
        if budget.max_tokens is not None and tokens > budget.max_tokens:
            self._over("max_tokens", budget.max_tokens, f"{tokens} tokens")
        if budget.max_cost_usd is not None and self.usage["cost_usd"] > budget.max_cost_usd:
            self._over("max_cost_usd", budget.max_cost_usd, f"${self.usage['cost_usd']:.6f}")
        if budget.max_tool_calls is not None and self.usage["tool_calls"] > budget.max_tool_calls:
            self._over("max_tool_calls", budget.max_tool_calls, f"{self.usage['tool_calls']} tool calls")

    def _over(self, limit: str, value: Any, reached: str) -> None:
        raise AgentError(
            f"node '{self.ctx.node_id}': budget.{limit} of {value} exceeded: {reached} used "
            f"after {self.usage['llm_calls']} model call(s)"
        )

    # -- the model --------------------------------------------------------------------------
    async def _complete(self, messages: list[dict[str, Any]], tools: list[_Resolved]) -> dict[str, Any]:
        """One model call: ``{message, model, tokens_in, tokens_out, cost_usd, latency_ms}``."""
        # litellm takes seconds to import: only LLM nodes and the worker's warm-up pay for it.
        import litellm  # noqa: PLC0415

        litellm.suppress_debug_info = True
        config, ctx = self.config, self.ctx
        block = await creds.load(ctx, config.credential, "llm", Agent.credential_types)
        api_key = creds.field(block, "api_key")
        provider = creds.field(block, "provider")
        model = config.model or creds.field(block, "default_model")
        if not model:
            raise IntegrationError("llm", "completion", "no model: set 'model' or the credential's default model")
        if provider and "/" not in model:
            model = f"{provider}/{model}"
        api_base = creds.field(block, "api_base")
        if api_base:
            await check_endpoint(api_base, "llm", f"completion with {model}")
        options: dict[str, Any] = {}
        if tools:
            options["tools"] = [t.spec() for t in tools]
        if config.temperature is not None:
            options["temperature"] = config.temperature
        started = time.perf_counter()
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
                if not type(exc).__module__.startswith("litellm"):
                    raise
                status = getattr(exc, "status_code", None)
                raise IntegrationError(
                    "llm",
                    f"completion with {model}",
                    type(exc).__name__,
                    status=status,
                    provider_message=str(getattr(exc, "message", None) or exc)[:500],
                    retryable=status is None or status >= 500 or status == 429,
                ) from None
        latency = int((time.perf_counter() - started) * 1000)
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        calls = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments or "{}"},
            }
            for call in (choice.message.tool_calls or [])
        ]
        message: dict[str, Any] = {"role": "assistant", "content": choice.message.content}
        if calls:
            message["tool_calls"] = calls
        try:
            cost = float(litellm.completion_cost(completion_response=response) or 0.0)
        except Exception:  # a model without a known price costs what it costs: unknown here
            cost = 0.0
        tokens = (getattr(usage, "prompt_tokens", 0) or 0) + (getattr(usage, "completion_tokens", 0) or 0)
        await self._record_tenant(tokens=tokens, cost_usd=cost)  # in the step: a replay counts nothing
        return {
            "message": message,
            "model": response.model,
            "finish_reason": choice.finish_reason,
            "tokens_in": getattr(usage, "prompt_tokens", 0) or 0,
            "tokens_out": getattr(usage, "completion_tokens", 0) or 0,
            "cost_usd": cost,
            "latency_ms": latency,
        }

    # -- tools --------------------------------------------------------------------------------
    async def _tools(self) -> list[_Resolved]:
        resolved: list[_Resolved] = []
        for index, source in enumerate(self.config.tools):
            if isinstance(source, NodeTool):
                node_type = get_registry().get(source.type)
                assert node_type is not None  # checked by the config
                resolved.append(
                    _Resolved(
                        source.tool_name(),
                        source.description or node_type.description,
                        _open_schema(node_type, source),
                        source,
                        index,
                    )
                )
            elif isinstance(source, WorkflowTool):
                resolved.append(_Resolved(source.name, source.description, source.input_schema, source, index))
            else:
                listed = await node_step(
                    f"{Agent.type} mcp list",
                    f"tools[{index}] list",
                    self._key(f"mcp-{index}"),
                    lambda source=source: self._mcp_list(source),  # type: ignore[misc]
                )
                wanted = set(source.tools) if source.tools is not None else None
                missing = sorted(wanted - {t["name"] for t in listed}) if wanted is not None else []
                if missing:
                    raise AgentError(
                        f"node '{self.ctx.node_id}': tools[{index}]: the MCP server has no tool "
                        f"{', '.join(map(repr, missing))}"
                    )
                for tool in listed:
                    if wanted is not None and tool["name"] not in wanted:
                        continue
                    name = (source.prefix + re.sub(r"[^a-zA-Z0-9_-]", "_", tool["name"]))[:64]
                    item = _Resolved(
                        name, tool["description"], tool["input_schema"] or {"type": "object"}, source, index
                    )
                    item.remote = tool["name"]
                    resolved.append(item)
        names = [t.name for t in resolved]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise AgentError(f"node '{self.ctx.node_id}': tool names repeat: {', '.join(twice)}")
        return resolved

    async def _mcp_headers(self, source: McpTool) -> dict[str, str]:
        if not source.credential:
            return {}
        block = await creds.load(self.ctx, source.credential, "mcp", ("http-auth",))
        headers = getattr(block, "headers", None)
        return dict(headers()) if callable(headers) else {}

    async def _mcp_list(self, source: McpTool) -> list[dict[str, Any]]:
        try:
            return await mcp_list_tools(
                url=source.server.url,
                stdio=source.server.stdio,
                headers=await self._mcp_headers(source),
                allowed=allowed_networks_of(self.ctx),
            )
        except McpError as exc:
            raise AgentError(f"node '{self.ctx.node_id}': tools[{source_index(self.config, source)}]: {exc}") from None

    async def _tool_call(
        self, turn: int, index: int, call: Mapping[str, Any], by_name: Mapping[str, _Resolved]
    ) -> dict[str, Any] | Suspend:
        """Run one tool call (or suspend for its approval); what the step records show of it."""
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        entry: dict[str, Any] = {"tool": name, "status": "error"}
        tool = by_name.get(name)
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError as exc:
            entry.update(arguments=function.get("arguments"), error=f"the arguments are not JSON: {exc}")
            return entry
        entry["arguments"] = arguments
        if tool is None:
            entry["error"] = f"there is no tool {name!r}; the tools are: {', '.join(sorted(by_name))}"
            return entry
        if not isinstance(arguments, dict):
            entry["error"] = "the arguments must be a JSON object"
            return entry
        problem = _invalid(arguments, tool.schema)
        if problem:
            entry["error"] = f"invalid arguments: {problem}"
            return entry
        self.usage["tool_calls"] += 1
        self._check_budget()
        await self._check_tenant(TOOL_LIMITS, f"tool call {name!r} of model call {turn}")
        if tool.source.requires_approval:
            key = input_key("tool", self.ctx.node_id, (*self.ctx.path, turn, index))
            answer = self.received.get(key)
            if answer is None:
                return await self._ask(key, tool, arguments, turn)
            decision = AgentToolDecision.model_validate(answer)
            entry["approval"] = {
                "decision": decision.value if not decision.expired else "expired",
                "decided_by": decision.decided_by,
                "comment": decision.comment,
            }
            if decision.expired or decision.value != APPROVE:
                reason = "nobody decided before the approval expired" if decision.expired else decision.comment
                entry.update(status="rejected", result={"rejected": True, "reason": reason or "no reason given"})
                return entry
            if decision.arguments is not None:
                problem = _invalid(decision.arguments, tool.schema)
                if problem:
                    raise AgentError(f"node '{self.ctx.node_id}': the reviewer's arguments for {name}: {problem}")
                entry["approval"]["edited"] = decision.arguments != arguments
                arguments = decision.arguments
                entry["arguments"] = arguments
        label = f"{name}[{turn}]" + (f"[{index}]" if index else "")
        result = await node_step(name, label, self._key(f"tool-{turn}-{index}"), lambda: self._invoke(tool, arguments))
        if result.get("error") is not None:
            entry["error"] = result["error"]
        else:
            entry.update(status="ok", result=result["result"])
        if "approval" in entry and entry["status"] == "ok":
            entry["result"] = {"approved_by": entry["approval"]["decided_by"], "result": entry["result"]}
        return entry

    async def _invoke(self, tool: _Resolved, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call the tool: ``{"result": ...}`` or ``{"error": ...}`` (told to the model, masked)."""
        await self._record_tenant(tool_calls=1)
        try:
            return {"result": await self._invoke_raw(tool, arguments)}
        except AgentError:
            raise
        except Exception as exc:
            return {"error": mask(f"{type(exc).__name__}: {exc}")[:2000]}

    async def _invoke_raw(self, tool: _Resolved, arguments: dict[str, Any]) -> Any:
        source = tool.source
        if isinstance(source, NodeTool):
            node_type = get_registry().get(source.type)
            assert node_type is not None
            config: dict[str, Any] = json.loads(json.dumps(source.fixed))
            for path, value in arguments.items():
                _set_path(config, path, value)
            typed = node_type.Config.model_validate(config)
            output = await node_type().run(typed, self.ctx)
            return getattr(output, "output", output)
        if isinstance(source, WorkflowTool):
            parameters = {
                "trigger": arguments,
                "env": self.ctx.env,
                "tenant": self.ctx.tenant_id,
                "depth": self.ctx.depth + 1,
                "allowed_networks": self.ctx.tenant_networks or None,
            }
            return await self.ctx.runtime.run_workflow(
                graph=None, workflow=source.workflow_id, parameters=parameters, wait=True
            )
        result = await mcp_call_tool(
            tool.remote or tool.name,
            arguments,
            url=source.server.url,
            stdio=source.server.stdio,
            headers=await self._mcp_headers(source),
            allowed=allowed_networks_of(self.ctx),
        )
        if result["is_error"]:
            raise RuntimeError(f"the tool answered with an error: {json.dumps(result['content'], default=str)[:1000]}")
        return result["content"]

    async def _ask(self, key: str, tool: _Resolved, arguments: dict[str, Any], turn: int) -> Suspend:
        """Record the human task of a gated call, then suspend the run (the node runs again)."""
        source = tool.source
        workflow = self.ctx.scope.get("workflow") or {}
        request = {
            "tenant_id": self.ctx.tenant_id,
            "flow_run_id": self.ctx.flow_run_id,
            "node_id": self.ctx.node_id,
            "node_key": key,
            "node_name": self.ctx.label,
            "workflow_id": workflow.get("id"),
            "workflow_name": workflow.get("name"),
            "title": f"Approve the call of tool {tool.name} by agent {self.ctx.label}",
            "description": tool.description,
            "assignees": list(source.approvers),
            "options": [{"label": "Approve", "value": APPROVE}, {"label": "Reject", "value": REJECT}],
            "timeout_seconds": (
                parse_duration(source.approval_timeout).total_seconds() if source.approval_timeout else None
            ),
            "escalation": [
                {
                    "after_seconds": parse_duration(step.after).total_seconds(),
                    "notify": step.notify,
                    "assign": step.assign,
                    "decide": step.decide,
                }
                for step in source.approval_escalation
            ],
            "channels": ["inbox"],
            "email_credential": None,
            # What the reviewer sees and may edit: the call, its arguments and their schema.
            "snapshot": {
                "tool_call": {"tool": tool.name, "turn": turn, "arguments": arguments, "schema": tool.schema},
                "trigger": self.ctx.scope.get("trigger"),
            },
        }
        try:
            task = await post_internal("human-tasks", mask_values(request, free=("snapshot",)))
        except RuntimeError as exc:
            raise RuntimeError(f"recording the approval of tool {tool.name} failed: {exc}") from None
        self.ctx.logger.info(
            "agent %s waits for approval of %s (human task %s)", self.ctx.node_id, tool.name, task["id"]
        )
        return Suspend(key=key, data={"task_id": task["id"], "tool": tool.name}, rerun=True)


def source_index(config: Agent.Config, source: Any) -> int:
    return next(i for i, s in enumerate(config.tools) if s is source)


def _open_schema(node_type: type[NodeType], source: NodeTool) -> dict[str, Any]:
    """The tool's parameters: the ``open`` fields of the type's Config schema."""
    full = node_type.Config.model_json_schema(by_alias=True)
    required_top = set(full.get("required") or [])
    properties: dict[str, Any] = {}
    required: list[str] = []
    for path in source.open:
        field = _field_schema(full, path) or {}
        properties[path] = field
        if "." not in path and path in required_top:
            required.append(path)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if full.get("$defs") and "$ref" in json.dumps(properties):
        schema["$defs"] = full["$defs"]
    schema["additionalProperties"] = False
    return schema


def _set_path(config: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    target = config
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[parts[-1]] = value


def _validator(schema: dict[str, Any] | None) -> Any:
    if schema is None:
        return None
    from jsonschema import Draft202012Validator  # noqa: PLC0415  (loaded on first use)

    return Draft202012Validator(schema)


def _invalid(value: Any, schema: Mapping[str, Any]) -> str:
    """What is wrong with ``value`` against ``schema`` ("" when it fits)."""
    validator = _validator(dict(schema))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return ""
    first = errors[0]
    where = "/".join(str(p) for p in first.path) or "(root)"
    return f"at {where}: {first.message}"


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
