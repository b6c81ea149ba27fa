"""cel-expr-python glue (Google's cel-cpp runtime): compiling, fast evaluation, Gorax's functions.

Private to :mod:`translator._engine`, which decides what runs here. This engine has no step
budget and caps comprehensions, so the engine module sends it only expressions without
comprehension macros; any error here (a failed compile, an error value, a refused argument, a
limit) is answered by the reference engine instead, so errors read as they always have.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid as _uuid
from typing import Any

from cel_expr_python import cel

from translator import _strings
from translator._strings import LimitExceeded, Meter

#: What a compiled expression is here.
Program = Any


class Failed(Exception):
    """This engine cannot answer: the caller asks the reference engine."""


_T = cel.Type
_S, _I, _D = _T.STRING, _T.INT, _T.DYN
_ERROR = _T.ERROR


def _overload(name: str, result: Any, params: list[Any], impl: Any, *, member: bool = False) -> Any:
    return cel.Overload(name, return_type=result, parameters=params, is_member=member, impl=impl)


def _text_only(function: Any) -> Any:
    def call(value: Any) -> Any:
        if len(value) > _MAX_FUNCTION_INPUT:
            raise ValueError("too long")  # the reference engine says what went over
        return function(value)

    return call


_MAX_FUNCTION_INPUT = 1_000_000


def _base64_decode(text: str) -> str:
    compact = "".join(text.split()).replace("-", "+").replace("_", "/")
    raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    return raw.decode("utf-8")


def _json_decode(text: str) -> Any:
    value = json.loads(text)
    if not _plain(value):
        raise ValueError("not plain JSON")  # numbers out of range: the reference engine decides
    return value


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_plain(item) for item in value.values())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    return True


def _format(template: str, args: list[Any]) -> str:
    if not _text_keys(args):
        # A map with int and bool keys reaches Python with 1 and true as one key: refuse it.
        raise TypeError("format() of a map whose keys are not all text")
    return _strings.format_string(template, args)


def _text_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _text_keys(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_text_keys(item) for item in value)
    return True


_STRINGS = {**_strings.FUNCTIONS, "format": _format}
_FUNCTIONS = [
    cel.FunctionDecl("charAt", [_overload("g_char_at", _S, [_S, _I], _STRINGS["charAt"], member=True)]),
    cel.FunctionDecl(
        "indexOf",
        [
            _overload("g_index_of", _I, [_S, _S], _STRINGS["indexOf"], member=True),
            _overload("g_index_of_offset", _I, [_S, _S, _I], _STRINGS["indexOf"], member=True),
        ],
    ),
    cel.FunctionDecl(
        "lastIndexOf",
        [
            _overload("g_last_index_of", _I, [_S, _S], _STRINGS["lastIndexOf"], member=True),
            _overload("g_last_index_of_offset", _I, [_S, _S, _I], _STRINGS["lastIndexOf"], member=True),
        ],
    ),
    cel.FunctionDecl("lowerAscii", [_overload("g_lower_ascii", _S, [_S], _STRINGS["lowerAscii"], member=True)]),
    cel.FunctionDecl("upperAscii", [_overload("g_upper_ascii", _S, [_S], _STRINGS["upperAscii"], member=True)]),
    cel.FunctionDecl(
        "replace",
        [
            _overload("g_replace", _S, [_S, _S, _S], _STRINGS["replace"], member=True),
            _overload("g_replace_n", _S, [_S, _S, _S, _I], _STRINGS["replace"], member=True),
        ],
    ),
    cel.FunctionDecl(
        "split",
        [
            _overload("g_split", _T.List(_S), [_S, _S], _STRINGS["split"], member=True),
            _overload("g_split_n", _T.List(_S), [_S, _S, _I], _STRINGS["split"], member=True),
        ],
    ),
    cel.FunctionDecl(
        "substring",
        [
            _overload("g_substring", _S, [_S, _I], _STRINGS["substring"], member=True),
            _overload("g_substring_end", _S, [_S, _I, _I], _STRINGS["substring"], member=True),
        ],
    ),
    cel.FunctionDecl("trim", [_overload("g_trim", _S, [_S], _STRINGS["trim"], member=True)]),
    cel.FunctionDecl(
        "join",
        [
            _overload("g_join", _S, [_T.List(_S)], _STRINGS["join"], member=True),
            _overload("g_join_sep", _S, [_T.List(_S), _S], _STRINGS["join"], member=True),
        ],
    ),
    cel.FunctionDecl("format", [_overload("g_format", _S, [_S, _T.List(_D)], _STRINGS["format"], member=True)]),
    cel.FunctionDecl("reverse", [_overload("g_reverse", _S, [_S], _STRINGS["reverse"], member=True)]),
    cel.FunctionDecl("strings.quote", [_overload("g_quote", _S, [_S], _STRINGS["strings.quote"])]),
    cel.FunctionDecl("now", [_overload("g_now", _T.TIMESTAMP, [], lambda: dt.datetime.now(dt.UTC))]),
    cel.FunctionDecl("uuid", [_overload("g_uuid", _S, [], lambda: str(_uuid.uuid4()))]),
    cel.FunctionDecl("lower", [_overload("g_lower", _S, [_S], _text_only(str.lower))]),
    cel.FunctionDecl("upper", [_overload("g_upper", _S, [_S], _text_only(str.upper))]),
    cel.FunctionDecl(
        "base64_encode",
        [_overload("g_b64_encode", _S, [_S], _text_only(lambda s: base64.b64encode(s.encode()).decode("ascii")))],
    ),
    cel.FunctionDecl("base64_decode", [_overload("g_b64_decode", _S, [_S], _text_only(_base64_decode))]),
    cel.FunctionDecl("json_decode", [_overload("g_json_decode", _D, [_S], _text_only(_json_decode))]),
]


_environment: Any = None


def _env() -> Any:
    global _environment
    if _environment is None:
        _environment = cel.NewEnv(variables=dict.fromkeys(_SCOPE, _D), functions=_FUNCTIONS)
    return _environment


#: Scope names this engine reserves, and the names it reads them under.
RENAMED = {"loop": "gorax_loop_"}
#: Names an expression must not use for this engine to run it (they stand for renamed ones).
RESERVED = frozenset(RENAMED.values())
_SCOPE = ("trigger", "steps", "env", "credentials", "workflow", "run", *RENAMED.values())


def compile_program(text: str) -> Program:
    """Parse ``text`` (no type check: values are JSON, known only at run time); raises Failed."""
    try:
        return _env().compile(text, disable_check=True)
    except RuntimeError as exc:  # a syntax error, a nesting cel-cpp refuses, a reserved word
        raise Failed(str(exc)) from None


class _Charges:
    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def charge(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise LimitExceeded("steps")


def evaluate(program: Program, context: dict[str, Any], *, max_steps: int, max_bytes: int, metered: bool) -> Any:
    """The value as plain JSON-like types; raises Failed when this engine cannot give it.

    ``metered``: the expression calls functions, whose work is charged to ``max_steps`` and
    whose results may not exceed ``max_bytes`` (without calls, the work is bounded by the
    expression's length).
    """
    if "loop" in context:
        context = {RENAMED.get(name, name): value for name, value in context.items()}
    token = _strings.METER.set(Meter(max_bytes, _Charges(max_steps).charge)) if metered else None
    try:
        result = program.eval(data=context)
        value = result.plain_value()
        if isinstance(value, str) and result.type() == _ERROR:  # an error value reads as text
            raise Failed(value)
    except RuntimeError as exc:  # cel-cpp cancelled the evaluation (recursion, iteration budget)
        raise Failed(str(exc)) from None
    finally:
        if token is not None:
            _strings.METER.reset(token)
    return value


def to_json(value: Any, meter: Any) -> Any:
    """A plain value from this engine as JSON types, or Failed for what only the reference engine shows."""
    meter.take(8)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Failed("not a JSON number")
        return value
    if isinstance(value, str):
        meter.take(len(value))
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Failed("a key that is not text")  # int/bool keys may collide in a Python dict
            meter.take(len(key))
            out[key] = to_json(item, meter)
        return out
    if isinstance(value, list):
        return [to_json(item, meter) for item in value]
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise Failed(f"a {type(value).__name__}")  # bytes, types: the reference engine's forms
