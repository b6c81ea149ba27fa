"""``trigger.manual``: a run started by a person or the API, with an optional input schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from translator.nodetypes import Ejected, NodeConfig, NodeContext, TriggerType


class ManualTrigger(TriggerType):
    type = "trigger.manual"
    version = 1
    display_name = "Manual trigger"
    description = "Start the workflow by hand or through the API, with input checked against a JSON Schema."
    icon = "play"
    example = {"input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
    fires_by_default = True

    class Config(NodeConfig):
        input_schema: dict[str, Any] | None = Field(
            default=None,
            description="JSON Schema the run input must match (none: any JSON input is accepted).",
        )

        @field_validator("input_schema")
        @classmethod
        def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
            if value is not None:
                # jsonschema is a noticeable import that node discovery need not pay.
                import jsonschema  # noqa: PLC0415

                jsonschema.validators.validator_for(value).check_schema(value)
            return value

    @classmethod
    def input_schema(cls, config: Any) -> dict[str, Any] | None:
        """What a caller's input must match: the configured schema."""
        schema: dict[str, Any] | None = config.input_schema
        return schema

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The run input, checked against the input schema when there is one."""
        if config.get("input_schema") is None:
            return Ejected(body='return scope["trigger"]')
        return Ejected(
            body='jsonschema.validate(scope["trigger"], config["input_schema"])\nreturn scope["trigger"]',
            imports=("import jsonschema",),
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Check the trigger input against ``input_schema`` and pass it on."""
        data = ctx.scope.get("trigger")
        if config.input_schema is not None:
            import jsonschema  # noqa: PLC0415  (loaded on first use, as above)

            validator = jsonschema.validators.validator_for(config.input_schema)(config.input_schema)
            problems = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
            if problems:
                details = "; ".join(f"{'/'.join(map(str, p.absolute_path)) or '(root)'}: {p.message}" for p in problems)
                raise ValueError(f"run input does not match the input schema of {ctx.node_id!r}: {details}")
        return data
