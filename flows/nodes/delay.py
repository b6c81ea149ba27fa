"""``control.delay``: wait for a while or until a time."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from flows.nodes._common import check_duration, is_template, parse_duration
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType

#: Longer waits belong to a schedule or an approval timeout, not a sleeping worker slot.
MAX_DELAY_SECONDS = 7 * 86400


class Delay(NodeType):
    type = "control.delay"
    version = 1
    display_name = "Delay"
    category = "control"
    description = "Wait for a duration or until a point in time, then go on."
    icon = "pause"
    example = {"seconds": 30}

    class Config(NodeConfig):
        seconds: float | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS, description="Seconds to wait.")
        duration: str | None = Field(default=None, description="Time to wait as text: '90s', '5m', '1h30m', '2d'.")
        until: str | None = Field(
            default=None,
            description="ISO 8601 time to wait for (with an offset; UTC when none), may be a template.",
        )

        @field_validator("duration")
        @classmethod
        def _duration(cls, value: str | None) -> str | None:
            return check_duration(value)

        @field_validator("until")
        @classmethod
        def _until(cls, value: str | None) -> str | None:
            if value is not None and not is_template(value):
                _parse_time(value)
            return value

        @model_validator(mode="after")
        def _exactly_one(self) -> Delay.Config:
            given = [k for k in ("seconds", "duration", "until") if getattr(self, k) is not None]
            if len(given) != 1:
                raise ValueError("set exactly one of 'seconds', 'duration' and 'until'")
            return self

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected | None:
        """Sleep; the output says how long."""
        if config.get("until") is not None:
            wait = """until = datetime.fromisoformat(config["until"].replace("Z", "+00:00"))
until = until if until.tzinfo else until.replace(tzinfo=UTC)
seconds = max(0.0, (until - datetime.now(UTC)).total_seconds())
"""
            imports: tuple[str, ...] = ("import time", "from datetime import UTC, datetime")
        elif config.get("duration") is not None:
            if is_template(config["duration"]):
                return None  # a duration computed at run time has no Python form yet
            seconds = parse_duration(config["duration"]).total_seconds()
            wait = f"seconds = {seconds!r}  # {config['duration']}\n"
            imports = ("import time",)
        else:
            wait = 'seconds = float(config["seconds"])\n'
            imports = ("import time",)
        return Ejected(
            body=wait + 'time.sleep(seconds)\nreturn {"waited_seconds": round(seconds, 3)}\n', imports=imports
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Sleep; the output says how long."""
        if config.until is not None:
            target = _parse_time(config.until)
            wait = max(0.0, (target - datetime.now(UTC)).total_seconds())
        elif config.duration is not None:
            wait = parse_duration(config.duration).total_seconds()
        else:
            wait = float(config.seconds or 0)
        if wait > MAX_DELAY_SECONDS:
            raise ValueError(f"delay {ctx.node_id!r}: {wait:.0f}s is longer than {MAX_DELAY_SECONDS}s")
        await asyncio.sleep(wait)
        return {"waited_seconds": round(wait, 3)}


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"'until' {value!r} is not an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
