"""``control.switch``: route the run down the first matching case, else ``default``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from flows.nodes._common import HANDLE_PATTERN
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType, Routed, handle_text

_HANDLE = re.compile(HANDLE_PATTERN)
CaseValue = str | int | float | bool


class Switch(NodeType):
    type = "control.switch"
    version = 1
    display_name = "Switch"
    category = "control"
    description = "Route by cases: the first case that matches picks the output, otherwise 'default'."
    icon = "switch"
    example = {"value": "trigger.priority", "cases": {"high": "value == 'P1'", "low": "value == 'P4'"}}
    outputs = ("default",)
    handles_from = "cases.*"
    #: ``cases.*`` is bare CEL only in the map form; in the list form the cases are literals.
    expression_fields = ("value", "cases.*")

    class Config(NodeConfig):
        value: str | None = Field(
            default=None,
            description="Bare CEL whose result is compared with the cases when they are a list.",
        )
        cases: dict[str, str] | list[CaseValue] = Field(
            description="Either a map from output name to a bare CEL condition (first true wins, "
            "in order), or a list of literal values compared with `value` (the output is the value as text).",
        )

        @model_validator(mode="after")
        def _check(self) -> Switch.Config:
            keys = _case_keys(self.cases)
            if not keys:
                raise ValueError("'cases' is empty: give at least one case")
            if isinstance(self.cases, list) and self.value is None:
                raise ValueError("list-form 'cases' need 'value' to compare with")
            seen: set[str] = set()
            for key in keys:
                if key == "default":
                    raise ValueError("'default' is reserved for the output taken when no case matches")
                if not _HANDLE.match(key):
                    raise ValueError(f"case {key!r} cannot name an output: use letters, digits, '_', '-', '.'")
                if key in seen:
                    raise ValueError(f"case {key!r} appears twice")
                seen.add(key)
            return self

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The first matching case is the handle, else ``default``."""
        value = 'value = cel(config["value"], scope)\n' if config.get("value") is not None else "value = None\n"
        if isinstance(config.get("cases"), list):
            cases = """for case in config["cases"]:
    if value == case and isinstance(value, bool) == isinstance(case, bool):
        name = str(case).lower() if isinstance(case, bool) else str(case)
        return {"case": name, "value": value}, name
"""
        else:
            cases = """for name, expression in config["cases"].items():
    if cel(expression, scope) is True:
        return {"case": name, "value": value}, name
"""
        return Ejected(body=value + cases + 'return {"case": "default", "value": value}, "default"\n', routes=True)

    async def run(self, config: Config, ctx: NodeContext) -> Routed:
        """Pick the first matching case."""
        value = ctx.evaluate("value") if config.value is not None else None
        if isinstance(config.cases, list):
            for case in config.cases:
                if _same(value, case):
                    return Routed(output={"case": _key(case), "value": value}, handles=(_key(case),))
        else:
            for key in config.cases:
                hit = ctx.evaluate(f"cases.{key}")
                if not isinstance(hit, bool):
                    raise TypeError(
                        f"switch {ctx.node_id!r}: case {key!r} yielded {type(hit).__name__} {hit!r}, not a bool"
                    )
                if hit:
                    return Routed(output={"case": key, "value": value}, handles=(key,))
        return Routed(output={"case": "default", "value": value}, handles=("default",))


def _same(value: Any, case: Any) -> bool:
    # CEL keeps bools apart from numbers; so do we (True must not match case 1).
    if isinstance(value, bool) or isinstance(case, bool):
        return value is case
    return bool(value == case)


def _key(case: CaseValue) -> str:
    return handle_text(case) or str(case)


def _case_keys(cases: dict[str, str] | list[CaseValue]) -> tuple[str, ...]:
    return tuple(cases) if isinstance(cases, dict) else tuple(_key(c) for c in cases)
