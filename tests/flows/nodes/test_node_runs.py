"""Node types' run() with a small stand-in context (no Prefect): what each returns and refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flows.nodes.condition import Condition
from flows.nodes.delay import Delay
from flows.nodes.merge import Merge
from flows.nodes.switch import Switch
from flows.nodes.trigger_manual import ManualTrigger
from translator import compile_expression
from translator.nodetypes import Routed


class Ctx:
    """Evaluates bare-CEL fields of a raw config with the translator's CEL, like the runtime does."""

    node_id = "n"

    def __init__(self, config: dict[str, Any], scope: dict[str, Any] | None = None, inputs: dict | None = None) -> None:
        self.config = config
        self.scope = scope or {}
        self.inputs = inputs or {}

    def evaluate(self, path: str, extra: dict[str, Any] | None = None) -> Any:
        value: Any = self.config
        for part in path.split("."):
            value = value[part]
        return compile_expression(value).evaluate({**self.scope, **(extra or {})})


async def _run(node_type: Any, config: dict[str, Any], **ctx: Any) -> Any:
    return await node_type().run(node_type.Config.model_validate(config), Ctx(config, **ctx))


async def test_condition_routes_and_refuses_non_bool() -> None:
    result = await _run(Condition, {"expression": "trigger.n > 2"}, scope={"trigger": {"n": 3}})
    assert result == Routed(output={"result": True}, handles=("true",))
    with pytest.raises(TypeError, match="not a bool"):
        await _run(Condition, {"expression": "trigger.n"}, scope={"trigger": {"n": 3}})


async def test_switch_map_and_list_forms() -> None:
    scope = {"trigger": {"p": "high", "n": 7}}
    mapped = {"cases": {"big": "trigger.n > 10", "mid": "trigger.n > 5"}}
    assert (await _run(Switch, mapped, scope=scope)).handles == ("mid",)
    listed = {"value": "trigger.p", "cases": ["low", "high"]}
    assert (await _run(Switch, listed, scope=scope)).handles == ("high",)
    none = {"value": "trigger.n", "cases": [1, 2]}
    assert (await _run(Switch, none, scope=scope)).handles == ("default",)
    flag = {"value": "trigger.n == 7", "cases": [1, True]}
    assert (await _run(Switch, flag, scope=scope)).handles == ("true",)  # True is not 1


async def test_merge_outputs_live_inputs_by_id() -> None:
    assert await _run(Merge, {"mode": "all"}, inputs={"a": 1, "b": {"x": 2}}) == {"a": 1, "b": {"x": 2}}


async def test_manual_trigger_checks_its_input_schema() -> None:
    schema = {"type": "object", "required": ["user"], "properties": {"user": {"type": "string"}}}
    assert await _run(ManualTrigger, {"input_schema": schema}, scope={"trigger": {"user": "ann"}}) == {"user": "ann"}
    with pytest.raises(ValueError, match="user"):
        await _run(ManualTrigger, {"input_schema": schema}, scope={"trigger": {"user": 5}})


async def test_delay_forms() -> None:
    assert await _run(Delay, {"duration": "10ms"}) == {"waited_seconds": 0.01}
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await _run(Delay, {"until": past}) == {"waited_seconds": 0}
    far = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    with pytest.raises(ValueError, match="longer than"):
        await _run(Delay, {"until": far})
