"""CEL for an ejected Gorax workflow: ``cel(expression, scope)`` and ``text(*parts)``.

``gorax eject`` writes this file beside the flow file. Gorax's templates (``{{ ... }}``) and
conditions are CEL (https://cel.dev), evaluated here with cel-python (``pip install
cel-python``), Gorax's reference CEL engine, plus Gorax's extra functions: ``now()``, ``uuid()``,
``lower()``, ``upper()``, ``json_encode()``, ``json_decode()``, ``base64_encode()`` and
``base64_decode()``. Not included: Gorax's strings extension (``charAt``, ``format``...) and its
evaluation limits (steps, time, result size).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _json(value: Any, compact: bool = True) -> str:
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(value, separators=separators, ensure_ascii=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: str) -> str:
    return base64.b64decode(value + "=" * (-len(value) % 4)).decode()


FUNCTIONS: dict[str, Any] = {
    "now": lambda: celtypes.TimestampType(datetime.now(UTC)),
    "uuid": lambda: celtypes.StringType(str(uuid.uuid4())),
    "lower": lambda value: celtypes.StringType(_text(value).lower()),
    "upper": lambda value: celtypes.StringType(_text(value).upper()),
    "json_encode": lambda value: celtypes.StringType(_json(plain(value))),
    "json_decode": lambda value: celpy.json_to_cel(json.loads(_text(value))),
    "base64_encode": lambda value: celtypes.StringType(_b64(_text(value).encode())),
    "base64_decode": lambda value: celtypes.StringType(_unb64(_text(value))),
}
_ENVIRONMENT = celpy.Environment()


@lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    return _ENVIRONMENT.program(_ENVIRONMENT.compile(expression), functions=FUNCTIONS)


def cel(expression: str, scope: dict[str, Any]) -> Any:
    """The value of a CEL expression over ``scope`` (trigger, steps, env, loop...), as JSON data."""
    activation = {name: celpy.json_to_cel(value) for name, value in scope.items()}
    try:
        return plain(_program(expression).evaluate(activation))
    except celpy.CELEvalError as exc:
        reason = exc.args[0] if exc.args else exc
        raise ValueError(f"CEL {expression!r}: {reason}") from None


def text(*parts: Any) -> str:
    """A string template's value: its parts joined, values that are not text as JSON."""
    return "".join(p if isinstance(p, str) else _json(p, compact=False) for p in parts)


def plain(value: Any) -> Any:
    """A CEL value as plain JSON data (timestamps as ISO 8601 text, durations as seconds)."""
    if value is None or isinstance(value, (bool, celtypes.BoolType)):
        return None if value is None else bool(value)
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, celtypes.DurationType):
        return value.total_seconds()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(plain(key)): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return str(value)
